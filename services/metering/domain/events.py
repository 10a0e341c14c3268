"""What metering learns from the other services, as plain values (no protobuf in the core)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import Enum


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
