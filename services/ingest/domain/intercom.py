"""Intercom payloads → HelpdeskEvents: webhook notifications (`notification_event` with the conversation
in `data.item`) and the conversations export (conversation with its parts).

Both go through the same part mapping, so a part seen by webhook and again by import is one event:
ids come from Intercom's conversation id, the source message id and each conversation part's id.
"""

from __future__ import annotations

from clonedesk.ingest.domain.events import (AI_AUTHOR_IDS, Kind, Normalised, WrongShape, html_to_text, new_event,
                                            optional, require)
from clonedesk.core.domain.ids import event_id
from clonedesk.v1 import common_pb2

SOURCE = "intercom"

TOPICS = {
    "conversation.user.created", "conversation.user.replied", "conversation.admin.replied",
    "conversation.admin.assigned", "conversation.admin.closed", "conversation.admin.opened",
    "conversation.rating.added",
}
_CUSTOMER_TYPES = {"user", "lead", "contact"}


def _role(author: dict, ai_author_ids) -> int:
    author_type = (author or {}).get("type")
    if str((author or {}).get("id") or "") in ai_author_ids:
        return common_pb2.AI
    if author_type in _CUSTOMER_TYPES:
        return common_pb2.CUSTOMER
    if author_type in ("admin", "bot", "team"):
        return common_pb2.AGENT
    raise WrongShape(f"unknown author type {author_type!r}")


def _common(tenant_id: str, conversation: dict, source: int, **extra) -> dict:
    return dict(tenant_id=tenant_id, ticket_id=str(require(conversation, "id")), source=source,
                subject=html_to_text(optional(conversation, "source", "subject", default="") or ""), **extra)


def created_event(tenant_id: str, conversation: dict, source: int):
    """The conversation's opening as TICKET_CREATED, carrying the customer's first message (its `source`):
    the reducer takes that body as the customer's first turn."""
    common = _common(tenant_id, conversation, source)
    first = require(conversation, "source")
    author = first.get("author") or {}
    return new_event(event_id=event_id(SOURCE, tenant_id, common["ticket_id"], "created"),
                     kind=Kind.TICKET_CREATED, author_role=common_pb2.CUSTOMER, status=common_pb2.OPEN,
                     occurred_at=conversation.get("created_at"), author_id=str(author.get("id") or ""),
                     body=html_to_text(first.get("body") or ""), **common)


def first_message_event(tenant_id: str, conversation: dict, source: int, ai_author_ids=AI_AUTHOR_IDS):
    """The first message (the conversation's `source`) as a MESSAGE of its own, for the export, which
    lists every part; the reducer merges it with the TICKET_CREATED turn of the same text."""
    common = _common(tenant_id, conversation, source)
    first = require(conversation, "source")
    author = first.get("author") or {}
    part_id = first.get("id") or "source"
    return new_event(event_id=event_id(SOURCE, tenant_id, common["ticket_id"], "part", part_id), kind=Kind.MESSAGE,
                     author_role=_role(author, ai_author_ids),
                     body=html_to_text(first.get("body") or ""), occurred_at=conversation.get("created_at"),
                     author_id=str(author.get("id") or ""), **common)


def part_events(tenant_id: str, conversation: dict, part: dict, source: int, ai_author_ids=AI_AUTHOR_IDS) -> list:
    """One conversation part → zero or one event (part types we do not use give none)."""
    if not isinstance(part, dict):
        raise WrongShape("a conversation part must be an object")
    common = _common(tenant_id, conversation, source, vendor_event_id=str(require(part, "id")))
    ticket_id = common["ticket_id"]
    part_type = part.get("part_type")
    author = part.get("author") or {}
    ids = dict(event_id=event_id(SOURCE, tenant_id, ticket_id, "part", part["id"]),
               occurred_at=part.get("created_at"), author_id=str(author.get("id") or ""))
    if part_type in ("comment", "note"):
        return [new_event(kind=Kind.MESSAGE, author_role=_role(author, ai_author_ids),
                          body=html_to_text(part.get("body") or ""), internal=part_type == "note", **ids, **common)]
    if part_type in ("assignment", "assign_and_reopen", "default_assignment"):
        assigned = part.get("assigned_to") or {}
        assignee = assigned.get("id") if isinstance(assigned, dict) else assigned
        return [new_event(kind=Kind.ASSIGNED, author_role=common_pb2.SYSTEM,
                          assignee_id=str(assignee or conversation.get("admin_assignee_id") or ""), **ids, **common)]
    if part_type == "close":
        return [new_event(kind=Kind.STATUS_CHANGED, author_role=common_pb2.SYSTEM, status=common_pb2.SOLVED,
                          **ids, **common)]
    if part_type == "open":
        return [new_event(kind=Kind.STATUS_CHANGED, author_role=common_pb2.SYSTEM, status=common_pb2.OPEN,
                          **ids, **common)]
    return []


