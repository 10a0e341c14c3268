"""A record faust acknowledges without the agent having finished it (what faust does to a record it skips
during a shutdown or a rebalance) is not committed: the worker, run in this process against the session's
broker, holds one record in processing, faust's ack comes for it, and the group stays before it; a record
the agent did finish is committed as before."""

from __future__ import annotations

import asyncio
import uuid

import pytest
from aiokafka import TopicPartition

from clonedesk.core.domain import topics
from clonedesk.core.kafka import encode, make_consumer, make_producer
from clonedesk.core.settings import Settings
from clonedesk.core.tenants import TenantStore
from clonedesk.ingest.domain.events import Kind, new_event
from clonedesk.ingest.entrypoints.streams import INPUT_TOPICS, create_app
from clonedesk.v1 import common_pb2

pytestmark = pytest.mark.integration


def opening(tenant_id: str, ticket_id: str):
    return new_event(event_id=uuid.uuid4().hex, tenant_id=tenant_id, ticket_id=ticket_id,
                     source=common_pb2.ZENDESK, kind=Kind.MESSAGE, author_role=common_pb2.CUSTOMER,
                     body="Where is my parcel?", occurred_at=1_763_700_000)


async def eventually(check, timeout: float = 90.0):
    deadline = asyncio.get_running_loop().time() + timeout
    while not check():
        assert asyncio.get_running_loop().time() < deadline, "timed out"
        await asyncio.sleep(0.05)


async def start_group_at_the_end(bootstrap: str, group_id: str) -> None:
    """Commit the group's offsets at the inputs' ends: the worker reads only this test's records, not the
    session's (and a group with a commit is the case the cap counts from)."""
    tps = [TopicPartition(topic, p) for topic in INPUT_TOPICS for p in (0, 1)]
    committer = make_consumer(bootstrap, group_id=group_id)
    await committer.start()
    try:
        committer.assign(tps)
        await committer.commit(await committer.end_offsets(tps))
    finally:
        await committer.stop()


async def committed_offset(bootstrap: str, group_id: str, tp: TopicPartition) -> int | None:
    reader = make_consumer(bootstrap, group_id=group_id)  # never joins: reads the group's commit only
    await reader.start()
    try:
        return await reader.committed(tp)
    finally:
        await reader.stop()


def test_a_record_faust_acks_unfinished_is_not_committed(kafka_bootstrap, tmp_path):
    settings = Settings(data_dir=tmp_path / "data", kafka_bootstrap=kafka_bootstrap, topic_partitions=2,
                        streams_stall_after_s=0)
    store = TenantStore(settings.resolved_data_dir)
    tenant = store.add("guarded")
    tenant.live = True  # a live tenant's opening message is sent on to the resolver: a send to hold
    store.save(tenant)
    app_id = f"commit-guard-{uuid.uuid4().hex[:8]}"

    async def scenario():
        app = create_app(settings, app_id=app_id)
        holding, release = asyncio.Event(), asyncio.Event()
        send = app.updater.send

        async def held_send(topic, key, value):
            if key.endswith(b":held"):
                holding.set()
                await release.wait()
            return await send(topic, key, value)
        app.updater.send = held_send
        producer = make_producer(kafka_bootstrap)
        await producer.start()
        await start_group_at_the_end(kafka_bootstrap, app_id)
        await app.start()
        try:
            held = await producer.send_and_wait(topics.HELPDESK_EVENTS, encode(opening(tenant.id, "held")),
                                                key=f"{tenant.id}:held".encode(), partition=0)
            await asyncio.wait_for(holding.wait(), 120)
            [message] = [m for m in app.consumer._unacked_messages if m.offset == held.offset]
            assert app.consumer.ack(message)  # faust's own call for a record its stream skips
            await app.consumer.commit()
            tp = TopicPartition(topics.HELPDESK_EVENTS, 0)
            assert await committed_offset(kafka_bootstrap, app_id, tp) == held.offset  # where the group began

            release.set()
            nxt = await producer.send_and_wait(topics.HELPDESK_EVENTS, encode(opening(tenant.id, "next")),
                                               key=f"{tenant.id}:next".encode(), partition=0)
            await eventually(lambda: f"{tenant.id}:next" in app.conversations)
            for _ in range(200):  # faust commits every half second
                after = await committed_offset(kafka_bootstrap, app_id, tp)
                if after == nxt.offset + 1:
                    break
                await asyncio.sleep(0.1)
            assert after == nxt.offset + 1, (after, nxt.offset)
        finally:
            release.set()
            await app.stop()
            await producer.stop()

    asyncio.run(scenario())
