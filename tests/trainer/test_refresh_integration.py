"""Incremental refreshes: version N+1 starts from version N's weights, and `current` moves only when
the challenger is promoted (a rejected one stays in the registry, marked, with its reason logged)."""

from __future__ import annotations

import logging

import pytest

from clonedesk.core.adapters import adapter_calibration, trained_action_names
from clonedesk.trainer.adapters.buffer import ProgressStore, SampleBuffer
from clonedesk.trainer.adapters.evaluation import HOLDOUT_SCORES_FILE
from clonedesk.trainer.adapters.lora import adapter_weights_digest, load_model
from clonedesk.trainer.adapters.version_registry import AdapterRegistry
from clonedesk.core.domain.holdout import is_holdout
from clonedesk.trainer.domain.schedule import FIRST, REFRESH_NEW_SAMPLES
from clonedesk.trainer.service_layer.training_run import run_training

from .conftest import sgd_tenant

pytestmark = [pytest.mark.integration, pytest.mark.slow, pytest.mark.timeout(300)]


def _tickets(samples):
    order = list(dict.fromkeys(s.ticket_id for s in samples))
    return order, {t: [s for s in samples if s.ticket_id == t] for t in order}


def test_refresh_continues_from_the_current_weights_and_promotes_only_if_not_worse(
        tmp_path, base_model_dir, sgd_dir, trainer_settings, caplog):
    tenant_id, samples = sgd_tenant(sgd_dir, "Banks_1", 36)
    tickets, by_ticket = _tickets(samples)
    parts = [tickets[:20], tickets[20:28], tickets[28:]]
    root = tmp_path / "trainer"
    buffer = SampleBuffer(root, trainer_settings.holdout_fraction)
    progress = ProgressStore(root)
    registry = AdapterRegistry(tmp_path)
    config = trainer_settings.model_copy(update={"max_steps": 40, "max_eval_turns": 24})

    def train(trigger, margin):
        return run_training(tenant_id, trigger, buffer=buffer, progress_store=progress, registry=registry,
                            base_model=str(base_model_dir),
                            settings=config.model_copy(update={"promotion_margin": margin}))

    def digest(version):
        return adapter_weights_digest(load_model(str(base_model_dir), registry.path(tenant_id, version))[0])

    buffer.append([s for t in parts[0] for s in by_ticket[t]])
    first = train(FIRST, margin=0.02)
    assert first.promoted and first.version == 1 and registry.current(tenant_id) == 1
    v1 = digest(1)
    # Each version is calibrated on the holdout it was scored on, and keeps those scores for the preview.
    calibration = adapter_calibration(registry.path(tenant_id, 1))
    assert calibration is not None and calibration["turns"] == registry.meta(tenant_id, 1)["holdout_turns_scored"]
    assert {"slope", "bias", "curve", "thresholds", "points", "calibration_error"} <= set(calibration)
    assert len(calibration["points"]) == calibration["answerable_turns"] <= calibration["turns"]
    assert (registry.path(tenant_id, 1) / HOLDOUT_SCORES_FILE).exists()
    assert registry.meta(tenant_id, 1)["calibration"]["slope"] == calibration["slope"]
    assert trained_action_names(registry.path(tenant_id, 1))  # Banks_1's calls, for the constrained header

    # a challenger that would have to beat the champion by a whole point: kept, rejected, current unchanged
    new_samples = buffer.append([s for t in parts[1] for s in by_ticket[t]])
    with caplog.at_level(logging.WARNING):
        rejected = train(REFRESH_NEW_SAMPLES, margin=-1.0)
    assert not rejected.promoted and rejected.version == 2
    assert registry.current(tenant_id) == 1
    meta = registry.meta(tenant_id, 2)
    assert meta["status"] == "rejected" and "below" in meta["reason"]
    assert meta["parent_version"] == 1 and meta["training"]["initial_weights_sha256"] == v1
    assert meta["champion_metrics_on_same_holdout"] is not None
    assert any(r.getMessage() == "adapter rejected" and getattr(r, "reason", "") == meta["reason"]
               for r in caplog.records)
    trainable_new = [s for t in parts[1] for s in by_ticket[t] if not is_holdout(s.ticket_id, config.holdout_fraction)]
    assert len(trainable_new) < meta["sample_count"] <= 2 * len(trainable_new)  # new ones plus a replay
    assert new_samples > 0 and digest(2) != v1

    # the next refresh starts again from the champion v1 (not the rejected v2) and is promoted
    buffer.append([s for t in parts[2] for s in by_ticket[t]])
    promoted = train(REFRESH_NEW_SAMPLES, margin=1.0)
    assert promoted.promoted and promoted.version == 3 and registry.current(tenant_id) == 3
    meta = registry.meta(tenant_id, 3)
    assert meta["status"] == "promoted" and meta["parent_version"] == 1
    assert meta["training"]["initial_weights_sha256"] == v1
    assert digest(3) != v1
    assert registry.versions(tenant_id) == [1, 2, 3]
    assert progress.get(tenant_id).trained_samples == buffer.counts(tenant_id).trainable
