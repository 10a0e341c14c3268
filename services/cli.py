"""The `clonedesk` command. Tenant commands live here; each package adds its own through a
`clonedesk.<package>.cli` module with `register(group)` (the stack, and every service)."""

from __future__ import annotations

import importlib
import importlib.util
import json
import pkgutil
import re
import sys
from decimal import Decimal, InvalidOperation
from urllib.parse import urlsplit

import click
from clonedesk.core.adapters import NotReadyToGoLive, adapter_name, current_version, go_live
from clonedesk.core.command_line import CloneDeskGroup, OperatorError, settings_from
from clonedesk.core.settings import Settings
from clonedesk.core.tenants import (TenantStore, new_actions_secret,
                                    validate_tenant_id)


@click.group(cls=CloneDeskGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="clonedesk")
def main() -> None:
    """CloneDesk: helpdesk tickets answered by a model trained on each tenant's own resolved tickets.

    Settings come from CLONEDESK_* environment variables (see the README)."""


# -- tenants -------------------------------------------------------------------------------------------


@main.group(cls=CloneDeskGroup)
def tenant() -> None:
    """Create and inspect tenants."""


def _tenant_view(settings: Settings, record, secrets: bool) -> dict:
    view = record.to_dict(secrets=secrets)
    version = current_version(settings.resolved_data_dir, record.id)
    view["adapter_version"] = adapter_name(record.id, version) if version is not None else None
    # What the resolver holds answers against now: the override, or the current adapter's holdout choice.
    from clonedesk.core.adapters import adapter_calibration, version_dir
    from clonedesk.core.domain.confidence import choose_threshold

    record_of_adapter = (adapter_calibration(version_dir(settings.resolved_data_dir, record.id, version))
                         if version is not None else None)
    view["escalation_threshold_in_use"] = choose_threshold(record.escalation_threshold, record.target_accuracy,
                                                           record_of_adapter)
    return view


@tenant.command("add")
@click.argument("tenant_id")
@click.option("--json", "as_json", is_flag=True,
              help="Print {id, zendesk_secret, intercom_secret, api_key, actions_secret}.")
@click.pass_context
def tenant_add(ctx: click.Context, tenant_id: str, as_json: bool) -> None:
    """Create a tenant with fresh webhook secrets and an API key (printed once)."""
    settings = settings_from(ctx)
    record = TenantStore(settings.resolved_data_dir).add(tenant_id)
    secrets = {"id": record.id, "zendesk_secret": record.zendesk_secret,
               "intercom_secret": record.intercom_secret, "api_key": record.api_key,
               "actions_secret": record.actions_secret}
    if as_json:
        click.echo(json.dumps(secrets))
        return
    click.echo(f"tenant {record.id} created. Keep these now; `tenant show {record.id} --secrets` prints them again.")
    for key, value in secrets.items():
        if key != "id":
            click.echo(f"  {key:<16} {value}")
    click.echo(f"  webhooks         /webhooks/zendesk/{record.id}  /webhooks/intercom/{record.id}")


@tenant.command("list")
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
def tenant_list(ctx: click.Context, as_json: bool) -> None:
    """List tenants."""
    settings = settings_from(ctx)
    views = [_tenant_view(settings, t, secrets=False) for t in TenantStore(settings.resolved_data_dir).list()]
    if as_json:
        click.echo(json.dumps(views))
        return
    if not views:
        click.echo("no tenants yet: `clonedesk tenant add ID`")
    for view in views:
        click.echo(f"{view['id']:<40} {'live' if view['live'] else 'not live':<9} {view['adapter_version'] or '-'}")


@tenant.command("show")
@click.argument("tenant_id")
@click.option("--secrets", is_flag=True, help="Include the webhook secrets and API key.")
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
def tenant_show(ctx: click.Context, tenant_id: str, secrets: bool, as_json: bool) -> None:
    """Show a tenant (no secrets unless --secrets)."""
    settings = settings_from(ctx)
    view = _tenant_view(settings, TenantStore(settings.resolved_data_dir).get(validate_tenant_id(tenant_id)),
                        secrets)
    if as_json:
        click.echo(json.dumps(view))
        return
    for key, value in view.items():
        click.echo(f"{key:<22} {value}")


@tenant.command("go-live")
@click.argument("tenant_id")
@click.pass_context
def tenant_go_live(ctx: click.Context, tenant_id: str) -> None:
    """Let the resolver answer this tenant's tickets (needs a current adapter and its preview)."""
    settings = settings_from(ctx)
    try:
        version = go_live(settings.resolved_data_dir, validate_tenant_id(tenant_id))
    except NotReadyToGoLive as exc:
        raise OperatorError(str(exc)) from None
    click.echo(f"tenant {tenant_id} is live on {adapter_name(tenant_id, version)}")


def _price(_ctx, _param, value: str | None) -> str | None:
    """A positive decimal amount in dollars, kept as the string it was given (never a float)."""
    if value is None:
        return None
    try:
        amount = Decimal(value)
    except InvalidOperation:
        raise click.BadParameter(f"{value!r} is not a decimal amount") from None
    if not amount.is_finite() or amount < 0 or amount.as_tuple().exponent < -4:
        raise click.BadParameter(f"{value!r}: a non-negative amount with at most 4 decimals")
    return str(amount)


