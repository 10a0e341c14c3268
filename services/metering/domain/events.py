"""What metering learns from the other services, as plain values (no protobuf in the core)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from enum import Enum
from typing import NamedTuple


class OutcomeKind(str, Enum):
    CUSTOMER_CONFIRMED = "customer_confirmed"
    CUSTOMER_REPLIED = "customer_replied"
    HUMAN_TOOK_OVER = "human_took_over"
    SOLVED = "solved"
    REOPENED = "reopened"
    CSAT = "csat"


# CSAT scores are 1..5; 4 and 5 are the customer saying the answer worked.
POSITIVE_CSAT = 4


@dataclass(frozen=True)
class AiReply:
    """The resolver answered (or escalated) a ticket: one resolution id, stamped in event time."""

    resolution_id: str
    tenant_id: str
    ticket_id: str
    decision: str  # resolve / ask / action / escalate
    created_at: datetime  # timezone-aware UTC
    latency_ms: int = 0
    category: str = ""
    adapter_version: str = ""
    confidence: float = 0.0
    # The back-office call of an ACTION answer: its name, outcome ("ok", "failed", "timed_out",
    # "not_allowed", "malformed", "not_configured"; "" for no call) and latency. A call that did not
    # happen escalates, and an escalation is never billed.
    action_name: str = ""
    action_status: str = ""
    action_latency_ms: int = 0
    # The evidence of what was answered: the conversation (JSON [{role, text}]), the reply, the call and
    # the back office's answer (JSON), and the escalation reason.
    conversation: str = ""
    reply: str = ""
    action: str = ""
    action_answer: str = ""
    escalation_reason: str = ""

    @property
    def escalated(self) -> bool:
        return self.decision == "escalate"

    @property
    def asked(self) -> bool:
        """The AI asked the customer for information: a question, not an answer."""
        return self.decision == "ask"


@dataclass(frozen=True)
class Outcome:
    """Something that happened to the ticket after the AI's reply, with the id of the event it came from."""

    event_id: str
    resolution_id: str
    tenant_id: str
    ticket_id: str
    kind: OutcomeKind
    occurred_at: datetime  # timezone-aware UTC
    csat_score: int = 0
    category: str = ""

    @property
    def positive_rating(self) -> bool:
        return self.kind is OutcomeKind.CSAT and self.csat_score >= POSITIVE_CSAT

    @property
    def negative_rating(self) -> bool:
        return self.kind is OutcomeKind.CSAT and 0 < self.csat_score < POSITIVE_CSAT


# -- the same events as table rows ------------------------------------------------------------------------
# The sink decodes a batch straight into these (one tuple per event, in its table's column order, times in
# epoch milliseconds, the tables' precision): an object per event and a datetime per time cost more than
# decoding the record itself.

EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)


def to_millis(moment: datetime) -> int:
    """Epoch milliseconds, truncated as a DateTime64(3) column keeps a time."""
    delta = moment - EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1000 + delta.microseconds // 1000


def from_millis(millis: int) -> datetime:
    return EPOCH + timedelta(milliseconds=millis)


class ReplyRow(NamedTuple):
    """An AiReply as `resolution_events` stores it."""

    resolution_id: str
    tenant_id: str
    ticket_id: str
    decision: str
    adapter_version: str
    created_ms: int
    latency_ms: int
    category: str
    confidence: float
    action_name: str
    action_status: str
    action_latency_ms: int
    conversation: str
    reply: str
    action: str
    action_answer: str
    escalation_reason: str

    @classmethod
    def of(cls, reply: AiReply) -> "ReplyRow":
        return cls(reply.resolution_id, reply.tenant_id, reply.ticket_id, reply.decision, reply.adapter_version,
                   to_millis(reply.created_at), reply.latency_ms, reply.category, reply.confidence,
                   reply.action_name, reply.action_status, reply.action_latency_ms, reply.conversation,
                   reply.reply, reply.action, reply.action_answer, reply.escalation_reason)

    def to_reply(self) -> AiReply:
        fields = self._asdict()
        fields["created_at"] = from_millis(fields.pop("created_ms"))
        return AiReply(**fields)


class OutcomeRow(NamedTuple):
    """An Outcome as `outcome_events` stores it (the kind by its value)."""

    event_id: str
    resolution_id: str
    tenant_id: str
    ticket_id: str
    kind: str
    csat_score: int
    occurred_ms: int
    category: str

    @classmethod
    def of(cls, outcome: Outcome) -> "OutcomeRow":
        return cls(outcome.event_id, outcome.resolution_id, outcome.tenant_id, outcome.ticket_id,
                   outcome.kind.value, outcome.csat_score, to_millis(outcome.occurred_at), outcome.category)

    def to_outcome(self) -> Outcome:
        return Outcome(self.event_id, self.resolution_id, self.tenant_id, self.ticket_id, OutcomeKind(self.kind),
                       from_millis(self.occurred_ms), self.csat_score, self.category)
