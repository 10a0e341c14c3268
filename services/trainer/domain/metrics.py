"""How well something answers a tenant's holdout (pure).

Each held-out agent turn is scored on:
- decision accuracy: the decision is right (RESOLVE / ASK / ACTION / ESCALATE), and for an ACTION the
  same back-office call (its name; parameters vary with the customer);
- reply similarity: chrF (sacrebleu) of the replies, 0-100;
- escalation precision and recall (None when undefined: nothing escalated / nothing to escalate);
- projected resolution rate: the share of held-out tickets in which every agent turn's decision was
  right, i.e. tickets the model would have carried through as the human agent did.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import asdict, dataclass
from typing import Iterable, Sequence

from clonedesk.v1 import common_pb2

METRIC_NAMES = ("decision_accuracy", "reply_chrf", "escalation_precision", "escalation_recall",
                "projected_resolution_rate")


@dataclass(frozen=True)
class ScoredTurn:
    ticket_id: str
    category: str
    true_decision: int
    true_action: str
    true_reply: str
    predicted_decision: int
    predicted_action: str
    predicted_reply: str


@dataclass(frozen=True)
class Metrics:
    decision_accuracy: float
    reply_chrf: float
    escalation_precision: float | None
    escalation_recall: float | None
    projected_resolution_rate: float
    turns: int
    tickets: int

    def to_dict(self) -> dict:
        return asdict(self)


def action_name(action: str) -> str:
    return action.split("(", 1)[0].strip().casefold()


def decision_correct(turn: ScoredTurn) -> bool:
    if turn.predicted_decision != turn.true_decision:
        return False
    if turn.true_decision == common_pb2.ACTION:
        return action_name(turn.predicted_action) == action_name(turn.true_action)
    return True


def _ratio(numerator: int, denominator: int) -> float | None:
    return numerator / denominator if denominator else None


def chrf(hypotheses: Sequence[str], references: Sequence[str]) -> float:
    import sacrebleu

    if not hypotheses:
        return 0.0
    return float(sacrebleu.corpus_chrf(list(hypotheses), [list(references)]).score)


def compute_metrics(turns: Iterable[ScoredTurn]) -> Metrics:
    turns = list(turns)
    correct = [decision_correct(t) for t in turns]
    predicted_escalations = [t for t in turns if t.predicted_decision == common_pb2.ESCALATE]
    true_escalations = [t for t in turns if t.true_decision == common_pb2.ESCALATE]
    both = sum(1 for t in predicted_escalations if t.true_decision == common_pb2.ESCALATE)
    by_ticket: dict[str, bool] = {}
    for turn, ok in zip(turns, correct):
        by_ticket[turn.ticket_id] = by_ticket.get(turn.ticket_id, True) and ok
    return Metrics(
        decision_accuracy=(sum(correct) / len(turns)) if turns else 0.0,
        reply_chrf=chrf([t.predicted_reply for t in turns], [t.true_reply for t in turns]),
        escalation_precision=_ratio(both, len(predicted_escalations)),
        escalation_recall=_ratio(both, len(true_escalations)),
        projected_resolution_rate=(sum(by_ticket.values()) / len(by_ticket)) if by_ticket else 0.0,
        turns=len(turns),
        tickets=len(by_ticket),
    )


def metrics_by_category(turns: Iterable[ScoredTurn]) -> dict[str, Metrics]:
    """Metrics per ticket category, where one is known."""
    groups: dict[str, list[ScoredTurn]] = defaultdict(list)
    for turn in turns:
        if turn.category:
            groups[turn.category].append(turn)
    return {category: compute_metrics(group) for category, group in sorted(groups.items())}
