"""Stable ids: derived from the vendor's own ids only, so a redelivered webhook or a re-imported file
yields the same event id (and every consumer can be idempotent on it)."""

from __future__ import annotations

import hashlib
from datetime import datetime, timezone

from google.protobuf.timestamp_pb2 import Timestamp


def stable_id(*parts: object) -> str:
    """32 hex characters of SHA-256 over the parts, joined unambiguously."""
    joined = "\x1f".join(str(p) for p in parts)
    return hashlib.sha256(joined.encode()).hexdigest()[:32]


def event_id(source: str, tenant_id: str, *vendor_ids: object) -> str:
    return stable_id("event", source, tenant_id, *vendor_ids)


def sample_id(tenant_id: str, ticket_id: str, turn_index: int, event_id_: str) -> str:
    return stable_id("sample", tenant_id, ticket_id, turn_index, event_id_)


def outcome_id(resolution_id: str, helpdesk_event_id: str, kind: int) -> str:
    return stable_id("outcome", resolution_id, helpdesk_event_id, kind)


def parse_time(value) -> datetime | None:
    """A vendor timestamp (ISO 8601 string, or epoch seconds) as an aware UTC datetime; None if absent."""
    if value is None or value == "":
        return None
    if isinstance(value, (int, float)) or (isinstance(value, str) and value.replace(".", "", 1).isdigit()):
        return datetime.fromtimestamp(float(value), tz=timezone.utc)
    if not isinstance(value, str):
        raise ValueError(f"not a timestamp: {value!r}")
    text = value.strip().replace("Z", "+00:00").replace("z", "+00:00")
    parsed = datetime.fromisoformat(text)
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=timezone.utc)


def timestamp(value) -> Timestamp:
    moment = value if isinstance(value, datetime) else parse_time(value)
    stamp = Timestamp()
    if moment is not None:
        stamp.FromDatetime(moment.astimezone(timezone.utc))
    return stamp
