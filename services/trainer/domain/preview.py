"""The accuracy preview report (pure): the current adapter, the base model and the retrieval baseline
scored on the same held-out turns, overall and by ticket category, each figure with its bootstrap 95 %
interval (resampling tickets), and for the adapter the answer-rate / accuracy curve over thresholds and
the figures at the tenant's threshold.

The adapter's `answered_share`, `answered_accuracy` and `projected_resolution_rate` are at the threshold
the resolver would use (chosen from this holdout for the tenant's target accuracy, or its override);
the base model and retrieval answer every turn they do not escalate themselves.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping, Sequence

from clonedesk.core.domain.confidence import CURVE_THRESHOLDS, answer_curve, calibration_error
from clonedesk.trainer.domain.intervals import bootstrap_interval
from clonedesk.core.domain.preview_figures import CANDIDATES
from clonedesk.trainer.domain.metrics import (ANSWER_METRIC_NAMES, METRIC_NAMES, Metrics, ScoredTurn,
                                              answerable_confidences, answered, chrf_from_statistics,
                                              chrf_statistics, compute_metrics, decision_correct,
                                              metrics_by_category)

INTERVAL_METRICS = ("decision_accuracy", "reply_chrf", "projected_resolution_rate", "answered_share",
                    "answered_accuracy")


def metric_view(metrics: Metrics) -> dict:
    """M = {decision_accuracy, reply_chrf, escalation_precision, escalation_recall, projected_resolution_rate,
    answered_share, answered_accuracy}"""
    return {name: getattr(metrics, name) for name in METRIC_NAMES + ANSWER_METRIC_NAMES}


@dataclass(frozen=True)
class _TurnFacts:
    ticket_id: str
    correct: bool
    sent: bool
    chrf_stats: tuple[int, ...]


def _facts(turns: Sequence[ScoredTurn], threshold: float | None) -> list[_TurnFacts]:
    stats = chrf_statistics([t.predicted_reply for t in turns], [t.true_reply for t in turns]) if turns else []
    return [_TurnFacts(t.ticket_id, decision_correct(t), answered(t, threshold), tuple(s))
            for t, s in zip(turns, stats)]


def _flat(tickets):
    return [f for ticket in tickets for f in ticket]


def _accuracy(tickets):
    turns = _flat(tickets)
    return sum(f.correct for f in turns) / len(turns) if turns else None


def _reply_chrf(tickets):
    turns = _flat(tickets)
    return chrf_from_statistics([f.chrf_stats for f in turns]) if turns else None


def _answered_share(tickets):
    turns = _flat(tickets)
    return sum(f.sent for f in turns) / len(turns) if turns else None


def _answered_accuracy(tickets):
    sent = [f for f in _flat(tickets) if f.sent]
    return sum(f.correct for f in sent) / len(sent) if sent else None


def _resolution(tickets):
    """Tickets with at least one answered turn and no wrong one (as compute_metrics counts them)."""
    if not tickets:
        return None
    carried = sum(1 for ticket in tickets
                  if any(f.sent for f in ticket) and all(f.correct or not f.sent for f in ticket))
    return carried / len(tickets)


_STATISTICS = {"decision_accuracy": _accuracy, "reply_chrf": _reply_chrf, "projected_resolution_rate": _resolution,
               "answered_share": _answered_share, "answered_accuracy": _answered_accuracy}


def metric_intervals(turns: Sequence[ScoredTurn], threshold: float | None, *, replicates: int = 200,
                     seed: int = 0) -> dict[str, list[float] | None]:
    """Bootstrap 95 % interval of each of INTERVAL_METRICS, resampling whole tickets."""
    facts = _facts(turns, threshold)
    out: dict[str, list[float] | None] = {}
    for name, statistic in _STATISTICS.items():
        interval = bootstrap_interval(facts, statistic, ticket_of=lambda f: f.ticket_id,
                                      replicates=replicates, seed=seed)
        out[name] = [round(interval[0], 4), round(interval[1], 4)] if interval else None
    return out


def preview_report(tenant_id: str, adapter_version: str, scored: Mapping[str, Sequence[ScoredTurn]], *,
                   threshold: float | None = None, threshold_source: str = "",
                   target_accuracy: float | None = None, calibration: dict | None = None,
                   replicates: int = 200) -> dict:
    """`scored` maps each of CANDIDATES to its ScoredTurns on the same holdout turns (the adapter's with
    calibrated confidences); `threshold` is the adapter's escalation threshold."""
    report: dict = {"tenant_id": tenant_id, "adapter_version": adapter_version}
    turns = scored["adapter"]
    report["holdout_tickets"] = len({t.ticket_id for t in turns})
    report["holdout_turns"] = len(turns)
    thresholds = {name: (threshold if name == "adapter" else None) for name in CANDIDATES}
    # A candidate given no turns was not scored (the demo skips the base model): None, not zeros.
    for name in CANDIDATES:
        report[name] = metric_view(compute_metrics(scored[name], thresholds[name])) if scored[name] else None
    report["intervals"] = {name: metric_intervals(scored[name], thresholds[name], replicates=replicates)
                           if scored[name] else None for name in CANDIDATES}
    confidences, correct = answerable_confidences(turns)
    answerable = [i for i, c in enumerate(confidences) if c is not None]
    report["confidence"] = {
        "threshold": threshold,
        "threshold_source": threshold_source,
        "target_accuracy": target_accuracy,
        "calibration_error": calibration_error([confidences[i] for i in answerable],
                                               [correct[i] for i in answerable]),
        "calibration": {k: calibration.get(k) for k in ("slope", "bias", "calibration_error_raw", "turns")}
        if calibration else None,
        "curve": [p.to_dict() for p in answer_curve(confidences, correct, CURVE_THRESHOLDS)],
    }
    by_category: dict[str, dict] = {}
    for name in CANDIDATES:
        if not scored[name]:
            continue
        for category, metrics in metrics_by_category(scored[name], thresholds[name]).items():
            entry = by_category.setdefault(category, {"holdout_turns": metrics.turns,
                                                     "holdout_tickets": metrics.tickets})
            entry[name] = metric_view(metrics)
    report["by_category"] = by_category
    return report