def rating_events(tenant_id: str, conversation: dict, source: int) -> list:
    rating = conversation.get("conversation_rating")
    if not isinstance(rating, dict) or rating.get("rating") is None:
        return []
    score = rating["rating"]
    if not isinstance(score, int) or not 1 <= score <= 5:
        raise WrongShape(f"conversation_rating.rating must be 1-5, not {score!r}")
    common = _common(tenant_id, conversation, source)
    return [new_event(event_id=event_id(SOURCE, tenant_id, common["ticket_id"], "rating", rating.get("created_at")),
                      kind=Kind.CSAT, author_role=common_pb2.CUSTOMER, csat_score=score,
                      body=str(rating.get("remark") or ""), occurred_at=rating.get("created_at"), **common)]


def _parts(conversation: dict) -> list:
    container = conversation.get("conversation_parts")
    if container is None:
        return []
    parts = container.get("conversation_parts") if isinstance(container, dict) else container
    if not isinstance(parts, list):
        raise WrongShape("conversation_parts.conversation_parts must be a list")
    return parts


def normalise_webhook(tenant_id: str, payload: dict, ai_author_ids=AI_AUTHOR_IDS) -> Normalised:
    if not isinstance(payload, dict):
        raise WrongShape("the body is not a JSON object")
    if payload.get("type") != "notification_event":
        raise WrongShape("`type` must be notification_event")
    topic = require(payload, "topic")
    if topic not in TOPICS:
        return Normalised(ignored=str(topic))
    conversation = require(payload, "data", "item")
    if not isinstance(conversation, dict) or conversation.get("type", "conversation") != "conversation":
        raise WrongShape("data.item must be a conversation")
    source = common_pb2.INTERCOM
    try:
        if topic == "conversation.user.created":
            # One event per webhook, so a 503 leaves nothing half-written; the body rides on it.
            return Normalised([created_event(tenant_id, conversation, source)])
        if topic == "conversation.rating.added":
            events = rating_events(tenant_id, conversation, source)
            if not events:
                raise WrongShape("missing field data.item.conversation_rating")
            return Normalised(events)
        wanted = {"conversation.user.replied": ("comment",), "conversation.admin.replied": ("comment", "note"),
                  "conversation.admin.assigned": ("assignment", "assign_and_reopen", "default_assignment"),
                  "conversation.admin.closed": ("close",), "conversation.admin.opened": ("open",)}[topic]
        events = []
        for part in _parts(conversation):
            if isinstance(part, dict) and part.get("part_type") in wanted:
                events.extend(part_events(tenant_id, conversation, part, source, ai_author_ids))
        if not events:
            raise WrongShape(f"{topic} without a {'/'.join(wanted)} conversation part")
        return Normalised(events)
    except (TypeError, KeyError) as exc:
        raise WrongShape(f"unreadable conversation: {exc}") from None


def normalise_export_conversation(tenant_id: str, conversation: dict, ai_author_ids=AI_AUTHOR_IDS) -> list:
    if not isinstance(conversation, dict):
        raise WrongShape("a conversation must be a JSON object")
    source = common_pb2.IMPORT
    events = [created_event(tenant_id, conversation, source),
              first_message_event(tenant_id, conversation, source, ai_author_ids)]
    for part in _parts(conversation):
        events.extend(part_events(tenant_id, conversation, part, source, ai_author_ids))
    if conversation.get("state") == "closed" and not any(e.kind == Kind.STATUS_CHANGED for e in events):
        events.append(new_event(event_id=event_id(SOURCE, tenant_id, conversation["id"], "final-status", "closed"),
                                kind=Kind.STATUS_CHANGED, author_role=common_pb2.SYSTEM, status=common_pb2.SOLVED,
                                occurred_at=conversation.get("updated_at"), **_common(tenant_id, conversation, source)))
    events.extend(rating_events(tenant_id, conversation, source))
    for event in events:
        event.attributes["import"] = "intercom"
    return events
