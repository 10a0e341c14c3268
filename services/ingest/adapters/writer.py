"""Writing normalised events to `helpdesk.events`: every write awaited until the broker acknowledged it
(acks=all), keyed `tenant:ticket`, with the trace context in the headers."""

from __future__ import annotations

import asyncio
import logging

from aiokafka.errors import KafkaError

from clonedesk.core.domain import topics
from clonedesk.core.kafka import BrokerUnavailable, encode, make_producer
from clonedesk.core.telemetry import inject_headers
from clonedesk.core.domain.topics import message_key

log = logging.getLogger(__name__)


class EventWriter:
    """A lazily started producer: the gateway comes up (and answers 503) while the broker is down, and
    reconnects on the next request once it is back."""

    def __init__(self, bootstrap: str, timeout_s: float = 10.0, **producer_options):
        self.bootstrap = bootstrap
        self.timeout_s = timeout_s
        self.producer_options = producer_options
        self._producer = None
        self._lock = asyncio.Lock()

    async def _started(self):
        if self._producer is not None:
            return self._producer
        async with self._lock:
            if self._producer is None:
                producer = make_producer(self.bootstrap, request_timeout_ms=int(self.timeout_s * 1000),
                                         **self.producer_options)
                try:
                    await asyncio.wait_for(producer.start(), self.timeout_s)
                except (KafkaError, OSError, asyncio.TimeoutError) as exc:
                    await _quietly_stop(producer)
                    raise BrokerUnavailable(f"Kafka broker at {self.bootstrap} is not reachable"
                                            f" ({type(exc).__name__})") from None
                self._producer = producer
        return self._producer

    async def write(self, events) -> int:
        """Send every event and wait for all the acknowledgements; raise BrokerUnavailable if any fails."""
        if not events:
            return 0
        producer = await self._started()
        try:
            futures = [await producer.send(topics.HELPDESK_EVENTS, value=encode(event),
                                           key=message_key(event.tenant_id, event.ticket_id),
                                           headers=inject_headers())
                       for event in events]
            async with asyncio.timeout(self.timeout_s):  # no task per write, unlike wait_for(gather(...))
                for future in futures:
                    await future
        except (KafkaError, OSError, asyncio.TimeoutError) as exc:
            log.warning("write to the broker failed", extra={"error": type(exc).__name__})
            raise BrokerUnavailable(f"the broker did not acknowledge the write ({type(exc).__name__})") from None
        return len(events)

    async def reachable(self) -> bool:
        try:
            producer = await self._started()
            await asyncio.wait_for(producer.client.fetch_all_metadata(), 3.0)
            return True
        except (BrokerUnavailable, KafkaError, OSError, asyncio.TimeoutError):
            return False

    async def close(self) -> None:
        if self._producer is not None:
            await _quietly_stop(self._producer)
            self._producer = None

    async def abort(self) -> None:
        """Drop the producer and everything it has not sent yet, without the flush a `stop()` does: once
        the embedded broker died, nothing queued may reach its successor before the supervisor prepared
        it (core.broker_hold). The writes waiting on it fail, and their webhooks get a 503."""
        producer, self._producer = self._producer, None
        if producer is None:
            return
        # aiokafka (pinned) has no public abort: stop its sender task first, so `stop()` has nothing to
        # flush with, and fail what was queued.
        sender = getattr(producer, "_sender", None)
        task = getattr(sender, "sender_task", None)
        if task is not None and not task.done():
            task.cancel()
        accumulator = getattr(producer, "_message_accumulator", None)
        if accumulator is not None:
            accumulator.fail_all(BrokerUnavailable("the broker restarted"))
        await _quietly_stop(producer)


async def _quietly_stop(producer) -> None:
    try:
        await producer.stop()
    except Exception:  # noqa: BLE001 - a producer that never connected
        pass
