"""The resolution lifecycle: pending -> confirmed / assumed / escalated, and billed -> reopened.

`settle` folds a resolution's events, in event time, into its lifecycle. It reads no clock: the only
notion of "now" is the tenant's watermark (the latest event time seen for the tenant), so replaying
the same events always gives the same answer.

The rules:
- pending when the AI replied (escalated at once when the AI itself escalated);
- confirmed when the customer confirms or rates the conversation positively (CSAT >= 4);
- escalated when a human agent takes over while it is pending (never billed);
- assumed when the window after the AI's reply (24 h by default) closed with no human take-over and no
  customer return (a reply, a reopen or a bad rating): the ticket was solved or went quiet. It is
  assumed at the window's end, and billed then unless the plan excludes assumed resolutions. A reply
  that only asked the customer a question (decision ASK) is never assumed: silence after a question
  is not a resolution (it can still be confirmed);
- reopened when, within the reopen window after it was resolved, the ticket is reopened, or (for an
  assumed one) the customer comes back. Its charge is reversed. A confirmed resolution is reopened
  only by an explicit reopen: after a confirmation a further customer message is a new conversation.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime, timedelta, timezone
from enum import Enum
from typing import Iterable

from clonedesk.metering.domain.events import AiReply, Outcome, OutcomeKind
from clonedesk.metering.domain.terms import Terms


class State(str, Enum):
    PENDING = "pending"
    CONFIRMED = "confirmed"
    ASSUMED = "assumed"
    ESCALATED = "escalated"
    REOPENED = "reopened"


STATES: tuple[State, ...] = tuple(State)
EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)


@dataclass(frozen=True)
class Lifecycle:
    resolution_id: str
    tenant_id: str
    ticket_id: str
    created_at: datetime
    state: State
    state_at: datetime  # when it entered its state, in event time
    billed_at: datetime | None = None  # when it became billable (kept after a reopen: the charge existed)
    reopened_at: datetime | None = None
    decided_by: str = ""  # id of the event that put it in its state
    csat_score: int = 0  # the latest rating, 0 if none
    category: str = ""
    latency_ms: int = 0
    decision: str = ""
    version: int = 0  # grows with what was known when it was settled (see `knowledge_version`)
    # While pending and nothing blocks it: when it becomes assumed if the tenant stays quiet till then.
    assumable_at: datetime | None = None

    @property
    def billed(self) -> bool:
        return self.billed_at is not None


def knowledge_version(watermark: datetime, events_known: int) -> int:
    """A number that only grows as more is known: the tenant's watermark, then the event count.

    Stored as the ReplacingMergeTree version, so the newest knowledge wins whatever order rows land in.
    """
    # whole milliseconds by integer arithmetic, as DateTime64(3) keeps them (a float timestamp can land
    # a millisecond low)
    millis = (watermark - EPOCH) // timedelta(milliseconds=1)
    return millis * 1024 + min(events_known, 1023)


def _ordered(outcomes: Iterable[Outcome]) -> list[Outcome]:
    return sorted(outcomes, key=lambda o: (o.occurred_at, o.event_id))


def settle(reply: AiReply | None, outcomes: Iterable[Outcome], terms: Terms,
           watermark: datetime) -> Lifecycle | None:
    """The lifecycle of one resolution given everything known about it; None until its reply is known."""
    if reply is None:  # outcomes can arrive before their resolution: nothing to settle yet
        return None
    events = _ordered(o for o in outcomes if o.resolution_id == reply.resolution_id)
    life = Lifecycle(
        resolution_id=reply.resolution_id, tenant_id=reply.tenant_id, ticket_id=reply.ticket_id,
        created_at=reply.created_at, state=State.PENDING, state_at=reply.created_at,
        decided_by=reply.resolution_id,
        category=reply.category or next((o.category for o in events if o.category), ""),
        latency_ms=reply.latency_ms, decision=reply.decision,
        version=knowledge_version(max(watermark, reply.created_at), len(events) + 1),
    )
    if reply.escalated:
        life = replace(life, state=State.ESCALATED)
    deadline = reply.created_at + terms.assumed_window
    customer_returned = reply.asked  # a question waits for the customer: never assumed

    def assume(current: Lifecycle) -> Lifecycle:
        return replace(current, state=State.ASSUMED, state_at=deadline, decided_by=reply.resolution_id,
                       billed_at=deadline if terms.bill_assumed else None)

    for event in events:
        if event.kind is OutcomeKind.CSAT and event.csat_score > 0:
            life = replace(life, csat_score=event.csat_score)
        if life.state is State.PENDING and not customer_returned and event.occurred_at > deadline:
            life = assume(life)  # the window closed quietly before this event
        if life.state is State.PENDING:
            if event.kind is OutcomeKind.CUSTOMER_CONFIRMED or event.positive_rating:
                life = replace(life, state=State.CONFIRMED, state_at=event.occurred_at,
                               billed_at=event.occurred_at, decided_by=event.event_id)
            elif event.kind is OutcomeKind.HUMAN_TOOK_OVER:
                life = replace(life, state=State.ESCALATED, state_at=event.occurred_at,
                               decided_by=event.event_id)
            elif event.kind in (OutcomeKind.CUSTOMER_REPLIED, OutcomeKind.REOPENED) or event.negative_rating:
                customer_returned = True  # not resolved by this reply; it can still be confirmed
        elif life.state in (State.CONFIRMED, State.ASSUMED):
            came_back = event.kind is OutcomeKind.REOPENED or (
                life.state is State.ASSUMED and event.kind is OutcomeKind.CUSTOMER_REPLIED)
            if came_back and event.occurred_at <= life.state_at + terms.reopen_window:
                life = replace(life, state=State.REOPENED, state_at=event.occurred_at,
                               reopened_at=event.occurred_at, decided_by=event.event_id)
    if life.state is State.PENDING and not customer_returned:
        if watermark >= deadline:
            return assume(life)
        return replace(life, assumable_at=deadline)
    return life
