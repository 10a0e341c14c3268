"""Recording a batch of events and settling what it touched: the lifecycles, the usage counters, and
the months whose statements close."""

from __future__ import annotations

import contextlib
import logging
from dataclasses import dataclass
from collections import defaultdict
from datetime import datetime
from pathlib import Path
from typing import Callable, Sequence

from clonedesk.core.tenants import TenantStore
from clonedesk.metering.adapters.store import MeteringStore, StagedBatch, StagedRecordsLost
from clonedesk.metering.domain.events import AiReply, Outcome, OutcomeRow, ReplyRow, from_millis
from clonedesk.metering.domain.billing import Month
from clonedesk.metering.domain.counters import raw_events_change
from clonedesk.metering.domain.statements import closed_statement, closes_at
from clonedesk.metering.domain.terms import DEFAULT_TERMS, Terms

log = logging.getLogger(__name__)


TermsLookup = Callable[[str], Terms]


def terms_from_tenants(data_dir: Path) -> TermsLookup:
    """Each tenant's plan as Terms; a tenant without a record (yet) is billed on the default plan."""
    tenants = TenantStore(data_dir)

    def lookup(tenant_id: str) -> Terms:
        record = tenants.find(tenant_id)
        return Terms.from_plan(record.plan) if record else DEFAULT_TERMS

    return lookup


def record_and_settle(store: MeteringStore, replies: Sequence[AiReply], outcomes: Sequence[Outcome],
                      terms_for: TermsLookup) -> dict[tuple[str, str], int]:
    """`record_rows_and_settle` of events given as values (tools, tests, replays from Python)."""
    return record_rows_and_settle(store, [ReplyRow.of(r) for r in replies], [OutcomeRow.of(o) for o in outcomes],
                                  terms_for)


def record_rows_and_settle(store: MeteringStore, replies: Sequence[ReplyRow], outcomes: Sequence[OutcomeRow],
                           terms_for: TermsLookup) -> dict[tuple[str, str], int]:
    """Store the raw events (idempotent on their ids) and raise the tenants' watermarks, then re-settle
    every resolution the events touched and every pending one whose quiet window a watermark closed,
    and move the usage counters by what each of them changed; all of it in ClickHouse, in a few
    statements a batch (adapters/settle_sql.py folds as domain/lifecycle.py does). Returns how many of
    them it moved into each state (a first lifecycle, or a new state), by (tenant, state)."""
    replied: dict[str, set[str]] = defaultdict(set)
    latest_ms: dict[str, int] = {}
    for reply in replies:
        replied[reply.tenant_id].add(reply.resolution_id)
        if reply.created_ms > latest_ms.get(reply.tenant_id, -1):
            latest_ms[reply.tenant_id] = reply.created_ms
    touched: dict[str, set[str]] = {tenant: set(ids) for tenant, ids in replied.items()}
    for outcome in outcomes:
        touched.setdefault(outcome.tenant_id, set()).add(outcome.resolution_id)
        if outcome.occurred_ms > latest_ms.get(outcome.tenant_id, -1):
            latest_ms[outcome.tenant_id] = outcome.occurred_ms
    if not touched:
        return {}
    terms = {tenant_id: terms_for(tenant_id) for tenant_id in touched}
    batch_id = store.begin_batch(touched)  # open until it is settled: a death in between is repaired
    store.advance_watermarks({tenant: from_millis(ms) for tenant, ms in latest_ms.items()})
    # The copies stored before the batch's land: what its raw events move in the counters is the difference.
    stored_replies, stored_csat = store.stage_batch(batch_id, touched, replied, terms)
    moved_by_events = raw_events_change(stored_replies, stored_csat, replies, outcomes)
    store.insert_reply_rows(replies)
    store.insert_outcome_rows(outcomes)
    settled = store.settle_staged(batch_id, terms, moved_by_events)
    store.end_batch(batch_id, touched)
    return settled


@dataclass(frozen=True)
class StoredBatch:
    """A batch whose rows are stored and whose resolutions await `settle_stored`."""

    batch_id: str
    terms: dict[str, Terms]  # by tenant of the batch


