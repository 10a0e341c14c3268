"""Building normalised `HelpdeskEvent`s (a wrong shape raises core.domain.payloads.WrongShape)."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from html import unescape

from clonedesk.core.domain.ids import timestamp
from clonedesk.core.domain.payloads import WrongShape, optional, require
from clonedesk.v1 import common_pb2, events_pb2

Kind = events_pb2.HelpdeskEvent.Kind


@dataclass
class Normalised:
    """What one webhook or one exported record became: events to write, or why it was ignored."""

    events: list[events_pb2.HelpdeskEvent] = field(default_factory=list)
    ignored: str | None = None  # a valid event type we do not use, e.g. `ticket.priority_changed`


def new_event(*, event_id: str, tenant_id: str, ticket_id: str, source: int, kind: int, occurred_at=None,
              author_role: int = common_pb2.ROLE_UNSPECIFIED, body: str = "", **fields) -> events_pb2.HelpdeskEvent:
    event = events_pb2.HelpdeskEvent(
        event_id=event_id, tenant_id=tenant_id, ticket_id=str(ticket_id), source=source, kind=kind,
        author_role=author_role, body=body,
    )
    if occurred_at is not None:
        event.occurred_at.CopyFrom(timestamp(occurred_at))
    attributes = fields.pop("attributes", None)
    for name, value in fields.items():
        if value is not None and value != "":
            setattr(event, name, value)
    if attributes:
        event.attributes.update({k: str(v) for k, v in attributes.items() if v is not None})
    return event


_TAG = re.compile(r"<[^>]+>")
_BREAK = re.compile(r"<\s*(?:br|/p|/div|/li)\s*/?>", re.IGNORECASE)


def html_to_text(html: str) -> str:
    """Intercom bodies are HTML: keep the words, drop the markup."""
    if not html:
        return ""
    text = _BREAK.sub("\n", html)
    text = unescape(_TAG.sub("", text))
    return "\n".join(line.strip() for line in text.splitlines() if line.strip())


STATUS_BY_NAME = {
    "new": common_pb2.NEW, "open": common_pb2.OPEN, "pending": common_pb2.PENDING, "hold": common_pb2.ON_HOLD,
    "on_hold": common_pb2.ON_HOLD, "on-hold": common_pb2.ON_HOLD, "solved": common_pb2.SOLVED,
    "closed": common_pb2.CLOSED, "snoozed": common_pb2.PENDING,
}


def status_from(name) -> int:
    if not isinstance(name, str) or name.strip().lower() not in STATUS_BY_NAME:
        raise WrongShape(f"unknown ticket status {name!r}")
    return STATUS_BY_NAME[name.strip().lower()]


# Author ids under which CloneDesk's own replies come back from the helpdesk (the simulator and the
# outbound poster use it); a tenant's configured API user is added per tenant.
AI_AUTHOR_IDS = frozenset({"clonedesk-ai"})


# A webhook's JSON nests a few levels (ticket → comment → author); anything much deeper is not a webhook.
MAX_JSON_DEPTH = 32


def payload_problem(payload) -> str:
    """Why a parsed JSON body cannot be a webhook at all ("" when it may be one): nested deeper than
    MAX_JSON_DEPTH, or a number that is not finite (Python's JSON reads NaN and Infinity)."""
    # Only containers go on the stack: a webhook is mostly strings, and each is looked at once, here.
    stack = [(payload, 1)] if isinstance(payload, (dict, list)) else []
    if isinstance(payload, float) and not math.isfinite(payload):
        return "a number that is not finite"
    while stack:
        value, depth = stack.pop()
        if depth > MAX_JSON_DEPTH:
            return f"nested deeper than {MAX_JSON_DEPTH} levels"
        for item in value.values() if isinstance(value, dict) else value:
            if isinstance(item, (dict, list)):
                stack.append((item, depth + 1))
            elif isinstance(item, float) and not math.isfinite(item):
                return "a number that is not finite"
    return ""


__all__ = ["AI_AUTHOR_IDS", "MAX_JSON_DEPTH", "Kind", "Normalised", "WrongShape", "html_to_text", "new_event",
           "optional", "payload_problem", "require", "status_from"]
