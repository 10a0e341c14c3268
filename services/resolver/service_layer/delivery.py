"""Delivering one reply to its tenant's helpdesk exactly once (the use case behind `clonedesk outbound`):
post it (Zendesk ticket comment / Intercom conversation reply) with retries and backoff, unless the record
of posted replies says it was posted; a reply whose last attempt was cut off (a crash between the
helpdesk's acknowledgement and that record) is posted again only if the helpdesk does not show it."""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import sqlite3
from dataclasses import dataclass

import httpx

from clonedesk.core.tenants import TenantStore, UnknownTenant
from clonedesk.resolver.adapters.delivered_replies import DELIVERED, POSTING, DeliveredReplies
from clonedesk.resolver.domain.outbound import (MAX_LOOKUP_PAGES, HttpPost, NotDeliverable, backoff_delay,
                                                body_digest, delivery_key, helpdesk_lookup, helpdesk_request,
                                                is_retryable, next_lookup_page, public_replies, reached_helpdesk)
from clonedesk.resolver.settings import ResolverSettings
from clonedesk.v1 import outbound_pb2

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Delivery:
    delivered: bool
    attempts: int
    reason: str = ""
    already_posted: bool = False  # delivered earlier: nothing was sent this time


class ReplyDelivery:
    """Given what it works with: the tenant store, the record of posted replies, the retry settings, and the
    helpdesk a tenant without its own URL posts to."""

    def __init__(self, tenants: TenantStore, posted: DeliveredReplies, resolver_settings: ResolverSettings,
                 fallback_base_url: str):
        self.tenants = tenants
        self.posted = posted
        self.rs = resolver_settings
        self.fallback_base_url = fallback_base_url
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


def _seconds(value: str | None) -> float | None:
    try:
        return float(value) if value is not None else None
    except ValueError:
        return None
