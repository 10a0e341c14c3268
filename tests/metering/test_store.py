"""The ClickHouse store on the real engine (chDB): migrations, idempotence, and the SQL invoice equal to
the pure one."""

from datetime import datetime, timedelta, timezone
from decimal import Decimal

import pytest

from clonedesk.metering.adapters.migrations import load_migrations
from clonedesk.metering.adapters.store import MeteringStore
from clonedesk.metering.domain.billing import Month, compute_invoice
from clonedesk.metering.domain.events import AiReply, Outcome, OutcomeKind
from clonedesk.metering.domain.lifecycle import State
from clonedesk.metering.domain.terms import Terms
from clonedesk.metering.service_layer.settlement import record_and_settle

pytestmark = pytest.mark.integration

T0 = datetime(2026, 10, 20, 8, 0, tzinfo=timezone.utc)


@pytest.fixture
def store(clickhouse_client, unique_database):
    return MeteringStore(clickhouse_client, unique_database)


def reply(n, at, decision="resolve", tenant="acme"):
    return AiReply(f"r{n:04d}", tenant, f"t{n}", decision, at, latency_ms=100 + n,
                   category=("billing", "travel")[n % 2])


def outcome(n, kind, at, score=0, tenant="acme", tag=""):
    return Outcome(f"e{n:04d}-{kind.value}{tag}", f"r{n:04d}", tenant, f"t{n}", kind, at, csat_score=score)


def scenario():
    """Forty days of a tenant's life across a month boundary, with every lifecycle path."""
    replies, outcomes = [], []
    for n in range(240):
        at = T0 + timedelta(hours=4 * n)
        replies.append(reply(n, at, "escalate" if n % 11 == 0 else "resolve"))
        if n % 5 == 0:
            outcomes.append(outcome(n, OutcomeKind.CUSTOMER_CONFIRMED, at + timedelta(minutes=20)))
        elif n % 7 == 0:
            outcomes.append(outcome(n, OutcomeKind.HUMAN_TOOK_OVER, at + timedelta(hours=1)))
        elif n % 13 == 0:
            outcomes.append(outcome(n, OutcomeKind.CUSTOMER_REPLIED, at + timedelta(hours=2)))
        if n % 5 == 0 and n % 3 == 0:
            outcomes.append(outcome(n, OutcomeKind.REOPENED, at + timedelta(days=2)))
        if n % 4 == 0:
            outcomes.append(outcome(n, OutcomeKind.CSAT, at + timedelta(hours=3), score=1 + n % 5))
    return replies, outcomes


def test_migrations_are_versioned_and_idempotent(store, clickhouse_client, unique_database):
    assert [m.version for m in load_migrations()] == [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12]
    assert store.migrate() == [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12]
    assert store.migrate() == []
    tables = {r[0] for r in clickhouse_client.query(f"SHOW TABLES FROM {unique_database}").result_rows}
    assert {"resolution_events", "outcome_events", "resolution_lifecycles", "schema_migrations"} <= tables


def test_a_later_migration_backfills_an_older_database(clickhouse_client, unique_database):
    from clonedesk.metering.adapters.migrations import migrate

    assert migrate(clickhouse_client, unique_database, up_to=2) == [1, 2]
    store = MeteringStore(clickhouse_client, unique_database)
    # rows as the code of migration 2 wrote them: without the later columns
    old_columns = ["resolution_id", "tenant_id", "ticket_id", "decision", "adapter_version", "created_at",
                   "latency_ms", "category", "confidence"]
    clickhouse_client.insert(f"{unique_database}.resolution_events",
                             [[r.resolution_id, r.tenant_id, r.ticket_id, r.decision, r.adapter_version, r.created_at,
                               r.latency_ms, r.category, r.confidence]
                              for r in (reply(1, T0), reply(2, T0 + timedelta(hours=5)))], column_names=old_columns)
    store.insert_outcomes([outcome(1, OutcomeKind.SOLVED, T0 + timedelta(hours=9))])
    assert store.migrate() == [3, 4, 5, 6, 7, 8, 9, 10, 11, 12]
    assert store.watermarks(["acme", "nobody"]) == {"acme": T0 + timedelta(hours=9)}
    replies, _ = store.histories({"acme": {reply(1, T0).resolution_id}})
    assert [(r.action_name, r.action_status) for r in replies.values()] == [("", "")]  # no call, as written


