"""Zendesk payloads → HelpdeskEvents: the event webhooks (`zen:event-type:ticket.*`) and the history
export (tickets with their comments or audits).

Webhook shape (Zendesk event webhooks): `{type, id, time, subject: "zen:ticket:<id>", account_id,
detail: {ticket fields: id, status, requester_id, assignee_id, group_id, subject, ...},
event: {...type-specific: comment {id, body, is_public, author {id, is_staff, name}} / current, previous}}`.

Satisfaction ratings have no event webhook: they reach us through a trigger ("Satisfaction is Good/Bad")
whose webhook body is JSON the tenant builds from placeholders, in the shape `TRIGGER_CSAT` names
(`{type, ticket_id, rating, comment, rated_at}`; the README gives the trigger and its body template).
"""

from __future__ import annotations

import re

from clonedesk.ingest.domain.events import (AI_AUTHOR_IDS, Kind, Normalised, WrongShape, new_event, optional,
                                            require, status_from)
from clonedesk.core.domain.ids import event_id, parse_time
from clonedesk.v1 import common_pb2

SOURCE = "zendesk"
PREFIX = "zen:event-type:"

CREATED = "ticket.created"
COMMENT_ADDED = "ticket.comment_added"
STATUS_CHANGED = "ticket.status_changed"
AGENT_ASSIGNMENT = "ticket.agent_assignment_changed"
GROUP_ASSIGNMENT = "ticket.group_assignment_changed"
# Satisfaction ratings arrive as a ticket event whose `event.current` holds the score ("good"/"bad" or
# 1-5, depending on the account's survey); both spellings Zendesk used are accepted.
CSAT_TYPES = ("ticket.satisfaction_rating_changed", "ticket.csat_score_changed")
# The `type` of the body a satisfaction trigger sends (ours: Zendesk lets a trigger's webhook post any JSON).
TRIGGER_CSAT = "clonedesk:ticket.satisfaction_rated"


def _ticket_id(payload: dict) -> str:
    detail_id = optional(payload, "detail", "id")
    if detail_id is not None:
        return str(detail_id)
    subject = payload.get("subject")
    if isinstance(subject, str) and subject.startswith("zen:ticket:"):
        return subject.rsplit(":", 1)[1]
    raise WrongShape("missing field detail.id (the ticket id)")


def csat_score(value) -> int:
    """A 1-5 score from Zendesk's rating: numbers as they are, good/bad as 5/1."""
    if isinstance(value, dict):
        value = value.get("score", value.get("rating"))
    if isinstance(value, (int, float)) and 1 <= int(value) <= 5:
        return int(value)
    if isinstance(value, str):
        # The first word: `{{satisfaction.current_rating}}` renders as e.g. "Good, I'm satisfied".
        text = re.split(r"[^a-z0-9_]", value.strip().lower(), maxsplit=1)[0]
        if text.isdigit() and 1 <= int(text) <= 5:
            return int(text)
        if text in ("good", "good_with_comment", "satisfied"):
            return 5
        if text in ("bad", "bad_with_comment", "unsatisfied"):
            return 1
    raise WrongShape(f"unreadable satisfaction score {value!r}")


def normalise_trigger_rating(tenant_id: str, payload: dict) -> Normalised:
    """A satisfaction trigger's body → one CSAT event. The body has no id of its own, so the event id comes
    from what it says: a redelivery of the same body is the same event, a changed rating a new one."""
    raw_ticket_id = require(payload, "ticket_id")
    ticket_id = str(raw_ticket_id).strip() if isinstance(raw_ticket_id, (str, int)) else ""
    if not ticket_id or "{{" in ticket_id:
        raise WrongShape(f"ticket_id {raw_ticket_id!r} is not a ticket id (a misspelt placeholder?)")
    score = csat_score(require(payload, "rating"))
    comment = str(payload.get("comment") or "").strip()
    rated_at = payload.get("rated_at") or None
    try:
        parse_time(rated_at)
    except ValueError:
        raise WrongShape(f"rated_at {rated_at!r} is not an ISO 8601 time") from None
    return Normalised([new_event(
        event_id=event_id(SOURCE, tenant_id, ticket_id, "csat-trigger", score, rated_at or "", comment),
        tenant_id=tenant_id, ticket_id=ticket_id, source=common_pb2.ZENDESK, kind=Kind.CSAT,
        author_role=common_pb2.CUSTOMER, csat_score=score, body=comment, occurred_at=rated_at,
        attributes={"zendesk.type": TRIGGER_CSAT})])


