"""One training run of one tenant, start to finish: pick the samples, train (fresh or continuing from
the current adapter), score challenger and champion on the same holdout, register the version, promote
it or keep it rejected. Blocking; the worker runs it in a thread."""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path

from clonedesk.core.adapters import CALIBRATION_FILE, adapter_calibration, adapter_name
from clonedesk.core.base_model import (
    adapter_base_identity,
    base_model_identity,
    describe_base_model,
    same_base_model,
)
from clonedesk.core.domain.confidence import Calibration, threshold_from_record
from clonedesk.trainer.adapters.buffer import ProgressStore, SampleBuffer
from clonedesk.trainer.adapters.evaluation import (
    HOLDOUT_SCORES_FILE,
    calibrated,
    evaluation_sample,
    save_scored,
    score_model,
    score_model_reusing,
)
from clonedesk.trainer.adapters.lora import train_adapter
from clonedesk.trainer.adapters.publication import version_metrics
from clonedesk.trainer.adapters.version_registry import PROMOTED, REJECTED, AdapterRegistry
from clonedesk.trainer.settings import TrainerSettings
from clonedesk.trainer.domain.calibration import calibration_record, fit_on_holdout
from clonedesk.trainer.domain.metrics import compute_metrics
from clonedesk.trainer.domain.schedule import select_training_samples
from clonedesk.trainer.domain.promotion import decide_promotion, holdout_score

log = logging.getLogger(__name__)


@dataclass
class TrainingOutcome:
    tenant_id: str
    version: int
    promoted: bool
    reason: str
    path: Path
    metrics: dict
    sample_count: int
    base_model: str
    seconds: float
    champion_version: int | None = None
    champion_metrics: dict | None = None
    training: dict = field(default_factory=dict)

    @property
    def name(self) -> str:
        return adapter_name(self.tenant_id, self.version)


def run_training(tenant_id: str, trigger: str, *, buffer: SampleBuffer, progress_store: ProgressStore,
                 registry: AdapterRegistry, base_model: str, settings: TrainerSettings,
                 progress_bar: bool = False) -> TrainingOutcome:
    started = time.monotonic()
    trainable, holdout = buffer.split(tenant_id)
    progress = progress_store.get(tenant_id)
    champion = registry.current(tenant_id)
    samples = select_training_samples(trainable, progress.trained_samples, settings.schedule(),
                                      is_refresh=champion is not None, seed=settings.seed + progress.runs)
    # A canonical order: the same samples train the same adapter, however Kafka interleaved them.
    samples.sort(key=lambda s: (s.ticket_id, s.turn_index, s.sample_id))
    identity = base_model_identity(base_model)
    if champion is not None and not same_base_model(adapter_base_identity(registry.path(tenant_id, champion)) or identity,
                                                     identity):
        # The current version was trained on another base model: it can neither be continued nor be
        # scored here. Train afresh; the new version is judged on its own score.
        log.warning("current adapter is of another base model: training afresh",
                    extra={"tenant_id": tenant_id, "version": champion})
        champion = None
    init_adapter = registry.path(tenant_id, champion) if champion is not None else None
    log.info("training started", extra={"tenant_id": tenant_id, "trigger": trigger, "samples": len(samples),
                                        "continues_from": champion})
    staging = registry.new_staging(tenant_id)
    try:
        result = train_adapter(base_model, samples, staging, config=settings.lora(), init_adapter=init_adapter,
                               progress=progress_bar)
        eval_set = evaluation_sample(holdout, settings.max_eval_turns)
        raw_turns = score_model(base_model, staging, eval_set, max_new_tokens=settings.eval_max_new_tokens)
        save_scored(staging / HOLDOUT_SCORES_FILE, eval_set, raw_turns)
        calibration = fit_on_holdout(raw_turns)
        challenger_turns = calibrated(raw_turns, calibration)
        record = calibration_record(raw_turns, challenger_turns, calibration)
        (staging / CALIBRATION_FILE).write_text(json.dumps(record, indent=1))
        challenger = compute_metrics(challenger_turns, threshold_from_record(record))
        champion_metrics = None
        if init_adapter is not None:
            champion_record = adapter_calibration(init_adapter)
            champion_turns = calibrated(score_model_reusing(base_model, init_adapter, eval_set,
                                                            max_new_tokens=settings.eval_max_new_tokens),
                                        Calibration.from_dict(champion_record))
            champion_metrics = compute_metrics(champion_turns, threshold_from_record(champion_record))
        decision = decide_promotion(holdout_score(challenger),
                                    holdout_score(champion_metrics) if champion_metrics else None,
                                    settings.promotion_margin)
        meta = {
            "status": PROMOTED if decision.promote else REJECTED,
            "reason": decision.reason,
            "trigger": trigger,
            "parent_version": champion,
            "sample_count": len(samples),
            "trainable_samples_seen": len(trainable),
            "holdout_turns_scored": len(eval_set),
            "base_model": base_model,
            "base_model_identity": identity,
            "base_model_label": describe_base_model(base_model),
            "training_config": settings.lora().to_dict(),
            "training": {"steps": result.steps, "tokens": result.tokens, "target_tokens": result.target_tokens,
                         "final_loss": result.final_loss, "seconds": result.seconds,
                         "initial_weights_sha256": result.initial_weights_sha256},
            "metrics": challenger.to_dict(),
            "calibration": {k: record[k] for k in ("slope", "bias", "calibration_error_raw", "calibration_error",
                                                    "thresholds")},
            "holdout_score": holdout_score(challenger),
            "champion_metrics_on_same_holdout": champion_metrics.to_dict() if champion_metrics else None,
            "created_at": time.time(),
        }
        version = registry.commit(tenant_id, staging, meta)
    except BaseException:
        registry.discard_staging(tenant_id)
        raise
    if decision.promote:
        registry.promote(tenant_id, version)
        log.info("adapter promoted", extra={"tenant_id": tenant_id, "version": version, "reason": decision.reason})
    else:
        log.warning("adapter rejected", extra={"tenant_id": tenant_id, "version": version,
                                               "reason": decision.reason})
    progress.trained_samples = len(trainable)
    progress.last_trained_at = time.time()
    progress.retry_at = None
    progress.runs += 1
    progress_store.save(tenant_id, progress)
    return TrainingOutcome(
        tenant_id=tenant_id, version=version, promoted=decision.promote, reason=decision.reason,
        path=registry.path(tenant_id, version), metrics={**version_metrics(meta)}, sample_count=len(samples),
        base_model=base_model, seconds=round(time.monotonic() - started, 2), champion_version=champion,
        champion_metrics=meta["champion_metrics_on_same_holdout"], training=meta["training"])
