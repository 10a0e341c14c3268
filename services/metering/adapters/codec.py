"""Protobuf records of `resolutions` / `resolution.outcomes` into the core's plain values.

A record that cannot be a fact (undecodable, no ids, a bad tenant id, no event time, an unknown kind)
raises PoisonMessage: the sink parks it on the topic's dead-letter topic and carries on.
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

from clonedesk.core.kafka import PoisonMessage, decode
from clonedesk.core.tenants import InvalidTenantId, validate_tenant_id
from clonedesk.metering.domain.events import AiReply, Outcome, OutcomeKind
from clonedesk.v1 import common_pb2, outcomes_pb2, resolver_pb2

_DECISIONS = {
    common_pb2.RESOLVE: "resolve",
    common_pb2.ASK: "ask",
    common_pb2.ACTION: "action",
    common_pb2.ESCALATE: "escalate",
}
_KINDS = {
    outcomes_pb2.ResolutionOutcome.CUSTOMER_CONFIRMED: OutcomeKind.CUSTOMER_CONFIRMED,
    outcomes_pb2.ResolutionOutcome.CUSTOMER_REPLIED: OutcomeKind.CUSTOMER_REPLIED,
    outcomes_pb2.ResolutionOutcome.HUMAN_TOOK_OVER: OutcomeKind.HUMAN_TOOK_OVER,
    outcomes_pb2.ResolutionOutcome.SOLVED: OutcomeKind.SOLVED,
    outcomes_pb2.ResolutionOutcome.REOPENED: OutcomeKind.REOPENED,
    outcomes_pb2.ResolutionOutcome.CSAT: OutcomeKind.CSAT,
}


_ROLES = {common_pb2.CUSTOMER: "customer", common_pb2.AGENT: "agent", common_pb2.AI: "ai",
          common_pb2.SYSTEM: "system"}
# What a resolution's evidence keeps of its conversation: the latest turns, each cut at 4,000 characters.
MAX_TURNS, MAX_TEXT = 50, 4000

# ClickHouse DateTime64 holds 1900..2299; an event time outside this span is a broken record.
EARLIEST = datetime(2000, 1, 1, tzinfo=timezone.utc)
LATEST = datetime(2200, 1, 1, tzinfo=timezone.utc)


_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
_EARLIEST_S, _LATEST_S = int((EARLIEST - _EPOCH).total_seconds()), int((LATEST - _EPOCH).total_seconds())


def _event_time(stamp, what: str) -> datetime:
    # From the Timestamp's two fields: protobuf's ToDatetime is a third of a record's decoding time.
    seconds, nanos = stamp.seconds, stamp.nanos
    if not 0 <= nanos < 1_000_000_000:
        raise PoisonMessage(f"{what} is not a valid time")
    if not _EARLIEST_S <= seconds < _LATEST_S:
        raise PoisonMessage(f"{what} {seconds} s since 1970 is outside 2000..2200")
    return _EPOCH + timedelta(seconds=seconds, microseconds=nanos // 1000)


# Tenant ids already seen valid (a sink sees few, over and over); bounded so junk cannot grow it.
_VALID_TENANTS: set[str] = set()


def _tenant(tenant_id: str) -> str:
    if tenant_id in _VALID_TENANTS:
        return tenant_id
    try:
        validate_tenant_id(tenant_id)
    except InvalidTenantId as exc:
        raise PoisonMessage(str(exc)) from None
    if len(_VALID_TENANTS) < 10_000:
        _VALID_TENANTS.add(tenant_id)
    return tenant_id


def _require(value: str, what: str) -> str:
    if not value or len(value) > 200:
        raise PoisonMessage(f"missing or oversized {what}")
    return value


def reply_from_record(payload: bytes | None) -> AiReply:
    message = decode(resolver_pb2.Resolution, payload)
    if message.decision not in _DECISIONS:
        raise PoisonMessage(f"resolution without a known decision ({message.decision})")
    if not message.HasField("created_at"):
        raise PoisonMessage("resolution without created_at")
    return AiReply(
        resolution_id=_require(message.resolution_id, "resolution_id"),
        tenant_id=_tenant(message.tenant_id),
        ticket_id=_require(message.ticket_id, "ticket_id"),
        decision=_DECISIONS[message.decision],
        created_at=_event_time(message.created_at, "created_at"),
        latency_ms=max(0, min(int(message.latency_ms), 2**32 - 1)),
        category=message.category[:200],
        adapter_version=message.adapter_version[:200],
        confidence=float(message.confidence),
        conversation=_conversation(message.conversation),
        reply=message.reply[:MAX_TEXT], action=message.action[:MAX_TEXT],
        escalation_reason=message.escalation_reason[:500],
        **(_action_fields(message.action_run) if message.HasField("action_run") else {}),
    )


def _conversation(turns) -> str:
    if not turns:
        return "[]"
    return json.dumps([{"role": _ROLES.get(t.role, "system"), "text": t.text[:MAX_TEXT]}
                       for t in turns[-MAX_TURNS:]], ensure_ascii=False)


def _action_fields(run) -> dict:
    fields = {"action_answer": run.answer[:MAX_TEXT]}
    if run.status:
        fields.update(action_name=run.call.split("(", 1)[0].strip()[:100],
                      action_status=resolver_pb2.ActionRun.Status.Name(run.status).lower(),
                      action_latency_ms=max(0, min(int(run.latency_ms), 2**32 - 1)))
    return fields


def outcome_from_record(payload: bytes | None) -> Outcome:
    message = decode(outcomes_pb2.ResolutionOutcome, payload)
    if message.kind not in _KINDS:
        raise PoisonMessage(f"outcome without a known kind ({message.kind})")
    if not message.HasField("occurred_at"):
        raise PoisonMessage("outcome without occurred_at")
    kind = _KINDS[message.kind]
    if kind is OutcomeKind.CSAT and not 1 <= message.csat_score <= 5:
        raise PoisonMessage(f"CSAT outcome with score {message.csat_score} outside 1..5")
    return Outcome(
        event_id=_require(message.event_id, "event_id"),
        resolution_id=_require(message.resolution_id, "resolution_id"),
        tenant_id=_tenant(message.tenant_id),
        ticket_id=_require(message.ticket_id, "ticket_id"),
        kind=kind,
        occurred_at=_event_time(message.occurred_at, "occurred_at"),
        csat_score=message.csat_score if kind is OutcomeKind.CSAT else 0,
        category=message.category[:200],
    )
