"""From what the model generated to what the resolver answers: decision, reply, escalation (pure)."""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Sequence

from clonedesk.core.domain.confidence import Calibration
from clonedesk.core.domain.conversation_format import parse_target
from clonedesk.v1 import common_pb2


@dataclass(frozen=True)
class Decided:
    decision: int  # common_pb2.Decision
    action: str
    reply: str  # empty when escalated: nothing goes to the customer
    confidence: float
    escalated: bool
    reason: str  # why it escalated ("" when it did not)


def sequence_confidence(token_logprobs: Sequence[float]) -> float:
    """The geometric mean of the generated tokens' probabilities: 1.0 when the model was sure of every
    token, lower the more it hesitated anywhere. No tokens at all is no confidence."""
    finite = [lp for lp in token_logprobs if math.isfinite(lp)]
    if not finite:
        return 0.0
    return float(min(1.0, max(0.0, math.exp(sum(finite) / len(finite)))))


def answer_confidence(header_logprob: float | None, token_logprobs: Sequence[float],
                      calibration: dict | None) -> float:
    """The calibrated probability that the answer's decision is right: the header's probability
    through the adapter's calibration; without a constrained header (an engine that does not constrain),
    the sequence's confidence, uncalibrated."""
    if header_logprob is None:
        return sequence_confidence(token_logprobs)
    raw = math.exp(min(0.0, header_logprob))
    return Calibration.from_dict(calibration).apply(raw) if calibration else raw


HUMAN_REQUESTED = "customer asked for a human"


def decide(generated: str, confidence: float, threshold: float, *, human_requested: bool = False,
           reply_follows_action: bool = False) -> Decided:
    """Escalate when the customer asked for a human, when the model chose to, when its output has no
    readable decision, when the reply it would send is empty, or when its confidence is under the
    tenant's threshold. With `reply_follows_action` an ACTION needs no reply yet: the model writes it
    after the call's result."""
    turn = parse_target(generated)
    if human_requested:
        return Decided(common_pb2.ESCALATE, "", "", confidence, True, HUMAN_REQUESTED)
    if turn.decision == common_pb2.ESCALATE:
        reason = (
            "model escalated" if generated.lstrip().startswith("[decision=ESCALATE") else "unreadable output"
        )
        return Decided(common_pb2.ESCALATE, turn.action, "", confidence, True, reason)
    if confidence < threshold:
        return Decided(
            common_pb2.ESCALATE,
            turn.action,
            "",
            confidence,
            True,
            f"confidence {confidence:.2f} under threshold {threshold:.2f}",
        )
    if not turn.reply and not (reply_follows_action and turn.decision == common_pb2.ACTION):
        return Decided(common_pb2.ESCALATE, turn.action, "", confidence, True, "empty reply")
    return Decided(turn.decision, turn.action, turn.reply, confidence, False, "")


def escalate(decided: Decided, reason: str) -> Decided:
    """The same answer handed to a human instead: nothing goes to the customer."""
    return replace(decided, decision=common_pb2.ESCALATE, reply="", escalated=True, reason=reason)

