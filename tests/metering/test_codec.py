"""Protobuf records into the core's values; broken ones are poison (for the dead-letter topic)."""

from datetime import datetime, timezone

import pytest

from clonedesk.core.kafka import PoisonMessage
from clonedesk.metering.adapters.codec import outcome_from_record, outcome_row, reply_from_record, reply_row
from clonedesk.metering.adapters.store import EVIDENCE_COLUMNS, OUTCOME_COLUMNS, REPLY_COLUMNS
from clonedesk.metering.domain.events import AiReply, Outcome, OutcomeKind, OutcomeRow, ReplyRow, to_millis
from tests.metering.helpers import outcome_message, reply_message

AT = datetime(2026, 10, 5, 9, 30, 15, 250000, tzinfo=timezone.utc)
REPLY = AiReply("r1", "acme", "t1", "escalate", AT, latency_ms=321, category="billing",
                adapter_version="acme@v1", confidence=0.9)
OUTCOME = Outcome("e1", "r1", "acme", "t1", OutcomeKind.CSAT, AT, csat_score=4, category="billing")


def test_round_trip_of_both_messages():
    reply = reply_from_record(reply_message(REPLY).SerializeToString())
    assert (reply.resolution_id, reply.decision, reply.created_at, reply.latency_ms, reply.category) == \
        ("r1", "escalate", AT, 321, "billing")
    assert reply.escalated
    assert outcome_from_record(outcome_message(OUTCOME).SerializeToString()) == OUTCOME


def broken_reply(**changes):
    message = reply_message(REPLY)
    for name, value in changes.items():
        setattr(message, name, value)
    return message


@pytest.mark.parametrize("payload", [
    None, b"\xff\xfe garbage",
    broken_reply(tenant_id="Bad Tenant").SerializeToString(),
    broken_reply(resolution_id="").SerializeToString(),
    broken_reply(decision=0).SerializeToString(),
])
def test_broken_resolutions_are_poison(payload):
    with pytest.raises(PoisonMessage):
        reply_from_record(payload)


def test_missing_or_absurd_times_and_bad_scores_are_poison():
    message = reply_message(REPLY)
    message.ClearField("created_at")
    with pytest.raises(PoisonMessage):
        reply_from_record(message.SerializeToString())
    message.created_at.seconds = 1
    with pytest.raises(PoisonMessage, match="outside"):
        reply_from_record(message.SerializeToString())
    rating = outcome_message(OUTCOME)
    rating.csat_score = 9
    with pytest.raises(PoisonMessage, match="CSAT"):
        outcome_from_record(rating.SerializeToString())
    rating = outcome_message(OUTCOME)
    rating.kind = 0
    with pytest.raises(PoisonMessage):
        outcome_from_record(rating.SerializeToString())


def test_records_decode_into_the_rows_the_tables_store_in_their_column_order():
    message = reply_message(REPLY)
    message.action_run.call = "Refund(order=7)"
    message.action_run.status = 1
    message.action_run.latency_ms = 40
    message.action_run.answer = '{"ok": true}'
    message.conversation.add(role=1, text="Where is my refund?")
    row = reply_row(message.SerializeToString())
    assert [name.replace("created_ms", "created_at") for name in ReplyRow._fields] == REPLY_COLUMNS + EVIDENCE_COLUMNS
    assert (row.resolution_id, row.tenant_id, row.decision, row.created_ms, row.latency_ms) == \
        ("r1", "acme", "escalate", to_millis(AT), 321)
    assert (row.action_name, row.action_status, row.action_latency_ms, row.action_answer) == \
        ("Refund", "ok", 40, '{"ok": true}')
    assert row.conversation == '[{"role": "customer", "text": "Where is my refund?"}]'
    assert ReplyRow.of(row.to_reply()) == row  # the value and the row say the same
    outcome = outcome_row(outcome_message(OUTCOME).SerializeToString())
    assert [name.replace("occurred_ms", "occurred_at") for name in OutcomeRow._fields] == OUTCOME_COLUMNS
    assert outcome == OutcomeRow("e1", "r1", "acme", "t1", "csat", 4, to_millis(AT), "billing")
    assert outcome.to_outcome() == OUTCOME


def test_times_keep_milliseconds_truncated_as_datetime64_3_keeps_them():
    finer = datetime(2026, 10, 5, 9, 30, 15, 250999, tzinfo=timezone.utc)
    assert to_millis(finer) == to_millis(AT) == int(AT.timestamp()) * 1000 + 250
    assert to_millis(datetime(1999, 12, 31, 23, 59, 59, 999999, tzinfo=timezone.utc)) == 946684799999
    message = reply_message(REPLY)
    message.created_at.FromDatetime(finer)
    assert reply_from_record(message.SerializeToString()).created_at == AT
