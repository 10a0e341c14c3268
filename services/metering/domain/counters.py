"""Usage counters: what each resolution adds to the hourly figures that invoices and usage read.

The lifecycle table keeps one row per resolution; summing it for an invoice scans the tenant's whole
history. The counters keep, per tenant and hour, only the sums the figures need. Each resolution
contributes a fixed set of counts, a function of its lifecycle, its reply and its CSAT events:

- `state`: one per resolution, at its creation hour, by state and category, with its latest rating;
- `latency`: one per resolution, at its creation hour, keyed by its latency in ms (exact quantiles);
- `charge`: one per billed resolution, at its billing hour, keyed by the month it was reopened in;
- `csat`: one per CSAT event, at the hour it occurred, keyed by its score;
- `action`: one per reply that made a back-office call, at its creation hour, by the call's outcome.

When a resolution is settled again, what it adds now minus what it added before is written: a state
change moves its unit, a replay changes nothing. `change` is that difference. The store's SQL computes
the same counts from the raw rows (to backfill and to repair), and a test holds the two equal.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime
from typing import Iterable, Mapping, NamedTuple

from clonedesk.metering.domain.billing import Month
from clonedesk.metering.domain.events import (AiReply, Outcome, OutcomeKind, OutcomeRow, ReplyRow, from_millis,
                                              to_millis)
from clonedesk.metering.domain.lifecycle import Lifecycle
from clonedesk.metering.domain.terms import Terms

STATE, LATENCY, CHARGE, CSAT, ACTION = "state", "latency", "charge", "csat", "action"


class CounterKey(NamedTuple):  # a tuple: hashed by C, and the sink makes a few per resolution
    kind: str
    period: datetime  # the hour, UTC
    label: str = ""  # a state (state), an action outcome (action)
    category: str = ""
    value: int = 0  # latency ms (latency), reopen month as YYYYMM or 0 (charge), score (csat)


# n, total, total2: a count and two sums (state: rating sum and rated count; action: latency sum).
Counts = dict[CounterKey, tuple[int, int, int]]


def hour_of(moment: datetime) -> datetime:
    return moment.replace(minute=0, second=0, microsecond=0)


def month_number(moment: datetime | None) -> int:
    """YYYYMM of a moment, 0 for none: how a charge row names the month it was reversed in."""
    return 0 if moment is None else moment.year * 100 + moment.month


def _add(counts: dict, key: CounterKey, n: int, total: int = 0, total2: int = 0) -> None:
    was = counts.get(key)
    counts[key] = (n, total, total2) if was is None else (was[0] + n, was[1] + total, was[2] + total2)


def count_lifecycle(counts: dict, life: Lifecycle | None, sign: int = 1) -> None:
    """Add what a lifecycle contributes to `counts`, `sign` times (-1 takes it out again)."""
    if life is None:
        return
    created = hour_of(life.created_at)
    rated = life.csat_score > 0
    _add(counts, CounterKey(STATE, created, life.state.value, life.category), sign,
         sign * life.csat_score if rated else 0, sign if rated else 0)
    _add(counts, CounterKey(LATENCY, created, value=life.latency_ms), sign)
    if life.billed_at is not None:
        _add(counts, CounterKey(CHARGE, hour_of(life.billed_at), value=month_number(life.reopened_at)), sign)


def count_reply(counts: dict, reply: AiReply | StoredReply | None, sign: int = 1) -> None:
    if reply is not None and reply.action_status:
        _add(counts, CounterKey(ACTION, hour_of(reply.created_at), reply.action_status), sign,
             sign * reply.action_latency_ms)


def count_csat(counts: dict, outcomes: Iterable[Outcome], sign: int = 1) -> None:
    for outcome in {o.event_id: o for o in outcomes}.values():  # an event counts once
        _count_one_csat(counts, outcome, sign)


def _count_one_csat(counts: dict, outcome, sign: int) -> None:
    if outcome is not None and outcome.kind is OutcomeKind.CSAT:
        _add(counts, CounterKey(CSAT, hour_of(outcome.occurred_at), value=outcome.csat_score), sign)


def count_resolution(counts: dict, life: Lifecycle | None, reply: AiReply | None, outcomes: Iterable[Outcome],
                     sign: int = 1) -> None:
    """Add everything one resolution contributes to `counts`, `sign` times. A batch adds each settled
    resolution's counts now and takes out what it counted before: the sum is what the batch moved."""
    count_lifecycle(counts, life, sign)
    count_reply(counts, reply, sign)
    count_csat(counts, outcomes, sign)


