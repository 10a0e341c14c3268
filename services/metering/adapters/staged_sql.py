"""adapters/codec.py in ClickHouse SQL: the staged records of a batch (adapters/wire.py) judged and turned
into the rows `resolution_events` and `outcome_events` store, where they are.

codec.py stays the definition (and the sink's path when ClickHouse cannot decode a batch);
tests/metering/test_staged_records.py holds the two equal on every rule: the same records rejected, for
the same reason, and the same rows stored. A reason is the first rule a record breaks, in codec.py's order.
"""

from __future__ import annotations

from clonedesk.core.domain.tenants import TENANT_ID_PATTERN
from clonedesk.metering.adapters.codec import (ACTION_STATUSES, CALL_NAME_SPACE, DECISIONS, EARLIEST_S, KINDS,
                                               LATEST_S, MAX_CALL_NAME, MAX_ID, MAX_LABEL, MAX_REASON, MAX_TEXT,
                                               MAX_TURNS, MAX_U32, ROLES)
from clonedesk.metering.domain.events import OutcomeKind


def literal(text: str) -> str:
    """A ClickHouse string literal of `text` (non-printable characters as \\xHH escapes)."""
    out = []
    for char in text:
        if char in "\\'":
            out.append("\\" + char)
        elif char.isprintable() and ord(char) < 0x80:
            out.append(char)
        elif ord(char) < 0x80:
            out.append(f"\\x{ord(char):02x}")
        else:
            out.append(char)
    return "'" + "".join(out) + "'"


def _names(mapping: dict[int, str]) -> str:
    """Names by number as (numbers, names) arrays for transform()."""
    numbers = sorted(mapping)
    return f"[{', '.join(str(n) for n in numbers)}], [{', '.join(literal(mapping[n]) for n in numbers)}]"


# Where records are staged (migration 0011), and the records of one batch there: the sink process's,
# numbered from `first` to `last`.
STAGES = ("staged_resolutions", "staged_outcomes")
BATCH = "staged_by = %(by)s AND staged_seq BETWEEN %(first)s AND %(last)s"


def _required(column: str) -> tuple[str, str]:
    return f"{column} = '' OR lengthUTF8({column}) > {MAX_ID}", literal(f"missing or oversized {column}")


def _tenant() -> tuple[str, str]:
    pattern = TENANT_ID_PATTERN.pattern
    return (f"NOT match(tenant_id, {literal(pattern)})",
            "concat('invalid tenant id ', " + literal("'") + ", tenant_id, "
            + literal("': use 1-40 characters of lowercase letters, digits and '-'") + ")")


def _time(column: str) -> list[tuple[str, str]]:
    seconds, nanos = f"`{column}.seconds`", f"`{column}.nanos`"
    return [(f"NOT ({nanos} >= 0 AND {nanos} < 1000000000)", literal(f"{column} is not a valid time")),
            (f"NOT ({seconds} >= {EARLIEST_S} AND {seconds} < {LATEST_S})",
             f"concat({literal(column + ' ')}, toString({seconds}), {literal(' s since 1970 is outside 2000..2200')})")]


def _absent(column: str, what: str) -> tuple[str, str]:
    """A time the record does not carry (decoded as 0; a time of exactly 0 is poison anyway)."""
    return f"`{column}.seconds` = 0 AND `{column}.nanos` = 0", literal(f"{what} without {column}")


def _utf8(message: str, columns: list[str], arrays: list[str] = ()) -> tuple[str, str]:
    checks = [f"isValidUTF8({c})" for c in columns] + [f"arrayAll(t -> isValidUTF8(t), {a})" for a in arrays]
    return f"NOT ({' AND '.join(checks)})", literal(f"cannot decode {message}: a string is not valid UTF-8")


def _first_broken(rules: list[tuple[str, str]]) -> str:
    return "multiIf(" + ", ".join(f"{condition}, {reason}" for condition, reason in rules) + ", '')"


def _ms(column: str) -> str:
    return f"`{column}.seconds` * 1000 + intDiv(`{column}.nanos`, 1000000)"


def _clamped(column: str) -> str:
    return f"toUInt32(greatest(0, least({column}, {MAX_U32})))"