def normalise_webhook(tenant_id: str, payload: dict, ai_author_ids=AI_AUTHOR_IDS) -> Normalised:
    if not isinstance(payload, dict):
        raise WrongShape("the body is not a JSON object")
    kind_name = payload.get("type")
    if kind_name == TRIGGER_CSAT:
        return normalise_trigger_rating(tenant_id, payload)
    if not isinstance(kind_name, str) or not kind_name.startswith(PREFIX):
        raise WrongShape("missing or foreign `type` (expected zen:event-type:...)")
    name = kind_name[len(PREFIX):]
    vendor_id = require(payload, "id")
    if not isinstance(payload.get("detail"), dict):
        raise WrongShape("missing field detail")
    ticket_id = _ticket_id(payload)
    detail = payload["detail"]
    event = payload.get("event") if isinstance(payload.get("event"), dict) else {}
    occurred_at = payload.get("time") or detail.get("updated_at")
    common = dict(tenant_id=tenant_id, ticket_id=ticket_id, source=common_pb2.ZENDESK, occurred_at=occurred_at,
                  vendor_event_id=str(vendor_id), subject=detail.get("subject") or "",
                  attributes={"zendesk.type": name})
    try:
        if name == CREATED:
            return Normalised([new_event(
                event_id=event_id(SOURCE, tenant_id, ticket_id, "created"), kind=Kind.TICKET_CREATED,
                author_role=common_pb2.CUSTOMER, body=detail.get("description") or "",
                status=status_from(detail.get("status") or "new"), author_id=str(detail.get("requester_id") or ""),
                category=_category(detail), **common)])
        if name == COMMENT_ADDED:
            comment = require(payload, "event", "comment")
            author = comment.get("author") or {}
            author_id = str(author.get("id") or "")
            if author_id in ai_author_ids:
                role = common_pb2.AI
            elif author.get("is_staff"):
                role = common_pb2.AGENT
            else:
                role = common_pb2.CUSTOMER
            return Normalised([new_event(
                event_id=event_id(SOURCE, tenant_id, ticket_id, "comment", require(comment, "id")),
                kind=Kind.MESSAGE, author_role=role, body=str(comment.get("body") or ""),
                internal=not comment.get("is_public", True), author_id=author_id, **common)])
        if name == STATUS_CHANGED:
            return Normalised([new_event(
                event_id=event_id(SOURCE, tenant_id, ticket_id, "status", vendor_id), kind=Kind.STATUS_CHANGED,
                author_role=common_pb2.SYSTEM, status=status_from(require(event, "current")),
                previous_status=status_from(event["previous"]) if event.get("previous") else None,
                author_id=str(detail.get("actor_id") or ""), **common)])
        if name in (AGENT_ASSIGNMENT, GROUP_ASSIGNMENT):
            current = event.get("current")
            assignee = current.get("id") if isinstance(current, dict) else current
            if name == GROUP_ASSIGNMENT:
                assignee = f"group:{assignee}" if assignee else ""
            return Normalised([new_event(
                event_id=event_id(SOURCE, tenant_id, ticket_id, "assigned", vendor_id), kind=Kind.ASSIGNED,
                author_role=common_pb2.SYSTEM, assignee_id=str(assignee or ""), **common)])
        if name in CSAT_TYPES:
            return Normalised([new_event(
                event_id=event_id(SOURCE, tenant_id, ticket_id, "csat", vendor_id), kind=Kind.CSAT,
                author_role=common_pb2.CUSTOMER, csat_score=csat_score(require(event, "current")),
                body=str(optional(event, "comment", default="") or ""), **common)])
    except (TypeError, ValueError) as exc:
        if isinstance(exc, WrongShape):
            raise
        raise WrongShape(str(exc)) from None
    return Normalised(ignored=name)


def _category(ticket: dict) -> str:
    tags = ticket.get("tags")
    if isinstance(tags, list) and tags:
        return str(tags[0])
    return str(ticket.get("type") or "")


# -- history export ---------------------------------------------------------------------------------------


