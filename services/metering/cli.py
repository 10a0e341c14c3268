"""Metering's commands: `metering` (the sink), `api` (analytics API and dashboard), `invoice`."""

from __future__ import annotations

import asyncio
import json
from decimal import Decimal

import click
import httpx

from clonedesk.core.tenants import TenantStore, validate_tenant_id
from clonedesk.metering.config import MeteringSettings
from clonedesk.metering.domain.billing import Month, usd


def register(main: click.Group) -> None:
    from clonedesk.cli import one_line_errors
    from clonedesk.metering.adapters.store import StoreUnavailable

    one_line_errors(StoreUnavailable)
    for command in (metering, api, invoice):
        main.add_command(command)


def _settings(ctx: click.Context) -> MeteringSettings:
    from clonedesk.cli import settings_from

    return MeteringSettings.from_settings(settings_from(ctx))


@click.command()
@click.pass_context
def metering(ctx: click.Context) -> None:
    """Run the metering sink: resolutions and outcomes into ClickHouse, settled and billed."""
    from clonedesk.core.logs import configure_logging
    from clonedesk.metering.entrypoints.service import run_metering

    settings = _settings(ctx)
    configure_logging("metering", settings.log_level)
    asyncio.run(run_metering(settings))


@click.command()
@click.option("--host", default=None, help="Interface to listen on (default: CLONEDESK_BIND_HOST).")
@click.pass_context
def api(ctx: click.Context, host: str | None) -> None:
    """Serve the analytics API and the tenant dashboards on CLONEDESK_API_PORT."""
    from clonedesk.core.logs import configure_logging
    from clonedesk.metering.entrypoints.service import run_api

    settings = _settings(ctx)
    configure_logging("api", settings.log_level)
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
        from clonedesk.metering.service_layer import statement_json

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
