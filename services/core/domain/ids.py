"""Stable ids: derived from the vendor's own ids only, so a redelivered webhook or a re-imported file
yields the same event id (and every consumer can be idempotent on it)."""

from __future__ import annotations

import hashlib
import uuid
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


# The event times a helpdesk can send us: anything outside is a broken payload (ValueError), never a
# time stored (metering keeps 2000..2200 too).
EARLIEST = datetime(2000, 1, 1, tzinfo=timezone.utc)
LATEST = datetime(2200, 1, 1, tzinfo=timezone.utc)


def parse_time(value) -> datetime | None:
    """A vendor timestamp (ISO 8601 string, or epoch seconds) as an aware UTC datetime; None if absent.
    Raises ValueError for anything else, a time outside 2000..2200 included."""
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        raise ValueError(f"not a timestamp: {value!r}")
    try:
        if isinstance(value, (int, float)) or (isinstance(value, str) and value.replace(".", "", 1).isdigit()):
            parsed = datetime.fromtimestamp(float(value), tz=timezone.utc)
        elif not isinstance(value, str) or len(value) > 64:
            raise ValueError(f"not a timestamp: {str(value)[:64]!r}")
        else:
            text = value.strip().replace("Z", "+00:00").replace("z", "+00:00")
            parsed = datetime.fromisoformat(text)
            parsed = parsed if parsed.tzinfo else parsed.replace(tzinfo=timezone.utc)
    except (OverflowError, OSError) as exc:  # 1e30 seconds: no datetime holds it
        raise ValueError(f"timestamp out of range: {str(value)[:64]!r}") from exc
    if not EARLIEST <= parsed < LATEST:
        raise ValueError(f"timestamp {parsed.isoformat()} is outside 2000..2200")
    return parsed


_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)


def timestamp(value) -> Timestamp:
    moment = value if isinstance(value, datetime) else parse_time(value)
    if moment is None:
        return Timestamp()
    # Whole seconds and nanoseconds from the difference to the epoch, exactly: protobuf's FromDatetime goes
    # through a time tuple and calendar.timegm, and was a third of normalising a webhook.
    since = moment.astimezone(timezone.utc) - _EPOCH
    return Timestamp(seconds=since.days * 86400 + since.seconds, nanos=since.microseconds * 1000)


# The outbound reply's id space (uuid5 of the resolution id): the helpdesk's Idempotency-Key, and how the
# demo and the simulator recognise a reply as one resolution's.
REPLY_NAMESPACE = uuid.UUID("0d9f2c4e-8f61-4a6b-b0d2-2c7f3b9e41a7")


def reply_id(resolution_id: str) -> str:
    """One reply per resolution: the same id on every redelivery, sent as the Idempotency-Key."""
    return str(uuid.uuid5(REPLY_NAMESPACE, resolution_id))
