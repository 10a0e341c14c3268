"""Calibration, its error, the answer curve and the threshold choice (core.domain.confidence)."""

import math
import random

import pytest

from clonedesk.core.domain.confidence import (FALLBACK_THRESHOLD, IDENTITY, Calibration, answer_curve, calibration_error,
                                       choose_threshold, fit_calibration, threshold_for_accuracy,
                                       threshold_from_record, wilson_lower_bound)


def _overconfident(n=2000, seed=1):
    """Raw confidences that claim 0.9-0.99 while the model is right ~60 % of the time."""
    rng = random.Random(seed)
    raw, correct = [], []
    for _ in range(n):
        p = rng.uniform(0.9, 0.99)
        raw.append(p)
        correct.append(rng.random() < 0.6)
    return raw, correct


def test_calibration_pulls_an_overconfident_model_to_its_accuracy():
    raw, correct = _overconfident()
    calibration = fit_calibration(raw, correct)
    calibrated = [calibration.apply(p) for p in raw]
    assert calibration_error(raw, correct) > 0.25
    assert calibration_error(calibrated, correct) < 0.05
    assert abs(sum(calibrated) / len(calibrated) - sum(correct) / len(correct)) < 0.02


def test_calibration_keeps_the_order_of_confidences_when_informative():
    rng = random.Random(3)
    raw = [rng.uniform(0.05, 0.95) for _ in range(1500)]
    correct = [rng.random() < p ** 2 for p in raw]  # right less often than it claims, more so when unsure
    calibration = fit_calibration(raw, correct)
    assert calibration.slope > 0
    assert calibration.apply(0.9) > calibration.apply(0.5) > calibration.apply(0.1)
    assert calibration_error([calibration.apply(p) for p in raw], correct) < calibration_error(raw, correct)


def test_degenerate_holdouts_give_a_finite_calibration():
    assert fit_calibration([], []) == IDENTITY
    assert fit_calibration([0.7], [True]) == IDENTITY
    for correct in ([True] * 20, [False] * 20):
        calibration = fit_calibration([0.5 + i / 100 for i in range(20)], correct)
        assert math.isfinite(calibration.slope) and math.isfinite(calibration.bias)
        assert 0.0 <= calibration.apply(0.6) <= 1.0
    assert Calibration.from_dict(Calibration(2.0, -1.0).to_dict()) == Calibration(2.0, -1.0)
    assert Calibration.from_dict(None) == IDENTITY


def test_calibration_error_of_a_perfect_and_a_wrong_confidence():
    assert calibration_error([1.0, 1.0, 0.0], [True, True, False]) == pytest.approx(0.0)
    assert calibration_error([0.95] * 10, [False] * 10) == pytest.approx(0.95)
    assert calibration_error([], []) == 0.0


def test_answer_curve_counts_handed_over_turns_as_not_answered():
    confidences = [0.95, 0.85, 0.65, 0.35, None]
    correct = [True, True, False, False, False]
    curve = {p.threshold: p for p in answer_curve(confidences, correct, (0.3, 0.5, 0.8, 0.99))}
    assert curve[0.3].answered == 4 and curve[0.3].answered_share == pytest.approx(0.8)
    assert curve[0.3].answered_accuracy == pytest.approx(0.5)
    assert curve[0.5].answered_accuracy == pytest.approx(2 / 3)
    assert curve[0.8].answered_accuracy == 1.0 and curve[0.8].answered_share == pytest.approx(0.4)
    assert curve[0.99].answered == 0 and curve[0.99].answered_accuracy is None


def test_threshold_is_the_lowest_that_reaches_the_target_on_the_holdout_without_a_bound():
    confidences = [0.99, 0.97, 0.95, 0.9, 0.8, 0.7, 0.6, 0.5]
    correct = [True, True, True, True, True, False, True, False]
    # answering down to 0.8: 5/5; down to 0.7: 5/6 = 83 %; down to 0.6: 6/7 = 86 %; 0.5: 6/8.
    assert threshold_for_accuracy(confidences, correct, 0.9, z=0) == 0.8
    assert threshold_for_accuracy(confidences, correct, 0.85, z=0) == 0.6
    assert threshold_for_accuracy(confidences, correct, 0.7, z=0) == 0.5
    chosen = threshold_for_accuracy(confidences, correct, 0.9, z=0)
    answered = [ok for c, ok in zip(confidences, correct) if c >= chosen]
    assert sum(answered) / len(answered) >= 0.9


def test_the_bound_asks_for_more_evidence_than_the_holdout_share():
    rng = random.Random(5)
    confidences = [rng.random() for _ in range(400)]
    correct = [rng.random() < 0.55 + 0.45 * c for c in confidences]  # surer means righter
    plain = threshold_for_accuracy(confidences, correct, 0.9, z=0)
    bounded = threshold_for_accuracy(confidences, correct, 0.9)
    assert bounded > plain
    answered = [ok for c, ok in zip(confidences, correct) if c >= bounded]
    assert wilson_lower_bound(sum(answered), len(answered)) >= 0.9
    assert len(answered) > 40  # and still answers a good share
    # Five right out of five is not yet evidence of 90 %: nothing is answered.
    assert threshold_for_accuracy([0.9] * 5, [True] * 5, 0.9) == 0.99
    assert threshold_for_accuracy([0.9] * 60, [True] * 60, 0.9) == 0.9


def test_wilson_lower_bound():
    assert wilson_lower_bound(0, 0) == 0.0
    assert wilson_lower_bound(90, 100) < 0.9 < wilson_lower_bound(960, 1000)
    assert wilson_lower_bound(100, 100) < 1.0


def test_ties_are_answered_together_and_an_unreachable_target_answers_nothing():
    assert threshold_for_accuracy([0.8, 0.8, 0.8], [True, True, False], 0.9, z=0) == 0.99
    assert threshold_for_accuracy([0.9, 0.8, 0.8], [True, True, False], 0.9, z=0) == 0.9
    assert threshold_for_accuracy([None, 0.4], [False, False], 0.9) == 0.99


def test_threshold_from_a_record_and_the_override_rule():
    record = {"turns": 45, "points": [[0.95, True]] * 30 + [[0.9, True]] * 10 + [[0.6, False]] * 3 + [[0.5, True]]}
    assert threshold_from_record(record, 0.9) == 0.9
    assert threshold_from_record(record, 0.8) == 0.5
    assert threshold_from_record(None) is None
    assert choose_threshold(0.42, 0.9, record) == 0.42  # the tenant's override wins
    assert choose_threshold(None, 0.9, record) == 0.9
    assert choose_threshold(None, 0.9, None) == FALLBACK_THRESHOLD
