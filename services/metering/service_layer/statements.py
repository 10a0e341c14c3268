"""A month's statement and one resolution's evidence, as the API and the CLI show them."""

from __future__ import annotations

import dataclasses
import json
import logging
from decimal import Decimal

from clonedesk.metering.adapters.store import MeteringStore
from clonedesk.metering.domain.billing import Month
from clonedesk.metering.domain import disputes as dispute_rules
from clonedesk.metering.domain.evidence import outcome_rows, state_history, statement_line
from clonedesk.metering.domain.statements import open_statement
from clonedesk.metering.domain.terms import Terms

log = logging.getLogger(__name__)


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


def billed_terms(store: MeteringStore, tenant_id: str, month: Month, terms: Terms) -> Terms:
    """The plan a month was billed on: as its closed statement froze it, else the tenant's now."""
    statement = store.statement(tenant_id, month)
    if statement is None:
        return terms
    return dataclasses.replace(terms, unit_price=Decimal(statement["unit_price_usd"]),
                               free_units=int(statement["free_allowance"]))
