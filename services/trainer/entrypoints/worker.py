"""`clonedesk trainer`: consume `training.samples` into the per-tenant buffers, train in a background
thread, publish `AdapterPublished` on promotion.

- A sample's offset is committed only after the buffer fsynced it, so killing the worker loses nothing;
  redelivered samples are dropped by sample_id.
- Training runs in one worker thread; the event loop keeps polling Kafka (the consumer never stalls)
  and publishes a finished run as soon as it is done, whatever runs next.
- The scheduler (domain.policy.next_due) serves the least recently trained due tenant first.
- A promoted version not yet announced (a crash between promotion and publishing) is announced at start.
"""

from __future__ import annotations

import asyncio
import logging
import time
from concurrent.futures import ThreadPoolExecutor

from clonedesk.core.domain import topics
from clonedesk.core.base_model import describe_base_model, ensure_base_model
from clonedesk.core.kafka import (PoisonMessage, consume_batches, decode, make_consumer, make_producer,
                                  send_dead_letter)
from clonedesk.core.settings import Settings
from clonedesk.core.telemetry import ConsumerLag, Telemetry, extract_context, setup_telemetry
from clonedesk.core.tenants import InvalidTenantId, validate_tenant_id
from clonedesk.trainer.adapters.buffer import ProgressStore, SampleBuffer
from clonedesk.trainer.adapters.publication import announcement, send_announcement
from clonedesk.trainer.adapters.version_registry import AdapterRegistry
from clonedesk.trainer.settings import TrainerSettings
from clonedesk.trainer.domain.schedule import TenantProgress, next_due
from clonedesk.trainer.service_layer.training_run import TrainingOutcome, run_training
from clonedesk.v1 import adapters_pb2, training_pb2

log = logging.getLogger(__name__)


def parse_sample(payload: bytes | None) -> training_pb2.TrainingSample:
    sample = decode(training_pb2.TrainingSample, payload)
    try:
        validate_tenant_id(sample.tenant_id)
    except InvalidTenantId as exc:
        raise PoisonMessage(str(exc)) from None
    if not sample.sample_id or not sample.ticket_id:
        raise PoisonMessage("training sample without sample_id or ticket_id")
    return sample