def _cut(column: str, size: int) -> str:
    return f"substringUTF8({column}, 1, {size})"


_DECISION_NUMBERS = ", ".join(str(n) for n in sorted(DECISIONS))
_STATUS_NUMBERS = ", ".join(str(n) for n in sorted(ACTION_STATUSES))
RESOLUTION_REJECTED = _first_broken([
    _utf8("Resolution", ["resolution_id", "tenant_id", "ticket_id", "reply", "adapter_version", "action",
                         "request_id", "category", "escalation_reason", "`action_run.call`", "`action_run.answer`",
                         "`action_run.idempotency_key`"], ["`conversation.text`"]),
    (f"decision NOT IN ({_DECISION_NUMBERS})",
     "concat('resolution without a known decision (', toString(decision), ')')"),
    _absent("created_at", "resolution"),
    (f"`action_run.status` != 0 AND `action_run.status` NOT IN ({_STATUS_NUMBERS})",
     "concat('action run with an unknown status (', toString(`action_run.status`), ')')"),
    _required("resolution_id"), _tenant(), _required("ticket_id"), *_time("created_at"),
])

_CALL = "`action_run.call`"
_PAREN = literal("(")
_BEFORE_PAREN = (f"if(position({_CALL}, {_PAREN}) > 0, substring({_CALL}, 1, position({_CALL}, {_PAREN}) - 1),"
                 f" {_CALL})")
_CALL_NAME = _cut(f"trim(BOTH {literal(CALL_NAME_SPACE)} FROM {_BEFORE_PAREN})", MAX_CALL_NAME)
_CALLED = "`action_run.status` != 0"
_TURNS = f"greatest(1, length(`conversation.role`) - {MAX_TURNS - 1})"
_CONVERSATION = (
    "if(empty(`conversation.role`), '[]', concat('[', arrayStringConcat(arrayMap((r, t) -> concat("
    f"'{{\"role\": \"', transform(r, {_names(ROLES)}, 'system'), '\", \"text\": ', toJSONString({_cut('t', MAX_TEXT)}),"
    f" '}}'), arraySlice(`conversation.role`, {_TURNS}), arraySlice(`conversation.text`, {_TURNS})), ', '), ']'))")

# resolution_events' columns (store.py REPLY_COLUMNS + EVIDENCE_COLUMNS) from a staged resolution.
RESOLUTION_ROW = {
    "resolution_id": "resolution_id",
    "tenant_id": "tenant_id",
    "ticket_id": "ticket_id",
    "decision": f"transform(decision, {_names(DECISIONS)}, '')",
    "adapter_version": _cut("adapter_version", MAX_LABEL),
    "created_at": f"fromUnixTimestamp64Milli({_ms('created_at')}, 'UTC')",
    "latency_ms": _clamped("latency_ms"),
    "category": _cut("category", MAX_LABEL),
    "confidence": "confidence",
    "action_name": f"if({_CALLED}, {_CALL_NAME}, '')",
    "action_status": f"transform(`action_run.status`, {_names(ACTION_STATUSES)}, '')",
    "action_latency_ms": f"if({_CALLED}, {_clamped('`action_run.latency_ms`')}, 0)",
    "conversation": _CONVERSATION,
    "reply": _cut("reply", MAX_TEXT),
    "action": _cut("action", MAX_TEXT),
    "action_answer": _cut("`action_run.answer`", MAX_TEXT),
    "escalation_reason": _cut("escalation_reason", MAX_REASON),
}

_KIND_NAMES = {number: kind.value for number, kind in KINDS.items()}
_CSAT = next(number for number, kind in KINDS.items() if kind is OutcomeKind.CSAT)
OUTCOME_REJECTED = _first_broken([
    _utf8("ResolutionOutcome", ["event_id", "resolution_id", "tenant_id", "ticket_id", "category"]),
    (f"kind NOT IN ({', '.join(str(n) for n in sorted(KINDS))})",
     "concat('outcome without a known kind (', toString(kind), ')')"),
    _absent("occurred_at", "outcome"),
    (f"kind = {_CSAT} AND NOT (csat_score BETWEEN 1 AND 5)",
     "concat('CSAT outcome with score ', toString(csat_score), ' outside 1..5')"),
    _required("event_id"), _required("resolution_id"), _tenant(), _required("ticket_id"), *_time("occurred_at"),
])

