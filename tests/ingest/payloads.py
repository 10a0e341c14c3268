"""Webhook and export payloads shaped like the vendors' documented examples (Zendesk event webhooks,
Intercom notification_event with a conversation item), parameterised for the tests."""

from __future__ import annotations

import json

ZENDESK_ACCOUNT = 12514403
CUSTOMER_ID = "8447388090494"
AGENT_ID = "8447388090500"


def zendesk_detail(ticket_id: str, status: str = "OPEN", **extra) -> dict:
    detail = {
        "actor_id": CUSTOMER_ID, "assignee_id": None, "brand_id": "8447346621310",
        "created_at": "2026-11-21T10:00:00Z", "custom_status": "8447388088702",
        "description": "My card was charged twice for order 1138, can you refund one?",
        "external_id": None, "form_id": "8646151517822", "group_id": "8447320466430", "id": ticket_id,
        "is_public": True, "organization_id": "8447346622718", "priority": "LOW", "requester_id": CUSTOMER_ID,
        "status": status, "subject": "Charged twice", "submitter_id": CUSTOMER_ID, "tags": ["billing"],
        "type": "INCIDENT", "updated_at": "2026-11-21T10:00:00Z", "via": {"channel": "web_service"},
    }
    detail.update(extra)
    return detail


def zendesk_event(kind: str, ticket_id: str, event: dict, vendor_id: str, time: str = "2026-11-21T10:00:00Z",
                  status: str = "OPEN") -> dict:
    return {
        "account_id": ZENDESK_ACCOUNT, "detail": zendesk_detail(ticket_id, status), "event": event,
        "id": vendor_id, "subject": f"zen:ticket:{ticket_id}", "time": time,
        "type": f"zen:event-type:{kind}", "zendesk_event_version": "2022-11-06",
    }


def zendesk_created(ticket_id: str, time: str = "2026-11-21T10:00:00Z") -> dict:
    return zendesk_event("ticket.created", ticket_id, {}, f"created-{ticket_id}", time, status="NEW")


def zendesk_comment(ticket_id: str, comment_id: str, body: str, *, staff: bool, public: bool = True,
                    author_id: str | None = None, time: str = "2026-11-21T10:01:00Z") -> dict:
    author = {"id": author_id or (AGENT_ID if staff else CUSTOMER_ID), "is_staff": staff,
              "name": "Agent Smith" if staff else "Jane Customer"}
    event = {"comment": {"author": author, "body": body, "id": comment_id, "is_public": public}}
    return zendesk_event("ticket.comment_added", ticket_id, event, f"evt-{comment_id}", time)


def zendesk_status(ticket_id: str, vendor_id: str, previous: str, current: str,
                   time: str = "2026-11-21T10:05:00Z") -> dict:
    return zendesk_event("ticket.status_changed", ticket_id, {"current": current, "previous": previous},
                         vendor_id, time, status=current)


def zendesk_assigned(ticket_id: str, vendor_id: str, assignee: str, time: str = "2026-11-21T10:03:00Z") -> dict:
    return zendesk_event("ticket.agent_assignment_changed", ticket_id,
                         {"current": {"id": assignee}, "previous": None}, vendor_id, time)


def zendesk_rating(ticket_id: str, vendor_id: str, score, time: str = "2026-11-21T10:09:00Z") -> dict:
    return zendesk_event("ticket.satisfaction_rating_changed", ticket_id,
                         {"current": score, "previous": None}, vendor_id, time)


def zendesk_trigger_rating(ticket_id: str, rating: str, comment: str = "",
                           rated_at: str = "2026-11-21T10:09Z") -> dict:
    """The body our satisfaction trigger sends (README, "Satisfaction ratings"), its placeholders rendered:
    `{{ticket.updated_at_with_timestamp}}` renders to the minute."""
    return {"type": "clonedesk:ticket.satisfaction_rated", "ticket_id": ticket_id, "rating": rating,
            "comment": comment, "rated_at": rated_at}


def intercom_conversation(conversation_id: str, parts: list | None = None, rating: dict | None = None,
                          body: str = "<p>Hi, my parcel never arrived.</p>", created_at: int = 1763719200) -> dict:
    return {
        "type": "conversation", "id": conversation_id, "created_at": created_at, "updated_at": created_at + 60,
        "source": {"type": "conversation", "id": f"src-{conversation_id}", "delivered_as": "customer_initiated",
                   "subject": "", "body": body,
                   "author": {"type": "user", "id": "5310d8e7598c9a0b24000002", "name": "Jane",
                              "email": "jane@example.com"}, "attachments": [], "url": None},
        "contacts": {"type": "contact.list", "contacts": [{"type": "contact", "id": "5310d8e7598c9a0b24000002"}]},
        "open": True, "state": "open", "read": True, "admin_assignee_id": None, "team_assignee_id": None,
        "conversation_rating": rating,
        "conversation_parts": {"type": "conversation_part.list", "conversation_parts": parts or [],
                               "total_count": len(parts or [])},
    }


def intercom_part(part_id: str, part_type: str, body: str | None = None, author_type: str = "admin",
                  author_id: str = "814860", created_at: int = 1763719260, **extra) -> dict:
    part = {"type": "conversation_part", "id": part_id, "part_type": part_type, "body": body,
            "created_at": created_at, "updated_at": created_at, "notified_at": created_at,
            "assigned_to": None, "author": {"type": author_type, "id": author_id, "name": "Someone"},
            "attachments": [], "external_id": None, "redacted": False}
    part.update(extra)
    return part


def intercom_notification(topic: str, conversation: dict, notification_id: str = "notif_ccd8a4d0") -> dict:
    return {
        "type": "notification_event", "app_id": "a86dr8yl", "data": {"type": "notification_event_data",
                                                                     "item": conversation},
        "links": {}, "id": notification_id, "topic": topic, "delivery_status": "pending",
        "delivery_attempts": 1, "delivered_at": 0, "first_sent_at": 1763719300, "created_at": 1763719300,
        "self": None,
    }


def body_of(payload: dict) -> bytes:
    return json.dumps(payload).encode()
