"""Usage counters (domain/counters.py): invoices and usage read hourly sums instead of every lifecycle.
They must give the same figures as the rows, to the cent, through replays, state changes, disputes, a
sink that dies between its writes, and the migration that backfills them."""

import random
from collections import Counter
from datetime import datetime, timedelta, timezone
from decimal import Decimal

import pytest

from clonedesk.metering.adapters.migrations import migrate
from clonedesk.metering.adapters.store import MeteringStore
from clonedesk.metering.domain import counters
from clonedesk.metering.domain.billing import Month, compute_invoice
from clonedesk.metering.domain.disputes import Dispute
from clonedesk.metering.domain.events import AiReply, Outcome, OutcomeKind, OutcomeRow, ReplyRow
from clonedesk.metering.domain.lifecycle import Lifecycle, State, settle
from clonedesk.metering.domain.terms import Terms
from clonedesk.metering.service_layer.settlement import record_and_settle

UTC = timezone.utc
MONTHS = [Month(2026, 9), Month(2026, 10), Month(2026, 11)]


# -- the pure core ------------------------------------------------------------------------------------

def random_lifecycles(seed: int, count: int = 600) -> tuple[list[Lifecycle], list[Dispute]]:
    rng = random.Random(seed)
    lives, disputes = [], []
    start = datetime(2026, 9, 1, tzinfo=UTC)
    for n in range(count):
        created = start + timedelta(minutes=rng.randrange(90 * 24 * 60))
        state = rng.choice(list(State))
        billed = reopened = None
        if state in (State.CONFIRMED, State.ASSUMED, State.REOPENED):
            billed = created + timedelta(minutes=rng.randrange(1, 48 * 60))
        if state is State.REOPENED:
            reopened = billed + timedelta(minutes=rng.randrange(1, 7 * 24 * 60))
        lives.append(Lifecycle(f"r{n:04d}", "acme", f"t{n}", created, state, billed or created, billed, reopened,
                               csat_score=rng.choice([0, 0, 1, 3, 5]), category=rng.choice(["a", "b"]),
                               latency_ms=rng.randrange(50, 90)))
        if billed is not None and rng.random() < 0.05:
            disputes.append(Dispute("acme", f"r{n:04d}", "wrong", "accepted", billed + timedelta(days=1),
                                    credit_month=str(rng.choice(MONTHS)), credit=Decimal("0.99")))
    return lives, disputes


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("free_units", [0, 3, 40])
def test_invoice_figures_from_the_counters_equal_the_lifecycle_fold(seed, free_units):
    terms = Terms(free_units=free_units)
    lives, disputes = random_lifecycles(seed)
    summed = counters.merge(counters.lifecycle_counts(life) for life in lives)
    charges = {(key.period, key.value): n for key, (n, _, _) in summed.items() if key.kind == counters.CHARGE}
    accepted = {d.resolution_id for d in disputes}
    settled = [counters.Charge(life.billed_at, life.reopened_at) for life in lives if life.resolution_id in accepted]
    decided = 0
    for month in MONTHS:
        want = compute_invoice("acme", month, lives, terms, disputes)
        billable, paid = counters.charge_figures(month, terms, charges, settled)
        states = Counter()
        for key, (n, _, _) in summed.items():
            if key.kind == counters.STATE and month.contains(key.period):
                states[State(key.label)] += n
        assert billable == want.billable_units
        assert states == {state: n for state, n in want.resolutions.items() if n}
        if paid is not None:
            assert paid == want.credit_units - want.dispute_credit_units
            decided += 1
    assert decided >= 2  # the hour of the allowance's end seldom holds a reversed charge


def test_the_allowance_ending_inside_a_reversed_charges_hour_needs_the_rows():
    hour = datetime(2026, 10, 31, 20, tzinfo=UTC)
    november = 202611
    charges = {(hour, 0): 1, (hour, november): 2}  # three charges in one hour, two reopened in November
    assert counters.charge_figures(Month(2026, 11), Terms(free_units=2), charges, []) == (0, None)
    assert counters.charge_figures(Month(2026, 11), Terms(free_units=0), charges, []) == (0, 2)
    assert counters.charge_figures(Month(2026, 11), Terms(free_units=3), charges, []) == (0, 0)


