"""`clonedesk preview --tenant T`: score the tenant's current adapter on its holdout beside the base
model and the retrieval baseline, save the report as the version's preview.json (what
`tenant go-live` requires), and print it."""

from __future__ import annotations

import time

from clonedesk.core.adapters import (
    adapter_calibration,
    adapter_name,
    trained_action_names,
    trained_context_turns,
)
from clonedesk.core.domain.confidence import Calibration, choose_threshold
from clonedesk.core.settings import Settings
from clonedesk.core.tenants import TenantStore, validate_tenant_id
from clonedesk.trainer.adapters.buffer import SampleBuffer
from clonedesk.trainer.adapters.evaluation import (
    calibrated,
    evaluation_tickets,
    score_model,
    score_model_reusing,
    score_retrieval,
)
from clonedesk.trainer.adapters.version_registry import AdapterRegistry
from clonedesk.trainer.settings import TrainerSettings
from clonedesk.trainer.domain.calibration import calibration_record, fit_on_holdout
from clonedesk.trainer.domain.preview import preview_report


class PreviewUnavailable(RuntimeError):
    """No preview can be made yet (no adapter, or no holdout); the message says what is missing."""


# At least this many held-out tickets are scored where the holdout has them (a figure on 8 tickets
# means little); every one of them up to MAX_PREVIEW_TICKETS.
MIN_PREVIEW_TICKETS = 30
MAX_PREVIEW_TICKETS = 60


def make_preview(settings: Settings, tenant_id: str, trainer_settings: TrainerSettings | None = None,
                 max_tickets: int = MAX_PREVIEW_TICKETS, *, score_base: bool = True) -> dict:
    config = trainer_settings or TrainerSettings()
    tenant_id = validate_tenant_id(tenant_id)
    registry = AdapterRegistry(settings.resolved_data_dir)
    version = registry.current(tenant_id)
    if version is None:
        raise PreviewUnavailable(f"tenant {tenant_id} has no current adapter yet: let the trainer run first")
    buffer = SampleBuffer(settings.resolved_data_dir / "trainer", config.holdout_fraction, read_only=True)
    trainable, holdout = buffer.split(tenant_id)
    eval_set = evaluation_tickets(holdout, max(MIN_PREVIEW_TICKETS, max_tickets))
    if not eval_set:
        raise PreviewUnavailable(f"tenant {tenant_id} has no held-out tickets to score yet")
    meta = registry.meta(tenant_id, version)
    base_model = meta["base_model"]
    adapter_dir = registry.path(tenant_id, version)
    raw = score_model_reusing(base_model, adapter_dir, eval_set, max_new_tokens=config.eval_max_new_tokens)
    record = adapter_calibration(adapter_dir)
    if record is None:  # an adapter of an older version: calibrated here, on the turns it is judged on
        calibration = fit_on_holdout(raw)
        record = calibration_record(raw, calibrated(raw, calibration), calibration)
    adapter_turns = calibrated(raw, Calibration.from_dict(record))
    tenant = TenantStore(settings.resolved_data_dir).get(tenant_id)
    threshold = choose_threshold(tenant.escalation_threshold, tenant.target_accuracy, record)
    scored = {
        "adapter": adapter_turns,
        # The base model reads the same prompts, under the same header constraint, as its adapter.
        "base": score_model(base_model, None, eval_set, context_turns=trained_context_turns(adapter_dir),
                            action_names=trained_action_names(adapter_dir),
                            max_new_tokens=config.eval_max_new_tokens) if score_base else [],
        "retrieval": score_retrieval(trainable, eval_set),
    }
    report = preview_report(tenant_id, adapter_name(tenant_id, version), scored, threshold=threshold,
                            threshold_source="tenant override" if tenant.escalation_threshold is not None
                            else f"holdout, for {tenant.target_accuracy:.0%} accuracy on answered turns",
                            target_accuracy=tenant.target_accuracy, calibration=record)
    report["generated_at"] = time.time()
    registry.write_preview(tenant_id, version, report)
    return report
