"""Disputes of charges: the rules in the pure core (who can dispute what, one decision, what a credit is
worth and which month it lands in, no credit twice), the same figures from the store's SQL as from the
core, and the API on a real server over chDB: a tenant disputes only its own billed resolutions, only
the admin decides, and a closed statement stays as it was issued."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta, timezone
from decimal import Decimal

import httpx
import pytest

from clonedesk.core.tenants import TenantStore, admin_api_key
from clonedesk.metering.adapters.store import MeteringStore
from clonedesk.metering.domain.billing import Month, compute_invoice
from clonedesk.metering.domain.disputes import (ACCEPTED, OPEN, REJECTED, Dispute, DisputeRefused, credit_for,
                                                credit_month, decide, open_dispute)
from clonedesk.metering.domain.events import AiReply, Outcome, OutcomeKind
from clonedesk.metering.domain.lifecycle import settle
from clonedesk.metering.domain.terms import Terms
from clonedesk.metering.entrypoints.api import create_app
from clonedesk.metering.service_layer.settlement import close_months, record_and_settle, terms_from_tenants
from tests.metering.helpers import ApiServer

UTC = timezone.utc
T0 = datetime(2026, 10, 10, 9, tzinfo=UTC)
NOW = datetime(2026, 11, 20, 12, tzinfo=UTC)
TERMS = Terms(free_units=1)


def _reply(n: int, at: datetime, decision: str = "resolve", tenant: str = "acme") -> AiReply:
    return AiReply(f"r{n}", tenant, f"t{n}", decision, at)


def _confirm(n: int, at: datetime, tenant: str = "acme") -> Outcome:
    return Outcome(f"e{n}-ok", f"r{n}", tenant, f"t{n}", OutcomeKind.CUSTOMER_CONFIRMED, at)


def _reopen(n: int, at: datetime, tenant: str = "acme") -> Outcome:
    return Outcome(f"e{n}-reopen", f"r{n}", tenant, f"t{n}", OutcomeKind.REOPENED, at)


def _life(reply, outcomes=(), watermark=None):
    return settle(reply, outcomes, TERMS, watermark or reply.created_at + timedelta(days=30))


# -- the pure core --------------------------------------------------------------------------------------

def test_only_a_standing_charge_can_be_disputed_and_a_second_dispute_is_the_first():
    confirmed = _life(_reply(1, T0), [_confirm(1, T0 + timedelta(minutes=5))])
    dispute, created = open_dispute(None, confirmed, "  The customer never got a reply.  ", NOW)
    assert created and (dispute.status, dispute.reason, dispute.opened_at) == (OPEN, "The customer never got a reply.", NOW)
    again, created_again = open_dispute(dispute, confirmed, "another reason", NOW + timedelta(hours=1))
    assert again == dispute and not created_again

    with pytest.raises(DisputeRefused) as unknown:
        open_dispute(None, None, "why", NOW)
    assert unknown.value.status == 404
    escalated = _life(_reply(2, T0, "escalate"))
    pending = _life(_reply(3, T0), watermark=T0 + timedelta(hours=1))
    reopened = _life(_reply(4, T0), [_confirm(4, T0), _reopen(4, T0 + timedelta(days=1))])
    for life in (escalated, pending, reopened):
        with pytest.raises(DisputeRefused) as refused:
            open_dispute(None, life, "why", NOW)
        assert refused.value.status == 409, life.state
    for reason in ("", "   ", "x" * 2001, "bell\x07"):
        with pytest.raises(DisputeRefused) as bad:
            open_dispute(None, confirmed, reason, NOW)
        assert bad.value.status == 422


def test_a_dispute_is_decided_once_and_its_credit_lands_in_the_first_open_month():
    life = _life(_reply(1, T0), [_confirm(1, T0)])
    opened = Dispute("acme", "r1", "wrong answer", OPEN, T0 + timedelta(days=3))
    accepted, decided = decide(opened, True, "agreed", NOW, life=life, credit=Decimal("0.99"), closed_months={"2026-10"})
    assert decided and (accepted.status, accepted.credit_month, accepted.credit, accepted.note) == (
        ACCEPTED, "2026-11", Decimal("0.99"), "agreed")
    assert decide(accepted, True, "", NOW + timedelta(days=1), life=life, credit=Decimal("0.99"),
                  closed_months=()) == (accepted, False)  # the same answer
    with pytest.raises(DisputeRefused) as conflict:
        decide(accepted, False, "", NOW, life=life, credit=Decimal("0"), closed_months=())
    assert conflict.value.status == 409
    # accepted on a day whose month is already closed: the credit goes to the next open month
    late = decide(opened, True, "", datetime(2026, 11, 30, 23, tzinfo=UTC), life=life, credit=Decimal("0.99"),
                  closed_months={"2026-10", "2026-11"})[0]
    assert late.credit_month == "2026-12"
    rejected = decide(opened, False, "the customer confirmed", NOW, life=life, credit=Decimal("0.99"),
                      closed_months=())[0]
    assert (rejected.status, rejected.credit_month, rejected.to_json()["credit_usd"]) == (REJECTED, "", None)
    reopened = _life(_reply(1, T0), [_confirm(1, T0), _reopen(1, T0 + timedelta(days=2))])
    with pytest.raises(DisputeRefused) as reversed_already:
        decide(opened, True, "", NOW, life=reopened, credit=Decimal("0.99"), closed_months=())
    assert reversed_already.value.status == 409
    with pytest.raises(DisputeRefused) as none:
        decide(None, True, "", NOW, life=life, credit=Decimal("0"), closed_months=())
    assert none.value.status == 404


def test_a_credit_is_what_the_charge_cost():
    assert credit_for(3, free_units=1, unit_price=Decimal("0.99")) == Decimal("0.99")
    assert credit_for(1, free_units=1, unit_price=Decimal("0.99")) == 0  # a free unit cost nothing
    assert credit_for(None, free_units=0, unit_price=Decimal("0.99")) == 0  # never on a statement
    assert str(credit_month(datetime(2026, 12, 31, 23, 59, tzinfo=UTC), ())) == "2026-12"


def test_an_accepted_dispute_credits_its_month_once_even_if_the_ticket_is_reopened_later():
    late_october = datetime(2026, 10, 28, 9, tzinfo=UTC)  # a reopen on Nov 1 is within its window
    replies = [_reply(n, late_october + timedelta(hours=n)) for n in range(3)]
    outcomes = [_confirm(n, late_october + timedelta(hours=n, minutes=5)) for n in range(3)]
    lives = [settle(r, [o], TERMS, NOW) for r, o in zip(replies, outcomes)]
    accepted = Dispute("acme", "r2", "wrong", ACCEPTED, T0 + timedelta(days=1), decided_at=T0 + timedelta(days=1),
                       credit_month="2026-10", credit=Decimal("0.99"))
    free_one = Dispute("acme", "r0", "wrong", ACCEPTED, T0 + timedelta(days=1), decided_at=T0 + timedelta(days=1),
                       credit_month="2026-10", credit=Decimal("0"))
    october = compute_invoice("acme", Month(2026, 10), lives, TERMS, [accepted, free_one])
    assert (october.charged_units, october.credit_units, october.dispute_credit_units) == (2, 1, 1)
    assert (october.credits, october.total) == (Decimal("0.99"), Decimal("0.99"))
    # r2 reopened in November, after its dispute was accepted: its charge is settled, November credits nothing
    reopened = settle(replies[2], [outcomes[2], _reopen(2, datetime(2026, 11, 1, 8, tzinfo=UTC))], TERMS, NOW)
    lives[2] = reopened
    november = compute_invoice("acme", Month(2026, 11), lives, TERMS, [accepted])
    assert reopened.reopened_at is not None
    assert (november.credit_units, november.total) == (0, Decimal("0"))
    money = lambda i: (i.billable_units, i.charged_units, i.credit_units, i.credits, i.total)  # noqa: E731
    assert money(compute_invoice("acme", Month(2026, 10), lives, TERMS, [accepted])) == money(october)
    # without the dispute, the same reopen is November's credit
    assert compute_invoice("acme", Month(2026, 11), lives, TERMS).credit_units == 1


# -- the store and the API ------------------------------------------------------------------------------

def _tenant(data_dir, prefix: str, free_units: int):
    tenants = TenantStore(data_dir)
    tenant = tenants.add(f"{prefix}-{uuid.uuid4().hex[:6]}")
    tenant.plan.free_units = free_units
    tenants.save(tenant)
    return tenant


def test_the_api_takes_a_tenants_dispute_and_the_operators_decision(tmp_path, clickhouse_client, unique_database):
    data_dir = tmp_path / "data"
    tenant = _tenant(data_dir, "acme", free_units=1)
    other = _tenant(data_dir, "other", free_units=1)
    t = tenant.id
    # r0 (free) and r1 (charged) confirmed in October; r2 escalated; r3 still pending
    replies = [AiReply(f"{t}-r{n}", t, f"t{n}", "escalate" if n == 2 else "resolve", T0 + timedelta(hours=n))
               for n in range(4)]
    outcomes = [Outcome(f"{t}-e{n}", f"{t}-r{n}", t, f"t{n}", OutcomeKind.CUSTOMER_CONFIRMED,
                        T0 + timedelta(hours=n, minutes=5)) for n in (0, 1)]
    store = MeteringStore(clickhouse_client, unique_database)
    store.migrate()
    terms_for = terms_from_tenants(data_dir)
    record_and_settle(store, replies, outcomes, terms_for)
    record_and_settle(store, [AiReply(f"{t}-r4", t, "t4", "ask", T0 + timedelta(hours=5))], [], terms_for)
    month = Month.of(datetime.now(UTC))
    with ApiServer(create_app(store, data_dir)) as server:
        def post(path, key, body=None):
            return httpx.post(f"{server.url}/v1/tenants/{t}/resolutions/{path}", json=body, timeout=30,
                              headers={"Authorization": f"Bearer {key}"} if key else {})

        def invoice(key=tenant.api_key, which=month):
            return httpx.get(f"{server.url}/v1/tenants/{t}/invoice", params={"month": str(which)}, timeout=30,
                             headers={"Authorization": f"Bearer {key}"}).json()

        before = invoice()
        first = post(f"{t}-r1/dispute", tenant.api_key, {"reason": "The answer was wrong."})
        assert first.status_code == 201, first.text
        assert (first.json()["status"], first.json()["reason"], first.json()["credit_usd"]) == (
            "open", "The answer was wrong.", None)
        again = post(f"{t}-r1/dispute", tenant.api_key, {"reason": "Still wrong."})
        assert again.status_code == 200 and again.json() == first.json()  # idempotent
        assert post(f"{t}-r0/dispute", tenant.api_key, {"reason": "free, but wrong"}).status_code == 201
        assert post(f"{t}-r2/dispute", tenant.api_key, {"reason": "x"}).status_code == 409  # escalated
        assert post(f"{t}-r3/dispute", tenant.api_key, {"reason": "x"}).status_code == 409  # pending
        assert post("no-such/dispute", tenant.api_key, {"reason": "x"}).status_code == 404
        assert post(f"{t}-r1/dispute", tenant.api_key, {"reason": ""}).status_code == 422
        assert post(f"{t}-r1/dispute", tenant.api_key, {}).status_code == 422
        assert post(f"{t}-r1/dispute", other.api_key, {"reason": "x"}).status_code == 403
        assert post(f"{t}-r1/dispute", None, {"reason": "x"}).status_code == 401
        huge = httpx.post(f"{server.url}/v1/tenants/{t}/resolutions/{t}-r1/dispute", timeout=30,
                          content=b'{"reason": "' + b"x" * 20000 + b'"}',
                          headers={"Authorization": f"Bearer {tenant.api_key}", "Content-Type": "application/json"})
        assert huge.status_code == 413

        # only the operator decides
        assert post(f"{t}-r1/dispute/accept", tenant.api_key, {"note": "mine"}).status_code == 403
        listed = httpx.get(f"{server.url}/v1/disputes", params={"status": "open"}, timeout=30,
                           headers={"Authorization": f"Bearer {tenant.api_key}"})
        assert listed.status_code == 403
        admin = admin_api_key(data_dir)
        queue = httpx.get(f"{server.url}/v1/disputes", params={"status": "open"}, timeout=30,
                          headers={"Authorization": f"Bearer {admin}"}).json()["items"]
        assert sorted(d["resolution_id"] for d in queue if d["tenant_id"] == t) == [f"{t}-r0", f"{t}-r1"]
        accepted = post(f"{t}-r1/dispute/accept", admin, {"note": "confirmed by mistake"})
        assert accepted.status_code == 200, accepted.text
        assert (accepted.json()["status"], accepted.json()["credit_usd"], accepted.json()["credit_month"]) == (
            "accepted", "0.99", str(month))
        assert post(f"{t}-r1/dispute/accept", admin).json() == accepted.json()  # the same answer again
        assert post(f"{t}-r1/dispute/reject", admin).status_code == 409
        free = post(f"{t}-r0/dispute/accept", admin).json()
        assert free["credit_usd"] == "0.00"  # it was a free unit
        assert post(f"{t}-r4/dispute/accept", admin).status_code == 404  # no dispute to decide

        after = invoice()
        assert (after["credit_units"], after["dispute_credit_units"], after["dispute_credits_usd"]) == (
            before["credit_units"] + 1, 1, "0.99")
        assert Decimal(after["total_usd"]) == Decimal(before["total_usd"]) - Decimal("0.99")
        assert invoice(which=Month(2026, 10))["credit_units"] == 0  # October keeps its charges
        mine = httpx.get(f"{server.url}/v1/tenants/{t}/disputes", timeout=30,
                         headers={"Authorization": f"Bearer {tenant.api_key}"}).json()["items"]
        assert {d["resolution_id"]: d["status"] for d in mine} == {f"{t}-r0": "accepted", f"{t}-r1": "accepted"}
        evidence = httpx.get(f"{server.url}/v1/tenants/{t}/resolutions/{t}-r1", timeout=30,
                             headers={"Authorization": f"Bearer {tenant.api_key}"}).json()
        assert evidence["dispute"]["status"] == "accepted" and evidence["dispute"]["note"] == "confirmed by mistake"
        assert evidence["statement_line"]["charge"] == "charged"

    # the store's SQL and the core agree on every month, disputes included
    lives = store.lifecycles(t)
    disputes = store.disputes(t)
    for which in (Month(2026, 10), month):
        assert store.invoice(t, which, terms_for(t)) == compute_invoice(t, which, lives, terms_for(t), disputes)


def test_a_dispute_accepted_after_its_month_closed_leaves_the_statement_as_issued(tmp_path, clickhouse_client,
                                                                                  unique_database):
    data_dir = tmp_path / "data"
    tenant = _tenant(data_dir, "frozen", free_units=0)
    t = tenant.id
    store = MeteringStore(clickhouse_client, unique_database)
    store.migrate()
    terms_for = terms_from_tenants(data_dir)
    record_and_settle(store, [AiReply(f"{t}-r1", t, "t1", "resolve", T0)],
                      [Outcome(f"{t}-e1", f"{t}-r1", t, "t1", OutcomeKind.CUSTOMER_CONFIRMED, T0)], terms_for)
    # a November event moves the watermark past October's close
    record_and_settle(store, [AiReply(f"{t}-r2", t, "t2", "resolve", datetime(2026, 11, 25, tzinfo=UTC))], [],
                      terms_for)
    assert (t, Month(2026, 10)) in close_months(store, terms_for)
    with ApiServer(create_app(store, data_dir)) as server:
        def call(method, path, key, **kwargs):
            return httpx.request(method, f"{server.url}/v1/tenants/{t}/{path}", timeout=30,
                                 headers={"Authorization": f"Bearer {key}"}, **kwargs)

        issued = call("GET", "invoice", tenant.api_key, params={"month": "2026-10"}).content
        assert call("POST", f"resolutions/{t}-r1/dispute", tenant.api_key,
                    json={"reason": "late complaint"}).status_code == 201
        accepted = call("POST", f"resolutions/{t}-r1/dispute/accept", admin_api_key(data_dir), json={})
        assert accepted.json()["credit_usd"] == "0.99"
        assert accepted.json()["credit_month"] not in ("2026-10", "")
        assert call("GET", "invoice", tenant.api_key, params={"month": "2026-10"}).content == issued
        credited = call("GET", "invoice", tenant.api_key, params={"month": accepted.json()["credit_month"]}).json()
        assert credited["dispute_credits_usd"] == "0.99" and credited["status"] == "open"