def test_a_state_change_moves_its_unit_and_a_replay_moves_nothing():
    created = datetime(2026, 10, 3, 9, 30, tzinfo=UTC)
    pending = Lifecycle("r1", "acme", "t1", created, State.PENDING, created, latency_ms=120, category="a")
    confirmed = Lifecycle("r1", "acme", "t1", created, State.CONFIRMED, created + timedelta(hours=2),
                          billed_at=created + timedelta(hours=2), latency_ms=120, category="a", csat_score=5)
    assert counters.change(counters.lifecycle_counts(pending), counters.lifecycle_counts(pending)) == {}
    moved = counters.change(counters.lifecycle_counts(pending), counters.lifecycle_counts(confirmed))
    at = datetime(2026, 10, 3, 9, tzinfo=UTC)
    assert moved == {
        counters.CounterKey("state", at, "pending", "a"): (-1, 0, 0),
        counters.CounterKey("state", at, "confirmed", "a"): (1, 5, 1),
        counters.CounterKey("charge", datetime(2026, 10, 3, 11, tzinfo=UTC)): (1, 0, 0),
    }


def raw_events_change(stored_replies, stored_outcomes, replies, outcomes):
    return counters.raw_events_change(stored_replies, stored_outcomes, [ReplyRow.of(r) for r in replies],
                                      [OutcomeRow.of(o) for o in outcomes])


def test_raw_events_move_the_action_and_csat_counters_by_the_copy_the_tables_keep():
    at = datetime(2026, 10, 3, 9, 30, tzinfo=UTC)
    hour = datetime(2026, 10, 3, 9, tzinfo=UTC)
    call = AiReply("r1", "acme", "t1", "action", at, action_name="refund", action_status="ok", action_latency_ms=40)
    csat = Outcome("e1", "r1", "acme", "t1", OutcomeKind.CSAT, at + timedelta(hours=1), csat_score=4)
    action_key = counters.CounterKey("action", hour, "ok")
    csat_key = counters.CounterKey("csat", hour + timedelta(hours=1), value=4)
    # new events: what they add
    assert raw_events_change({}, {}, [call], [csat]) == {"acme": {action_key: (1, 40, 0), csat_key: (1, 0, 0)}}
    # a redelivery (the stored copy at the same millisecond) moves nothing, even with finer time
    stored_reply = counters.StoredReply(at, "ok", 40)
    stored_csat = counters.StoredOutcome(OutcomeKind.CSAT, 4, csat.occurred_at)
    again = AiReply("r1", "acme", "t1", "action", at + timedelta(microseconds=300), action_name="refund",
                    action_status="ok", action_latency_ms=40)
    assert raw_events_change({("acme", "r1"): stored_reply}, {("acme", "r1", "e1"): stored_csat},
                                      [again], [csat]) == {}
    # a re-published copy later than the stored one is not kept; an earlier one replaces it
    later = AiReply("r1", "acme", "t1", "action", at + timedelta(seconds=40))
    assert raw_events_change({("acme", "r1"): stored_reply}, {}, [later], []) == {}
    earlier_plain = AiReply("r1", "acme", "t1", "resolve", at - timedelta(seconds=5))
    assert raw_events_change({("acme", "r1"): stored_reply}, {}, [earlier_plain], []) == \
        {"acme": {action_key: (-1, -40, 0)}}
    # within one batch the earliest copy stands, whatever the order
    assert raw_events_change({}, {}, [later, call], []) == {"acme": {action_key: (1, 40, 0)}}
    # ... even where the earliest copy made no call: it is the one kept
    plain_first = AiReply("r1", "acme", "t1", "resolve", at - timedelta(seconds=1))
    assert raw_events_change({}, {}, [call, plain_first], []) == {}
    # an outcome written again with another score: the last copy counts, instead of the stored one
    rescored = Outcome("e1", "r1", "acme", "t1", OutcomeKind.CSAT, csat.occurred_at, csat_score=2)
    assert raw_events_change({}, {("acme", "r1", "e1"): stored_csat}, [], [csat, rescored]) == \
        {"acme": {csat_key: (-1, 0, 0), counters.CounterKey("csat", csat_key.period, value=2): (1, 0, 0)}}
    # the last copy of an event in a batch is the one kept, whatever kind it is
    not_a_rating = Outcome("e1", "r1", "acme", "t1", OutcomeKind.SOLVED, csat.occurred_at)
    assert raw_events_change({}, {}, [], [csat, not_a_rating]) == {}


def test_exact_quantile_picks_as_quantile_exact_does():
    values = [5, 1, 9, 9, 3, 7, 2, 8]
    histogram = [(v, values.count(v)) for v in set(values)]
    ordered = sorted(values)
    for level in (0.0, 0.25, 0.5, 0.95, 1.0):
        want = ordered[min(int(level * len(values)), len(values) - 1)]
        assert counters.exact_quantile(histogram, level) == want
    assert counters.exact_quantile([], 0.5) is None


# -- on the real engine -------------------------------------------------------------------------------

@pytest.fixture
def store(clickhouse_client, unique_database):
    store = MeteringStore(clickhouse_client, unique_database)
    store.migrate()
    return store