class StoredReply(NamedTuple):
    """What the action counter reads of the reply copy a table holds."""
    created_at: datetime
    action_status: str
    action_latency_ms: int


class StoredOutcome(NamedTuple):
    """What the CSAT counter reads of the outcome copy a table holds."""
    kind: OutcomeKind
    csat_score: int
    occurred_at: datetime


def raw_events_change(stored_replies: Mapping[tuple[str, str], StoredReply],
                      stored_outcomes: Mapping[tuple[str, str, str], StoredOutcome],
                      replies: Iterable[ReplyRow], outcomes: Iterable[OutcomeRow]) -> dict[str, Counts]:
    """Per tenant, what a batch's raw events move in the action and CSAT counters, given the copies the
    tables held before it (replies by (tenant, resolution id), outcomes by (tenant, resolution id, event
    id)). The tables keep one copy per id, as ReplacingMergeTree does: the earliest reply at their
    millisecond precision (a tie goes to the later write) and the last outcome written; a copy kept
    instead of the stored one moves the counts by their difference, and a redelivery moves nothing."""
    kept_replies: dict[tuple[str, str], ReplyRow] = {}
    for reply in replies:
        key = (reply.tenant_id, reply.resolution_id)
        earlier = kept_replies.get(key)
        if earlier is None or reply.created_ms <= earlier.created_ms:
            kept_replies[key] = reply
    counts: dict[str, dict] = defaultdict(dict)
    for key, reply in kept_replies.items():
        stored = stored_replies.get(key)
        if stored is None:
            if reply.action_status:  # else it adds nothing: skip the time conversion
                count_reply(counts[key[0]], _stored_reply(reply), 1)
        elif reply.created_ms <= to_millis(stored.created_at):
            count_reply(counts[key[0]], _stored_reply(reply), 1)
            count_reply(counts[key[0]], stored, -1)
    kept_outcomes = {(o.tenant_id, o.resolution_id, o.event_id): o for o in outcomes}
    for key, outcome in kept_outcomes.items():
        if outcome.kind == _CSAT_KIND:  # the hour straight from the milliseconds: most of a batch is outcomes
            at = outcome.occurred_ms
            _add(counts[key[0]], CounterKey(CSAT, from_millis(at - at % _HOUR_MS), value=outcome.csat_score), 1)
        stored = stored_outcomes.get(key)
        if stored is not None:
            _count_one_csat(counts[key[0]], stored, -1)
    changes = {tenant: moved(changed) for tenant, changed in counts.items()}
    return {tenant: changed for tenant, changed in changes.items() if changed}


_CSAT_KIND = OutcomeKind.CSAT.value
_HOUR_MS = 3_600_000


def _stored_reply(reply: ReplyRow) -> StoredReply:
    return StoredReply(from_millis(reply.created_ms), reply.action_status, reply.action_latency_ms)


def lifecycle_counts(life: Lifecycle | None) -> Counts:
    counts: Counts = {}
    count_lifecycle(counts, life)
    return counts


def resolution_counts(life: Lifecycle | None, reply: AiReply | None, outcomes: Iterable[Outcome]) -> Counts:
    """Everything one resolution adds to the counters."""
    counts: Counts = {}
    count_resolution(counts, life, reply, outcomes)
    return counts


def moved(counts: Mapping[CounterKey, tuple[int, int, int]]) -> Counts:
    """The counts that do not sum to nothing: what to write."""
    return {key: value for key, value in counts.items() if value != (0, 0, 0)}


