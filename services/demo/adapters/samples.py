"""Counts each tenant's trainable samples on `training.samples` (what the trainer buffers: one per
sample id, outside the holdout), for the demo's progress while it waits for an adapter."""

from __future__ import annotations

import asyncio
import contextlib
from collections import defaultdict

from clonedesk.core.domain.holdout import is_holdout
from clonedesk.core.domain.topics import TRAINING_SAMPLES
from clonedesk.core.kafka import PoisonMessage, decode, make_consumer
from clonedesk.v1 import training_pb2


class TrainableSamples:
    """Follows the topic from its start (no consumer group: nothing joined, nothing committed)."""

    def __init__(self, bootstrap: str, holdout_fraction: float):
        self.bootstrap = bootstrap
        self.holdout_fraction = holdout_fraction
        self._ids: dict[str, set[str]] = defaultdict(set)
        self._task: asyncio.Task | None = None

    def count(self, tenant_id: str) -> int:
        return len(self._ids.get(tenant_id, ()))

    async def __aenter__(self) -> "TrainableSamples":
        consumer = make_consumer(self.bootstrap, TRAINING_SAMPLES, group_id=None)
        await consumer.start()
        self._task = asyncio.create_task(self._follow(consumer))
        return self

    async def __aexit__(self, *exc) -> None:
        if self._task:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task

    async def _follow(self, consumer) -> None:
        try:
            while True:
                for records in (await consumer.getmany(timeout_ms=500)).values():
                    for record in records:
                        try:
                            sample = decode(training_pb2.TrainingSample, record.value)
                        except PoisonMessage:
                            continue
                        if not is_holdout(sample.ticket_id, self.holdout_fraction):
                            self._ids[sample.tenant_id].add(sample.sample_id)
        finally:
            await consumer.stop()
