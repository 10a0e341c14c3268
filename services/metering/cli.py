"""Metering's commands: `metering` (the sink), `api` (analytics API and dashboard), `invoice`, and the
operator's `dispute list|accept|reject`."""

from __future__ import annotations

import asyncio
import json
from decimal import Decimal

import click
import httpx

from clonedesk.core.tenants import TenantStore, validate_tenant_id
from clonedesk.metering.settings import MeteringSettings
from clonedesk.metering.domain.billing import Month, usd


def register(main: click.Group) -> None:
    from clonedesk.core.command_line import one_line_errors
    from clonedesk.metering.adapters.store import StoreUnavailable

    one_line_errors(StoreUnavailable)
    for command in (metering, api, invoice, dispute):
        main.add_command(command)


def _settings(ctx: click.Context) -> MeteringSettings:
    from clonedesk.core.command_line import settings_from

    return MeteringSettings.from_settings(settings_from(ctx))


@click.command()
@click.pass_context
def metering(ctx: click.Context) -> None:
    """Run the metering sink: resolutions and outcomes into ClickHouse, settled and billed."""
    from clonedesk.core.service_runner import start_service
    from clonedesk.metering.entrypoints.service import run_metering

    settings = _settings(ctx)
    start_service("metering", settings, telemetry=False)  # run_metering sets up its own (tests hand theirs)
    asyncio.run(run_metering(settings))


@click.command()
@click.option("--host", default=None, help="Interface to listen on (default: CLONEDESK_BIND_HOST).")
@click.pass_context
def api(ctx: click.Context, host: str | None) -> None:
    """Serve the analytics API and the tenant dashboards on CLONEDESK_API_PORT."""
    from clonedesk.core.service_runner import start_service
    from clonedesk.metering.entrypoints.service import run_api

    settings = _settings(ctx)
    start_service("api", settings, telemetry=False)  # run_api sets up its own
    run_api(settings, host or settings.bind_host)


def fetch_invoice(settings: MeteringSettings, tenant_id: str, month: Month) -> dict:
    """The invoice as the API gives it: through the metering process when it holds the chDB data path,
    else straight from ClickHouse."""

    record = TenantStore(settings.resolved_data_dir).get(validate_tenant_id(tenant_id))
    socket = settings.metering_socket
    if settings.embedded_clickhouse and socket.exists():
        transport = httpx.HTTPTransport(uds=str(socket))
        try:
            # The tenant's own key: it reads its own invoice whether or not an admin key is configured.
            auth = {"Authorization": f"Bearer {record.api_key}"}
            with httpx.Client(transport=transport, base_url="http://metering", timeout=60) as client:
                response = client.get(f"/v1/tenants/{record.id}/invoice", params={"month": str(month)},
                                      headers=auth)
            response.raise_for_status()
            return response.json()
        except httpx.TransportError:
            pass  # a socket left by a metering process that is gone: open the data ourselves
    from clonedesk.metering.adapters.store import MeteringStore
    from clonedesk.metering.domain.terms import Terms

    store = MeteringStore.connect(settings.clickhouse, settings.clickhouse_database)
    try:
        from clonedesk.metering.service_layer.statements import statement_json

        return statement_json(store, record.id, month, Terms.from_plan(record.plan))
    finally:
        store.close()


@click.command()
@click.option("--tenant", "tenant_id", required=True, help="Tenant id.")
@click.option("--month", required=True, help="Calendar month, YYYY-MM (UTC).")
@click.option("--json", "as_json", is_flag=True, help="Print the API's JSON instead of a table.")
@click.pass_context
def invoice(ctx: click.Context, tenant_id: str, month: str, as_json: bool) -> None:
    """Print a tenant's invoice for a month: counts by state, free and billable units, credits, total."""
    try:
        chosen = Month.parse(month)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--month") from None
    body = fetch_invoice(_settings(ctx), tenant_id, chosen)
    if as_json:
        click.echo(json.dumps(body))
        return
    click.echo(f"Invoice {body['tenant_id']} {body['month']} (UTC)")
    click.echo("  resolutions")
    for state, count in body["resolutions"].items():
        click.echo(f"    {state:<12} {count:>8}")
    lines = [("billable units", body["billable_units"]), ("free units", body["free_units"]),
             ("charged units", body["charged_units"]), ("unit price", usd(body["unit_price_usd"])),
             ("credit units", body["credit_units"]), ("credits", usd(-Decimal(body["credits_usd"]))),
             ("total", usd(body["total_usd"]))]
    for label, value in lines:
        click.echo(f"  {label:<14} {value:>10}")


