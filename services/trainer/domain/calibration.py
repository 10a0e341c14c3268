"""An adapter's calibration record (pure): fitted on its scored holdout turns, saved beside it as
calibration.json, read by the resolver (to calibrate each answer's confidence and to choose the
tenant's threshold for its target accuracy) and by the preview."""

from __future__ import annotations

from typing import Sequence

from clonedesk.core.domain.confidence import (
    CURVE_THRESHOLDS,
    Calibration,
    answer_curve,
    calibration_error,
    fit_calibration,
    threshold_for_accuracy,
)
from clonedesk.trainer.domain.metrics import ScoredTurn, answerable_confidences

REPORTED_TARGETS = (0.8, 0.85, 0.9, 0.95)


def fit_on_holdout(raw_turns: Sequence[ScoredTurn]) -> Calibration:
    """Platt scaling on the turns the model answered itself (a turn it escalated has no decision to
    be sure of)."""
    confidences, correct = answerable_confidences(raw_turns)
    pairs = [(c, ok) for c, ok in zip(confidences, correct) if c is not None]
    return fit_calibration([c for c, _ in pairs], [ok for _, ok in pairs])


def calibration_record(raw_turns: Sequence[ScoredTurn], calibrated_turns: Sequence[ScoredTurn],
                       calibration: Calibration) -> dict:
    raw_conf, correct = answerable_confidences(raw_turns)
    cal_conf, _ = answerable_confidences(calibrated_turns)
    answerable = [i for i, c in enumerate(raw_conf) if c is not None]
    return {
        "method": "platt scaling of the header probability's log-odds",
        **calibration.to_dict(),
        "turns": len(correct),
        "answerable_turns": len(answerable),
        "calibration_error_raw": calibration_error([raw_conf[i] for i in answerable], [correct[i] for i in answerable]),
        "calibration_error": calibration_error([cal_conf[i] for i in answerable], [correct[i] for i in answerable]),
        "curve": [p.to_dict() for p in answer_curve(cal_conf, correct, CURVE_THRESHOLDS)],
        "thresholds": {f"{t:.2f}": threshold_for_accuracy(cal_conf, correct, t) for t in REPORTED_TARGETS},
        # What the resolver chooses a threshold from, for whatever target accuracy a tenant sets.
        "points": [[round(cal_conf[i], 5), bool(correct[i])] for i in answerable],
        "handed_over_turns": len(correct) - len(answerable),
    }