# outcome_events' columns (store.py OUTCOME_COLUMNS) from a staged outcome.
OUTCOME_ROW = {
    "event_id": "event_id",
    "resolution_id": "resolution_id",
    "tenant_id": "tenant_id",
    "ticket_id": "ticket_id",
    "kind": f"transform(kind, {_names(_KIND_NAMES)}, '')",
    "csat_score": f"toUInt8(if(kind = {_CSAT}, csat_score, 0))",
    "occurred_at": f"fromUnixTimestamp64Milli({_ms('occurred_at')}, 'UTC')",
    "category": _cut("category", MAX_LABEL),
}

# Each rejected record of the batch: (seq, why), from both tables.
REJECTED = f"""
SELECT staged_seq, why FROM (SELECT staged_seq, {RESOLUTION_REJECTED} AS why FROM {{db}}.staged_resolutions
                             WHERE {BATCH}) WHERE why != ''
UNION ALL
SELECT staged_seq, why FROM (SELECT staged_seq, {OUTCOME_REJECTED} AS why FROM {{db}}.staged_outcomes
                             WHERE {BATCH}) WHERE why != ''
"""

# Once REJECTED has been read, the rejected records are deleted from the stage (DROP_REJECTED): what the
# batch has left there is valid.
DROP_REJECTED = [f"ALTER TABLE {{db}}.{table} DELETE WHERE {BATCH} AND staged_seq IN %(rejected)s"
                 for table in STAGES]
_VALID_RESOLUTIONS = f"(SELECT * FROM {{db}}.staged_resolutions WHERE {BATCH})"
_VALID_OUTCOMES = f"(SELECT * FROM {{db}}.staged_outcomes WHERE {BATCH})"

# Per tenant of the batch's (valid) records, its latest event time (ms): the watermarks it advances.
LATEST_BY_TENANT = f"""
SELECT tenant_id, max(at) FROM (
  SELECT tenant_id, {_ms('created_at')} AS at FROM {_VALID_RESOLUTIONS}
  UNION ALL
  SELECT tenant_id, {_ms('occurred_at')} AS at FROM {_VALID_OUTCOMES}
) GROUP BY tenant_id
"""

# The batch's resolutions for settling (adapters/settle_sql.py reads `settle_keys`, as a set: a resolution
# listed twice, with a reply and with an outcome, is one).
STAGE_KEYS = f"""
INSERT INTO {{db}}.settle_keys (batch_id, tenant_id, resolution_id, replied)
SELECT %(b)s, tenant_id, resolution_id, 1 FROM {_VALID_RESOLUTIONS}
UNION ALL
SELECT %(b)s, tenant_id, resolution_id, 0 FROM {_VALID_OUTCOMES}
"""

# In the records' order, as the Python path inserts its rows: of two copies the tables cannot tell
# apart (one id, one time) the later one is kept.
INSERT_RESOLUTIONS = f"""
INSERT INTO {{db}}.resolution_events ({', '.join(RESOLUTION_ROW)})
SELECT {', '.join(RESOLUTION_ROW.values())}
FROM {_VALID_RESOLUTIONS} ORDER BY staged_seq
"""
INSERT_OUTCOMES = f"""
INSERT INTO {{db}}.outcome_events ({', '.join(OUTCOME_ROW)})
SELECT {', '.join(OUTCOME_ROW.values())}
FROM {_VALID_OUTCOMES} ORDER BY staged_seq
"""

STAGED_COUNT = f"""
SELECT (SELECT count() FROM {{db}}.staged_resolutions WHERE {BATCH}) + (SELECT count() FROM {{db}}.staged_outcomes WHERE {BATCH})
"""

DROP_BATCH = [f"ALTER TABLE {{db}}.{table} DELETE WHERE {BATCH}" for table in STAGES]
DROP_STAGER = [f"ALTER TABLE {{db}}.{table} DELETE WHERE staged_by = %(by)s" for table in STAGES]
