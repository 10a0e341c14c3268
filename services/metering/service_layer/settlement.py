"""Recording a batch of events and settling what it touched: the lifecycles, the usage counters, and
the months whose statements close."""

from __future__ import annotations

import logging
from collections import defaultdict
from datetime import datetime
from pathlib import Path
from typing import Callable, Sequence

from clonedesk.core.tenants import TenantStore
from clonedesk.metering.adapters.store import MeteringStore
from clonedesk.metering.domain.events import AiReply, Outcome
from clonedesk.metering.domain.billing import Month
from clonedesk.metering.domain import counters
from clonedesk.metering.domain.lifecycle import Lifecycle, settle
from clonedesk.metering.domain.statements import closed_statement, closes_at, counts_at_month_end
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
                      terms_for: TermsLookup) -> list[Lifecycle]:
    """Store the raw events (idempotent on their ids) and raise the tenants' watermarks, then re-settle
    every resolution the events touched and every pending one whose quiet window a watermark closed,
    and move the usage counters by what each of them changed. Returns the lifecycles settled."""
    touched: dict[str, set[str]] = defaultdict(set)
    latest: dict[str, datetime] = {}
    for event in [*replies, *outcomes]:
        touched[event.tenant_id].add(event.resolution_id)
        moment = event.created_at if isinstance(event, AiReply) else event.occurred_at
        latest[event.tenant_id] = max(moment, latest.get(event.tenant_id, moment))
    if not touched:
        return []
    store.begin_batch(touched)
    # What was known before this batch: the counters hold what it added up to.
    known_replies, known_outcomes = store.histories(touched)
    store.insert_replies(replies)
    store.insert_outcomes(outcomes)
    store.advance_watermarks(latest)
    watermarks = store.watermarks(touched)
    due_only: dict[str, set[str]] = defaultdict(set)
    for tenant_id, due in store.pending_due(watermarks).items():
        due_only[tenant_id] = due - touched[tenant_id]
    due_replies, due_outcomes = store.histories({t: ids for t, ids in due_only.items() if ids})
    wanted = {t: touched.get(t, set()) | due_only.get(t, set()) for t in set(touched) | set(due_only)}
    stored = store.stored_lifecycles(wanted)
    new_replies, new_outcomes = _with_batch(known_replies, known_outcomes, replies, outcomes)
    settled: list[Lifecycle] = []
    changed: list[Lifecycle] = []
    counts: dict[str, dict] = defaultdict(dict)  # per tenant: what the batch moves in its counters
    for tenant_id in sorted(wanted):
        terms = terms_for(tenant_id)
        for resolution_id in sorted(wanted[tenant_id]):
            key = (tenant_id, resolution_id)
            if resolution_id in touched.get(tenant_id, ()):
                before = (known_replies.get(key), known_outcomes.get(key, ()))
                after = (new_replies.get(key), new_outcomes.get(key, ()))
            else:  # only its quiet window closed: no new event
                before = after = (due_replies.get(key), due_outcomes.get(key, ()))
            life, kept = settle(after[0], after[1], terms, watermarks[tenant_id]), stored.get(key)
            if life is not None and kept is not None and kept.version > life.version:
                life = kept  # settled on more knowledge than this batch has (the newest knowledge wins)
            if life is not None:
                settled.append(life)
                if life != kept:
                    changed.append(life)
            if life == kept and before[0] == after[0] and len(before[1]) == len(after[1]):
                continue  # nothing new about it (a replay): it adds what it added
            counters.count_resolution(counts[tenant_id], kept, *before, sign=-1)
            counters.count_resolution(counts[tenant_id], life, *after)
    store.write_settled(changed, {tenant: counters.moved(moves) for tenant, moves in counts.items()})
    return settled


def _with_batch(known_replies: dict, known_outcomes: dict, replies: Sequence[AiReply],
                outcomes: Sequence[Outcome]) -> tuple[dict, dict]:
    """The histories once the batch is stored, as the tables will read them: the earliest copy of a
    reply (a later-stored copy wins a tie, as ReplacingMergeTree keeps it), each outcome event once."""
    merged_replies = dict(known_replies)
    for reply in replies:
        key = (reply.tenant_id, reply.resolution_id)
        kept = merged_replies.get(key)
        if kept is None or reply.created_at <= kept.created_at:
            merged_replies[key] = reply
    by_id: dict[tuple[str, str], dict[str, Outcome]] = defaultdict(dict)
    for key, events in known_outcomes.items():
        by_id[key].update((o.event_id, o) for o in events)
    for outcome in outcomes:
        by_id[(outcome.tenant_id, outcome.resolution_id)][outcome.event_id] = outcome
    return merged_replies, {key: list(events.values()) for key, events in by_id.items()}


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
    ids = store.resolution_ids_created(tenant_id, month)
    replies, outcomes = store.histories({tenant_id: ids}) if ids else ({}, {})
    counts = counts_at_month_end(month, replies.values(),
                                 {rid: events for (_, rid), events in outcomes.items()}, terms)
    statement = closed_statement(invoice, counts, terms)
    store.write_statement(tenant_id, month, statement.to_json(), statement.closed_at)
    return statement