def month_of_events(tenant: str, seed: int = 7) -> tuple[list[AiReply], list[Outcome]]:
    """Six weeks across a month boundary: every outcome kind, CSAT, calls, re-published replies."""
    rng = random.Random(seed)
    replies, outcomes = [], []
    start = datetime(2026, 10, 10, tzinfo=UTC)
    for n in range(260):
        at = start + timedelta(minutes=rng.randrange(40 * 24 * 60))
        decision = rng.choice(["resolve", "resolve", "resolve", "ask", "action", "escalate"])
        call = rng.choice(["ok", "failed", "timed_out"]) if decision == "action" else ""
        replies.append(AiReply(f"r{n:04d}", tenant, f"t{n}", decision, at, latency_ms=rng.randrange(40, 400),
                               category=rng.choice(["billing", "travel", ""]), action_name="refund" if call else "",
                               action_status=call, action_latency_ms=rng.randrange(5, 90) if call else 0))
        later = at
        for k in range(rng.randrange(4)):
            later += timedelta(hours=rng.choice([1, 5, 20, 30, 70]))
            kind = rng.choice(list(OutcomeKind))
            outcomes.append(Outcome(f"e{n:04d}-{k}", f"r{n:04d}", tenant, f"t{n}", kind, later,
                                    csat_score=rng.randrange(1, 6) if kind is OutcomeKind.CSAT else 0))
    # a redelivered request re-published later: the earliest copy stands
    replies += [AiReply(r.resolution_id, r.tenant_id, r.ticket_id, r.decision, r.created_at + timedelta(seconds=40),
                        latency_ms=r.latency_ms + 7, category=r.category) for r in replies[::17]]
    return replies, outcomes


def in_batches(replies, outcomes, seed: int, size: int = 37):
    events = [*replies, *outcomes]
    random.Random(seed).shuffle(events)
    for start in range(0, len(events), size):
        chunk = events[start:start + size]
        yield [e for e in chunk if isinstance(e, AiReply)], [e for e in chunk if isinstance(e, Outcome)]