class _DisputeDesk:
    """The operator's side of disputes: through the metering process's API (admin key) while it holds
    the chDB data path, else on the store directly; the same use cases either way."""

    def __init__(self, settings: MeteringSettings):
        self.settings = settings
        self.tenants = TenantStore(settings.resolved_data_dir)
        self.client: httpx.Client | None = None
        self.store = None
        socket = settings.metering_socket
        if settings.embedded_clickhouse and socket.exists():
            from clonedesk.core.tenants import admin_api_key

            key = settings.admin_api_key or admin_api_key(settings.resolved_data_dir)
            client = httpx.Client(transport=httpx.HTTPTransport(uds=str(socket)), base_url="http://metering",
                                  timeout=60, headers={"Authorization": f"Bearer {key}"})
            try:
                client.get("/healthz").raise_for_status()
                self.client = client
            except httpx.TransportError:
                client.close()  # a socket left by a metering process that is gone
        if self.client is None:
            from clonedesk.metering.adapters.store import MeteringStore

            self.store = MeteringStore.connect(settings.clickhouse, settings.clickhouse_database)

    def close(self) -> None:
        if self.client is not None:
            self.client.close()
        if self.store is not None:
            self.store.close()

    def _answer(self, response: httpx.Response) -> dict:
        if response.status_code >= 400:
            try:
                detail = response.json().get("detail")
            except ValueError:
                detail = response.text
            raise click.ClickException(f"{response.status_code}: {detail}")
        return response.json()

    def list(self, tenant_id: str | None, status: str | None) -> list[dict]:
        if self.client is not None:
            path = f"/v1/tenants/{tenant_id}/disputes" if tenant_id else "/v1/disputes"
            return self._answer(self.client.get(path, params={"status": status} if status else None))["items"]
        from clonedesk.metering.entrypoints.api import dispute_json

        return [dispute_json(d) for d in self.store.disputes(tenant_id, status=status)]

    def decide(self, tenant_id: str, resolution_id: str, accept: bool, note: str) -> dict:
        verdict = "accept" if accept else "reject"
        if self.client is not None:
            return self._answer(self.client.post(f"/v1/tenants/{tenant_id}/resolutions/{resolution_id}/dispute/"
                                                 f"{verdict}", json={"note": note}))
        from clonedesk.metering.domain.disputes import DisputeRefused
        from clonedesk.metering.domain.terms import Terms
        from clonedesk.metering.entrypoints.api import dispute_json
        from clonedesk.metering.service_layer.disputes import decide_dispute

        record = self.tenants.get(tenant_id)
        try:
            found, _ = decide_dispute(self.store, record.id, resolution_id, accept, note, Terms.from_plan(record.plan))
        except DisputeRefused as exc:
            raise click.ClickException(f"{exc.status}: {exc}") from None
        return dispute_json(found)


@click.group()
def dispute() -> None:
    """The operator's dispute desk: list the disputes tenants opened, accept (credit) or reject them."""


@dispute.command("list")
@click.option("--tenant", "tenant_id", default=None, help="Only this tenant's disputes.")
@click.option("--status", type=click.Choice(["open", "accepted", "rejected"]), default=None)
@click.option("--json", "as_json", is_flag=True, help="Print JSON lines instead of a table.")
@click.pass_context
def dispute_list(ctx: click.Context, tenant_id: str | None, status: str | None, as_json: bool) -> None:
    """Disputes, newest first."""
    desk = _DisputeDesk(_settings(ctx))
    try:
        items = desk.list(validate_tenant_id(tenant_id) if tenant_id else None, status)
    finally:
        desk.close()
    if as_json:
        for item in items:
            click.echo(json.dumps(item))
        return
    if not items:
        click.echo("no disputes")
        return
    for item in items:
        credit = f" credit {usd(item['credit_usd'])} in {item['credit_month']}" if item["status"] == "accepted" else ""
        click.echo(f"{item['opened_at']}  {item['tenant_id']:<16} {item['resolution_id']:<38} {item['status']:<9}"
                   f"{credit}  {item['reason'][:60]!r}")


def _decide(ctx: click.Context, tenant_id: str, resolution_id: str, accept: bool, note: str, as_json: bool) -> None:
    desk = _DisputeDesk(_settings(ctx))
    try:
        item = desk.decide(validate_tenant_id(tenant_id), resolution_id, accept, note)
    finally:
        desk.close()
    if as_json:
        click.echo(json.dumps(item))
    elif item["status"] == "accepted":
        click.echo(f"accepted: {usd(item['credit_usd'])} credited to {item['tenant_id']} in {item['credit_month']}")
    else:
        click.echo(f"{item['status']}: {item['tenant_id']} {item['resolution_id']}")


_DECISION_OPTIONS = [click.argument("tenant_id"), click.argument("resolution_id"),
                     click.option("--note", default="", help="Why (shown on the evidence page)."),
                     click.option("--json", "as_json", is_flag=True, help="Print the dispute as JSON.")]


def _with_decision_options(command):
    for option in reversed(_DECISION_OPTIONS):
        command = option(command)
    return command


@dispute.command("accept")
@_with_decision_options
@click.pass_context
def dispute_accept(ctx: click.Context, tenant_id: str, resolution_id: str, note: str, as_json: bool) -> None:
    """Accept a dispute: credit what the charge cost, in the first open month from now."""
    _decide(ctx, tenant_id, resolution_id, True, note, as_json)


@dispute.command("reject")
@_with_decision_options
@click.pass_context
def dispute_reject(ctx: click.Context, tenant_id: str, resolution_id: str, note: str, as_json: bool) -> None:
    """Reject a dispute: the charge stands."""
    _decide(ctx, tenant_id, resolution_id, False, note, as_json)
