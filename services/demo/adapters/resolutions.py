"""Watches the `resolutions` topic, so the demo knows what the resolver decided for each customer message
(replies and escalations alike) and which adapter version answered."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import Counter

from clonedesk.core.kafka import PoisonMessage, decode, make_consumer
from clonedesk.core.domain.topics import RESOLUTIONS
from clonedesk.demo.adapters.helpdesk import DemoStepFailed
from clonedesk.v1 import resolver_pb2

log = logging.getLogger(__name__)


class ResolutionWatcher:
    """Reads `resolutions` from the start (no consumer group: nothing to join, nothing committed) and
    indexes each resolution by the id of the customer message it answered."""

    def __init__(self, bootstrap: str):
        self.bootstrap = bootstrap
        self.by_request: dict[str, resolver_pb2.Resolution] = {}
        self.seen_ids: set[str] = set()
        self.versions: Counter = Counter()  # (tenant, adapter name) -> resolutions answered with it
        self._changed = asyncio.Condition()
        self._task: asyncio.Task | None = None
        self._ready = asyncio.Event()

    async def __aenter__(self) -> "ResolutionWatcher":
        self._task = asyncio.create_task(self._follow())
        await asyncio.wait({self._task, asyncio.create_task(self._ready.wait())},
                           return_when=asyncio.FIRST_COMPLETED)
        if self._task.done():
            self._task.result()
        return self

    async def __aexit__(self, *exc) -> None:
        if self._task:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task

    async def _follow(self) -> None:
        consumer = make_consumer(self.bootstrap, RESOLUTIONS, group_id=None)
        await consumer.start()
        self._ready.set()
        try:
            while True:
                batches = await consumer.getmany(timeout_ms=300)
                added = False
                for records in batches.values():
                    for record in records:
                        try:
                            resolution = decode(resolver_pb2.Resolution, record.value)
                        except PoisonMessage:
                            continue
                        if resolution.resolution_id in self.seen_ids:
                            continue
                        self.seen_ids.add(resolution.resolution_id)
                        self.by_request[resolution.request_id] = resolution
                        self.versions[(resolution.tenant_id, resolution.adapter_version)] += 1
                        added = True
                if added:
                    async with self._changed:
                        self._changed.notify_all()
        finally:
            await consumer.stop()

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
            if self._task and self._task.done() and self._task.exception():
                problem = self._task.exception()
                raise DemoStepFailed(f"reading the resolutions topic failed: {problem}") from None
            raise DemoStepFailed(f"no resolution for {what} within {timeout:.0f}s"
                                 " (see logs/streams.log, logs/bridge.log, logs/resolver.log)") from None