def _actions_url(_ctx, _param, value: str | None) -> str | None:
    if value is None or value == "":
        return value
    parsed = urlsplit(value)
    if parsed.scheme not in ("http", "https") or not parsed.hostname:
        raise click.BadParameter(f"{value!r} is not an http(s) URL")
    return value


def _action_names(_ctx, _param, value: str | None) -> list[str] | None:
    if value is None:
        return None
    names = [name.strip() for name in value.split(",") if name.strip()]
    bad = [name for name in names if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_.]*", name)]
    if bad:
        raise click.BadParameter(f"not call names: {', '.join(bad)}")
    return names


@tenant.command("set")
@click.argument("tenant_id")
@click.option("--escalation-threshold", type=click.FloatRange(0, 1),
              help="Calibrated confidence under which the resolver escalates instead of replying"
                   " (overrides the threshold chosen from the holdout for the target accuracy).")
@click.option("--target-accuracy", type=click.FloatRange(0.5, 0.999),
              help="Decision accuracy the answered turns should reach (default 0.9): the threshold is chosen"
                   " from the adapter's holdout for it.")
@click.option("--holdout-threshold", is_flag=True, default=False,
              help="Drop an --escalation-threshold override: choose it from the holdout again.")
@click.option("--unit-price", callback=_price, help="Dollars per billable resolution (plan).")
@click.option("--free-units", type=click.IntRange(min=0), help="Free billable resolutions a month (plan).")
@click.option("--bill-assumed/--no-bill-assumed", default=None,
              help="Whether assumed resolutions are billed (plan).")
@click.option("--assumed-window-hours", type=click.IntRange(min=1),
              help="Quiet time after the AI's reply before a resolution is assumed (plan).")
@click.option("--reopen-window-days", type=click.IntRange(min=1),
              help="How long a customer's return reopens (and credits) a resolution (plan).")
@click.option("--zendesk-base-url", help="e.g. https://acme.zendesk.com (replies are posted there).")
@click.option("--zendesk-email", help="Zendesk API user (with --zendesk-token).")
@click.option("--zendesk-token", help="Zendesk API token.")
@click.option("--intercom-base-url", help="e.g. https://api.intercom.io")
@click.option("--intercom-token", help="Intercom access token.")
@click.option("--actions-url", callback=_actions_url,
              help="The back office the resolver POSTs ACTION calls to (signed with the tenant's actions_secret);"
                   " '' turns actions off (ACTION answers escalate).")
@click.option("--actions-allow", callback=_action_names,
              help="Comma-separated call names the resolver may make; '' means the calls the tenant's history made.")
@click.option("--actions-timeout-s", type=click.FloatRange(0.1, 120),
              help="Seconds one back-office request may take (it is retried on 5xx and timeouts).")
@click.option("--rotate-actions-secret", is_flag=True, default=False,
              help="Sign back-office requests with a new actions_secret from now on (printed).")
@click.pass_context
def tenant_set(ctx: click.Context, tenant_id: str, escalation_threshold: float | None,
               target_accuracy: float | None, holdout_threshold: bool, actions_url: str | None,
               actions_allow: list[str] | None, actions_timeout_s: float | None, rotate_actions_secret: bool,
               **changes) -> None:
    """Change a tenant's escalation threshold, plan, helpdesk access or back office; the services read it
    on next use."""
    settings = settings_from(ctx)
    store = TenantStore(settings.resolved_data_dir)
    record = store.get(validate_tenant_id(tenant_id))
    plan_fields = {"unit_price": "unit_price_usd", "free_units": "free_units", "bill_assumed": "bill_assumed",
                   "assumed_window_hours": "assumed_window_hours", "reopen_window_days": "reopen_window_days"}
    changed = []
    if escalation_threshold is not None and holdout_threshold:
        raise OperatorError("--escalation-threshold and --holdout-threshold contradict each other: give one")
    if escalation_threshold is not None:
        record.escalation_threshold = escalation_threshold
        changed.append("escalation_threshold")
    if holdout_threshold:
        record.escalation_threshold = None
        changed.append("escalation_threshold (from the holdout)")
    for name, value in (("target_accuracy", target_accuracy), ("actions_url", actions_url),
                        ("actions_allow", actions_allow), ("actions_timeout_s", actions_timeout_s)):
        if value is not None:
            setattr(record, name, value)
            changed.append(name)
    new_secret = rotate_actions_secret or (record.actions_url and not record.actions_secret)
    if new_secret:  # a tenant made before actions existed gets its secret with its URL
        record.actions_secret = new_actions_secret()
        changed.append("actions_secret")
    for option, value in changes.items():
        if value is None:
            continue
        if option in plan_fields:
            setattr(record.plan, plan_fields[option], value)
            changed.append(f"plan.{plan_fields[option]}")
        else:
            setattr(record.helpdesk, option, value)
            changed.append(f"helpdesk.{option}")
    if not changed:
        raise OperatorError("nothing to change: give at least one option (see `clonedesk tenant set --help`)")
    store.save(record)
    click.echo(f"tenant {record.id}: {', '.join(changed)} updated")
    if new_secret:
        click.echo(f"  actions_secret   {record.actions_secret}")


# -- commands of the other packages ---------------------------------------------------------------------


def _register_package_commands() -> None:
    import clonedesk

    for module_info in pkgutil.iter_modules(clonedesk.__path__):
        name = f"clonedesk.{module_info.name}.cli"
        if module_info.ispkg and importlib.util.find_spec(name) is not None:
            importlib.import_module(name).register(main)


_register_package_commands()


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
