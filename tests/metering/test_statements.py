"""Monthly statements: open while they can change, then closed and frozen. The rules in the pure core;
through the real broker and ClickHouse engine, a closed month's statement stays byte-for-byte the same
whatever comes later (November's events, a change of plan, a replay of every event)."""

from __future__ import annotations

import json
import uuid
from datetime import datetime, timedelta, timezone

import pytest
from clonedesk.metering.domain.billing import Month, compute_invoice
from clonedesk.metering.domain.events import AiReply, Outcome, OutcomeKind
from clonedesk.metering.domain.lifecycle import State, settle
from clonedesk.metering.domain.statements import (CLOSED, OPEN, closed_statement, closes_at, counts_at_month_end,
                                                  is_closed, open_statement, state_at_month_end)
from clonedesk.metering.domain.terms import Terms

UTC = timezone.utc
TERMS = Terms(free_units=0)
OCTOBER = Month(2026, 10)


def _reply(n: int, at: datetime, decision: str = "resolve", tenant: str = "acme") -> AiReply:
    return AiReply(f"{tenant}-r{n}", tenant, f"t{n}", decision, at)


def _outcome(n: int, kind: OutcomeKind, at: datetime, tenant: str = "acme", score: int = 0) -> Outcome:
    return Outcome(f"{tenant}-r{n}-{kind.value}-{at.isoformat()}", f"{tenant}-r{n}", tenant, f"t{n}", kind, at,
                   csat_score=score)


def test_a_month_closes_once_its_resolutions_have_had_their_windows():
    assert closes_at(OCTOBER, TERMS) == datetime(2026, 11, 9, tzinfo=UTC)  # Nov 1 + 24 h + 7 days
    assert not is_closed(OCTOBER, datetime(2026, 11, 8, 23, 59, tzinfo=UTC), TERMS)
    assert is_closed(OCTOBER, datetime(2026, 11, 9, tzinfo=UTC), TERMS)
    assert not is_closed(OCTOBER, None, TERMS)
    longer = Terms(free_units=0, reopen_window=timedelta(days=14))
    assert closes_at(OCTOBER, longer) == datetime(2026, 11, 16, tzinfo=UTC)


def test_the_counts_are_as_of_the_months_end_while_the_money_moves_to_the_month_it_happens_in():
    """The issue's case: answered Oct 29, assumed Oct 30, reopened Nov 3: October's statement counts an
    assumed resolution and keeps its charge; November credits it."""
    answered = datetime(2026, 10, 29, 10, tzinfo=UTC)
    reply = _reply(1, answered)
    reopen = _outcome(1, OutcomeKind.REOPENED, datetime(2026, 11, 3, tzinfo=UTC))
    assert state_at_month_end(reply, [reopen], TERMS, OCTOBER) is State.ASSUMED
    now = settle(reply, [reopen], TERMS, watermark=datetime(2026, 11, 20, tzinfo=UTC))
    assert now.state is State.REOPENED  # what it is today
    live = compute_invoice("acme", OCTOBER, [now], TERMS)
    assert live.resolutions[State.REOPENED] == 1 and live.charged_units == 1  # the old, drifting counts
    counts = counts_at_month_end(OCTOBER, [reply], {reply.resolution_id: [reopen]}, TERMS)
    statement = closed_statement(live, counts, TERMS)
    body = statement.to_json()
    assert body["resolutions"]["assumed"] == 1 and body["resolutions"]["reopened"] == 0
    assert (body["charged_units"], body["total_usd"], body["status"]) == (1, "0.99", CLOSED)
    assert body["closed_at"] == body["closes_at"] == "2026-11-09T00:00:00Z"
    november = compute_invoice("acme", Month(2026, 11), [now], TERMS)
    assert (november.credit_units, str(november.total)) == (1, "-0.99")


def test_month_end_states_follow_every_rule():
    end = OCTOBER.end
    cases = [
        (_reply(1, end - timedelta(hours=2)), [], State.PENDING),  # its window closes in November
        (_reply(2, end - timedelta(days=3)), [], State.ASSUMED),
        (_reply(3, end - timedelta(days=3)), [_outcome(3, OutcomeKind.CUSTOMER_CONFIRMED, end - timedelta(days=2))],
         State.CONFIRMED),
        (_reply(4, end - timedelta(days=3)), [_outcome(4, OutcomeKind.HUMAN_TOOK_OVER, end + timedelta(hours=1))],
         State.ASSUMED),  # taken over only after its window closed and after the month ended
        (_reply(5, end - timedelta(days=1), "escalate"), [], State.ESCALATED),
        (_reply(6, end - timedelta(days=5)), [_outcome(6, OutcomeKind.REOPENED, end - timedelta(days=1))],
         State.REOPENED),
    ]
    for reply, outcomes, expected in cases:
        assert state_at_month_end(reply, outcomes, TERMS, OCTOBER) is expected, reply.resolution_id


def test_an_open_statement_says_when_it_closes():
    invoice = compute_invoice("acme", OCTOBER, [], TERMS)
    body = open_statement(invoice, TERMS).to_json()
    assert (body["status"], body["closes_at"], body["closed_at"]) == (OPEN, "2026-11-09T00:00:00Z", None)


