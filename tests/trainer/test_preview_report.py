"""The preview's figures (pure): intervals by ticket bootstrap, the figures at a threshold, the curve."""

from __future__ import annotations

import random

import pytest

from clonedesk.trainer.domain.intervals import bootstrap_interval
from clonedesk.trainer.domain.metrics import ScoredTurn, chrf, chrf_from_statistics, chrf_statistics, compute_metrics
from clonedesk.trainer.domain.preview import metric_intervals, preview_report
from clonedesk.v1 import common_pb2

R, A, E = common_pb2.RESOLVE, common_pb2.ASK, common_pb2.ESCALATE


def turn(ticket, true, predicted, confidence=None, reply="ok then", true_reply="ok then"):
    return ScoredTurn(ticket, "", true, "", true_reply, predicted, "", reply, confidence)


def holdout(tickets: int, accuracy: float, seed: int = 0) -> list[ScoredTurn]:
    rng = random.Random(seed)
    turns = []
    for t in range(tickets):
        for _ in range(4):
            right = rng.random() < accuracy
            turns.append(turn(f"t{t}", R, R if right else A, confidence=0.9 if right else 0.4))
    return turns


def test_the_interval_holds_the_estimate_and_narrows_with_more_tickets():
    small, large = holdout(10, 0.7), holdout(200, 0.7)
    small_iv = metric_intervals(small, None)["decision_accuracy"]
    large_iv = metric_intervals(large, None)["decision_accuracy"]
    assert small_iv[0] <= compute_metrics(small).decision_accuracy <= small_iv[1]
    assert large_iv[0] <= compute_metrics(large).decision_accuracy <= large_iv[1]
    assert (large_iv[1] - large_iv[0]) < (small_iv[1] - small_iv[0]) / 2
    assert metric_intervals(small, None) == metric_intervals(small, None)  # seeded: the same every time


def test_bootstrap_resamples_whole_tickets():
    turns = [("a", 1.0)] * 5 + [("b", 0.0)] * 5
    seen = set()

    def statistic(tickets):
        seen.add(tuple(sorted(len(t) for t in tickets)))
        flat = [v for t in tickets for _, v in t]
        return sum(flat) / len(flat)

    assert bootstrap_interval(turns, statistic, ticket_of=lambda x: x[0], replicates=50) is not None
    assert seen <= {(5, 5)}  # two tickets of five turns drawn each time, never a mix of turns
    assert bootstrap_interval([], statistic, ticket_of=lambda x: x[0]) is None


def test_chrf_statistics_add_up_to_the_corpus_chrf():
    hyps = ["your table is booked for seven", "which city?", "I found 3 hotels in Paris"]
    refs = ["the table is booked at 7 pm", "what city are you in?", "there are 3 hotels in Paris"]
    assert chrf_from_statistics(chrf_statistics(hyps, refs)) == pytest.approx(chrf(hyps, refs), abs=1e-6)


def test_the_resolution_rate_counts_handed_over_turns_as_no_failure():
    turns = [turn("t1", R, R, 0.9), turn("t1", A, R, 0.2),  # the wrong turn is under the threshold
             turn("t2", R, A, 0.8),                          # answered wrong
             turn("t3", R, E, 0.9),                          # handed over by the model itself
             turn("t4", R, R, 0.95)]
    at_threshold = compute_metrics(turns, 0.5)
    assert at_threshold.projected_resolution_rate == pytest.approx(2 / 4)  # t1 and t4; t3 answered nothing
    assert at_threshold.answered_share == pytest.approx(3 / 5)
    assert at_threshold.answered_accuracy == pytest.approx(2 / 3)
    everything = compute_metrics(turns)  # no threshold: every turn the model did not escalate is sent
    assert everything.projected_resolution_rate == pytest.approx(1 / 4)
    assert everything.decision_accuracy == at_threshold.decision_accuracy == pytest.approx(2 / 5)


def test_the_report_has_intervals_the_curve_and_the_threshold():
    adapter = holdout(40, 0.8)
    retrieval = [turn(t.ticket_id, t.true_decision, R, None) for t in adapter]
    report = preview_report("acme", "acme@v3", {"adapter": adapter, "base": adapter, "retrieval": retrieval},
                            threshold=0.5, threshold_source="holdout", target_accuracy=0.9,
                            calibration={"slope": 1.0, "bias": 0.0, "turns": 160})
    assert report["holdout_tickets"] == 40 and report["holdout_turns"] == 160
    assert report["adapter"]["answered_accuracy"] == 1.0  # the wrong ones were all at 0.4
    for name in ("adapter", "base", "retrieval"):
        for metric in ("decision_accuracy", "reply_chrf", "projected_resolution_rate"):
            low, high = report["intervals"][name][metric]
            assert low <= report[name][metric] <= high
    curve = {p["threshold"]: p for p in report["confidence"]["curve"]}
    assert set(curve) == {0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9}
    assert curve[0.3]["answered_share"] == 1.0 and curve[0.9]["answered_share"] < 1.0
    assert report["confidence"]["threshold"] == 0.5
    # The fields a preview --json reader already uses are still there.
    for metric in ("decision_accuracy", "reply_chrf", "escalation_precision", "escalation_recall",
                   "projected_resolution_rate"):
        assert metric in report["adapter"]
