"""Back-office calls in metering: each resolution's call outcome is stored (chDB), the usage API counts
actions per day with their failure rate, the dashboard shows them, and an escalation caused by a failed
call is never billed."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta, timezone

import httpx
from clonedesk.core.kafka import encode
from clonedesk.core.tenants import TenantStore
from clonedesk.metering.adapters.codec import reply_from_record
from clonedesk.metering.adapters.store import MeteringStore
from clonedesk.metering.domain.analytics import action_figures
from clonedesk.metering.domain.billing import Month
from clonedesk.metering.domain.events import Outcome, OutcomeKind
from clonedesk.metering.entrypoints.api import create_app
from clonedesk.metering.service_layer.settlement import record_and_settle, terms_from_tenants
from clonedesk.v1 import common_pb2, resolver_pb2
from tests.metering.helpers import ApiServer

START = datetime(2026, 10, 3, 9, tzinfo=timezone.utc)
Status = resolver_pb2.ActionRun.Status


def test_action_figures_count_every_outcome_but_ok_as_a_failure():
    figures = action_figures([("ok", 3, 100.0), ("timed_out", 1, 5000.0), ("not_allowed", 1, 0.0)])
    assert figures == {"total": 5, "ok": 3, "failed": 2, "failure_rate": 0.4, "avg_latency_ms": 1060.0,
                       "by_status": {"not_allowed": 1, "ok": 3, "timed_out": 1}}
    assert action_figures([])["failure_rate"] is None


def _resolution(tenant: str, n: int, at: datetime, decision: int, status: int | None):
    message = resolver_pb2.Resolution(resolution_id=f"{tenant}-r{n}", tenant_id=tenant, ticket_id=f"t{n}",
                                      decision=decision, reply="Booked." if decision != common_pb2.ESCALATE else "",
                                      adapter_version=f"{tenant}@v1", latency_ms=120, confidence=0.9)
    message.created_at.FromDatetime(at)
    if status is not None:
        message.action_run.CopyFrom(resolver_pb2.ActionRun(call="BookRoom(day=Friday)", status=status,
                                                           latency_ms=40 + n, attempts=1))
    return reply_from_record(encode(message))


def test_a_resolutions_call_is_metered_and_a_failed_one_is_never_billed(tmp_path, clickhouse_client,
                                                                        unique_database):
    data_dir = tmp_path / "data"
    tenant = TenantStore(data_dir).add("acme-" + uuid.uuid4().hex[:6])
    tenant.plan.free_units = 0  # every billable resolution is charged
    TenantStore(data_dir).save(tenant)
    day2 = START + timedelta(days=1)
    replies = [
        _resolution(tenant.id, 1, START, common_pb2.ACTION, Status.OK),
        _resolution(tenant.id, 2, START + timedelta(hours=1), common_pb2.ESCALATE, Status.FAILED),
        _resolution(tenant.id, 3, day2, common_pb2.ESCALATE, Status.TIMED_OUT),
        _resolution(tenant.id, 4, day2, common_pb2.ACTION, Status.OK),
        _resolution(tenant.id, 5, day2, common_pb2.RESOLVE, None),
    ]
    assert (replies[1].action_name, replies[1].action_status, replies[1].action_latency_ms) == (
        "BookRoom", "failed", 42)
    assert replies[4].action_status == ""
    # the customers confirm every answer, the escalated ones included: still nothing to bill for those
    outcomes = [Outcome(f"{r.resolution_id}-c", r.resolution_id, r.tenant_id, r.ticket_id,
                        OutcomeKind.CUSTOMER_CONFIRMED, r.created_at + timedelta(minutes=5)) for r in replies]
    store = MeteringStore(clickhouse_client, unique_database)
    store.migrate()
    record_and_settle(store, replies, outcomes, terms_from_tenants(data_dir))
    lifecycles = {life.resolution_id: life for life in store.lifecycles(tenant.id)}
    assert all(lifecycles[r.resolution_id].billed_at is None for r in replies if r.escalated)
    assert sum(life.billed_at is not None for life in lifecycles.values()) == 3
    invoice = store.invoice(tenant.id, Month(2026, 10), terms_from_tenants(data_dir)(tenant.id))
    assert invoice.billable_units == 3

    with ApiServer(create_app(store, data_dir)) as server:
        usage = httpx.get(f"{server.url}/v1/tenants/{tenant.id}/usage", timeout=30,
                          headers={"Authorization": f"Bearer {tenant.api_key}"},
                          params={"from": "2026-10-03", "to": "2026-10-04", "granularity": "day"}).json()
        page = httpx.get(f"{server.url}/tenants/{tenant.id}", timeout=30, params={"month": "2026-10"},
                         headers={"Authorization": f"Bearer {tenant.api_key}"})
    assert usage["actions"] == {"total": 4, "ok": 2, "failed": 2, "failure_rate": 0.5, "avg_latency_ms": 42.5,
                                "by_status": {"failed": 1, "ok": 2, "timed_out": 1}}
    by_day = {p["period"]: p["actions"] for p in usage["series"]}
    assert (by_day["2026-10-03"]["ok"], by_day["2026-10-03"]["failed"]) == (1, 1)
    assert (by_day["2026-10-04"]["total"], by_day["2026-10-04"]["failure_rate"]) == (2, 0.5)
    assert page.status_code == 200 and 'id="actions"' in page.text and "2 done, 2 failed" in page.text