def store_staged(store: MeteringStore, batch: StagedBatch, terms_for: TermsLookup,
                 expected: int) -> StoredBatch | None:
    """The first half of `record_rows_and_settle` for a batch staged in ClickHouse as its Kafka records
    (store.stage_records, its rejects already parked; `expected` records left staged): the same rows,
    watermarks and raw events' counters, with the records decoded and turned into rows by ClickHouse
    rather than in Python. None where it holds nothing. Raises StagedRecordsLost where fewer are staged
    (ClickHouse restarted in between: nothing is committed).

    Storing a batch may run beside the settling of the one before it: that settling may then read this
    batch's events and watermarks as well, which only settles its resolutions on more knowledge, as this
    batch's own settling would (the newest knowledge wins)."""
    latest_ms = store.staged_latest(batch) if expected else {}
    if not latest_ms:
        if expected:
            raise StagedRecordsLost(f"{expected} records were staged for the batch, none are left")
        store.drop_staged(batch)
        return None
    terms = {tenant_id: terms_for(tenant_id) for tenant_id in latest_ms}
    try:
        batch_id = store.begin_batch(latest_ms)  # open until it is settled: a death in between is repaired
        store.advance_watermarks({tenant: from_millis(ms) for tenant, ms in latest_ms.items()})
        store.store_staged(batch_id, batch, expected)
    except BaseException:
        with contextlib.suppress(Exception):  # its redelivery is staged again, under other numbers
            store.drop_staged(batch)
        raise
    return StoredBatch(batch_id, terms)


def settle_stored(store: MeteringStore, stored: StoredBatch | None) -> dict[tuple[str, str], int]:
    """The second half: settle what a stored batch touched (batches one at a time, in order), then close
    its repair marker. Returns how many resolutions it moved into each state, by (tenant, state)."""
    if stored is None:
        return {}
    settled = store.settle_batch(stored.batch_id, stored.terms)
    store.end_batch(stored.batch_id, stored.terms)
    return settled


def record_staged_and_settle(store: MeteringStore, batch: StagedBatch, terms_for: TermsLookup,
                             expected: int) -> dict[tuple[str, str], int]:
    """`store_staged` and `settle_stored` one after the other."""
    return settle_stored(store, store_staged(store, batch, terms_for, expected))


def months_to_close(first: Month, watermark: datetime, terms: Terms, closed: set[str]) -> list[Month]:
    """The months from `first` that the watermark closed and that have no statement yet."""
    months, month = [], first
    while closes_at(month, terms) <= watermark:
        if str(month) not in closed:
            months.append(month)
        month = month.next()
    return months


def close_months(store: MeteringStore, terms_for: TermsLookup) -> list[tuple[str, Month]]:
    """Freeze the statement of every month a tenant's watermark has closed (domain/statements.py).

    Only call it when everything sent so far has been recorded (the sink: no consumer lag): the
    watermark is the latest event time seen, and events of a month still unread on another partition
    would be missing from its statement. A month closed before keeps the statement it was frozen with.
    """
    closed = []
    for tenant_id, watermark in sorted(store.all_watermarks().items()):
        first = store.first_event_month(tenant_id)
        if first is None:
            continue
        terms = terms_for(tenant_id)
        for month in months_to_close(first, watermark, terms, store.closed_months(tenant_id)):
            with store.exclusive():  # a dispute accepted meanwhile lands in this statement or after it
                statement = _close_month(store, tenant_id, month, terms)
            log.info("month closed", extra={"tenant": tenant_id, "month": str(month),
                                            "total_usd": statement.invoice.to_json()["total_usd"]})
            closed.append((tenant_id, month))
    return closed


def _close_month(store: MeteringStore, tenant_id: str, month: Month, terms: Terms):
    invoice = store.invoice(tenant_id, month, terms)
    statement = closed_statement(invoice, store.month_end_states(tenant_id, month, terms), terms)
    store.write_statement(tenant_id, month, statement.to_json(), statement.closed_at)
    return statement
