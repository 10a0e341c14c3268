"""Two SGD tenants trained through the real broker: each adapter beats the base model on its own
holdout, the two adapters differ, promotions are announced on adapters.published, and the preview is
what `tenant go-live` needs."""

from __future__ import annotations

import asyncio
import json

import pytest
from click.testing import CliRunner
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from clonedesk.cli import main
from clonedesk.core.kafka import decode, make_consumer
from clonedesk.core.telemetry import setup_telemetry
from clonedesk.core.tenants import TenantStore
from clonedesk.core.domain.topics import ADAPTERS_PUBLISHED
from clonedesk.trainer.adapters.evaluation import evaluation_sample, score_model
from clonedesk.trainer.adapters.lora import adapter_weights_digest, load_model
from clonedesk.trainer.adapters.version_registry import AdapterRegistry
from clonedesk.core.domain.holdout import is_holdout
from clonedesk.trainer.domain.metrics import compute_metrics
from clonedesk.trainer.domain.promotion import holdout_score
from clonedesk.trainer.entrypoints.worker import TrainerWorker
from clonedesk.v1 import adapters_pb2

from .conftest import produce_samples, sgd_tenant

pytestmark = [pytest.mark.integration, pytest.mark.slow, pytest.mark.timeout(420)]


async def _published(bootstrap: str, group_id: str, tenants: set[str], timeout: float) -> dict[str, adapters_pb2.AdapterPublished]:
    consumer = make_consumer(bootstrap, ADAPTERS_PUBLISHED, group_id=group_id)
    await consumer.start()
    found: dict[str, adapters_pb2.AdapterPublished] = {}
    try:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while set(found) != tenants and loop.time() < deadline:
            for records in (await consumer.getmany(timeout_ms=500)).values():
                for record in records:
                    if record.key not in {t.encode() for t in tenants}:
                        continue  # other tests share the topic (some write poison records on purpose)
                    message = decode(adapters_pb2.AdapterPublished, record.value)
                    if message.tenant_id in tenants:
                        assert record.key == message.tenant_id.encode()
                        found[message.tenant_id] = message
    finally:
        await consumer.stop()
    return found


