"""Protobuf records into the core's values; broken ones are poison (for the dead-letter topic)."""

from datetime import datetime, timezone

import pytest

from clonedesk.core.kafka import PoisonMessage
from clonedesk.metering.adapters.codec import outcome_from_record, reply_from_record
from clonedesk.metering.domain.events import AiReply, Outcome, OutcomeKind
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
