"""Posting a reply back to a helpdesk: which API, what request, and when to retry (pure)."""

from __future__ import annotations

import base64
import hashlib
from urllib.parse import urlsplit
from dataclasses import dataclass, field

from clonedesk.core.domain.ids import reply_id
from clonedesk.v1 import common_pb2

AI_AUTHOR_ID = "clonedesk-ai"


class NotDeliverable(ValueError):
    """The reply can never be posted as it stands (no helpdesk configured, bad ticket id...)."""


@dataclass(frozen=True)
class HttpPost:
    method: str
    url: str
    json: dict
    headers: dict[str, str] = field(default_factory=dict)


def delivery_key(reply) -> str:
    """What identifies one reply (an OutboundReply) across redeliveries: its Idempotency-Key, and the key
    of the outbound worker's own record of what it posted."""
    if not reply.reply_id and not reply.resolution_id:
        # Every id-less reply would share one key: the first would hide all the others.
        raise NotDeliverable("reply without reply_id or resolution_id cannot be posted exactly once")
    return reply.reply_id or reply_id(reply.resolution_id)


@dataclass(frozen=True)
class _Endpoint:
    source: int  # common_pb2.ZENDESK / INTERCOM
    base: str
    ticket: str
    headers: dict[str, str]


def _endpoint(reply, access, fallback_base_url: str) -> _Endpoint:
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
        return _Endpoint(source, base, ticket, {**common, "Authorization": auth})
    if source == common_pb2.INTERCOM:
        base = (access.intercom_base_url or fallback_base_url).rstrip("/")
        if not base:
            raise NotDeliverable(f"tenant {reply.tenant_id!r} has no Intercom base URL")
        token = access.intercom_token or "simulator"
        return _Endpoint(source, base, ticket, {**common, "Authorization": f"Bearer {token}"})
    raise NotDeliverable(f"no helpdesk API for source {source}")


def helpdesk_request(reply, access, fallback_base_url: str) -> HttpPost:
    """The HTTP call that posts `reply` (an OutboundReply) with the tenant's `access` (HelpdeskAccess).

    Zendesk: a public comment through the ticket update API. Intercom: an admin reply on the
    conversation. Unset base URLs fall back to `fallback_base_url` (the embedded helpdesk simulator).
    """
    where = _endpoint(reply, access, fallback_base_url)
    if where.source == common_pb2.ZENDESK:
        body = {"ticket": {"comment": {"body": reply.body, "public": True, "author_id": AI_AUTHOR_ID}}}
        return HttpPost("PUT", f"{where.base}/api/v2/tickets/{where.ticket}.json", body, where.headers)
    body = {"message_type": "comment", "type": "admin", "admin_id": AI_AUTHOR_ID, "body": reply.body}
    return HttpPost("POST", f"{where.base}/conversations/{where.ticket}/reply", body, where.headers)


def helpdesk_lookup(reply, access, fallback_base_url: str) -> tuple[int, HttpPost]:
    """(source, the HTTP call) that lists what the ticket holds now, to find out whether an attempt
    whose outcome was lost reached the helpdesk: Zendesk's newest comments, Intercom's conversation."""
    where = _endpoint(reply, access, fallback_base_url)
    if where.source == common_pb2.ZENDESK:
        url = f"{where.base}/api/v2/tickets/{where.ticket}/comments.json?sort_order=desc&per_page=100"
        return where.source, HttpPost("GET", url, {}, where.headers)
    return where.source, HttpPost("GET", f"{where.base}/conversations/{where.ticket}", {}, where.headers)


# Pages of a Zendesk comment listing the look-up reads at most (100 comments each): a ticket with more
# than 5,000 comments is dead-lettered rather than guessed about.
MAX_LOOKUP_PAGES = 50


def next_lookup_page(source: int, listing: dict, lookup_url: str) -> str | None:
    """The next page of a Zendesk comment listing (its `next_page`), only on the host and path the
    look-up asked (the helpdesk's credentials go with it); None at the end and for Intercom, whose
    conversation comes whole."""
    if source != common_pb2.ZENDESK:
        return None
    following = listing.get("next_page")
    if not isinstance(following, str) or not following:
        return None
    asked, offered = urlsplit(lookup_url), urlsplit(following)
    if (offered.scheme, offered.netloc, offered.path) != (asked.scheme, asked.netloc, asked.path):
        raise ValueError(f"next_page {following!r} leaves {asked.netloc}{asked.path}")
    return following


def body_digest(body: str) -> str:
    return hashlib.sha256(body.encode()).hexdigest()


def public_replies(source: int, listing: dict) -> list[str]:
    """The bodies of the public agent-side messages in a `helpdesk_lookup` answer."""
    if source == common_pb2.INTERCOM:
        parts = (listing.get("conversation_parts") or {}).get("conversation_parts") or []
        return [str(p.get("body") or "") for p in parts
                if p.get("part_type") == "comment" and (p.get("author") or {}).get("type") in ("admin", "bot")]
    return [str(c.get("body") or "") for c in listing.get("comments") or [] if c.get("public", True)]


def reached_helpdesk(body: str, listed_bodies: list[str], recorded_with_same_body: int) -> bool:
    """Whether an attempt whose outcome was lost got through: the ticket shows more replies with this
    body than our record says we delivered (the AI may have sent the same words before, on purpose)."""
    return sum(1 for listed in listed_bodies if listed == body) > recorded_with_same_body


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
