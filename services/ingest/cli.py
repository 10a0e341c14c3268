"""`clonedesk ingest` (the webhook gateway), `clonedesk streams` (the conversation processor) and
`clonedesk import zendesk|intercom|sgd FILE --tenant T` (history backfill)."""

from __future__ import annotations

import json
from pathlib import Path

import click


def register(main: click.Group) -> None:
    from clonedesk.core.command_line import one_line_errors
    from clonedesk.ingest.adapters.files import UnreadableFile

    one_line_errors(UnreadableFile)
    main.add_command(ingest)
    main.add_command(streams)
    main.add_command(import_group)


def _settings(ctx: click.Context):
    from clonedesk.core.command_line import settings_from

    return settings_from(ctx)


@click.command()
@click.option("--port", type=int, default=None, help="Default: CLONEDESK_GATEWAY_PORT.")
@click.option("--max-body-bytes", type=click.IntRange(min=1), default=None,
              help="Larger webhook bodies get 413 (default: CLONEDESK_GATEWAY_MAX_BODY_BYTES, 1 MiB).")
@click.option("--signature-tolerance", type=click.FloatRange(min=1), default=None,
              help="Seconds a Zendesk signature timestamp may differ from now (replay protection; default:"
                   " CLONEDESK_GATEWAY_SIGNATURE_TOLERANCE_S, 300).")
@click.pass_context
def ingest(ctx: click.Context, port: int | None, max_body_bytes: int | None,
           signature_tolerance: float | None) -> None:
    """Run the webhook gateway (Zendesk and Intercom webhooks into helpdesk.events)."""
    import uvicorn

    from clonedesk.core.service_runner import start_service
    from clonedesk.ingest.bootstrap import gateway_app
    from clonedesk.ingest.settings import IngestSettings

    settings = IngestSettings.from_settings(_settings(ctx))
    start_service("gateway", settings)
    app = gateway_app(settings, max_body_bytes=max_body_bytes or settings.gateway_max_body_bytes,
                      tolerance_s=signature_tolerance or settings.gateway_signature_tolerance_s)
    uvicorn.run(app, host=settings.bind_host, port=port or settings.gateway_port, log_config=None,
                access_log=False)


@click.command()
@click.option("--app-id", default=None, help="faust application id (consumer group, changelog names).")
@click.pass_context
def streams(ctx: click.Context, app_id: str | None) -> None:
    """Run the conversation processor (faust worker)."""
    import faust

    from clonedesk.core.service_runner import broker_with_topics, start_service
    from clonedesk.ingest.entrypoints.streams import DEFAULT_APP_ID, create_app

    settings = _settings(ctx)
    start_service("streams", settings)
    broker_with_topics(settings)
    app = create_app(settings, app_id=app_id or DEFAULT_APP_ID)
    worker = faust.Worker(app, loglevel=settings.log_level.lower(), redirect_stdouts=False,
                          override_logging=False)
    worker.execute_from_commandline()


@click.group("import")
def import_group() -> None:
    """Backfill a tenant's resolved-ticket history into helpdesk.events."""


def _import(ctx: click.Context, kind: str, file: Path, tenant_id: str, as_json: bool = False) -> None:
    import asyncio

    from clonedesk.core.tenants import TenantStore, validate_tenant_id
    from clonedesk.ingest.entrypoints.importer import run_import

    settings = _settings(ctx)
    TenantStore(settings.resolved_data_dir).get(validate_tenant_id(tenant_id))
    report = asyncio.run(run_import(settings, kind, file, tenant_id))  # its bar goes to stderr
    if as_json:
        click.echo(json.dumps({"kind": kind, "tenant": tenant_id, "records": report.records,
                               "written": report.written, "rejected": report.rejected,
                               "problems": report.problems[:50]}))
        return
    for problem in report.problems[:50]:
        click.echo(f"{file}:{problem}", err=True)
    if len(report.problems) > 50:
        click.echo(f"... and {len(report.problems) - 50} more rejected records", err=True)
    click.echo(f"imported {kind} history for {tenant_id}: {report.records} records, {report.written} events"
               f" written, {report.rejected} records rejected")


_FILE = click.Path(exists=True, dir_okay=False, path_type=Path)


# One subcommand per export format, all taking the same arguments.
IMPORT_FORMATS = {
    "zendesk": "A Zendesk incremental ticket export (tickets with comments/audits; JSON or JSONL).",
    "intercom": "An Intercom conversations export (conversations with their parts; JSON or JSONL).",
    "sgd": "SGD dialogues (JSONL, one dialogue a line): each dialogue one resolved ticket.",
}


def _import_command(kind: str, help_text: str) -> click.Command:
    @click.argument("file", type=_FILE)
    @click.option("--tenant", "tenant_id", required=True)
    @click.option("--json", "as_json", is_flag=True, help="Print the report as one JSON object.")
    @click.pass_context
    def command(ctx: click.Context, file: Path, tenant_id: str, as_json: bool) -> None:
        _import(ctx, kind, file, tenant_id, as_json)

    return click.command(kind, help=help_text)(command)


for _kind, _help in IMPORT_FORMATS.items():
    import_group.add_command(_import_command(_kind, _help))
