"""The sink settles in ClickHouse SQL (adapters/settle_sql.py); domain/lifecycle.py `settle` is the
definition. On random histories with every kind of event, events at the very end of a quiet window, ratings
either side of positive, outcomes before their reply, re-published replies and several plans, the
lifecycles the SQL fold stores equal the pure fold's, field for field."""

import random
from datetime import datetime, timedelta, timezone

import pytest

from clonedesk.metering.adapters.store import MeteringStore
from clonedesk.metering.domain.events import AiReply, Outcome, OutcomeKind
from clonedesk.metering.domain.lifecycle import settle
from clonedesk.metering.domain.terms import Terms
from clonedesk.metering.service_layer.settlement import record_and_settle
from tests.metering.test_counters import assert_counters_agree_with_rows

UTC = timezone.utc
PLANS = {
    "acme": Terms(free_units=3),
    "globex": Terms(free_units=0, bill_assumed=False, assumed_window=timedelta(hours=2),
                    reopen_window=timedelta(hours=30)),
}


def random_history(tenant: str, seed: int, count: int = 150) -> tuple[list[AiReply], list[Outcome]]:
    rng = random.Random(seed)
    window = PLANS[tenant].assumed_window
    replies, outcomes = [], []
    start = datetime(2026, 10, 20, tzinfo=UTC)
    for n in range(count):
        # whole milliseconds: what the tables keep
        at = start + timedelta(milliseconds=rng.randrange(12 * 24 * 3600 * 1000))
        rid = f"{tenant}-r{n:04d}"
        decision = rng.choice(["resolve", "resolve", "ask", "action", "escalate"])
        replies.append(AiReply(rid, tenant, f"t{n}", decision, at, latency_ms=rng.randrange(20, 900),
                               category=rng.choice(["billing", "", "travel"])))
        if rng.random() < 0.1:  # re-published later for a redelivered request: the earliest copy stands
            replies.append(AiReply(rid, tenant, f"t{n}", decision, at + timedelta(seconds=30),
                                   latency_ms=5, category="other"))
        later = at
        for k in range(rng.choice([0, 1, 1, 2, 3, 5])):
            # `window`: at the quiet window's very end; `reopen`: at the end of an assumed one's reopen window
            step = rng.choice([timedelta(minutes=10), "window", "window", "reopen", timedelta(hours=20),
                               timedelta(days=3), timedelta(seconds=-30)])
            later = {"window": at + window, "reopen": at + window + PLANS[tenant].reopen_window}.get(
                step, later + step if isinstance(step, timedelta) else later)
            kind = rng.choice(list(OutcomeKind))
            outcomes.append(Outcome(f"{rid}-e{k}", rid, tenant, f"t{n}", kind, later,
                                    csat_score=rng.randrange(1, 6) if kind is OutcomeKind.CSAT else 0,
                                    category=rng.choice(["", "shipping"])))
    return replies, outcomes


def kept_history(replies, outcomes) -> tuple[dict[str, AiReply], dict[str, list[Outcome]]]:
    """The reply each resolution keeps (its earliest copy, as the table does) and its outcomes, by id."""
    earliest: dict[str, AiReply] = {}
    for reply in sorted(replies, key=lambda r: r.created_at, reverse=True):
        earliest[reply.resolution_id] = reply
    by_resolution: dict[str, list[Outcome]] = {}
    for outcome in outcomes:
        by_resolution.setdefault(outcome.resolution_id, []).append(outcome)
    return earliest, by_resolution


def pure_lifecycles(replies, outcomes, terms, watermark):
    earliest, by_resolution = kept_history(replies, outcomes)
    return sorted((settle(reply, by_resolution.get(rid, []), terms, watermark) for rid, reply in earliest.items()),
                  key=lambda life: life.resolution_id)


@pytest.fixture
def store(clickhouse_client, unique_database):
    store = MeteringStore(clickhouse_client, unique_database)
    store.migrate()
    return store


@pytest.mark.integration
@pytest.mark.parametrize("seed", range(3))
def test_one_batch_settles_as_the_pure_fold(store, seed):
    for tenant, terms in PLANS.items():
        replies, outcomes = random_history(tenant, seed)
        settled = record_and_settle(store, replies, outcomes, PLANS.get)
        watermark = max([r.created_at for r in replies] + [o.occurred_at for o in outcomes])
        want = pure_lifecycles(replies, outcomes, terms, watermark)
        assert store.lifecycles(tenant) == want
        assert sum(n for (t, _), n in settled.items() if t == tenant) == len(want)
        assert {state for (t, state) in settled if t == tenant} == {life.state.value for life in want}
        assert_counters_agree_with_rows(store, tenant, terms)


@pytest.mark.integration
@pytest.mark.parametrize("seed", range(2))
def test_scrambled_batches_and_a_replay_end_where_the_pure_fold_does(store, seed):
    tenant, terms = "globex", PLANS["globex"]
    replies, outcomes = random_history(tenant, seed + 10)
    events = [*replies, *outcomes]
    random.Random(seed).shuffle(events)
    for replay in range(2):
        for start in range(0, len(events), 41):
            chunk = events[start:start + 41]
            record_and_settle(store, [e for e in chunk if isinstance(e, AiReply)],
                              [e for e in chunk if isinstance(e, Outcome)], PLANS.get)
    watermark = max([r.created_at for r in replies] + [o.occurred_at for o in outcomes])
    want = pure_lifecycles(replies, outcomes, terms, watermark)
    stored = store.lifecycles(tenant)

    def meaning(life):  # the version says when it was last settled, which depends on the batches
        return {k: v for k, v in vars(life).items() if k != "version"}

    assert [meaning(life) for life in stored] == [meaning(life) for life in want]
    assert_counters_agree_with_rows(store, tenant, terms)


@pytest.mark.integration
@pytest.mark.parametrize("seed", range(3))
def test_month_end_counts_fold_in_sql_as_the_pure_statement_does(store, seed):
    """A closing statement's counts (the state each resolution of the month had when it ended) from the
    SQL fold equal domain/statements.py's, including a reply re-published across the month's end and
    events either side of it."""
    from clonedesk.metering.domain.billing import Month
    from clonedesk.metering.domain.statements import counts_at_month_end

    for tenant, terms in PLANS.items():
        replies, outcomes = random_history(tenant, seed + 20)
        end = datetime(2026, 11, 1, tzinfo=UTC)
        straddling = AiReply(f"{tenant}-edge", tenant, "t-edge", "resolve", end - timedelta(seconds=10))
        november = AiReply(f"{tenant}-nov", tenant, "t-nov", "resolve", end + timedelta(hours=1))
        replies += [straddling, AiReply(straddling.resolution_id, tenant, "t-edge", "resolve",
                                        end + timedelta(seconds=20)), november]
        outcomes += [Outcome(f"{tenant}-edge-e0", straddling.resolution_id, tenant, "t-edge",
                             OutcomeKind.CUSTOMER_CONFIRMED, end - timedelta(seconds=5)),
                     Outcome(f"{tenant}-edge-e1", straddling.resolution_id, tenant, "t-edge",
                             OutcomeKind.REOPENED, end)]
        record_and_settle(store, replies, outcomes, PLANS.get)
        earliest, by_resolution = kept_history(replies, outcomes)
        for month in (Month(2026, 10), Month(2026, 11)):
            want = counts_at_month_end(month, earliest.values(), by_resolution, terms)
            assert store.month_end_states(tenant, month, terms) == want
            assert sum(want.values()) > 0
