"""The Zendesk event webhooks a helpdesk sends for a ticket's life (pure): ticket created, comments by the
customer, an agent or CloneDesk's own API user, status changes, agent assignments, satisfaction ratings.

Shapes follow Zendesk's event webhooks (`zen:event-type:ticket.*`), as the ingest gateway reads them.
Vendor ids are derived from the ticket and a per-ticket sequence, so sending the same ticket again sends
the same ids (the gateway's event ids then make the second sending change nothing).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

from clonedesk.core.domain.ids import event_id

AI_AUTHOR_ID = "clonedesk-ai"  # the author CloneDesk's replies come back under (the outbound poster's)
ACCOUNT_ID = 1


@dataclass(frozen=True)
class Webhook:
    """One webhook to send, and the id of the event the gateway will write for it."""

    payload: dict
    event_id: str


def _iso(at: datetime) -> str:
    return at.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _envelope(kind: str, vendor_id: str, ticket_id: str, at: datetime, detail: dict, event: dict) -> dict:
    return {"type": f"zen:event-type:ticket.{kind}", "id": vendor_id, "time": _iso(at),
            "subject": f"zen:ticket:{ticket_id}", "account_id": ACCOUNT_ID,
            "detail": {"id": ticket_id, **detail}, "event": event}


def ticket_created(tenant_id: str, ticket_id: str, description: str, requester_id: str, category: str,
                   at: datetime) -> Webhook:
    detail = {"status": "new", "subject": description[:80], "description": description,
              "requester_id": requester_id, "tags": [category] if category else [], "created_at": _iso(at)}
    return Webhook(_envelope("created", f"{ticket_id}-created", ticket_id, at, detail, {}),
                   event_id("zendesk", tenant_id, ticket_id, "created"))


def comment_added(tenant_id: str, ticket_id: str, comment_id: str, body: str, author_id: str, is_staff: bool,
                  at: datetime) -> Webhook:
    event = {"comment": {"id": comment_id, "body": body, "is_public": True,
                         "author": {"id": author_id, "is_staff": is_staff, "name": author_id}}}
    return Webhook(_envelope("comment_added", f"{ticket_id}-comment-{comment_id}", ticket_id, at, {}, event),
                   event_id("zendesk", tenant_id, ticket_id, "comment", comment_id))


def status_changed(tenant_id: str, ticket_id: str, sequence: str, previous: str, current: str,
                   at: datetime) -> Webhook:
    vendor_id = f"{ticket_id}-status-{sequence}"
    return Webhook(_envelope("status_changed", vendor_id, ticket_id, at, {"status": current},
                             {"previous": previous, "current": current}),
                   event_id("zendesk", tenant_id, ticket_id, "status", vendor_id))


def agent_assigned(tenant_id: str, ticket_id: str, sequence: str, agent_id: str, at: datetime) -> Webhook:
    vendor_id = f"{ticket_id}-assigned-{sequence}"
    return Webhook(_envelope("agent_assignment_changed", vendor_id, ticket_id, at, {"assignee_id": agent_id},
                             {"previous": None, "current": {"id": agent_id}}),
                   event_id("zendesk", tenant_id, ticket_id, "assigned", vendor_id))


def satisfaction_rated(tenant_id: str, ticket_id: str, score: int, at: datetime) -> Webhook:
    vendor_id = f"{ticket_id}-csat"
    return Webhook(_envelope("satisfaction_rating_changed", vendor_id, ticket_id, at, {},
                             {"current": score, "previous": None}),
                   event_id("zendesk", tenant_id, ticket_id, "csat", vendor_id))


def resolved_ticket(tenant_id: str, dialogue: dict, at: datetime) -> list[Webhook]:
    """A human-resolved SGD dialogue as the webhooks of its ticket: created, every turn as a public
    comment (USER: the requester, SYSTEM: the agent), then solved."""
    ticket_id = str(dialogue["dialogue_id"])
    turns = [t for t in dialogue["turns"] if str(t.get("utterance", "")).strip()]
    requester = f"customer-{ticket_id}"
    hooks = [ticket_created(tenant_id, ticket_id, turns[0]["utterance"], requester, intent_of(dialogue), at)]
    for index, turn in enumerate(turns):
        customer = turn["speaker"] == "USER"
        hooks.append(comment_added(tenant_id, ticket_id, f"t{index}", turn["utterance"],
                                   requester if customer else "agent-1", not customer,
                                   at + timedelta(seconds=30 * (index + 1))))
    hooks.append(status_changed(tenant_id, ticket_id, "solved", "open", "solved",
                                at + timedelta(seconds=30 * (len(turns) + 1))))
    return hooks


def intent_of(dialogue: dict) -> str:
    """The dialogue's first active intent (its ticket category), else its service."""
    for turn in dialogue.get("turns") or ():
        for frame in turn.get("frames") or ():
            intent = (frame.get("state") or {}).get("active_intent")
            if intent and intent != "NONE":
                return intent
    services = dialogue.get("services") or [""]
    return services[0]