async def test_two_tenants_train_through_the_broker_and_beat_the_base(
        trained_settings, trainer_settings, sgd_dir, kafka_bootstrap, group_id):
    banks, banks_samples = sgd_tenant(sgd_dir, "Banks_1", 40)
    food, food_samples = sgd_tenant(sgd_dir, "Hotels_1", 40)  # both businesses ship in data/sgd too
    for tenant_id in (banks, food):
        TenantStore(trained_settings.resolved_data_dir).add(tenant_id)
    # Banks' history arrives in two parts with a pause between them: the trainer, settling for 4 s, must
    # train on both, not on the first part alone.
    first_part = len(banks_samples) * 4 // 5
    first_trainable = sum(not is_holdout(s.ticket_id, trainer_settings.holdout_fraction)
                          for s in banks_samples[:first_part])
    assert first_trainable >= trainer_settings.first_min_samples  # enough to train on the first part alone
    await produce_samples(kafka_bootstrap, banks_samples[:first_part] + food_samples)

    # only first adapters here (refreshes have their own test)
    spans = InMemorySpanExporter()
    metric_reader = InMemoryMetricReader()
    telemetry = setup_telemetry("trainer", trained_settings, span_processors=[SimpleSpanProcessor(spans)],
                                metric_readers=[metric_reader], set_global=False)
    worker = TrainerWorker(trained_settings, trainer_settings.model_copy(
        update={"refresh_min_new_samples": 10**6, "settle_s": 4.0}), telemetry=telemetry)
    stop = asyncio.Event()
    task = asyncio.create_task(worker.run(stop))
    try:
        for _ in range(600):
            if worker.buffer.counts(banks).trainable >= first_trainable or task.done():
                break
            await asyncio.sleep(0.1)
        assert worker._training_tenant != banks, "trained before its samples settled"
        await asyncio.sleep(1.5)
        await produce_samples(kafka_bootstrap, banks_samples[first_part:])
        published = await _published(kafka_bootstrap, group_id, {banks, food}, timeout=300)
    finally:
        stop.set()
        await task
    assert set(published) == {banks, food}
    # The topic is shared with other tests: their tenants may train here too; only ours are checked.
    runs = [span for span in spans.get_finished_spans()
            if span.name == "trainer.train" and span.attributes["tenant_id"] in {banks, food}]
    assert {span.attributes["tenant_id"] for span in runs} == {banks, food}
    assert all(span.attributes["promoted"] for span in runs)
    # the operator's view: refresh time per run, samples buffered, consumer lag of training.samples
    points = {metric.name: metric.data.data_points for resource in metric_reader.get_metrics_data().resource_metrics
              for scope in resource.scope_metrics for metric in scope.metrics}
    run_seconds = {p.attributes["tenant.id"]: p for p in points["trainer.run.seconds"]}
    assert [run_seconds[t].count for t in (banks, food)] == [1, 1]
    assert all(run_seconds[t].sum > 0 for t in (banks, food))
    buffered = {p.attributes["tenant.id"]: p.value for p in points["trainer.samples.buffered"]}
    assert (buffered[banks], buffered[food]) == (len(banks_samples), len(food_samples))  # the topic is shared
    assert {p.attributes["topic"] for p in points["clonedesk.kafka.consumer_lag"]} == {"training.samples"}

    registry = AdapterRegistry(trained_settings.resolved_data_dir)
    base_model = trained_settings.base_model
    adapters = {}
    for tenant_id, samples in ((banks, banks_samples), (food, food_samples)):
        message = published[tenant_id]
        assert message.version == 1 and message.name == f"{tenant_id}@v1"
        assert registry.current(tenant_id) == 1 and message.path == str(registry.path(tenant_id, 1))
        meta = registry.meta(tenant_id, 1)
        trainable = [s for s in samples if not is_holdout(s.ticket_id, trainer_settings.holdout_fraction)]
        assert meta["status"] == "promoted"
        assert meta["sample_count"] == len(trainable)  # caught up with the topic before training
        assert message.sample_count == meta["sample_count"]
        assert meta["base_model_identity"].startswith(str(base_model))
        assert message.metrics["decision_accuracy"] == pytest.approx(meta["metrics"]["decision_accuracy"])
        adapters[tenant_id] = registry.path(tenant_id, 1)

    # each adapter beats the base model on its own holdout; the two answer differently
    for tenant_id, samples, other in ((banks, banks_samples, food), (food, food_samples, banks)):
        holdout = evaluation_sample([s for s in samples if is_holdout(s.ticket_id, 0.2)], 40)
        own_turns = score_model(base_model, adapters[tenant_id], holdout)
        own = compute_metrics(own_turns)
        base = compute_metrics(score_model(base_model, None, holdout))
        foreign_turns = score_model(base_model, adapters[other], holdout)
        assert own.decision_accuracy > base.decision_accuracy
        assert holdout_score(own) > holdout_score(base)
        differing = sum(a.predicted_reply != b.predicted_reply for a, b in zip(own_turns, foreign_turns))
        assert differing >= len(holdout) // 2

    digests = {t: adapter_weights_digest(load_model(base_model, adapters[t])[0]) for t in adapters}
    assert digests[banks] != digests[food]

    # the preview, then go-live
    runner = CliRunner()
    refused = runner.invoke(main, ["tenant", "go-live", banks])
    assert refused.exit_code == 1 and "preview" in refused.output
    result = runner.invoke(main, ["preview", "--tenant", banks, "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["tenant_id"] == banks and report["adapter_version"] == f"{banks}@v1"
    assert report["holdout_tickets"] > 0
    for name in ("adapter", "base", "retrieval"):
        assert set(report[name]) == {"decision_accuracy", "reply_chrf", "escalation_precision",
                                     "escalation_recall", "projected_resolution_rate", "answered_share",
                                     "answered_accuracy"}
        low, high = report["intervals"][name]["decision_accuracy"]
        assert low <= report[name]["decision_accuracy"] <= high
    assert report["adapter"]["decision_accuracy"] > report["base"]["decision_accuracy"]
    assert report["by_category"]
    assert (registry.path(banks, 1) / "preview.json").exists()
    table = runner.invoke(main, ["preview", "--tenant", banks])
    assert table.exit_code == 0 and "retrieval" in table.output and "decision accuracy" in table.output
    live = runner.invoke(main, ["tenant", "go-live", banks])
    assert live.exit_code == 0, live.output
    assert TenantStore(trained_settings.resolved_data_dir).get(banks).live