# -- through the broker and ClickHouse --------------------------------------------------------------------

@pytest.mark.integration
async def test_later_events_a_new_plan_and_a_replay_leave_a_closed_statement_unchanged(
        tmp_path, kafka_bootstrap, clickhouse_client, unique_database, group_id):
    from clonedesk.core.tenants import TenantStore
    from clonedesk.metering.adapters.store import MeteringStore
    from clonedesk.metering.entrypoints.sink import MeteringSink
    from clonedesk.metering.service_layer.statements import statement_json
    from clonedesk.metering.service_layer.settlement import terms_from_tenants
    from tests.metering.helpers import produce, run_sink_until_idle

    data_dir = tmp_path / "data"
    tenant = TenantStore(data_dir).add("stmt-" + uuid.uuid4().hex[:6])
    tenant.plan.free_units = 2
    TenantStore(data_dir).save(tenant)
    t = tenant.id
    start = datetime(2026, 10, 26, 9, tzinfo=UTC)
    october = [_reply(n, start + timedelta(hours=6 * n), tenant=t) for n in range(16)]  # Oct 26 .. Oct 30
    october_outcomes = [_outcome(n, OutcomeKind.CUSTOMER_CONFIRMED, r.created_at + timedelta(hours=1), tenant=t)
                        for n, r in enumerate(october) if n % 3 == 0]
    # November: reopens of October charges, a late confirmation, and enough traffic to pass Nov 9
    november_outcomes = [_outcome(n, OutcomeKind.REOPENED, datetime(2026, 11, 2, tzinfo=UTC), tenant=t)
                         for n in (3, 4)]
    november = [_reply(100 + n, datetime(2026, 11, 1, tzinfo=UTC) + timedelta(days=n), tenant=t)
                for n in range(12)]  # up to Nov 12
    store = MeteringStore(clickhouse_client, unique_database)
    store.migrate()
    terms_for = terms_from_tenants(data_dir)

    async def sink_all(group: str, total: int) -> None:
        await run_sink_until_idle(MeteringSink(kafka_bootstrap, store, terms_for, group_id=group, batch_size=7),
                                  total)

    await produce(kafka_bootstrap, october, october_outcomes)
    await sink_all(group_id, len(october) + len(october_outcomes))
    assert statement_json(store, t, OCTOBER, terms_for(t))["status"] == OPEN

    await produce(kafka_bootstrap, november, november_outcomes)
    await sink_all(group_id, len(november) + len(november_outcomes))
    frozen = store.statement(t, OCTOBER)
    assert frozen is not None and frozen["status"] == CLOSED
    raw = clickhouse_client.query(f"SELECT body FROM {unique_database}.statements FINAL WHERE tenant_id = %(t)s"
                                  " AND month = '2026-10'", parameters={"t": t}).result_rows[0][0]
    # October as of its end: nothing reopened yet (the reopens came on Nov 2); the money as billed then
    assert frozen["resolutions"]["reopened"] == 0 and frozen["billable_units"] > 0
    assert frozen["free_units"] == 2 and frozen["unit_price_usd"] == "0.99"
    november_bill = statement_json(store, t, Month(2026, 11), terms_for(t))
    assert november_bill["status"] == OPEN and november_bill["credit_units"] >= 1

    # more events later: October's statement does not move, byte for byte; November closes in turn
    december = [_reply(200 + n, datetime(2026, 12, 1, tzinfo=UTC) + timedelta(days=n), tenant=t) for n in range(15)]
    late = [_outcome(5, OutcomeKind.REOPENED, datetime(2026, 11, 5, tzinfo=UTC), tenant=t)]
    await produce(kafka_bootstrap, december, late)
    await sink_all(group_id, len(december) + len(late))
    again = clickhouse_client.query(f"SELECT body FROM {unique_database}.statements FINAL WHERE tenant_id = %(t)s"
                                    " AND month = '2026-10'", parameters={"t": t}).result_rows[0][0]
    assert again == raw and statement_json(store, t, OCTOBER, terms_for(t)) == json.loads(raw)
    assert store.statement(t, Month(2026, 11))["status"] == CLOSED

    # a replay of every event into a fresh database, in other batches: the same statements
    fresh = MeteringStore(clickhouse_client, unique_database + "_replay")
    fresh.migrate()
    first_store, store = store, fresh
    await sink_all(group_id + "-replay", len(october) + len(october_outcomes) + len(november)
                   + len(november_outcomes) + len(december) + len(late))
    for month in (OCTOBER, Month(2026, 11)):
        assert fresh.statement(t, month) == first_store.statement(t, month), month

    # a new price applies from now on: the closed months read as issued, the open one on the new plan
    tenant.plan.unit_price_usd = "1.50"
    TenantStore(data_dir).save(tenant)
    assert statement_json(first_store, t, OCTOBER, terms_for(t)) == json.loads(raw)
    assert statement_json(first_store, t, Month(2026, 12), terms_for(t))["unit_price_usd"] == "1.50"
