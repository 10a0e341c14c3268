"""`clonedesk bridge`: tickets.to_resolve → Resolver/Resolve (gRPC) → `resolutions`, and, unless
escalated, `helpdesk.outbound`. Offsets are committed only after both records are acknowledged, so a
crash redelivers; a redelivered request gets the same resolution id from the resolver."""

from __future__ import annotations

import asyncio
import logging
import time

import grpc
from clonedesk.core.kafka import (
    PoisonMessage, consume_by_key, decode, encode, make_consumer, make_producer, send_dead_letter,
)
from clonedesk.core.settings import Settings
from clonedesk.core.telemetry import ConsumerLag, extract_context, inject_headers
from clonedesk.core.domain.topics import HELPDESK_OUTBOUND, RESOLUTIONS, TICKETS_TO_RESOLVE, message_key
from clonedesk.core.domain.ids import reply_id
from clonedesk.resolver.domain.requests import TENANT_HEADER, idempotency_key
from clonedesk.resolver.settings import ResolverSettings
from clonedesk.v1 import common_pb2, outbound_pb2, resolver_pb2, resolver_pb2_grpc
from google.protobuf.timestamp_pb2 import Timestamp
from opentelemetry import propagate, trace

log = logging.getLogger(__name__)
tracer = trace.get_tracer("clonedesk.resolver.bridge")

BRIDGE_GROUP = "resolver-bridge"
# The request itself is wrong, or the tenant cannot be served: retrying changes nothing.
PERMANENT = {grpc.StatusCode.INVALID_ARGUMENT, grpc.StatusCode.NOT_FOUND, grpc.StatusCode.FAILED_PRECONDITION}
# The resolver is away or busy: wait for it, however long, rather than drop a ticket.
WAIT_FOR_RESOLVER = {grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.RESOURCE_EXHAUSTED}
OTHER_ERROR_ATTEMPTS = 3


def resolution_record(
    request: resolver_pb2.ResolveRequest, response: resolver_pb2.ResolveResponse, latency_ms: int
) -> resolver_pb2.Resolution:
    created = Timestamp()
    created.GetCurrentTime()
    return resolver_pb2.Resolution(
        resolution_id=response.resolution_id,
        tenant_id=response.tenant_id,
        ticket_id=request.ticket_id,
        decision=response.decision,
        reply=response.reply,
        adapter_version=response.adapter_version,
        created_at=created,
        latency_ms=latency_ms,
        action=response.action,
        confidence=response.confidence,
        escalation_reason=response.escalation_reason,
        escalation_threshold=response.escalation_threshold,
        request_id=idempotency_key(request),
        category=request.category,
        action_run=response.action_run if response.HasField("action_run") else None,
        conversation=list(request.conversation),
    )


def outbound_record(request: resolver_pb2.ResolveRequest, resolution: resolver_pb2.Resolution):
    """The reply to post, or None when there is nothing for the customer (escalated)."""
    if resolution.decision == common_pb2.ESCALATE or not resolution.reply:
        return None
    return outbound_pb2.OutboundReply(
        reply_id=reply_id(resolution.resolution_id),
        resolution_id=resolution.resolution_id,
        tenant_id=resolution.tenant_id,
        ticket_id=resolution.ticket_id,
        source=request.source,
        body=resolution.reply,
        created_at=resolution.created_at,
        attempt=0,
    )


class Bridge:
    def __init__(self, settings: Settings, resolver_settings: ResolverSettings):
        self.settings = settings
        self.rs = resolver_settings
        self.address = resolver_settings.resolver_address or f"127.0.0.1:{settings.resolver_port}"
        self.processed = 0
        self.dead_lettered = 0

    async def run(
        self, stop: asyncio.Event, ready: asyncio.Event | None = None, group_id: str = BRIDGE_GROUP
    ) -> None:
        consumer = make_consumer(
            self.settings.bootstrap,
            TICKETS_TO_RESOLVE,
            group_id=group_id,
            max_poll_records=4 * self.rs.max_batch_size,
        )
        producer = make_producer(self.settings.bootstrap)
        lag = ConsumerLag(group_id)
        async with grpc.aio.insecure_channel(self.address) as channel:
            stub = resolver_pb2_grpc.ResolverStub(channel)
            await producer.start()
            await consumer.start()
            if ready:
                ready.set()
            log.info("bridge running", extra={"resolver": self.address})
            try:
                # Concurrent across tickets (the resolver batches them), in order within one ticket.
                await consume_by_key(consumer, stop, lambda records: self._in_order(stub, producer, records, stop),
                                     lag)
            finally:
                await consumer.stop()
                await producer.stop()

    async def _in_order(self, stub, producer, records, stop: asyncio.Event) -> None:
        for record in records:
            await self._handle(stub, producer, record, stop)

    async def _dead_letter(self, producer, record, reason: str) -> None:
        self.dead_lettered += 1
        await send_dead_letter(
            producer,
            TICKETS_TO_RESOLVE,
            record.key,
            record.value,
            reason,
            list(record.headers or []),
            record.partition,
            record.offset,
        )

    async def _handle(self, stub, producer, record, stop: asyncio.Event) -> None:
        try:
            request = decode(resolver_pb2.ResolveRequest, record.value)
        except PoisonMessage as exc:
            await self._dead_letter(producer, record, str(exc))
            return
        with tracer.start_as_current_span(
            "bridge.resolve",
            context=extract_context(record.headers),
            attributes={"tenant.id": request.tenant_id, "ticket.id": request.ticket_id},
        ):
            started = time.monotonic()
            response = await self._call(stub, request, stop)
            if isinstance(response, str):
                await self._dead_letter(producer, record, response)
                return
            if response is None:
                return  # stopping: left uncommitted, redelivered to the next bridge
            resolution = resolution_record(request, response, int((time.monotonic() - started) * 1000))
            key = message_key(resolution.tenant_id, resolution.ticket_id)
            headers = inject_headers()
            sends = [await producer.send(RESOLUTIONS, encode(resolution), key=key, headers=headers)]
            reply = outbound_record(request, resolution)
            if reply is not None:
                sends.append(await producer.send(HELPDESK_OUTBOUND, encode(reply), key=key, headers=headers))
            await asyncio.gather(*sends)  # acknowledged (acks=all) before the offset may be committed
            self.processed += 1

    async def _call(self, stub, request, stop: asyncio.Event):
        """The response; a reason string when the request must be dead-lettered; None when stopping."""
        other_errors = 0
        delay = 0.2
        while not stop.is_set():
            metadata = [(TENANT_HEADER, request.tenant_id)]  # tenant-affine routing at the ingress
            propagate.inject(metadata, setter=_MetadataSetter())
            try:
                return await stub.Resolve(request, timeout=self.rs.resolve_timeout_s, metadata=metadata)
            except grpc.aio.AioRpcError as exc:
                code = exc.code()
                if code in PERMANENT:
                    return f"resolver refused it: {code.name}: {exc.details()}"
                if code not in WAIT_FOR_RESOLVER:
                    other_errors += 1
                    if other_errors >= OTHER_ERROR_ATTEMPTS:
                        return f"resolver failed {other_errors} times: {code.name}: {exc.details()}"
                log.warning(
                    "resolver call failed; retrying",
                    extra={"code": code.name, "ticket": request.ticket_id, "delay_s": delay},
                )
            try:
                await asyncio.wait_for(stop.wait(), delay)
            except asyncio.TimeoutError:
                pass
            delay = min(delay * 2, 5.0)
        return None


class _MetadataSetter:
    def set(self, carrier: list, key: str, value: str) -> None:
        carrier.append((key.lower(), value))
