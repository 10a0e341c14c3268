"""Champion/challenger (pure): a refreshed adapter becomes current only if its holdout score does not
fall below the current adapter's score, on the same holdout, by more than a margin."""

from __future__ import annotations

from dataclasses import dataclass

from clonedesk.trainer.domain.metrics import Metrics

DEFAULT_MARGIN = 0.02


def holdout_score(metrics: Metrics) -> float:
    """One number in [0, 1]: decision accuracy and reply similarity, weighted equally."""
    return 0.5 * metrics.decision_accuracy + 0.5 * metrics.reply_chrf / 100.0


@dataclass(frozen=True)
class PromotionDecision:
    promote: bool
    reason: str


def decide_promotion(challenger: float, champion: float | None, margin: float = DEFAULT_MARGIN) -> PromotionDecision:
    if champion is None:
        return PromotionDecision(True, "first adapter of the tenant")
    if challenger >= champion - margin:
        return PromotionDecision(True, f"holdout score {challenger:.4f} vs current {champion:.4f}"
                                       f" (within margin {margin})")
    return PromotionDecision(False, f"holdout score {challenger:.4f} fell below current {champion:.4f}"
                                    f" by more than the margin {margin}")