def rounded(value):
    if isinstance(value, float):
        return round(value, 9)
    if isinstance(value, dict):
        return {k: rounded(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [rounded(v) for v in value]
    if hasattr(value, "__dataclass_fields__"):
        return rounded(vars(value))
    return value


def assert_counters_agree_with_rows(store: MeteringStore, tenant: str, terms: Terms) -> None:
    assert store.counter_difference(tenant) == []
    for month in (Month(2026, 10), Month(2026, 11), Month(2026, 12)):
        assert store.invoice(tenant, month, terms) == store.invoice_from_rows(tenant, month, terms)
    start = datetime(2026, 10, 1, tzinfo=UTC)
    for begin, end, granularity in ((start, start + timedelta(days=61), "day"),
                                    (start + timedelta(days=20), start + timedelta(days=23), "hour"),
                                    (start, start + timedelta(days=61), "week")):
        assert rounded(store.usage(tenant, begin, end, granularity)) == \
            rounded(store.usage_from_rows(tenant, begin, end, granularity))


@pytest.mark.integration
def test_counters_equal_the_rows_through_scrambled_batches_and_a_full_replay(store):
    terms = Terms(free_units=12)
    replies, outcomes = month_of_events("acme")
    for replay in range(2):
        for batch_replies, batch_outcomes in in_batches(replies, outcomes, seed=replay):
            record_and_settle(store, batch_replies, batch_outcomes, lambda _t: terms)
        assert_counters_agree_with_rows(store, "acme", terms)
    november = store.invoice("acme", Month(2026, 11), terms)
    assert november.charged_units > 0 and november.credit_units > 0  # the month has charges and reversals
    assert sum(store.invoice("acme", Month(2026, 10), terms).resolutions.values()) > 0


@pytest.mark.integration
def test_an_accepted_dispute_counts_as_billing_reads_it(store):
    terms = Terms(free_units=2)
    replies, outcomes = month_of_events("acme", seed=3)
    record_and_settle(store, replies, outcomes, lambda _t: terms)
    reopened = [life for life in store.lifecycles("acme") if life.state is State.REOPENED]
    assert len(reopened) >= 3
    for life in reopened[:3]:
        store.write_dispute(Dispute("acme", life.resolution_id, "it was solved", "accepted",
                                    life.reopened_at, decided_at=life.reopened_at, credit_month="2026-11",
                                    credit=Decimal("0.99")))
    assert_counters_agree_with_rows(store, "acme", terms)


@pytest.mark.integration
def test_the_allowance_ending_in_a_reversed_charges_hour_reads_the_rows(store):
    terms = Terms(free_units=2)
    hour = datetime(2026, 10, 31, 20, tzinfo=UTC)
    replies = [AiReply(f"r{n}", "acme", f"t{n}", "resolve", hour - timedelta(hours=1)) for n in range(3)]
    outcomes = [Outcome(f"c{n}", f"r{n}", "acme", f"t{n}", OutcomeKind.CUSTOMER_CONFIRMED,
                        hour + timedelta(minutes=10 * (n + 1))) for n in range(3)]
    outcomes += [Outcome(f"o{n}", f"r{n}", "acme", f"t{n}", OutcomeKind.REOPENED,
                         datetime(2026, 11, 2, tzinfo=UTC)) for n in (1, 2)]
    record_and_settle(store, replies, outcomes, lambda _t: terms)
    november = store.invoice("acme", Month(2026, 11), terms)
    assert november.credit_units == 1  # r2 was the one past the allowance
    assert november == store.invoice_from_rows("acme", Month(2026, 11), terms)


class StoreThatDiesMidBatch(MeteringStore):
    """The real store; one batch's counters never get written (as if the sink died right before)."""

    die_at = 3
    batches = 0

    def _move_counters(self, moved_by_events):  # runs right after the batch's lifecycles are written
        self.batches += 1
        if self.batches == self.die_at:
            raise RuntimeError("killed between the lifecycles and the counters")
        super()._move_counters(moved_by_events)


@pytest.mark.integration
def test_a_batch_cut_short_is_repaired_from_the_rows_at_the_next_start(clickhouse_client, unique_database):
    terms = Terms(free_units=5)
    dying = StoreThatDiesMidBatch(clickhouse_client, unique_database)
    dying.migrate()
    replies, outcomes = month_of_events("acme", seed=11)
    batches = list(in_batches(replies, outcomes, seed=4))
    for number, (batch_replies, batch_outcomes) in enumerate(batches, start=1):
        try:
            record_and_settle(dying, batch_replies, batch_outcomes, lambda _t: terms)
        except RuntimeError:
            assert number == StoreThatDiesMidBatch.die_at
            break
    restarted = MeteringStore(clickhouse_client, unique_database)
    assert [tenant for tenant, _ in restarted.open_repairs()] == ["acme"]
    assert restarted.counter_difference("acme") != []  # what the dead batch left short
    # the batch is redelivered after the restart, and the rest follows
    for batch_replies, batch_outcomes in batches[StoreThatDiesMidBatch.die_at - 1:]:
        record_and_settle(restarted, batch_replies, batch_outcomes, lambda _t: terms)
    assert restarted.counter_difference("acme") != []  # a replay alone cannot tell what was lost
    assert restarted.repair_counters() == ["acme"]
    assert restarted.open_repairs() == []
    assert_counters_agree_with_rows(restarted, "acme", terms)


@pytest.mark.integration
def test_the_migration_backfills_the_counters_of_rows_stored_before_them(clickhouse_client, unique_database):
    terms = Terms(free_units=4)
    assert migrate(clickhouse_client, unique_database, up_to=7) == [1, 2, 3, 4, 5, 6, 7]
    old = MeteringStore(clickhouse_client, unique_database)
    replies, outcomes = month_of_events("acme", seed=5)
    old.insert_replies(replies)
    old.insert_outcomes(outcomes)
    watermark = max([r.created_at for r in replies] + [o.occurred_at for o in outcomes])
    earliest: dict[str, AiReply] = {}
    for r in sorted(replies, key=lambda r: r.created_at, reverse=True):
        earliest[r.resolution_id] = r
    old.write_lifecycles([settle(r, [o for o in outcomes if o.resolution_id == r.resolution_id], terms, watermark)
                          for r in earliest.values()])
    assert old.migrate() == [8, 9, 10, 11, 12]
    assert old.open_repairs() == []
    assert_counters_agree_with_rows(old, "acme", terms)


@pytest.mark.integration
def test_a_lifecycle_settled_on_more_knowledge_stays_and_the_counters_follow_it(store):
    terms = Terms(free_units=0)
    at = datetime(2026, 10, 5, 9, tzinfo=UTC)
    record_and_settle(store, [AiReply("r1", "acme", "t1", "resolve", at)], [], lambda _t: terms)
    stored = store.lifecycle_of("acme", "r1")
    # as a sink that had seen a later watermark wrote it (the newest knowledge wins in the table)
    newer = Lifecycle("r1", "acme", "t1", at, State.ASSUMED, at + timedelta(hours=24),
                      billed_at=at + timedelta(hours=24), version=stored.version * 2)
    store.write_lifecycles([newer])
    store.rebuild_counters()
    record_and_settle(store, [], [Outcome("c1", "r0", "acme", "t0", OutcomeKind.CSAT, at, csat_score=2)],
                      lambda _t: terms)
    record_and_settle(store, [AiReply("r1", "acme", "t1", "resolve", at)], [], lambda _t: terms)  # a replay
    assert store.lifecycle_of("acme", "r1") == newer
    assert_counters_agree_with_rows(store, "acme", terms)
