"""How well something answers a tenant's holdout (pure).

Each held-out agent turn is scored on:
- decision accuracy: the decision is right (RESOLVE / ASK / ACTION / ESCALATE), and for an ACTION the
  same back-office call (its name; parameters vary with the customer);
- reply similarity: chrF (sacrebleu) of the replies, 0-100;
- escalation precision and recall (None when undefined: nothing escalated / nothing to escalate);
- answered share and answered accuracy at an escalation threshold: the turns the model would answer
  (it did not hand them over, and its calibrated confidence reaches the threshold) and how many of
  those were right;
- projected resolution rate: the share of held-out tickets the model would have carried through: at
  least one turn answered and every answered turn right (a turn handed to a human is not a failure).
  Without a threshold every turn the model did not escalate counts as answered.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import asdict, dataclass
from typing import Iterable, Sequence

from clonedesk.core.domain.chrf import chrf_score, corpus_chrf
from clonedesk.core.domain.chrf import chrf_statistics as pair_statistics
from clonedesk.v1 import common_pb2

METRIC_NAMES = ("decision_accuracy", "reply_chrf", "escalation_precision", "escalation_recall",
                "projected_resolution_rate")
ANSWER_METRIC_NAMES = ("answered_share", "answered_accuracy")


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
    # The calibrated probability that the decision is right; None where there is none (the retrieval
    # baseline), which answers whenever it did not escalate.
    confidence: float | None = None


@dataclass(frozen=True)
class Metrics:
    decision_accuracy: float
    reply_chrf: float
    escalation_precision: float | None
    escalation_recall: float | None
    projected_resolution_rate: float
    turns: int
    tickets: int
    answered_share: float = 0.0
    answered_accuracy: float | None = None
    threshold: float | None = None

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


def answered(turn: ScoredTurn, threshold: float | None) -> bool:
    """Would the model have sent this turn's answer to the customer at this threshold?"""
    if turn.predicted_decision == common_pb2.ESCALATE:
        return False
    return threshold is None or turn.confidence is None or turn.confidence >= threshold


def _ratio(numerator: int, denominator: int) -> float | None:
    return numerator / denominator if denominator else None


def chrf_statistics(hypotheses: Sequence[str], references: Sequence[str]) -> list[list[int]]:
    """Per-turn chrF n-gram statistics, which sum over any resample of turns to that resample's corpus
    chrF (sacrebleu's statistics and figures, core/domain/chrf.py)."""
    return [pair_statistics(h, r) for h, r in zip(hypotheses, references, strict=True)]


def chrf_from_statistics(rows: Sequence[Sequence[int]]) -> float:
    if not rows:
        return 0.0
    return chrf_score([sum(column) for column in zip(*rows)])


def chrf(hypotheses: Sequence[str], references: Sequence[str]) -> float:
    return corpus_chrf(hypotheses, references)


def compute_metrics(turns: Iterable[ScoredTurn], threshold: float | None = None, *,
                    with_chrf: bool = True) -> Metrics:
    turns = list(turns)
    correct = [decision_correct(t) for t in turns]
    sent = [answered(t, threshold) for t in turns]
    answered_right = sum(1 for s, ok in zip(sent, correct) if s and ok)
    predicted_escalations = [t for t in turns if t.predicted_decision == common_pb2.ESCALATE]
    true_escalations = [t for t in turns if t.true_decision == common_pb2.ESCALATE]
    both = sum(1 for t in predicted_escalations if t.true_decision == common_pb2.ESCALATE)
    no_wrong_answer: dict[str, bool] = {}
    any_answer: dict[str, bool] = {}
    for turn, ok, s in zip(turns, correct, sent):
        no_wrong_answer[turn.ticket_id] = no_wrong_answer.get(turn.ticket_id, True) and (ok or not s)
        any_answer[turn.ticket_id] = any_answer.get(turn.ticket_id, False) or s
    carried = sum(1 for ticket, fine in no_wrong_answer.items() if fine and any_answer[ticket])
    return Metrics(
        decision_accuracy=(sum(correct) / len(turns)) if turns else 0.0,
        reply_chrf=chrf([t.predicted_reply for t in turns], [t.true_reply for t in turns]) if with_chrf else 0.0,
        escalation_precision=_ratio(both, len(predicted_escalations)),
        escalation_recall=_ratio(both, len(true_escalations)),
        projected_resolution_rate=(carried / len(no_wrong_answer)) if no_wrong_answer else 0.0,
        turns=len(turns),
        tickets=len(no_wrong_answer),
        answered_share=(sum(sent) / len(turns)) if turns else 0.0,
        answered_accuracy=_ratio(answered_right, sum(sent)),
        threshold=threshold,
    )


def metrics_by_category(turns: Iterable[ScoredTurn], threshold: float | None = None) -> dict[str, Metrics]:
    """Metrics per ticket category, where one is known."""
    groups: dict[str, list[ScoredTurn]] = defaultdict(list)
    for turn in turns:
        if turn.category:
            groups[turn.category].append(turn)
    return {category: compute_metrics(group, threshold) for category, group in sorted(groups.items())}


def answerable_confidences(turns: Sequence[ScoredTurn]) -> tuple[list[float | None], list[bool]]:
    """(confidence, or None for a turn the model handed over itself; decision right) per turn: what
    core.domain.confidence's curve and threshold choice read."""
    return ([None if t.predicted_decision == common_pb2.ESCALATE else
             (t.confidence if t.confidence is not None else 1.0) for t in turns],
            [decision_correct(t) for t in turns])
