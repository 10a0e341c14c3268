"""Every contract through the real broker (tansu), and an independent client (kcat) on the same topics."""

import asyncio
import subprocess
import uuid

import pytest
from google.protobuf.timestamp_pb2 import Timestamp

from clonedesk.core.domain import topics
from clonedesk.core.kafka import (
    BrokerUnavailable, PoisonMessage, decode, encode, make_consumer, make_producer, send_dead_letter, wait_for_broker,
)
from clonedesk.core.telemetry import inject_headers
from clonedesk.v1 import adapters_pb2, common_pb2, events_pb2, outbound_pb2, outcomes_pb2, resolver_pb2, training_pb2
from tests.conftest import kcat_env

pytestmark = pytest.mark.integration

NOW = Timestamp(seconds=1_790_000_000)
TURNS = [common_pb2.Turn(role=common_pb2.CUSTOMER, text="My card was charged twice"),
         common_pb2.Turn(role=common_pb2.AGENT, text="Let me check that for you.")]

SAMPLES = {
    topics.HELPDESK_EVENTS: events_pb2.HelpdeskEvent(
        event_id="zd:1:2", tenant_id="acme", ticket_id="T1", source=common_pb2.ZENDESK,
        kind=events_pb2.HelpdeskEvent.MESSAGE, author_role=common_pb2.CUSTOMER, body="hello",
        status=common_pb2.OPEN, csat_score=0, category="billing", occurred_at=NOW, attributes={"via": "web"}),
    topics.TRAINING_SAMPLES: training_pb2.TrainingSample(
        sample_id="acme:T1:1", tenant_id="acme", ticket_id="T1", context=TURNS[:1], reply="Refunded.",
        decision=common_pb2.ACTION, action="Refund(amount=10)", occurred_at=NOW),
    topics.TICKETS_TO_RESOLVE: resolver_pb2.ResolveRequest(
        tenant_id="acme", ticket_id="T1", conversation=TURNS, request_id="zd:1:2"),
    topics.RESOLUTIONS: resolver_pb2.Resolution(
        resolution_id="r-1", tenant_id="acme", ticket_id="T1", decision=common_pb2.RESOLVE, reply="Done",
        adapter_version="acme@v2", created_at=NOW, latency_ms=120, confidence=0.9),
    topics.RESOLUTION_OUTCOMES: outcomes_pb2.ResolutionOutcome(
        event_id="zd:1:3", resolution_id="r-1", tenant_id="acme", ticket_id="T1",
        kind=outcomes_pb2.ResolutionOutcome.CSAT, csat_score=5, occurred_at=NOW),
    topics.ADAPTERS_PUBLISHED: adapters_pb2.AdapterPublished(
        tenant_id="acme", version=2, path="/data/adapters/acme/v2", metrics={"decision_accuracy": 0.8},
        name="acme@v2"),
    topics.HELPDESK_OUTBOUND: outbound_pb2.OutboundReply(
        reply_id="r-1", resolution_id="r-1", tenant_id="acme", ticket_id="T1", source=common_pb2.ZENDESK,
        body="Done", created_at=NOW),
}


async def _read_until(bootstrap, topic, wanted, count=1, timeout=30.0):
    """Records of `topic` for which `wanted(record)` holds, read from the start until `count` are found.

    No consumer group (other tests share the topics, and group joins are slow on this broker)."""
    consumer = make_consumer(bootstrap, topic, group_id=None)
    await consumer.start()
    found = []
    try:
        async with asyncio.timeout(timeout):
            while len(found) < count:
                for partition_records in (await consumer.getmany(timeout_ms=300)).values():
                    found.extend(r for r in partition_records if wanted(r))
    finally:
        await consumer.stop()
    return found


def _tagged(run):
    return lambda record: dict(record.headers).get("run") == run.encode()


