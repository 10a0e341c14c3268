"""One resolution's evidence: what the AI was asked and answered, every outcome event, each state it went
through and the statement line it is billed on — derived in the pure core, served by the API on a real
server over chDB, to the tenant itself and the admin only."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta, timezone

import httpx
from clonedesk.core.kafka import encode
from clonedesk.core.tenants import TenantStore, admin_api_key
from clonedesk.metering.adapters.codec import reply_from_record
from clonedesk.metering.adapters.store import MeteringStore
from clonedesk.metering.domain.events import AiReply, Outcome, OutcomeKind
from clonedesk.metering.domain.evidence import state_history, statement_line
from clonedesk.metering.domain.lifecycle import State, settle
from clonedesk.metering.domain.terms import Terms
from clonedesk.metering.entrypoints.api import create_app
from clonedesk.metering.service_layer.settlement import record_and_settle, terms_from_tenants
from clonedesk.v1 import common_pb2, resolver_pb2
from tests.metering.helpers import ApiServer

UTC = timezone.utc
T0 = datetime(2026, 10, 29, 10, tzinfo=UTC)


def test_the_state_history_shows_each_change_and_what_caused_it():
    terms = Terms(free_units=0)
    reply = AiReply("r1", "acme", "t1", "resolve", T0)
    reopen = Outcome("e-reopen", "r1", "acme", "t1", OutcomeKind.REOPENED, T0 + timedelta(days=4))
    history = state_history(reply, [reopen], terms, watermark=T0 + timedelta(days=10))
    assert [(c.state, c.at, c.because) for c in history] == [
        (State.PENDING, T0, "r1"),
        (State.ASSUMED, T0 + timedelta(hours=24), "r1"),  # its quiet window closed
        (State.REOPENED, T0 + timedelta(days=4), "e-reopen"),
    ]
    life = settle(reply, [reopen], terms, T0 + timedelta(days=10))
    line = statement_line(life, charge_rank=1, terms=terms)
    assert (line["month"], line["charge"], line["unit_price_usd"], line["credit_month"]) == (
        "2026-10", "charged", "0.99", "2026-11")
    assert statement_line(life, charge_rank=1, terms=Terms(free_units=5))["charge"] == "free"
    escalated = settle(AiReply("r2", "acme", "t2", "escalate", T0), [], terms, T0)
    assert statement_line(escalated, None, terms) == {"billed": False, "why": "not billable: escalated"}


def _resolution(tenant: str, n: int, at: datetime, decision: int, reply: str, action_run=None):
    message = resolver_pb2.Resolution(resolution_id=f"{tenant}-r{n}", tenant_id=tenant, ticket_id=f"t{n}",
                                      decision=decision, reply=reply, adapter_version=f"{tenant}@v3",
                                      latency_ms=140, confidence=0.93, category="billing",
                                      action="BookRoom(day=Friday)" if action_run else "")
    message.created_at.FromDatetime(at)
    message.conversation.add(role=common_pb2.CUSTOMER, text="Please book me a room for Friday.")
    if action_run is not None:
        message.action_run.CopyFrom(action_run)
    return reply_from_record(encode(message))


def test_the_api_serves_a_resolutions_evidence_to_its_own_tenant_and_the_admin(tmp_path, clickhouse_client,
                                                                              unique_database):
    data_dir = tmp_path / "data"
    tenants = TenantStore(data_dir)
    tenant = tenants.add("acme-" + uuid.uuid4().hex[:6])
    tenant.plan.free_units = 0
    tenants.save(tenant)
    other = tenants.add("other-" + uuid.uuid4().hex[:6])
    run = resolver_pb2.ActionRun(call="BookRoom(day=Friday)", status=resolver_pb2.ActionRun.OK,
                                 answer='{"ok": true, "results": [{"hotel": "Savoy"}]}', latency_ms=35, attempts=1)
    booked = _resolution(tenant.id, 1, T0, common_pb2.ACTION, "The Savoy is booked for Friday.", run)
    handed = _resolution(tenant.id, 2, T0 + timedelta(hours=1), common_pb2.ESCALATE, "")
    outcomes = [Outcome("c-1", booked.resolution_id, tenant.id, "t1", OutcomeKind.CUSTOMER_CONFIRMED,
                        T0 + timedelta(minutes=10)),
                Outcome("csat-1", booked.resolution_id, tenant.id, "t1", OutcomeKind.CSAT, T0 + timedelta(hours=2),
                        csat_score=5)]
    store = MeteringStore(clickhouse_client, unique_database)
    store.migrate()
    record_and_settle(store, [booked, handed], outcomes, terms_from_tenants(data_dir))
    with ApiServer(create_app(store, data_dir)) as server:
        def get(rid, bearer, **params):
            return httpx.get(f"{server.url}/v1/tenants/{tenant.id}/resolutions/{rid}", params=params, timeout=30,
                             headers={"Authorization": f"Bearer {bearer}"} if bearer else {})

        evidence = get(booked.resolution_id, tenant.api_key)
        assert evidence.status_code == 200, evidence.text
        body = evidence.json()
        assert body["conversation"] == [{"role": "customer", "text": "Please book me a room for Friday."}]
        assert (body["decision"], body["reply"], body["adapter_version"], body["confidence"]) == (
            "action", "The Savoy is booked for Friday.", f"{tenant.id}@v3", 0.93)
        assert body["action"] == {"call": "BookRoom(day=Friday)", "status": "ok", "latency_ms": 35,
                                  "answer": {"ok": True, "results": [{"hotel": "Savoy"}]}}
        assert [(o["kind"], o["occurred_at"], o["decided_current_state"]) for o in body["outcomes"]] == [
            ("customer_confirmed", "2026-10-29T10:10:00Z", True), ("csat", "2026-10-29T12:00:00Z", False)]
        assert all("helpdesk webhook" in o["source"] for o in body["outcomes"])
        assert [(c["state"], c["because"]) for c in body["state_history"]] == [
            ("pending", booked.resolution_id), ("confirmed", "c-1")]
        line = body["statement_line"]
        assert (line["month"], line["charge"], line["rank_in_month"], line["unit_price_usd"],
                line["statement_status"], line["credit_month"]) == ("2026-10", "charged", 1, "0.99", "open", None)

        not_billed = get(handed.resolution_id, tenant.api_key).json()
        assert not_billed["statement_line"] == {"billed": False, "why": "not billable: escalated"}
        assert not_billed["action"] is None and not_billed["reply"] == ""
        assert get(booked.resolution_id, admin_api_key(data_dir)).json() == body
        assert get(booked.resolution_id, None, key=tenant.api_key).json() == body  # a browser link
        assert get(booked.resolution_id, other.api_key).status_code == 403
        assert get(booked.resolution_id, None).status_code == 401
        assert get("no-such-resolution", tenant.api_key).status_code == 404
        assert get("%00%F4weird", tenant.api_key).status_code == 404
        page = httpx.get(f"{server.url}/tenants/{tenant.id}", params={"month": "2026-10", "key": tenant.api_key},
                         timeout=30)
    assert page.status_code == 200 and 'id="resolutions"' in page.text
    assert f"/v1/tenants/{tenant.id}/resolutions/{booked.resolution_id}?key=" in page.text
