"""`clonedesk preview --tenant T`: score the tenant's current adapter on its holdout beside the base
model and the retrieval baseline, save the report as the version's preview.json (what
`tenant go-live` requires), and print it."""

from __future__ import annotations

import time

from clonedesk.core.adapters import adapter_name, trained_context_turns
from clonedesk.core.settings import Settings
from clonedesk.core.tenants import validate_tenant_id
from clonedesk.trainer.adapters.buffer import SampleBuffer
from clonedesk.trainer.adapters.evaluation import evaluation_sample, score_model, score_retrieval
from clonedesk.trainer.adapters.registry import AdapterRegistry
from clonedesk.trainer.config import TrainerSettings
from clonedesk.trainer.domain.metrics import METRIC_NAMES
from clonedesk.trainer.domain.preview import CANDIDATES, preview_report


class PreviewUnavailable(RuntimeError):
    """No preview can be made yet (no adapter, or no holdout); the message says what is missing."""


def make_preview(settings: Settings, tenant_id: str, trainer_settings: TrainerSettings | None = None,
                 max_turns: int = 400) -> dict:
    config = trainer_settings or TrainerSettings()
    tenant_id = validate_tenant_id(tenant_id)
    registry = AdapterRegistry(settings.resolved_data_dir)
    version = registry.current(tenant_id)
    if version is None:
        raise PreviewUnavailable(f"tenant {tenant_id} has no current adapter yet: let the trainer run first")
    buffer = SampleBuffer(settings.resolved_data_dir / "trainer", config.holdout_fraction, read_only=True)
    trainable, holdout = buffer.split(tenant_id)
    eval_set = evaluation_sample(holdout, max_turns)
    if not eval_set:
        raise PreviewUnavailable(f"tenant {tenant_id} has no held-out tickets to score yet")
    meta = registry.meta(tenant_id, version)
    base_model = meta["base_model"]
    scored = {
        "adapter": score_model(base_model, registry.path(tenant_id, version), eval_set),
        # The base model reads the same prompts as the adapter it is compared with.
        "base": score_model(base_model, None, eval_set,
                            context_turns=trained_context_turns(registry.path(tenant_id, version))),
        "retrieval": score_retrieval(trainable, eval_set),
    }
    report = preview_report(tenant_id, adapter_name(tenant_id, version), scored)
    report["generated_at"] = time.time()
    registry.write_preview(tenant_id, version, report)
    return report


def _cell(value) -> str:
    if value is None:
        return "—"
    return f"{value:.1f}" if value > 1.0 else f"{value:.1%}"


def render_table(report: dict):
    from rich.table import Table

    table = Table(title=f"accuracy preview of {report['adapter_version']} on {report['holdout_tickets']}"
                        f" held-out tickets ({report['holdout_turns']} agent turns)")
    table.add_column("metric")
    for name in CANDIDATES:
        table.add_column(name, justify="right")
    for metric in METRIC_NAMES:
        table.add_row(metric.replace("_", " "), *(_cell(report[name][metric]) for name in CANDIDATES))
    for category, entry in report["by_category"].items():
        table.add_section()
        for metric in ("decision_accuracy", "projected_resolution_rate"):
            table.add_row(f"{category} ({entry['holdout_tickets']}): {metric.replace('_', ' ')}",
                          *(_cell(entry.get(name, {}).get(metric)) for name in CANDIDATES))
    return table
