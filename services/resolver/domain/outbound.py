"""Posting a reply back to a helpdesk: which API, what request, and when to retry (pure)."""

from __future__ import annotations

import base64
import uuid
from dataclasses import dataclass, field

from clonedesk.v1 import common_pb2

AI_AUTHOR_ID = "clonedesk-ai"
REPLY_NAMESPACE = uuid.UUID("0d9f2c4e-8f61-4a6b-b0d2-2c7f3b9e41a7")


class NotDeliverable(ValueError):
    """The reply can never be posted as it stands (no helpdesk configured, bad ticket id...)."""


@dataclass(frozen=True)
class HttpPost:
    method: str
    url: str
    json: dict
    headers: dict[str, str] = field(default_factory=dict)


def reply_id(resolution_id: str) -> str:
    """One reply per resolution: the same id on every redelivery, sent as the Idempotency-Key."""
    return str(uuid.uuid5(REPLY_NAMESPACE, resolution_id))


def delivery_key(reply) -> str:
    """What identifies one reply (an OutboundReply) across redeliveries: its Idempotency-Key, and the key
    of the outbound worker's own record of what it posted."""
    if not reply.reply_id and not reply.resolution_id:
        # Every id-less reply would share one key: the first would hide all the others.
        raise NotDeliverable("reply without reply_id or resolution_id cannot be posted exactly once")
    return reply.reply_id or reply_id(reply.resolution_id)


def helpdesk_request(reply, access, fallback_base_url: str) -> HttpPost:
    """The HTTP call that posts `reply` (an OutboundReply) with the tenant's `access` (HelpdeskAccess).

    Zendesk: a public comment through the ticket update API. Intercom: an admin reply on the
    conversation. Unset base URLs fall back to `fallback_base_url` (the embedded helpdesk simulator).
    """
    ticket = reply.ticket_id
    if not ticket or "/" in ticket or "?" in ticket or "#" in ticket:
        raise NotDeliverable(f"ticket id {ticket!r} cannot be addressed")
    source = reply.source
    if source == common_pb2.SOURCE_UNSPECIFIED or source == common_pb2.IMPORT:
        source = (
            common_pb2.INTERCOM
            if access.intercom_base_url and not access.zendesk_base_url
            else common_pb2.ZENDESK
        )
    common = {
        "Idempotency-Key": delivery_key(reply),
        "X-Clonedesk-Tenant": reply.tenant_id,
    }
    if source == common_pb2.ZENDESK:
        base = (access.zendesk_base_url or fallback_base_url).rstrip("/")
        if not base:
            raise NotDeliverable(f"tenant {reply.tenant_id!r} has no Zendesk base URL")
        user = f"{access.zendesk_email or AI_AUTHOR_ID}/token:{access.zendesk_token or 'simulator'}"
        auth = "Basic " + base64.b64encode(user.encode()).decode()
        body = {"ticket": {"comment": {"body": reply.body, "public": True, "author_id": AI_AUTHOR_ID}}}
        return HttpPost(
            "PUT", f"{base}/api/v2/tickets/{ticket}.json", body, {**common, "Authorization": auth}
        )
    if source == common_pb2.INTERCOM:
        base = (access.intercom_base_url or fallback_base_url).rstrip("/")
        if not base:
            raise NotDeliverable(f"tenant {reply.tenant_id!r} has no Intercom base URL")
        body = {"message_type": "comment", "type": "admin", "admin_id": AI_AUTHOR_ID, "body": reply.body}
        return HttpPost(
            "POST",
            f"{base}/conversations/{ticket}/reply",
            body,
            {**common, "Authorization": f"Bearer {access.intercom_token or 'simulator'}"},
        )
    raise NotDeliverable(f"no helpdesk API for source {source}")


def is_retryable(status: int | None) -> bool:
    """Network errors (None), timeouts, rate limits and server errors may pass on a later try; any other
    4xx will not (bad credentials, unknown ticket) and goes straight to the dead-letter topic."""
    return status is None or status in (408, 409, 425, 429) or status >= 500


def backoff_delay(attempt: int, base_s: float, max_s: float, retry_after_s: float | None = None) -> float:
    """Seconds to wait before attempt `attempt + 1` (attempt counts from 1): exponential, capped, and
    never shorter than the helpdesk's own Retry-After."""
    delay = min(max_s, base_s * (2 ** (attempt - 1)))
    if retry_after_s is not None:
        delay = max(delay, min(retry_after_s, max_s))
    return delay
