"""An accuracy preview's figures as words: the candidates it scores, its metrics in the order they are
shown, and one way of writing a figure (chrF 0-100, every other metric a share)."""

from __future__ import annotations

CANDIDATES = ("adapter", "base", "retrieval")
# The preview's metrics, in the order they are shown, with their names in words.
METRIC_LABELS = {"decision_accuracy": "decision accuracy", "reply_chrf": "reply chrF",
                 "escalation_precision": "escalation precision", "escalation_recall": "escalation recall",
                 "projected_resolution_rate": "projected resolution", "answered_share": "answered at threshold",
                 "answered_accuracy": "accuracy of answered"}


def figure(metric: str, value, interval=None) -> str:
    """chrF as a score of 0-100, every other metric as a share; "—" where it is undefined."""
    if value is None:
        return "—"
    if metric == "reply_chrf":
        return f"{value:.1f}" + (f" [{interval[0]:.1f}–{interval[1]:.1f}]" if interval else "")
    return f"{value:.1%}" + (f" [{interval[0]:.0%}–{interval[1]:.0%}]" if interval else "")


def candidate_figure(report: dict, candidate: str, metric: str) -> str:
    """One candidate's figure with its bootstrap interval, or "not scored"."""
    scores = report.get(candidate)
    if scores is None:
        return "not scored"
    value = scores.get(metric)
    interval = ((report.get("intervals") or {}).get(candidate) or {}).get(metric)
    return figure(metric, value, interval if value is not None else None)
