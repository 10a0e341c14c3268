"""Reading one topic from its start in the background, as a helpdesk-side observer would (no consumer
group: nothing to join, nothing committed); subclasses say what a decoded message means to them."""

from __future__ import annotations

import asyncio
import contextlib

from clonedesk.core.kafka import PoisonMessage, decode, make_consumer


class TopicReader:
    topic: str
    message_type: type

    def __init__(self, bootstrap: str):
        self.bootstrap = bootstrap
        self._task: asyncio.Task | None = None

    async def handle(self, messages: list) -> None:
        """The decoded messages of one poll, in order (undecodable ones are skipped)."""
        raise NotImplementedError

    async def __aenter__(self):
        consumer = make_consumer(self.bootstrap, self.topic, group_id=None)
        await consumer.start()  # assigned and positioned before the first message is awaited
        self._task = asyncio.create_task(self._follow(consumer))
        return self

    async def __aexit__(self, *exc) -> None:
        if self._task:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task

    def failure(self) -> BaseException | None:
        """Why reading stopped, if it did."""
        if self._task and self._task.done() and not self._task.cancelled():
            return self._task.exception()
        return None

    async def _follow(self, consumer) -> None:
        try:
            while True:
                messages = []
                for records in (await consumer.getmany(timeout_ms=300)).values():
                    for record in records:
                        with contextlib.suppress(PoisonMessage):
                            messages.append(decode(self.message_type, record.value))
                if messages:
                    await self.handle(messages)
        finally:
            await consumer.stop()
