"""What makes a ResolveRequest acceptable, and the ids derived from it (pure)."""

from __future__ import annotations

import hashlib
import uuid

from clonedesk.core.domain.tenants import TENANT_ID_PATTERN
from clonedesk.v1 import common_pb2

MAX_TICKET_ID_CHARS = 200
MAX_TURNS = 200
MAX_TURN_CHARS = 20_000
CONVERSATION_ROLES = (common_pb2.CUSTOMER, common_pb2.AGENT, common_pb2.AI, common_pb2.SYSTEM)

# A fixed namespace: the same (tenant, request) pair gets the same resolution id in every process, forever.
RESOLUTION_NAMESPACE = uuid.UUID("5b0c8a2e-6f0e-4c55-9a53-6b1b0b7d2f10")


class InvalidRequest(ValueError):
    """The request cannot be answered as sent (INVALID_ARGUMENT); the message says what is wrong."""


def validate_request(request) -> None:
    """Raise InvalidRequest unless `request` (a ResolveRequest) names a tenant and ticket and carries a
    conversation with something the customer said."""
    if not TENANT_ID_PATTERN.fullmatch(request.tenant_id or ""):
        raise InvalidRequest("tenant_id must be 1-40 characters of lowercase letters, digits and '-'")
    if not request.ticket_id or len(request.ticket_id) > MAX_TICKET_ID_CHARS:
        raise InvalidRequest(f"ticket_id must be 1-{MAX_TICKET_ID_CHARS} characters")
    turns = list(request.conversation)
    if not turns:
        raise InvalidRequest("conversation is empty")
    if len(turns) > MAX_TURNS:
        raise InvalidRequest(f"conversation has {len(turns)} turns; at most {MAX_TURNS}")
    for index, turn in enumerate(turns):
        if turn.role not in CONVERSATION_ROLES:
            raise InvalidRequest(f"turn {index} has no role")
        if len(turn.text) > MAX_TURN_CHARS:
            raise InvalidRequest(f"turn {index} is longer than {MAX_TURN_CHARS} characters")
    if not any(t.role == common_pb2.CUSTOMER and t.text.strip() for t in turns):
        raise InvalidRequest("conversation has no customer text to answer")


def idempotency_key(request) -> str:
    """The request id, or, when the caller sent none, a digest of ticket and conversation: a redelivered
    copy of one request maps to one key either way."""
    if request.request_id:
        return request.request_id
    digest = hashlib.sha256(request.ticket_id.encode())
    for turn in request.conversation:
        digest.update(b"\x00%d\x00" % turn.role + turn.text.encode())
    return "conv-" + digest.hexdigest()[:32]


def resolution_id(tenant_id: str, key: str) -> str:
    """Deterministic (uuid5) from tenant and idempotency key: redelivery reuses the resolution id, so
    billing downstream counts it once."""
    return str(uuid.uuid5(RESOLUTION_NAMESPACE, f"{tenant_id}\x00{key}"))


# gRPC metadata naming the request's tenant, for ingresses that route tenant-affine (consistent hashing).
TENANT_HEADER = "x-tenant-id"
