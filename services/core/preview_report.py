"""How an accuracy preview (a version's preview.json: the adapter, the base model and retrieval scored on
the same held-out tickets) reads on a terminal: one way of writing its figures, and its two tables, for
`clonedesk preview` and the demo alike (the figures themselves: core/domain/preview_figures.py)."""

from __future__ import annotations

from clonedesk.core.domain.preview_figures import CANDIDATES, METRIC_LABELS, candidate_figure, figure


def preview_table(report: dict):
    from rich.table import Table

    table = Table(title=f"accuracy preview of {report['adapter_version']} on {report['holdout_tickets']}"
                        f" held-out tickets ({report['holdout_turns']} agent turns); [95% interval]")
    table.add_column("metric")
    for name in CANDIDATES:
        table.add_column(name, justify="right")
    for metric, label in METRIC_LABELS.items():
        table.add_row(label, *(candidate_figure(report, name, metric) for name in CANDIDATES))
    for category, entry in (report.get("by_category") or {}).items():
        table.add_section()
        for metric in ("decision_accuracy", "projected_resolution_rate"):
            table.add_row(f"{category} ({entry['holdout_tickets']}): {METRIC_LABELS[metric]}",
                          *(figure(metric, entry.get(name, {}).get(metric)) for name in CANDIDATES))
    return table


def curve_table(report: dict):
    """The adapter's answered share / accuracy by confidence threshold, and where its threshold sits."""
    from rich.table import Table

    confidence = report.get("confidence") or {}
    threshold = confidence.get("threshold")
    title = (f"{report['adapter_version']}: answered turns by threshold (calibration error"
             f" {confidence.get('calibration_error', 0):.3f}; threshold {threshold:.2f},"
             f" {confidence.get('threshold_source', '')})"
             if threshold is not None else f"{report['adapter_version']}: answered turns by threshold")
    table = Table(title=title)
    table.add_column("threshold", justify="right")
    table.add_column("answered", justify="right")
    table.add_column("accuracy of answered", justify="right")
    for point in confidence.get("curve", []):
        table.add_row(f"{point['threshold']:.1f}", f"{point['answered_share']:.0%}",
                      figure("answered_accuracy", point["answered_accuracy"]))
    return table