async def test_every_message_type_round_trips_with_headers(kafka_bootstrap):
    run = uuid.uuid4().hex[:8]
    producer = make_producer(kafka_bootstrap)
    await producer.start()
    try:
        for topic, message in SAMPLES.items():
            message = type(message).FromString(encode(message))
            if hasattr(message, "ticket_id"):
                message.ticket_id = f"T-{run}"
            key = topics.message_key("acme", message.ticket_id) if hasattr(message, "ticket_id") else b"acme"
            headers = inject_headers([("run", run.encode())])
            metadata = await producer.send_and_wait(topic, encode(message), key=key, headers=headers)
            assert metadata.offset >= 0  # acks=all: the broker has it
            SAMPLES[topic] = message
    finally:
        await producer.stop()
    for topic, sent in SAMPLES.items():
        mine = await _read_until(kafka_bootstrap, topic, _tagged(run))
        received = decode(type(sent), mine[0].value)
        assert received == sent, topic
        assert dict(mine[0].headers)["run"] == run.encode()  # headers travel with the record




async def test_kcat_produces_and_our_consumer_reads(kafka_bootstrap, tmp_path):
    run = uuid.uuid4().hex[:8]
    events = [events_pb2.HelpdeskEvent(event_id=f"kcat-{run}-{i}", tenant_id="acme", ticket_id=f"K{run}",
                                       kind=events_pb2.HelpdeskEvent.MESSAGE, body=f"message {i}") for i in range(3)]
    topic = f"kcat-check-{run}"
    files = []
    for index, event in enumerate(events):
        # Protobuf bytes may hold newlines: kcat sends each named file whole, as one record.
        path = tmp_path / f"event-{index}.bin"
        path.write_bytes(encode(event))
        files.append(str(path))
    subprocess.run(["kcat", "-P", "-b", kafka_bootstrap, "-t", topic, "-k", f"acme:K{run}", "-p", "0", *files],
                   env=kcat_env(), check=True, timeout=30, capture_output=True)
    records = await _read_until(kafka_bootstrap, topic, lambda r: True, count=3)
    assert [decode(events_pb2.HelpdeskEvent, r.value) for r in records] == events
    assert {r.key for r in records} == {f"acme:K{run}".encode()}
    # And the other way: kcat reads what our producer wrote, byte for byte.
    producer = make_producer(kafka_bootstrap)
    await producer.start()
    try:
        await producer.send_and_wait(topic, b"from-clonedesk", key=b"k")
    finally:
        await producer.stop()
    out = subprocess.run(["kcat", "-C", "-b", kafka_bootstrap, "-t", topic, "-e", "-o", "beginning", "-f", "%s\n"],
                         env=kcat_env(), check=True, timeout=30, capture_output=True).stdout
    assert b"from-clonedesk" in out


async def test_poison_record_is_parked_on_the_dead_letter_topic(kafka_bootstrap):
    run = uuid.uuid4().hex[:8]
    with pytest.raises(PoisonMessage):
        decode(events_pb2.HelpdeskEvent, b"\xff\xff\xff not protobuf")
    producer = make_producer(kafka_bootstrap)
    await producer.start()
    try:
        await send_dead_letter(producer, topics.HELPDESK_EVENTS, b"acme:1", b"\xff\xff" + run.encode(),
                               "cannot decode", partition=1, offset=7)
    finally:
        await producer.stop()
    mine = await _read_until(kafka_bootstrap, topics.dlq(topics.HELPDESK_EVENTS), lambda r: r.value.endswith(run.encode()))
    headers = dict(mine[0].headers)
    assert mine[0].value == b"\xff\xff" + run.encode()  # unchanged: nothing lost
    assert headers["dlq.reason"] == b"cannot decode" and headers["dlq.source_topic"] == b"helpdesk.events"
    assert headers["dlq.source_offset"] == b"7"


async def test_unreachable_broker_is_a_clear_error():
    with pytest.raises(BrokerUnavailable, match="127.0.0.1:1 is not reachable"):
        await wait_for_broker("127.0.0.1:1", timeout=1.5)
