"""Whether and how the resolver carries out the call an answer decided on (pure; no I/O).

An `ACTION` answer names a back-office call. Before anything is sent: the tenant must have an actions
URL (else the reply would announce what no one did), the call must parse, and its name must be allowed
(the tenant's `actions_allow`, or else the calls its adapter learned from its history). What is sent is
signed: `X-CloneDesk-Signature: sha256=<hex HMAC-SHA256(actions_secret, raw body)>`; the body carries the
`timestamp` (also sent as `X-CloneDesk-Timestamp`), so the signature covers it and a back office can
refuse replays. The `Idempotency-Key` depends only on the resolution and the call, so a retried or
redelivered request asks for the same thing under the same key.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from dataclasses import dataclass
from typing import Iterable

from clonedesk.core.domain.action_calls import ActionAnswer, ActionCall, MalformedCall, parse_action_call
from clonedesk.v1 import resolver_pb2

SIGNATURE_HEADER = "X-CloneDesk-Signature"
TIMESTAMP_HEADER = "X-CloneDesk-Timestamp"
IDEMPOTENCY_HEADER = "Idempotency-Key"

Status = resolver_pb2.ActionRun.Status


@dataclass(frozen=True)
class Refusal:
    """The call is not made; the ticket goes to a human for `reason`."""

    status: int  # Status
    reason: str


def allowed_names(tenant_allow: Iterable[str], trained_names: Iterable[str] | None) -> frozenset[str]:
    """The calls the resolver may make for a tenant: its explicit list when it has one, else the calls its
    adapter's history made (core.adapters.trained_action_names)."""
    explicit = frozenset(name.strip() for name in tenant_allow if name.strip())
    return explicit or frozenset(trained_names or ())


def plan_call(action: str, *, actions_url: str, actions_secret: str,
              allowed: frozenset[str]) -> ActionCall | Refusal:
    """The call to make for an ACTION answer, or why none is made."""
    if not actions_url or not actions_secret:
        return Refusal(Status.NOT_CONFIGURED, "no actions URL for this tenant: the action cannot be carried out")
    try:
        call = parse_action_call(action)
    except MalformedCall as exc:
        return Refusal(Status.MALFORMED, f"malformed action call: {exc}")
    if call.name not in allowed:
        return Refusal(Status.NOT_ALLOWED, f"action {call.name} is not allowed for this tenant")
    return call


def idempotency_key(resolution_id: str, call: ActionCall) -> str:
    return hashlib.sha256(f"{resolution_id}\n{call.text()}".encode()).hexdigest()[:40]


def request_body(tenant_id: str, ticket_id: str, resolution_id: str, call: ActionCall, timestamp: int) -> bytes:
    return json.dumps({"tenant_id": tenant_id, "ticket_id": ticket_id, "resolution_id": resolution_id,
                       "action": call.name, "parameters": call.parameters, "timestamp": timestamp},
                      ensure_ascii=False, sort_keys=True).encode()


def signature(secret: str, body: bytes) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def signed_headers(secret: str, body: bytes, timestamp: int, key: str) -> dict[str, str]:
    return {"Content-Type": "application/json", SIGNATURE_HEADER: signature(secret, body),
            TIMESTAMP_HEADER: str(timestamp), IDEMPOTENCY_HEADER: key}


def read_answer(status_code: int, body: bytes) -> ActionAnswer:
    """A 200 answer of the contract's shape; raises ValueError for anything else (the call failed)."""
    if status_code != 200:
        raise ValueError(f"the back office answered HTTP {status_code}")
    try:
        return ActionAnswer.from_json(body.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as exc:
        raise ValueError(f"the back office's answer is not of the contract's shape: {exc}") from None


def retryable(status_code: int | None) -> bool:
    """A timeout or a connection error (None) or a 5xx may pass; a 4xx or a bad answer will not."""
    return status_code is None or status_code >= 500
