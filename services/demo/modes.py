"""The demo's two modes: how big a run is, the trainer's tuning for this machine (an operator's own
CLONEDESK_TRAINER_* settings win), the waits, the base model and how tenants escalate."""

from __future__ import annotations

from dataclasses import dataclass

from clonedesk.core.base_model import TINY
from clonedesk.core.tiny_model import TINY_MODEL_RECIPE, recipe_env
from clonedesk.demo.domain.split import FULL, QUICK, DemoSizes


@dataclass(frozen=True)
class Mode:
    name: str
    sizes: DemoSizes
    trainer_env: dict[str, str]  # tuning for this machine; an operator's own CLONEDESK_TRAINER_* wins
    training_timeout_s: float  # how long the demo waits for the next adapter (from the last that arrived)
    resolve_timeout_s: float
    # The base model this mode runs on unless CLONEDESK_BASE_MODEL says otherwise (None: the default).
    base_model: str | None
    # The accuracy on answered turns each tenant's threshold is chosen for (from its adapter's holdout),
    # or a fixed threshold that overrides it (None: chosen).
    target_accuracy: float
    threshold_override: float | None
    # Whether the preview also scores the base model alone (bench/quality.py always does).
    preview_base: bool


# Quick mode runs on the tiny offline test model (2 layers), in a few minutes: its adapters need ~120
# steps of batch 8 to learn the reply format ("[decision=X action=Y]" then the reply); fewer give
# unreadable output, which the resolver escalates. Epochs are high so that the step count, not the
# sample count, bounds a run.
# The tiny model is never right often enough for any target accuracy: quick mode overrides the threshold
# (0.2 of calibrated confidence) so that its path through replies, billing and the swap is exercised.
# The promotion margin is wider than the trainer's default because the demo's holdouts are a handful of
# tickets: a refresh that scores a few points lower on 16 turns is noise, not a regression.
# Settling: the trainer waits for a few quiet seconds of a tenant's samples, so a big tenant's first run
# covers its whole imported history (the threshold is the smallest tenant's).
QUICK_MODE = Mode("quick", QUICK, {**recipe_env(TINY_MODEL_RECIPE),
                                   "CLONEDESK_TRAINER_MAX_STEPS": "120", "CLONEDESK_TRAINER_EPOCHS": "10",
                                   "CLONEDESK_TRAINER_MAX_LENGTH": "160",
                                   "CLONEDESK_TRAINER_MAX_EVAL_TURNS": "64",
                                   "CLONEDESK_TRAINER_PROMOTION_MARGIN": "0.1",
                                   "CLONEDESK_TRAINER_SETTLE_S": "5", "CLONEDESK_TRAINER_THREADS": "1"},
                  training_timeout_s=420, resolve_timeout_s=120, base_model=TINY, target_accuracy=0.9,
                  threshold_override=0.2, preview_base=True)
# The full demo runs on the real base model (SmolLM2-135M-Instruct) in about 26 minutes on two cores: each
# run is budgeted to 32 steps of 8 samples, one pass at most (a first run sees 256 of its history's
# samples, a refresh its new samples and half as many replayed), 4 turns of context, 160 tokens a sample,
# 80 held-out turns scored per candidate, 80 tokens each (a RentalCars call's header alone runs to 70; calibration and threshold are fitted on them; a
# version's scores are kept and reused by the preview and the next refresh; the preview skips the base
# model alone, which bench/quality.py reports). That budget trains adapters to
# 70-80 % decision accuracy (bench/quality.py's default budget, 200 steps, reaches 85 %), so the demo's
# tenants set their target accuracy on answered turns to 75 % (the product's default is 90 %): each
# answers what its holdout shows it gets right often enough and escalates the rest. The trainer keeps to one thread: a refresh trains while the
# resolver answers live tickets, and a two-thread run beside it measured 4x slower (115 vs 474 tokens/s).
FULL_MODE = Mode("full", FULL, {"CLONEDESK_TRAINER_MAX_STEPS": "32", "CLONEDESK_TRAINER_EPOCHS": "1",
                                "CLONEDESK_TRAINER_MAX_LENGTH": "160",
                                "CLONEDESK_TRAINER_CONTEXT_TURNS": "4",
                                "CLONEDESK_TRAINER_THREADS": "1",
                                "CLONEDESK_TRAINER_MAX_EVAL_TURNS": "80",
                                "CLONEDESK_TRAINER_EVAL_MAX_NEW_TOKENS": "80",
                                "CLONEDESK_TRAINER_REPLAY_RATIO": "0.5",
                                "CLONEDESK_TRAINER_PROMOTION_MARGIN": "0.05",
                                "CLONEDESK_TRAINER_SETTLE_S": "8"},
                 training_timeout_s=900, resolve_timeout_s=180, base_model=None, target_accuracy=0.75,
                 threshold_override=None, preview_base=False)
