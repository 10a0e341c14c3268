"""Counts each tenant's trainable samples on `training.samples` (what the trainer buffers: one per
sample id, outside the holdout), for the demo's progress while it waits for an adapter."""

from __future__ import annotations

from collections import defaultdict

from clonedesk.core.domain.holdout import is_holdout
from clonedesk.core.domain.topics import TRAINING_SAMPLES
from clonedesk.demo.adapters.topic_reader import TopicReader
from clonedesk.v1 import training_pb2


class TrainableSamples(TopicReader):
    topic = TRAINING_SAMPLES
    message_type = training_pb2.TrainingSample

    def __init__(self, bootstrap: str, holdout_fraction: float):
        super().__init__(bootstrap)
        self.holdout_fraction = holdout_fraction
        self._ids: dict[str, set[str]] = defaultdict(set)

    def count(self, tenant_id: str) -> int:
        return len(self._ids.get(tenant_id, ()))

    async def handle(self, messages: list) -> None:
        for sample in messages:
            if not is_holdout(sample.ticket_id, self.holdout_fraction):
                self._ids[sample.tenant_id].add(sample.sample_id)
