"""One way of writing a preview's figures, for `clonedesk preview` and the demo."""

from rich.console import Console

from clonedesk.core.domain.preview_figures import candidate_figure, figure
from clonedesk.core.preview_report import curve_table, preview_table

REPORT = {
    "adapter_version": "acme@v2", "holdout_tickets": 12, "holdout_turns": 40,
    "adapter": {"decision_accuracy": 0.8, "reply_chrf": 0.8, "escalation_precision": None,
                "escalation_recall": 0.5, "projected_resolution_rate": 0.25, "answered_share": 0.6,
                "answered_accuracy": 0.9},
    "base": None,
    "retrieval": {"decision_accuracy": 0.5, "reply_chrf": 31.25},
    "intervals": {"adapter": {"decision_accuracy": [0.7, 0.9], "reply_chrf": [0.5, 1.5]}},
    "by_category": {"billing": {"holdout_tickets": 3, "adapter": {"decision_accuracy": 1.0}}},
    "confidence": {"threshold": 0.62, "threshold_source": "holdout", "calibration_error": 0.041,
                   "curve": [{"threshold": 0.5, "answered_share": 0.75, "answered_accuracy": 0.875}]},
}


def test_chrf_is_a_score_and_the_rest_are_shares():
    assert figure("reply_chrf", 0.8) == "0.8"  # a chrF of 0.8 is 0.8 points, never "80%"
    assert figure("reply_chrf", 31.25, (28.0, 34.5)) == "31.2 [28.0–34.5]"
    assert figure("decision_accuracy", 0.8, (0.7, 0.9)) == "80.0% [70%–90%]"
    assert figure("escalation_precision", None) == "—"


def test_a_candidate_not_scored_says_so_and_intervals_follow_their_figures():
    assert candidate_figure(REPORT, "base", "decision_accuracy") == "not scored"
    assert candidate_figure(REPORT, "adapter", "decision_accuracy") == "80.0% [70%–90%]"
    assert candidate_figure(REPORT, "retrieval", "reply_chrf") == "31.2"
    assert candidate_figure(REPORT, "retrieval", "answered_share") == "—"


def test_the_tables_render_every_metric_and_the_curve():
    console = Console(width=200, record=True)
    console.print(preview_table(REPORT))
    console.print(curve_table(REPORT))
    text = console.export_text()
    for words in ("decision accuracy", "reply chrF", "accuracy of answered", "billing (3)", "not scored",
                  "threshold 0.62", "87.5%"):
        assert words in text, words