class TrainerWorker:
    def __init__(self, settings: Settings, trainer_settings: TrainerSettings | None = None, *,
                 telemetry: Telemetry | None = None, progress_bars: bool = False,
                 buffer: SampleBuffer | None = None, progress: ProgressStore | None = None,
                 registry: AdapterRegistry | None = None):
        # trainer/bootstrap.py hands in the data dir's stores; built here only when a test leaves them out.
        self.settings = settings
        self.config = trainer_settings or TrainerSettings()
        root = settings.resolved_data_dir / "trainer"
        self.buffer = buffer or SampleBuffer(root, self.config.holdout_fraction)
        self.progress = progress or ProgressStore(root)
        self.registry = registry or AdapterRegistry(settings.resolved_data_dir)
        self.telemetry = telemetry or setup_telemetry("trainer", settings)
        self.progress_bars = progress_bars
        self.base_model: str | None = None
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="trainer")
        self._training: asyncio.Future | None = None
        self._training_tenant: str | None = None
        meter = self.telemetry.meter
        self._samples_counter = meter.create_counter("trainer.samples.buffered", description="new samples stored")
        self._runs_counter = meter.create_counter("trainer.runs", description="training runs by outcome")
        self._run_seconds = meter.create_histogram("trainer.run.seconds", unit="s")
        self.published: list[adapters_pb2.AdapterPublished] = []
        # Per tenant: when its newest sample was stored and when its current stream began (policy.settled).
        self._last_sample_at: dict[str, float] = {}
        self._burst_started_at: dict[str, float] = {}

    # -- scheduling ---------------------------------------------------------------------------------

    def tenant_progress(self) -> list[TenantProgress]:
        result = []
        for tenant_id in self.buffer.tenants():
            record = self.progress.get(tenant_id)
            result.append(TenantProgress(
                tenant_id=tenant_id, trainable_samples=self.buffer.counts(tenant_id).trainable,
                trained_samples=record.trained_samples, has_adapter=self.registry.current(tenant_id) is not None,
                last_trained_at=record.last_trained_at, retry_at=record.retry_at,
                last_sample_at=self._last_sample_at.get(tenant_id),
                burst_started_at=self._burst_started_at.get(tenant_id)))
        return result

    def _start_next_training(self) -> None:
        choice = next_due(self.tenant_progress(), self.config.schedule(), time.time())
        if choice is None:
            return
        progress, trigger = choice
        self._training_tenant = progress.tenant_id
        self._training = asyncio.get_running_loop().run_in_executor(
            self._executor, self._train, progress.tenant_id, trigger)

    def _train(self, tenant_id: str, trigger: str) -> TrainingOutcome:
        with self.telemetry.tracer.start_as_current_span("trainer.train") as span:
            span.set_attribute("tenant_id", tenant_id)
            span.set_attribute("trigger", trigger)
            outcome = run_training(tenant_id, trigger, buffer=self.buffer, progress_store=self.progress,
                                   registry=self.registry, base_model=self.base_model, settings=self.config,
                                   progress_bar=self.progress_bars)
            span.set_attribute("adapter", outcome.name)
            span.set_attribute("promoted", outcome.promoted)
            return outcome

    async def _collect_training(self, producer) -> None:
        if self._training is None or not self._training.done():
            return
        tenant_id, future = self._training_tenant, self._training
        self._training, self._training_tenant = None, None
        try:
            outcome: TrainingOutcome = future.result()
        except Exception:
            log.exception("training failed", extra={"tenant_id": tenant_id})
            record = self.progress.get(tenant_id)
            record.retry_at = time.time() + self.config.retry_after_failure_s
            self.progress.save(tenant_id, record)
            self._runs_counter.add(1, {"outcome": "failed", "tenant.id": tenant_id})
            return
        self._runs_counter.add(1, {"outcome": "promoted" if outcome.promoted else "rejected", "tenant.id": tenant_id})
        self._run_seconds.record(outcome.seconds, {"tenant.id": tenant_id})
        if outcome.promoted:
            await self._publish(producer, tenant_id, outcome.version)

    async def _publish(self, producer, tenant_id: str, version: int) -> None:
        message = announcement(self.registry, tenant_id, version)
        await send_announcement(producer, message)
        record = self.progress.get(tenant_id)
        record.published_version = version
        self.progress.save(tenant_id, record)
        self.published.append(message)
        log.info("adapter published", extra={"adapter": message.name, "path": message.path})

    async def _publish_unannounced(self, producer) -> None:
        for tenant_id in self.buffer.tenants():
            current = self.registry.current(tenant_id)
            if current is not None and self.progress.get(tenant_id).published_version != current:
                await self._publish(producer, tenant_id, current)

    # -- consuming ----------------------------------------------------------------------------------

    async def _store(self, producer, records: list) -> int:
        samples = []
        for record in records:
            with self.telemetry.tracer.start_as_current_span(
                    "trainer.sample", context=extract_context(record.headers)):
                try:
                    samples.append(parse_sample(record.value))
                except PoisonMessage as exc:
                    await send_dead_letter(producer, record.topic, record.key, record.value, str(exc),
                                           list(record.headers or []), record.partition, record.offset)
        by_tenant: dict[str, list] = {}
        for sample in samples:
            by_tenant.setdefault(sample.tenant_id, []).append(sample)
        new = 0
        for tenant_id, tenant_samples in by_tenant.items():
            stored = self.buffer.append(tenant_samples)
            if stored:
                self._samples_counter.add(stored, {"tenant.id": tenant_id})
                self._note_arrival(tenant_id, time.time())
            new += stored
        return new

    def _note_arrival(self, tenant_id: str, now: float) -> None:
        last = self._last_sample_at.get(tenant_id)
        if last is None or now - last >= self.config.settle_s:
            self._burst_started_at[tenant_id] = now
        self._last_sample_at[tenant_id] = now

    async def run(self, stop: asyncio.Event | None = None) -> None:
        stop = stop or asyncio.Event()
        loop = asyncio.get_running_loop()
        self.registry.discard_staging()  # what a killed run left half-written
        self.base_model = await loop.run_in_executor(None, ensure_base_model, self.settings)
        consumer = make_consumer(self.settings.bootstrap, topics.TRAINING_SAMPLES, group_id=self.config.group_id,
                                 max_poll_records=500)
        producer = make_producer(self.settings.bootstrap)
        await producer.start()
        await consumer.start()
        log.info("trainer started", extra={"base_model": self.base_model, "group_id": self.config.group_id,
                                           "base_model_is": describe_base_model(self.base_model)})
        lag = ConsumerLag(self.config.group_id, self.telemetry.meter)
        try:
            await self._publish_unannounced(producer)
            backlog_since: float | None = None

            async def after_poll(had_records: bool) -> None:
                nonlocal backlog_since
                backlog_since = (backlog_since or time.monotonic()) if had_records else None
                await self._collect_training(producer)
                # Train once caught up with the topic (a backfill trains on all of it, not its first
                # batch), or after max_backlog_wait_s of a backlog that never ends.
                caught_up = backlog_since is None or time.monotonic() - backlog_since >= self.config.max_backlog_wait_s
                if self._training is None and caught_up:
                    self._start_next_training()

            # Committed only once every sample of a poll is fsynced in the buffer.
            await consume_batches(consumer, stop, lambda records: self._store(producer, records), lag=lag,
                                  after_poll=after_poll)
        finally:
            if self._training is not None:
                log.info("waiting for the running training to finish", extra={"tenant_id": self._training_tenant})
                try:
                    await asyncio.wait_for(asyncio.shield(self._training), timeout=60)
                    await self._collect_training(producer)
                except Exception:  # noqa: BLE001 - stopping; the samples are safe in the buffer
                    log.exception("training did not finish cleanly while stopping")
            await consumer.stop()
            await producer.stop()
            self._executor.shutdown(wait=False)