def every_figure(store, tenant="acme"):
    """What the usage endpoint and the resolutions listing read, over the whole scenario."""
    start, end = datetime(2026, 10, 1, tzinfo=timezone.utc), datetime(2027, 1, 1, tzinfo=timezone.utc)
    usage = {granularity: store.usage(tenant, start, end, granularity) for granularity in ("day", "month")}
    listing = store.resolutions(tenant, state=None, start=None, end=None, limit=1000, offset=0)
    return usage, listing


def test_replay_changes_nothing_and_sql_invoice_equals_the_core(store):
    store.migrate()
    replies, outcomes = scenario()
    terms = Terms(free_units=20)
    record_and_settle(store, replies, outcomes, lambda _t: terms)
    months = [Month(2026, 10), Month(2026, 11), Month(2026, 12)]
    first = [store.invoice("acme", m, terms) for m in months]
    lifecycles = store.lifecycles("acme")
    usage, listing = every_figure(store)
    # the ratings are there, each counted once, so a double-counted replay would show
    ratings = [o for o in outcomes if o.kind is OutcomeKind.CSAT]
    assert usage["month"]["csat"]["count"] == len(ratings) > 0
    assert usage["month"]["csat"]["distribution"] == {
        str(score): sum(1 for o in ratings if o.csat_score == score) for score in range(1, 6)}
    assert len(lifecycles) == 240
    assert {life.state for life in lifecycles} == set(State)
    for month, invoice in zip(months, first):
        assert invoice == compute_invoice("acme", month, lifecycles, terms)
    assert first[1].credit_units > 0 and first[0].charged_units > 0
    # a redelivery in reverse order, in small batches, then a full replay
    for start in range(0, len(outcomes), 37):
        record_and_settle(store, [], outcomes[::-1][start:start + 37], lambda _t: terms)
    record_and_settle(store, replies[::-1], outcomes, lambda _t: terms)
    assert [store.invoice("acme", m, terms) for m in months] == first
    assert store.lifecycles("acme") == lifecycles
    assert every_figure(store) == (usage, listing)


def test_after_prepare_inserts_a_batch_asks_clickhouse_for_no_column_types(store):
    store.migrate()
    store.prepare_inserts()
    asked = []
    query = store._query

    def recording(sql, **parameters):
        asked.append(sql)
        return query(sql, **parameters)

    store._query = recording
    settled = record_and_settle(store, [reply(1, T0), reply(2, T0)],
                                [outcome(1, OutcomeKind.CSAT, T0 + timedelta(minutes=5), score=5)],
                                lambda _t: Terms())
    assert settled == {("acme", "confirmed"): 1, ("acme", "pending"): 1}
    assert asked and not [sql for sql in asked if "system.columns" in sql]


def test_outcome_before_its_resolution_and_watermark_assumption(store):
    store.migrate()
    terms = Terms()
    confirm = outcome(1, OutcomeKind.CUSTOMER_CONFIRMED, T0 + timedelta(minutes=5))
    assert record_and_settle(store, [], [confirm], lambda _t: terms) == {}
    # what a batch reports: the resolutions it moved into each state
    moved = record_and_settle(store, [reply(1, T0), reply(2, T0)], [], lambda _t: terms)
    assert moved == {("acme", "confirmed"): 1, ("acme", "pending"): 1}
    states = {life.resolution_id: life.state for life in store.lifecycles("acme")}
    assert states == {"r0001": State.CONFIRMED, "r0002": State.PENDING}
    # a redelivery moves nothing
    assert record_and_settle(store, [reply(1, T0), reply(2, T0)], [], lambda _t: terms) == {}
    # a later event of the same tenant moves its watermark past r0002's quiet window
    moved = record_and_settle(store, [reply(3, T0 + timedelta(hours=30))], [], lambda _t: terms)
    assert moved == {("acme", "assumed"): 1, ("acme", "pending"): 1}
    states = {life.resolution_id: life.state for life in store.lifecycles("acme")}
    assert states["r0002"] is State.ASSUMED and states["r0003"] is State.PENDING
    invoice = store.invoice("acme", Month(2026, 10), Terms(free_units=1))
    assert invoice.billable_units == 2 and invoice.total == Decimal("0.99")


