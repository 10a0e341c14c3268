"""`clonedesk outbound`: posts each `helpdesk.outbound` reply to the tenant's helpdesk (Zendesk ticket
comment / Intercom conversation reply), retrying with backoff; a reply that cannot be delivered goes to
`helpdesk.outbound.dlq`, never silently dropped; a reply already posted (a redelivery) is not posted
again, and one whose last attempt was cut off (a crash between the helpdesk's acknowledgement and our
record of it) is posted again only if the helpdesk does not show it."""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import sqlite3
from dataclasses import dataclass
from pathlib import Path

import httpx
from clonedesk.core.kafka import (
    PoisonMessage,
    consume_by_key,
    decode,
    make_consumer,
    make_producer,
    send_dead_letter,
)
from clonedesk.core.settings import Settings
from clonedesk.core.telemetry import ConsumerLag, extract_context
from clonedesk.core.tenants import TenantStore, UnknownTenant
from clonedesk.core.domain.topics import HELPDESK_OUTBOUND
from clonedesk.resolver.adapters.delivered_replies import DELIVERED, POSTING, DeliveredReplies
from clonedesk.resolver.domain.outbound import (
    HttpPost,
    NotDeliverable,
    backoff_delay,
    body_digest,
    delivery_key,
    MAX_LOOKUP_PAGES,
    helpdesk_lookup,
    next_lookup_page,
    helpdesk_request,
    is_retryable,
    public_replies,
    reached_helpdesk,
)
from clonedesk.resolver.settings import ResolverSettings
from clonedesk.v1 import outbound_pb2
from opentelemetry import trace

log = logging.getLogger(__name__)
tracer = trace.get_tracer("clonedesk.resolver.outbound")

OUTBOUND_GROUP = "resolver-outbound"


@dataclass(frozen=True)
class Delivery:
    delivered: bool
    attempts: int
    reason: str = ""
    already_posted: bool = False  # delivered earlier: nothing was sent this time


def simulator_url(settings: Settings) -> str:
    return f"http://127.0.0.1:{settings.helpdesk_sim_port}"


class OutboundPoster:
    def __init__(
        self, settings: Settings, resolver_settings: ResolverSettings, fallback_base_url: str | None = None
    ):
        self.settings = settings
        self.rs = resolver_settings
        self.tenants = TenantStore(Path(settings.resolved_data_dir))
        # Tenants without their own helpdesk URL post to the embedded simulator.
        self.fallback_base_url = simulator_url(settings) if fallback_base_url is None else fallback_base_url
        self.posted = DeliveredReplies.in_data_dir(settings.resolved_data_dir)
        self.delivered = 0
        self.skipped_already_posted = 0
        self.found_on_helpdesk = 0  # cut-off attempts that had reached the helpdesk after all
        self.dead_lettered = 0

    async def deliver(
        self, client: httpx.AsyncClient, reply: outbound_pb2.OutboundReply, stop: asyncio.Event
    ) -> Delivery:
        try:
            key = delivery_key(reply)
            state = self._state(key)
            if state == DELIVERED:
                return Delivery(True, 0, "already posted", already_posted=True)
            tenant = self.tenants.get(reply.tenant_id)
            post = helpdesk_request(reply, tenant.helpdesk, self.fallback_base_url)
            source, lookup = helpdesk_lookup(reply, tenant.helpdesk, self.fallback_base_url)
        except (UnknownTenant, NotDeliverable) as exc:
            return Delivery(False, 0, str(exc))
        digest = body_digest(reply.body)
        if state == POSTING:
            # An earlier attempt was cut off before its outcome was recorded: ask the helpdesk, every
            # page of the ticket's comments (our earlier copies may be far down a busy ticket).
            bodies, page, pages = [], lookup, 0
            while page is not None:
                if pages == MAX_LOOKUP_PAGES:
                    return Delivery(False, 0, f"more than {MAX_LOOKUP_PAGES} pages of comments at {lookup.url}")
                listing, asked = await self._send(client, page, stop)
                pages += 1
                if listing is None:
                    return asked  # the helpdesk could not be asked: dead-lettered, not posted blindly
                try:
                    answer = listing.json()
                    bodies += public_replies(source, answer)
                    following = next_lookup_page(source, answer, lookup.url)
                except (ValueError, AttributeError, TypeError):
                    return Delivery(False, asked.attempts, f"unreadable answer from {page.url}")
                page = dataclasses.replace(lookup, url=following) if following else None
            if reached_helpdesk(reply.body, bodies,
                                self.posted.delivered_with_body(reply.tenant_id, reply.ticket_id, digest)):
                self._remember_posted(key, reply, digest)
                self.found_on_helpdesk += 1
                return Delivery(True, 0, "found on the helpdesk", already_posted=True)
        else:
            self._begin(key, reply, digest)
        response, sent = await self._send(client, post, stop)
        if response is not None:
            self._remember_posted(key, reply, digest)
        return sent

    async def _send(
        self, client: httpx.AsyncClient, post: HttpPost, stop: asyncio.Event
    ) -> tuple[httpx.Response | None, Delivery]:
        """(the helpdesk's successful response, how it went), retried with backoff; no response when it
        failed for good."""
        attempt = 0
        while True:
            attempt += 1
            status, retry_after, detail = None, None, ""
            try:
                response = await client.request(
                    post.method,
                    post.url,
                    json=post.json if post.method != "GET" else None,
                    headers=post.headers,
                    timeout=self.rs.outbound_timeout_s,
                )
                status = response.status_code
                if response.is_success:
                    return response, Delivery(True, attempt)
                detail = f"HTTP {status} from {post.url}"
                retry_after = _seconds(response.headers.get("retry-after"))
            except httpx.HTTPError as exc:
                detail = f"{type(exc).__name__} on {post.method} {post.url}"
            if not is_retryable(status):
                return None, Delivery(False, attempt, detail)
            if attempt >= self.rs.outbound_max_attempts:
                return None, Delivery(False, attempt, f"gave up after {attempt} attempts: {detail}")
            delay = backoff_delay(
                attempt, self.rs.outbound_backoff_s, self.rs.outbound_backoff_max_s, retry_after
            )
            log.warning(
                "helpdesk call failed; retrying",
                extra={
                    "tenant": post.headers.get("X-Clonedesk-Tenant"),
                    "method": post.method,
                    "detail": detail,
                    "attempt": attempt,
                    "delay_s": delay,
                },
            )
            try:
                await asyncio.wait_for(stop.wait(), delay)
                return None, Delivery(False, attempt, "stopping")
            except asyncio.TimeoutError:
                pass

    def _state(self, key: str) -> str | None:
        try:
            return self.posted.state(key)
        except sqlite3.Error:  # without the record, posting (maybe twice) beats never posting
            log.exception("could not read the record of posted replies", extra={"reply_id": key})
            return None

    def _begin(self, key: str, reply: outbound_pb2.OutboundReply, digest: str) -> None:
        try:
            self.posted.begin(key, reply.tenant_id, reply.ticket_id, digest)
        except sqlite3.Error:
            log.exception("could not record a reply about to be posted", extra={"reply_id": key})

    def _remember_posted(self, key: str, reply: outbound_pb2.OutboundReply, digest: str) -> None:
        try:
            self.posted.record(key, reply.tenant_id, reply.ticket_id, digest)
        except sqlite3.Error:  # the reply is posted all the same; only a redelivery could repeat it
            log.exception("could not record a posted reply", extra={"reply_id": key})

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


def _seconds(value: str | None) -> float | None:
    try:
        return float(value) if value is not None else None
    except ValueError:
        return None
