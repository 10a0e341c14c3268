"""Use cases that join the core and the store: record a batch of events, then settle what they touched."""

from __future__ import annotations

import dataclasses
import json
import logging
from collections import defaultdict
from datetime import datetime, timezone
from decimal import Decimal
from pathlib import Path
from typing import Callable, Sequence

from clonedesk.core.tenants import TenantStore
from clonedesk.metering.adapters.store import MeteringStore
from clonedesk.metering.domain.events import AiReply, Outcome
from clonedesk.metering.domain.billing import Month
from clonedesk.metering.domain import counters
from clonedesk.metering.domain import disputes as dispute_rules
from clonedesk.metering.domain.lifecycle import Lifecycle, settle
from clonedesk.metering.domain.evidence import outcome_rows, state_history, statement_line
from clonedesk.metering.domain.statements import closed_statement, closes_at, counts_at_month_end, open_statement
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


def statement_json(store: MeteringStore, tenant_id: str, month: Month, terms: Terms) -> dict:
    """A month's statement: as frozen once the month is closed, else the live invoice, marked open."""
    stored = store.statement(tenant_id, month)
    if stored is not None:
        return stored
    return open_statement(store.invoice(tenant_id, month, terms), terms).to_json()


def resolution_evidence(store: MeteringStore, tenant_id: str, resolution_id: str, terms: Terms) -> dict | None:
    """Everything that billed one resolution (or did not): what the AI was asked and answered, every
    outcome event with its time and source, its state history and its statement line; None if unknown."""
    reply = store.evidence_reply(tenant_id, resolution_id)
    life = store.lifecycle_of(tenant_id, resolution_id)
    if reply is None or life is None:
        return None
    outcomes = store.outcomes_of(tenant_id, resolution_id)
    watermark = store.watermarks([tenant_id]).get(tenant_id, reply.created_at)
    dispute = store.dispute(tenant_id, resolution_id)
    if dispute is not None and dispute.status == dispute_rules.ACCEPTED:
        life = dataclasses.replace(life, reopened_at=None)  # settled by the dispute (billing reads it so)
    line_terms, statement = terms, None
    if life.billed_at is not None:
        month = Month.of(life.billed_at)
        statement = store.statement(tenant_id, month)
        if statement is not None:  # billed on a closed statement: its plan, as frozen
            line_terms = dataclasses.replace(terms, unit_price=Decimal(statement["unit_price_usd"]),
                                             free_units=int(statement["free_allowance"]))
        line = statement_line(life, store.charge_rank(tenant_id, resolution_id, month), line_terms)
        line["statement_status"] = statement["status"] if statement else "open"
    else:
        line = statement_line(life, None, terms)
    try:
        conversation = json.loads(reply.conversation) if reply.conversation else []
    except ValueError:
        conversation = []
    try:
        answer = json.loads(reply.action_answer) if reply.action_answer else None
    except ValueError:
        answer = reply.action_answer
    return {
        "resolution_id": resolution_id, "tenant_id": tenant_id, "ticket_id": reply.ticket_id,
        "created_at": reply.created_at, "conversation": conversation, "decision": reply.decision,
        "reply": reply.reply, "confidence": round(reply.confidence, 4), "adapter_version": reply.adapter_version,
        "escalation_reason": reply.escalation_reason or None,
        "action": ({"call": reply.action, "status": reply.action_status, "answer": answer,
                    "latency_ms": reply.action_latency_ms} if reply.action_status else None),
        "state": life.state.value, "state_at": life.state_at,
        "state_history": [{"state": c.state.value, "at": c.at, "because": c.because}
                          for c in state_history(reply, outcomes, terms, watermark)],
        "outcomes": outcome_rows(outcomes, life.decided_by),
        "statement_line": line,
        "dispute": dispute.to_json() if dispute is not None else None,
    }


def _billed_terms(store: MeteringStore, tenant_id: str, month: Month, terms: Terms) -> Terms:
    """The plan a month was billed on: as its closed statement froze it, else the tenant's now."""
    statement = store.statement(tenant_id, month)
    if statement is None:
        return terms
    return dataclasses.replace(terms, unit_price=Decimal(statement["unit_price_usd"]),
                               free_units=int(statement["free_allowance"]))


def _now() -> datetime:
    """Wall-clock now at the store's precision (ms), so what the API answers is what it stored."""
    moment = datetime.now(timezone.utc)
    return moment.replace(microsecond=moment.microsecond // 1000 * 1000)


def open_dispute(store: MeteringStore, tenant_id: str, resolution_id: str, reason: str,
                 now: datetime | None = None) -> tuple[dispute_rules.Dispute, bool]:
    """Dispute a charge (domain/disputes.py); (the dispute, whether it is new). Raises DisputeRefused."""
    with store.exclusive():  # one check-then-write at a time: two racing calls make one dispute
        dispute, created = dispute_rules.open_dispute(
            store.dispute(tenant_id, resolution_id), store.lifecycle_of(tenant_id, resolution_id), reason,
            now or _now())
        if created:
            store.write_dispute(dispute)
    if created:
        log.info("dispute opened", extra={"tenant": tenant_id, "resolution": resolution_id})
    return dispute, created


def decide_dispute(store: MeteringStore, tenant_id: str, resolution_id: str, accept: bool, note: str,
                   terms: Terms, now: datetime | None = None) -> tuple[dispute_rules.Dispute, bool]:
    """Accept (credit what the charge cost, in the first open month from now) or reject a dispute;
    (the dispute, whether this call decided it). Raises DisputeRefused."""
    with store.exclusive():
        life = store.lifecycle_of(tenant_id, resolution_id)
        credit = Decimal("0")
        if accept and life is not None and life.billed_at is not None:
            month = Month.of(life.billed_at)
            billed_on = _billed_terms(store, tenant_id, month, terms)
            credit = dispute_rules.credit_for(store.charge_rank(tenant_id, resolution_id, month),
                                              billed_on.free_units, billed_on.unit_price)
        dispute, decided = dispute_rules.decide(
            store.dispute(tenant_id, resolution_id), accept, note, now or _now(), life=life,
            credit=credit, closed_months=store.closed_months(tenant_id))
        if decided:
            store.write_dispute(dispute)
    if decided:
        log.info("dispute decided", extra={"tenant": tenant_id, "resolution": resolution_id,
                                           "status": dispute.status, "credit_usd": str(dispute.credit),
                                           "credit_month": dispute.credit_month})
    return dispute, decided