def normalise_export_ticket(tenant_id: str, ticket: dict, agent_ids=frozenset(),
                            ai_author_ids=AI_AUTHOR_IDS) -> list:
    """One exported ticket (incremental export row, with `comments` and/or `audits`) → its events.

    Who is a customer: the requester (and any author not known as an agent); agents are the users
    with role agent/admin in the export's `users`, or any author other than the requester.
    """
    if not isinstance(ticket, dict):
        raise WrongShape("a ticket must be a JSON object")
    ticket_id = str(require(ticket, "id"))
    requester = str(ticket.get("requester_id") or "")
    common = dict(tenant_id=tenant_id, ticket_id=ticket_id, source=common_pb2.IMPORT,
                  subject=ticket.get("subject") or "", attributes={"import": "zendesk"})
    events = [new_event(event_id=event_id(SOURCE, tenant_id, ticket_id, "created"), kind=Kind.TICKET_CREATED,
                        author_role=common_pb2.CUSTOMER, body=ticket.get("description") or "",
                        status=common_pb2.NEW, occurred_at=ticket.get("created_at"), author_id=requester,
                        category=_category(ticket), **common)]

    def role_of(author_id: str) -> int:
        if author_id in ai_author_ids:
            return common_pb2.AI
        if agent_ids:
            return common_pb2.AGENT if author_id in agent_ids else common_pb2.CUSTOMER
        return common_pb2.CUSTOMER if author_id == requester else common_pb2.AGENT

    comments = ticket.get("comments") or []
    audits = ticket.get("audits") or []
    if not isinstance(comments, list) or not isinstance(audits, list):
        raise WrongShape("comments and audits must be lists")
    for comment in comments:
        author_id = str(require(comment, "author_id"))
        events.append(new_event(
            event_id=event_id(SOURCE, tenant_id, ticket_id, "comment", require(comment, "id")), kind=Kind.MESSAGE,
            author_role=role_of(author_id), body=str(comment.get("plain_body") or comment.get("body") or ""),
            internal=not comment.get("public", True), author_id=author_id, occurred_at=comment.get("created_at"),
            **common))
    for audit in audits:
        author_id = str(audit.get("author_id") or "")
        for child in require(audit, "events"):
            kind = child.get("type")
            if kind == "Comment" and not comments:
                events.append(new_event(
                    event_id=event_id(SOURCE, tenant_id, ticket_id, "comment", require(child, "id")),
                    kind=Kind.MESSAGE, author_role=role_of(str(child.get("author_id") or author_id)),
                    body=str(child.get("plain_body") or child.get("body") or ""),
                    internal=not child.get("public", True), author_id=str(child.get("author_id") or author_id),
                    occurred_at=audit.get("created_at"), **common))
            elif kind == "Change" and child.get("field_name") == "status":
                events.append(new_event(
                    event_id=event_id(SOURCE, tenant_id, ticket_id, "status", require(child, "id")),
                    kind=Kind.STATUS_CHANGED, author_role=common_pb2.SYSTEM, status=status_from(child.get("value")),
                    previous_status=status_from(child["previous_value"]) if child.get("previous_value") else None,
                    occurred_at=audit.get("created_at"), author_id=author_id, **common))
            elif kind == "Change" and child.get("field_name") == "assignee_id" and child.get("value"):
                events.append(new_event(
                    event_id=event_id(SOURCE, tenant_id, ticket_id, "assigned", require(child, "id")),
                    kind=Kind.ASSIGNED, author_role=common_pb2.SYSTEM, assignee_id=str(child["value"]),
                    occurred_at=audit.get("created_at"), **common))
    status = ticket.get("status")
    has_status_change = any(e.kind == Kind.STATUS_CHANGED for e in events)
    if status and not has_status_change:
        # A plain export row (comments only) still says how the ticket ended.
        events.append(new_event(event_id=event_id(SOURCE, tenant_id, ticket_id, "final-status", status),
                                kind=Kind.STATUS_CHANGED, author_role=common_pb2.SYSTEM, status=status_from(status),
                                occurred_at=ticket.get("updated_at") or ticket.get("created_at"), **common))
    rating = ticket.get("satisfaction_rating")
    if isinstance(rating, dict) and rating.get("score") not in (None, "unoffered", "offered"):
        events.append(new_event(event_id=event_id(SOURCE, tenant_id, ticket_id, "csat", rating.get("id", "")),
                                kind=Kind.CSAT, author_role=common_pb2.CUSTOMER,
                                csat_score=csat_score(rating["score"]), body=str(rating.get("comment") or ""),
                                occurred_at=ticket.get("updated_at"), **common))
    return events
