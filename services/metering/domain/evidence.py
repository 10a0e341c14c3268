"""The evidence of one resolution's charge (pure): every state it went through and why, and the line of
the statement it is billed on. Everything here is derived again from the stored events, by the same
rules that billed it (domain/lifecycle.py), so a customer can check a charge against its events."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Iterable, Sequence

from clonedesk.metering.domain.billing import Month
from clonedesk.metering.domain.events import AiReply, Outcome, OutcomeKind
from clonedesk.metering.domain.lifecycle import Lifecycle, State, settle
from clonedesk.metering.domain.terms import Terms

# Who reports each outcome: all of them arrive as the tenant's helpdesk webhooks, read by ingest.
OUTCOME_SOURCES = {
    OutcomeKind.CUSTOMER_CONFIRMED: "the customer's message (helpdesk webhook)",
    OutcomeKind.CUSTOMER_REPLIED: "the customer's message (helpdesk webhook)",
    OutcomeKind.HUMAN_TOOK_OVER: "a human agent's reply or assignment (helpdesk webhook)",
    OutcomeKind.SOLVED: "the ticket's status (helpdesk webhook)",
    OutcomeKind.REOPENED: "the ticket's status (helpdesk webhook)",
    OutcomeKind.CSAT: "the customer's rating (helpdesk webhook)",
}
_JUST_BEFORE = timedelta(milliseconds=1)


@dataclass(frozen=True)
class StateChange:
    state: State
    at: datetime
    because: str  # the event id that put it there (the resolution id itself: the AI's reply, or its window)


def state_history(reply: AiReply, outcomes: Iterable[Outcome], terms: Terms,
                  watermark: datetime) -> list[StateChange]:
    """Each state the resolution entered, in order: settled again on the events known just before and
    just after each outcome, then on everything up to the watermark (a quiet window closing between two
    events shows as its own change)."""
    events = sorted(outcomes, key=lambda o: (o.occurred_at, o.event_id))
    lives: list[Lifecycle | None] = [settle(reply, [], terms, watermark=reply.created_at)]
    for index, event in enumerate(events):
        lives.append(settle(reply, events[:index], terms, watermark=max(reply.created_at,
                                                                          event.occurred_at - _JUST_BEFORE)))
        lives.append(settle(reply, events[:index + 1], terms, watermark=event.occurred_at))
    lives.append(settle(reply, events, terms, watermark=max(watermark, reply.created_at)))
    changes: list[StateChange] = []
    for life in lives:
        if life is None:
            continue
        if not changes or changes[-1].state is not life.state:
            changes.append(StateChange(life.state, life.state_at, life.decided_by))
    return changes


def statement_line(life: Lifecycle, charge_rank: int | None, terms: Terms) -> dict:
    """Where the resolution shows on the statements: billed in which month, free or charged, and where
    a reopen credited it. `charge_rank` is its place among its month's charges in event-time order
    (None when it is no charge of that month)."""
    if life.billed_at is None:
        return {"billed": False, "why": f"not billable: {life.state.value}"}
    month = Month.of(life.billed_at)
    line = {"billed": True, "month": str(month), "billed_at": life.billed_at}
    if charge_rank is None:  # billed and reopened within the same month: the charge never showed
        line.update(charge="reversed in the same month", credit_month=None)
        return line
    free = charge_rank <= terms.free_units
    line.update(charge="free" if free else "charged", rank_in_month=charge_rank,
                unit_price_usd=None if free else str(terms.unit_price))
    credited = life.reopened_at is not None and not free and Month.of(life.reopened_at) != month
    line["credit_month"] = str(Month.of(life.reopened_at)) if credited else None
    return line


def outcome_rows(outcomes: Sequence[Outcome], decided_by: str) -> list[dict]:
    return [{"event_id": o.event_id, "kind": o.kind.value, "occurred_at": o.occurred_at,
             "csat_score": o.csat_score or None, "source": OUTCOME_SOURCES.get(o.kind, "helpdesk webhook"),
             "decided_current_state": o.event_id == decided_by}
            for o in sorted(outcomes, key=lambda o: (o.occurred_at, o.event_id))]
