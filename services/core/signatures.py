"""Webhook signature verification, as each vendor signs (constant-time compares throughout).

- Zendesk: `X-Zendesk-Webhook-Signature` = base64(HMAC-SHA256(secret, timestamp + raw body)), where the
  timestamp is the `X-Zendesk-Webhook-Signature-Timestamp` header; a timestamp outside the tolerance is a
  replay and is refused.
- Intercom: `X-Hub-Signature` = "sha1=" + hex(HMAC-SHA1(client secret, raw body)).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from datetime import datetime, timezone

from clonedesk.core.domain.ids import parse_time

DEFAULT_TOLERANCE_S = 300.0


class BadSignature(Exception):
    """Missing, malformed, stale or wrong signature; the message says which (never the expected value)."""


def zendesk_signature(secret: str, timestamp: str, body: bytes) -> str:
    digest = hmac.new(secret.encode(), timestamp.encode() + body, hashlib.sha256).digest()
    return base64.b64encode(digest).decode()


def verify_zendesk(secret: str, signature: str | None, timestamp: str | None, body: bytes,
                   now: datetime | None = None, tolerance_s: float = DEFAULT_TOLERANCE_S) -> None:
    if not signature or not timestamp:
        raise BadSignature("missing X-Zendesk-Webhook-Signature or X-Zendesk-Webhook-Signature-Timestamp")
    try:
        signed_at = parse_time(timestamp)
    except ValueError:
        raise BadSignature("unreadable X-Zendesk-Webhook-Signature-Timestamp") from None
    now = now or datetime.now(timezone.utc)
    if signed_at is None or abs((now - signed_at).total_seconds()) > tolerance_s:
        raise BadSignature("the signature timestamp is outside the allowed window (replay?)")
    expected = zendesk_signature(secret, timestamp, body)
    if not hmac.compare_digest(expected.encode(), signature.strip().encode()):
        raise BadSignature("the signature does not match")


def intercom_signature(secret: str, body: bytes) -> str:
    return "sha1=" + hmac.new(secret.encode(), body, hashlib.sha1).hexdigest()


def verify_intercom(secret: str, signature: str | None, body: bytes) -> None:
    if not signature:
        raise BadSignature("missing X-Hub-Signature")
    if not signature.startswith("sha1="):
        raise BadSignature("X-Hub-Signature must be sha1=<hex>")
    expected = intercom_signature(secret, body)
    if not hmac.compare_digest(expected.encode(), signature.strip().lower().encode()):
        raise BadSignature("the signature does not match")