def test_a_republished_resolution_keeps_its_first_reply_time(store):
    store.migrate()
    terms = Terms(free_units=0)
    first = reply(1, T0)
    record_and_settle(store, [first], [], lambda _t: terms)
    again = AiReply(first.resolution_id, "acme", first.ticket_id, "resolve", T0 + timedelta(seconds=40))
    record_and_settle(store, [again, reply(2, T0 + timedelta(hours=24, seconds=20))], [], lambda _t: terms)
    lives = {life.resolution_id: life for life in store.lifecycles("acme")}
    # assumed at the first reply time + 24 h, which the later copy alone would not have reached
    assert lives["r0001"].created_at == T0 and lives["r0001"].state is State.ASSUMED
    store.client.command(f"OPTIMIZE TABLE {store.db}.resolution_events FINAL")
    replies, _ = store.histories({"acme": {"r0001"}})
    assert replies[("acme", "r0001")].created_at == T0


def test_usage_and_paging(store):
    store.migrate()
    replies, outcomes = scenario()
    record_and_settle(store, replies, outcomes, lambda _t: Terms())
    start = datetime(2026, 10, 20, tzinfo=timezone.utc)
    end = start + timedelta(days=10)
    usage = store.usage("acme", start, end, "day")
    assert [p.period for p in usage["periods"]] == [f"2026-10-{d}" for d in range(20, 30)]
    in_range = [r for r in replies if start <= r.created_at < end]
    ratings = [o for o in outcomes if o.kind is OutcomeKind.CSAT and start <= o.occurred_at < end]
    assert sum(sum(p.counts.values()) for p in usage["periods"]) == len(in_range) == 58
    assert usage["csat"]["count"] == len(ratings)
    assert usage["csat"]["distribution"]["2"] == sum(1 for o in ratings if o.csat_score == 2)
    assert usage["csat"]["average"] == pytest.approx(sum(o.csat_score for o in ratings) / len(ratings))
    assert {c[0] for c in usage["categories"]} == {"billing", "travel"}
    assert usage["latency"]["count"] == 58
    assert usage["latency"]["max_ms"] == max(r.latency_ms for r in in_range)
    weekly = store.usage("acme", start, end, "week")
    assert sum(sum(p.counts.values()) for p in weekly["periods"]) == 58 and len(weekly["periods"]) == 2
    total, page = store.resolutions("acme", state="escalated", start=None, end=None, limit=5, offset=0)
    assert total > 5 and len(page) == 5 and all(p.state is State.ESCALATED for p in page)
    assert page[0].created_at > page[-1].created_at


@pytest.mark.parametrize("arrival", ["in event-time order", "scrambled"])
def test_free_tier_in_event_time_order_whatever_the_ids_and_arrival(store, arrival):
    from tests.metering import free_tier_case as case

    store.migrate()
    replies, confirmations, reopens = case.replies(), case.confirmations(), case.reopens()
    if arrival == "in event-time order":
        batches = [(replies, confirmations + reopens)]
    else:  # outcomes before their resolutions, newest first, in several batches
        batches = [([], reopens), (replies[::-1][:4], []), ([], confirmations[::-1]), (replies[::-1][4:], [])]
    for _ in range(2):  # and a full redelivery
        for batch_replies, batch_outcomes in batches:
            record_and_settle(store, batch_replies, batch_outcomes, lambda _t: case.TERMS)
        assert store.invoice(case.TENANT, Month(2026, 10), case.TERMS).to_json() == case.OCTOBER_INVOICE
        assert store.invoice(case.TENANT, Month(2026, 11), case.TERMS).to_json() == case.NOVEMBER_INVOICE
    boundary = next(life for life in store.lifecycles(case.TENANT) if life.resolution_id == "r0000")
    assert (boundary.state, boundary.billed_at) == (State.ASSUMED, case.BOUNDARY_BILLED_AT)