def change(before: Mapping[CounterKey, tuple[int, int, int]],
           after: Mapping[CounterKey, tuple[int, int, int]]) -> Counts:
    """What to write so that the counters go from `before` to `after`; nothing for what did not move."""
    delta: Counts = {}
    for key in before.keys() | after.keys():
        old, new = before.get(key, (0, 0, 0)), after.get(key, (0, 0, 0))
        moved = (new[0] - old[0], new[1] - old[1], new[2] - old[2])
        if moved != (0, 0, 0):
            delta[key] = moved
    return delta


def merge(parts: Iterable[Mapping[CounterKey, tuple[int, int, int]]]) -> Counts:
    total: Counts = {}
    for part in parts:
        for key, (n, t, t2) in part.items():
            _add(total, key, n, t, t2)
    return {key: value for key, value in total.items() if value != (0, 0, 0)}


# -- reading them back -------------------------------------------------------------------------------

def exact_quantile(histogram: Iterable[tuple[int, int]], level: float) -> int | None:
    """The quantile of values given as (value, how many), picked as ClickHouse's quantileExact picks it:
    the element at index floor(level * n) of the sorted values (the last one for level 1)."""
    pairs = sorted((value, n) for value, n in histogram if n > 0)
    size = sum(n for _, n in pairs)
    if size == 0:
        return None
    index = int(level * size) if level < 1 else size - 1
    seen = 0
    for value, n in pairs:
        seen += n
        if index < seen:
            return value
    return pairs[-1][0]


@dataclass(frozen=True)
class Charge:
    """A billed resolution that billing must see other than the counters do: a dispute accepted for it
    means it was reopened for no one (domain/disputes.py)."""

    billed_at: datetime
    reopened_at: datetime | None


def charge_figures(month: Month, terms: Terms, charges: Mapping[tuple[datetime, int], int],
                   settled_by_dispute: Iterable[Charge]) -> tuple[int, int | None]:
    """(billable units, paid reversals) of the month's invoice from the `charge` counters, by (billing
    hour, reopen month) from the first month a reopen in this one can reach back to.

    A reopen in this month of an earlier month's charge is a credit when that charge was past the free
    allowance in its month (domain/billing.py). Hourly counts tell it whenever the allowance ran out in
    another hour than the charge's; paid reversals come back None when it ran out within that very hour,
    and only the raw rows can order it."""
    effective: dict[tuple[datetime, int], int] = defaultdict(int, charges)
    for charge in settled_by_dispute:
        hour = hour_of(charge.billed_at)
        if charge.reopened_at is not None:
            effective[(hour, month_number(charge.reopened_at))] -= 1
            effective[(hour, 0)] += 1
    this_month = month.year * 100 + month.month
    # A month's bounds and the hours' months as YYYYMM, worked out once: a month's lookback holds a few
    # thousand (hour, reopen month) keys, and Month objects per key were a quarter of an invoice's time.
    start, end = month.start, month.end
    kept_by_hour: dict[datetime, int] = defaultdict(int)  # each hour's charges that stayed in their month
    billable = 0
    for (hour, reopened), n in effective.items():
        if reopened != month_number(hour):  # a charge of its month: not reversed within it
            kept_by_hour[hour] += n
            if start <= hour < end:
                billable += n
    kept_before: dict[datetime, int] = {}  # the same, summed over the earlier hours of the hour's month
    running: dict[int, int] = defaultdict(int)
    for hour in sorted(kept_by_hour):
        hour_month = month_number(hour)
        kept_before[hour] = running[hour_month]
        running[hour_month] += kept_by_hour[hour]
    paid = 0
    for (hour, reopened), n in effective.items():
        if hour >= start or reopened != this_month or n <= 0:
            continue
        before, within = kept_before.get(hour, 0), kept_by_hour.get(hour, 0)
        if before >= terms.free_units:
            paid += n
        elif before + within > terms.free_units:
            return billable, None  # the allowance ran out inside this hour
    return billable, paid
