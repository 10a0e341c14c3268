"""Fairness through the real worker and broker: a tenant flooding samples while it trains does not go
again before a tenant that has waited, and its runs stay capped at max_samples_per_run."""

from __future__ import annotations

import asyncio

import pytest
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from clonedesk.core.telemetry import setup_telemetry
from clonedesk.trainer.adapters.version_registry import AdapterRegistry
from clonedesk.trainer.entrypoints.worker import TrainerWorker

from .conftest import produce_samples, sgd_tenant

pytestmark = [pytest.mark.integration, pytest.mark.slow, pytest.mark.timeout(420)]


async def _until(predicate, what: str, task: asyncio.Task, timeout: float = 240.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not predicate():
        if task.done():
            task.result()
            raise AssertionError(f"the worker stopped before {what}")
        if loop.time() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.1)


async def test_a_flooding_tenant_waits_its_turn_behind_a_tenant_that_waited(
        trained_settings, trainer_settings, sgd_dir, kafka_bootstrap):
    flood, flood_samples = sgd_tenant(sgd_dir, "Banks_1", 60, prefix="flood")
    quiet, quiet_samples = sgd_tenant(sgd_dir, "Hotels_1", 30, prefix="quiet")
    first_part = len(flood_samples) // 3
    config = trainer_settings.model_copy(update={
        "first_min_samples": 60, "refresh_min_new_samples": 30, "max_samples_per_run": 80,
        "max_steps": 8, "max_eval_turns": 8, "settle_s": 0.0})
    spans = InMemorySpanExporter()
    telemetry = setup_telemetry("trainer", trained_settings, span_processors=[SimpleSpanProcessor(spans)],
                                set_global=False)
    worker = TrainerWorker(trained_settings, config, telemetry=telemetry)
    await produce_samples(kafka_bootstrap, flood_samples[:first_part])
    stop = asyncio.Event()
    task = asyncio.create_task(worker.run(stop))
    try:
        await _until(lambda: worker._training_tenant == flood, "the flooding tenant's first run", task)
        # While it trains: the rest of the flood (due for a refresh at once) and the quiet tenant's history.
        await produce_samples(kafka_bootstrap, flood_samples[first_part:] + quiet_samples)
        registry = AdapterRegistry(trained_settings.resolved_data_dir)
        await _until(lambda: len(registry.versions(flood)) >= 2 and registry.versions(quiet),
                     "the quiet tenant's first run and the flood's refresh", task)
    finally:
        stop.set()
        await task
    # The topic is shared with other tests, whose tenants may train here too: only ours are in the order.
    runs = sorted((s for s in spans.get_finished_spans()
                   if s.name == "trainer.train" and s.attributes["tenant_id"] in {flood, quiet}),
                  key=lambda s: s.start_time)
    order = [(s.attributes["tenant_id"], s.attributes["trigger"]) for s in runs][:3]
    assert order == [(flood, "first"), (quiet, "first"), (flood, "refresh:new-samples")]
    for version in registry.versions(flood):
        assert registry.meta(flood, version)["sample_count"] <= config.max_samples_per_run
