"""Watches the `resolutions` topic, so the demo knows what the resolver decided for each customer message
(replies and escalations alike) and which adapter version answered."""

from __future__ import annotations

import asyncio
import logging
from collections import Counter

from clonedesk.core.domain.topics import RESOLUTIONS
from clonedesk.demo.adapters.helpdesk import DemoStepFailed
from clonedesk.demo.adapters.topic_reader import TopicReader
from clonedesk.v1 import resolver_pb2

log = logging.getLogger(__name__)


class ResolutionWatcher(TopicReader):
    """Reads `resolutions` from the start and indexes each resolution by the id of the customer message
    it answered."""

    topic = RESOLUTIONS
    message_type = resolver_pb2.Resolution

    def __init__(self, bootstrap: str):
        super().__init__(bootstrap)
        self.by_request: dict[str, resolver_pb2.Resolution] = {}
        self.seen_ids: set[str] = set()
        self.versions: Counter = Counter()  # (tenant, adapter name) -> resolutions answered with it
        self._changed = asyncio.Condition()

    async def handle(self, messages: list) -> None:
        added = False
        for resolution in messages:
            if resolution.resolution_id in self.seen_ids:
                continue
            self.seen_ids.add(resolution.resolution_id)
            self.by_request[resolution.request_id] = resolution
            self.versions[(resolution.tenant_id, resolution.adapter_version)] += 1
            added = True
        if added:
            async with self._changed:
                self._changed.notify_all()

    def count(self, tenant_id: str) -> int:
        return sum(n for (tenant, _), n in self.versions.items() if tenant == tenant_id)

    def answered_by(self, tenant_id: str) -> dict[str, int]:
        return {name: n for (tenant, name), n in sorted(self.versions.items()) if tenant == tenant_id}

    async def wait_for(self, request_id: str, timeout: float, what: str) -> resolver_pb2.Resolution:
        """The resolution answering the customer message `request_id`, within `timeout` seconds."""
        async def arrived() -> resolver_pb2.Resolution:
            async with self._changed:
                await self._changed.wait_for(lambda: request_id in self.by_request)
                return self.by_request[request_id]

        try:
            return await asyncio.wait_for(arrived(), timeout)
        except asyncio.TimeoutError:
            problem = self.failure()
            if problem is not None:
                raise DemoStepFailed(f"reading the resolutions topic failed: {problem}") from None
            raise DemoStepFailed(f"no resolution for {what} within {timeout:.0f}s"
                                 " (see logs/streams.log, logs/bridge.log, logs/resolver.log)") from None
