"""The accuracy preview report (pure): the current adapter, the base model and the retrieval baseline
scored on the same held-out turns, overall and by ticket category."""

from __future__ import annotations

from typing import Mapping, Sequence

from clonedesk.trainer.domain.metrics import METRIC_NAMES, Metrics, ScoredTurn, compute_metrics, metrics_by_category

CANDIDATES = ("adapter", "base", "retrieval")


def metric_view(metrics: Metrics) -> dict:
    """M = {decision_accuracy, reply_chrf, escalation_precision, escalation_recall, projected_resolution_rate}"""
    return {name: getattr(metrics, name) for name in METRIC_NAMES}


def preview_report(tenant_id: str, adapter_version: str, scored: Mapping[str, Sequence[ScoredTurn]]) -> dict:
    """`scored` maps each of CANDIDATES to its ScoredTurns on the same holdout turns."""
    report: dict = {"tenant_id": tenant_id, "adapter_version": adapter_version}
    turns = scored["adapter"]
    report["holdout_tickets"] = len({t.ticket_id for t in turns})
    report["holdout_turns"] = len(turns)
    for name in CANDIDATES:
        report[name] = metric_view(compute_metrics(scored[name]))
    by_category: dict[str, dict] = {}
    for name in CANDIDATES:
        for category, metrics in metrics_by_category(scored[name]).items():
            entry = by_category.setdefault(category, {"holdout_turns": metrics.turns,
                                                     "holdout_tickets": metrics.tickets})
            entry[name] = metric_view(metrics)
    report["by_category"] = by_category
    return report
