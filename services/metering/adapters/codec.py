"""Protobuf records of `resolutions` / `resolution.outcomes` into the rows their tables store (what the
sink writes) or the core's plain values.

A record that cannot be a fact (undecodable, no ids, a bad tenant id, no event time, an unknown kind)
raises PoisonMessage: the sink parks it on the topic's dead-letter topic and carries on.
"""

from __future__ import annotations

import json
from datetime import datetime, timezone

from clonedesk.core.kafka import PoisonMessage, decode
from clonedesk.core.tenants import InvalidTenantId, validate_tenant_id
from clonedesk.metering.domain.events import EPOCH, AiReply, Outcome, OutcomeKind, OutcomeRow, ReplyRow
from clonedesk.v1 import common_pb2, outcomes_pb2, resolver_pb2

DECISIONS = {
    common_pb2.RESOLVE: "resolve",
    common_pb2.ASK: "ask",
    common_pb2.ACTION: "action",
    common_pb2.ESCALATE: "escalate",
}
KINDS = {
    outcomes_pb2.ResolutionOutcome.CUSTOMER_CONFIRMED: OutcomeKind.CUSTOMER_CONFIRMED,
    outcomes_pb2.ResolutionOutcome.CUSTOMER_REPLIED: OutcomeKind.CUSTOMER_REPLIED,
    outcomes_pb2.ResolutionOutcome.HUMAN_TOOK_OVER: OutcomeKind.HUMAN_TOOK_OVER,
    outcomes_pb2.ResolutionOutcome.SOLVED: OutcomeKind.SOLVED,
    outcomes_pb2.ResolutionOutcome.REOPENED: OutcomeKind.REOPENED,
    outcomes_pb2.ResolutionOutcome.CSAT: OutcomeKind.CSAT,
}


ROLES = {common_pb2.CUSTOMER: "customer", common_pb2.AGENT: "agent", common_pb2.AI: "ai",
          common_pb2.SYSTEM: "system"}
# What a resolution's evidence keeps of its conversation: the latest turns, each cut at 4,000 characters.
MAX_TURNS, MAX_TEXT = 50, 4000
# Ids longer than MAX_ID are poison; labels (version, category) and reasons are cut.
MAX_ID, MAX_LABEL, MAX_REASON = 200, 200, 500

# ClickHouse DateTime64 holds 1900..2299; an event time outside this span is a broken record.
EARLIEST = datetime(2000, 1, 1, tzinfo=timezone.utc)
LATEST = datetime(2200, 1, 1, tzinfo=timezone.utc)


EARLIEST_S, LATEST_S = int((EARLIEST - EPOCH).total_seconds()), int((LATEST - EPOCH).total_seconds())
MAX_U32 = 2**32 - 1


def _event_ms(stamp, what: str) -> int:
    """Epoch milliseconds from the Timestamp's two fields (protobuf's ToDatetime is a third of a record's
    decoding time, and the tables keep milliseconds)."""
    seconds, nanos = stamp.seconds, stamp.nanos
    if not 0 <= nanos < 1_000_000_000:
        raise PoisonMessage(f"{what} is not a valid time")
    if not EARLIEST_S <= seconds < LATEST_S:
        raise PoisonMessage(f"{what} {seconds} s since 1970 is outside 2000..2200")
    return seconds * 1000 + nanos // 1_000_000


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
    if not value or len(value) > MAX_ID:
        raise PoisonMessage(f"missing or oversized {what}")
    return value


def reply_row(payload: bytes | None) -> ReplyRow:
    """A `resolutions` record as the row `resolution_events` stores (what the sink writes)."""
    message = decode(resolver_pb2.Resolution, payload)
    decision = DECISIONS.get(message.decision)
    if decision is None:
        raise PoisonMessage(f"resolution without a known decision ({message.decision})")
    if not message.HasField("created_at"):
        raise PoisonMessage("resolution without created_at")
    action_name, action_status, action_latency_ms, action_answer = (
        _action_fields(message.action_run) if message.HasField("action_run") else _NO_ACTION)
    return ReplyRow(
        _require(message.resolution_id, "resolution_id"), _tenant(message.tenant_id),
        _require(message.ticket_id, "ticket_id"), decision, message.adapter_version[:MAX_LABEL],
        _event_ms(message.created_at, "created_at"), max(0, min(int(message.latency_ms), MAX_U32)),
        message.category[:MAX_LABEL], float(message.confidence), action_name, action_status, action_latency_ms,
        _conversation(message.conversation), message.reply[:MAX_TEXT], message.action[:MAX_TEXT],
        action_answer, message.escalation_reason[:MAX_REASON])


def reply_from_record(payload: bytes | None) -> AiReply:
    return reply_row(payload).to_reply()


def _conversation(turns) -> str:
    if not turns:
        return "[]"
    return json.dumps([{"role": ROLES.get(t.role, "system"), "text": t.text[:MAX_TEXT]}
                       for t in turns[-MAX_TURNS:]], ensure_ascii=False)


_NO_ACTION = ("", "", 0, "")


# A call's name is what precedes its "(", without the ASCII white space around it (adapters/staged_sql.py
# trims the same characters).
CALL_NAME_SPACE = " \t\n\r\x0b\x0c\x1c\x1d\x1e\x1f"
ACTION_STATUSES = {number: name.lower() for name, number in resolver_pb2.ActionRun.Status.items() if number}
MAX_CALL_NAME = 100


def _action_fields(run) -> tuple[str, str, int, str]:
    """(name, status, latency ms, answer) of a back-office call; a run without a status made no call."""
    if not run.status:
        return "", "", 0, run.answer[:MAX_TEXT]
    status = ACTION_STATUSES.get(run.status)
    if status is None:
        raise PoisonMessage(f"action run with an unknown status ({run.status})")
    return (run.call.split("(", 1)[0].strip(CALL_NAME_SPACE)[:MAX_CALL_NAME], status,
            max(0, min(int(run.latency_ms), MAX_U32)), run.answer[:MAX_TEXT])


def outcome_row(payload: bytes | None) -> OutcomeRow:
    """A `resolution.outcomes` record as the row `outcome_events` stores (what the sink writes)."""
    message = decode(outcomes_pb2.ResolutionOutcome, payload)
    kind = KINDS.get(message.kind)
    if kind is None:
        raise PoisonMessage(f"outcome without a known kind ({message.kind})")
    if not message.HasField("occurred_at"):
        raise PoisonMessage("outcome without occurred_at")
    is_csat = kind is OutcomeKind.CSAT
    if is_csat and not 1 <= message.csat_score <= 5:
        raise PoisonMessage(f"CSAT outcome with score {message.csat_score} outside 1..5")
    return OutcomeRow(
        _require(message.event_id, "event_id"), _require(message.resolution_id, "resolution_id"),
        _tenant(message.tenant_id), _require(message.ticket_id, "ticket_id"), kind.value,
        message.csat_score if is_csat else 0, _event_ms(message.occurred_at, "occurred_at"),
        message.category[:MAX_LABEL])


def outcome_from_record(payload: bytes | None) -> Outcome:
    return outcome_row(payload).to_outcome()
