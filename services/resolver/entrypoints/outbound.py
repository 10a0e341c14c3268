"""`clonedesk outbound`: each `helpdesk.outbound` reply, in order per ticket, through the delivery use case
(service_layer/delivery.py); a reply that cannot be delivered goes to `helpdesk.outbound.dlq`, never
silently dropped."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

import httpx
from opentelemetry import trace

from clonedesk.core.domain.topics import HELPDESK_OUTBOUND
from clonedesk.core.kafka import PoisonMessage, consume_by_key, decode, make_consumer, make_producer, send_dead_letter
from clonedesk.core.settings import Settings
from clonedesk.core.telemetry import ConsumerLag, extract_context
from clonedesk.core.tenants import TenantStore
from clonedesk.resolver.adapters.delivered_replies import DeliveredReplies
from clonedesk.resolver.service_layer.delivery import Delivery, ReplyDelivery
from clonedesk.resolver.settings import ResolverSettings
from clonedesk.v1 import outbound_pb2

log = logging.getLogger(__name__)
tracer = trace.get_tracer("clonedesk.resolver.outbound")

OUTBOUND_GROUP = "resolver-outbound"


def simulator_url(settings: Settings) -> str:
    return f"http://127.0.0.1:{settings.helpdesk_sim_port}"


class OutboundPoster(ReplyDelivery):
    """The worker: the delivery use case over this data dir's tenants and record of posted replies, fed
    from the topic."""

    def __init__(
        self, settings: Settings, resolver_settings: ResolverSettings, fallback_base_url: str | None = None
    ):
        # Tenants without their own helpdesk URL post to the embedded simulator.
        super().__init__(TenantStore(Path(settings.resolved_data_dir)),
                         DeliveredReplies.in_data_dir(settings.resolved_data_dir), resolver_settings,
                         simulator_url(settings) if fallback_base_url is None else fallback_base_url)
        self.settings = settings

    async def run(
        self, stop: asyncio.Event, ready: asyncio.Event | None = None, group_id: str = OUTBOUND_GROUP
    ) -> None:
        consumer = make_consumer(self.settings.bootstrap, HELPDESK_OUTBOUND, group_id=group_id)
        producer = make_producer(self.settings.bootstrap)
        lag = ConsumerLag(group_id)
        await producer.start()
        await consumer.start()
        if ready:
            ready.set()
        log.info("outbound running", extra={"fallback_base_url": self.fallback_base_url})
        try:
            async with httpx.AsyncClient() as client:
                await consume_by_key(
                    consumer, stop, lambda records: self._in_order(client, producer, records, stop), lag
                )
        finally:
            await consumer.stop()
            await producer.stop()

    async def _in_order(self, client, producer, records, stop) -> None:
        for record in records:
            await self._handle(client, producer, record, stop)

    async def _handle(self, client, producer, record, stop) -> None:
        try:
            reply = decode(outbound_pb2.OutboundReply, record.value)
        except PoisonMessage as exc:
            delivery = Delivery(False, 0, str(exc))
        else:
            with tracer.start_as_current_span(
                "outbound.post",
                context=extract_context(record.headers),
                attributes={"tenant.id": reply.tenant_id, "ticket.id": reply.ticket_id},
            ):
                delivery = await self.deliver(client, reply, stop)
        if delivery.already_posted:
            self.skipped_already_posted += 1
            log.info(
                "reply already posted; not posted again",
                extra={"tenant": reply.tenant_id, "ticket": reply.ticket_id},
            )
        elif delivery.delivered:
            self.delivered += 1
            log.info(
                "reply posted",
                extra={"tenant": reply.tenant_id, "ticket": reply.ticket_id, "attempts": delivery.attempts},
            )
        elif delivery.reason != "stopping":
            self.dead_lettered += 1
            await send_dead_letter(
                producer,
                HELPDESK_OUTBOUND,
                record.key,
                record.value,
                delivery.reason,
                list(record.headers or []) + [("dlq.attempts", str(delivery.attempts).encode())],
                record.partition,
                record.offset,
            )
