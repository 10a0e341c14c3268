"""Calibration, its error, the answer curve and the threshold choice (core.confidence)."""

import math
import random

import pytest

from clonedesk.core.confidence import (FALLBACK_THRESHOLD, IDENTITY, Calibration, answer_curve, calibration_error,
                                       choose_threshold, fit_calibration, threshold_for_accuracy,
                                       threshold_from_record)


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


def test_threshold_is_the_lowest_that_reaches_the_target():
    confidences = [0.99, 0.97, 0.95, 0.9, 0.8, 0.7, 0.6, 0.5]
    correct = [True, True, True, True, True, False, True, False]
    # answering down to 0.8: 5/5; down to 0.7: 5/6 = 83 %; down to 0.6: 6/7 = 86 %; 0.5: 6/8.
    assert threshold_for_accuracy(confidences, correct, 0.9) == 0.8
    assert threshold_for_accuracy(confidences, correct, 0.85) == 0.6
    assert threshold_for_accuracy(confidences, correct, 0.7) == 0.5
    chosen = threshold_for_accuracy(confidences, correct, 0.9)
    answered = [ok for c, ok in zip(confidences, correct) if c >= chosen]
    assert sum(answered) / len(answered) >= 0.9


def test_ties_are_answered_together_and_an_unreachable_target_answers_nothing():
    assert threshold_for_accuracy([0.8, 0.8, 0.8], [True, True, False], 0.9) == 0.99
    assert threshold_for_accuracy([0.9, 0.8, 0.8], [True, True, False], 0.9) == 0.9
    assert threshold_for_accuracy([None, 0.4], [False, False], 0.9) == 0.99


def test_threshold_from_a_record_and_the_override_rule():
    record = {"turns": 5, "points": [[0.95, True], [0.9, True], [0.6, False], [0.5, True]]}
    assert threshold_from_record(record, 0.9) == 0.9
    assert threshold_from_record(record, 0.7) == 0.5
    assert threshold_from_record(None) is None
    assert choose_threshold(0.42, 0.9, record) == 0.42  # the tenant's override wins
    assert choose_threshold(None, 0.9, record) == 0.9
    assert choose_threshold(None, 0.9, None) == FALLBACK_THRESHOLD
