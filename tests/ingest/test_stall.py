"""The stall rule (pure) and the backlog it reads (a real broker)."""

import asyncio
import uuid

import pytest

from clonedesk.core.kafka import make_consumer, make_producer
from clonedesk.ingest.adapters.backlog import GroupBacklog
from clonedesk.ingest.domain.stall import DroppedFetchWatch, StallWatch, fetched_past_commit


def test_waiting_records_and_no_progress_for_the_whole_period_is_a_stall():
    watch = StallWatch(stall_after_s=60)
    assert not watch.observe(0, backlog=5, processed=10)
    assert not watch.observe(59, backlog=5, processed=10)
    assert watch.observe(60, backlog=7, processed=10)


def test_progress_or_an_empty_backlog_restarts_the_clock():
    watch = StallWatch(stall_after_s=60)
    watch.observe(0, backlog=5, processed=10)
    assert not watch.observe(50, backlog=5, processed=11)  # it processed one: the clock starts again
    assert not watch.observe(100, backlog=5, processed=11)
    assert watch.observe(110, backlog=5, processed=11)
    watch.observe(120, backlog=0, processed=11)  # idle with nothing to do is not a stall
    assert not watch.observe(200, backlog=0, processed=11)
    assert not watch.observe(230, backlog=3, processed=11)  # work just arrived
    assert not watch.observe(289, backlog=3, processed=11)
    assert watch.observe(290, backlog=3, processed=11)


def test_a_reset_and_a_zero_period_never_call_a_stall():
    watch = StallWatch(stall_after_s=60)
    watch.observe(0, backlog=5, processed=0)
    watch.reset()  # a rebalance or recovery came in between
    assert not watch.observe(100, backlog=5, processed=0)
    never = StallWatch(stall_after_s=0)
    never.observe(0, backlog=5, processed=0)
    assert not never.observe(10_000, backlog=5, processed=0)


def test_records_handed_over_past_the_commit_with_none_in_processing_were_dropped():
    waiting = {"events:0": (97, 98), "events:1": (10, 12)}
    positions = {"events:0": 98, "events:1": 10, "events:2": 50}
    assert fetched_past_commit(positions, waiting, in_processing=0) == {"events:0"}
    assert fetched_past_commit(positions, waiting, in_processing=1) == set()  # still being worked on
    assert fetched_past_commit({"events:1": 10}, waiting, in_processing=0) == set()  # not fetched yet


def test_a_seek_back_needs_the_same_drop_twice_in_a_row_without_progress():
    watch = DroppedFetchWatch()
    assert watch.observe({"events:0"}, processed=5) == set()  # first sight: it may be on its way
    assert watch.observe({"events:0"}, processed=6) == set()  # it processed one meanwhile: look again
    assert watch.observe({"events:0", "events:1"}, processed=6) == {"events:0"}
    assert watch.observe({"events:1"}, processed=6) == set()  # after a seek, start over
    assert watch.observe({"events:1"}, processed=6) == {"events:1"}
    watch.reset()  # a rebalance came in between
    assert watch.observe({"events:1"}, processed=6) == set()
    assert watch.observe(set(), processed=6) == set()


@pytest.mark.integration
def test_the_backlog_counts_what_the_group_has_not_committed(kafka_bootstrap):
    topic, group = f"stall-{uuid.uuid4().hex[:8]}", f"group-{uuid.uuid4().hex[:8]}"

    async def scenario():
        producer = make_producer(kafka_bootstrap)
        await producer.start()
        try:  # one record a batch: the embedded broker reports a partition's end low after batched sends
            for i in range(12):
                await producer.send_and_wait(topic, f"r{i:03d}".encode())
        finally:
            await producer.stop()
        backlog = GroupBacklog(kafka_bootstrap, group, (topic,))
        await backlog.start()
        try:
            before = await backlog.records_waiting()
            consumer = make_consumer(kafka_bootstrap, topic, group_id=group)
            await consumer.start()
            try:
                seen = 0
                while seen < 5:
                    for records in (await consumer.getmany(timeout_ms=500, max_records=5 - seen)).values():
                        seen += len(records)
                await consumer.commit()
            finally:
                await consumer.stop()
            return before, await backlog.records_waiting(), seen
        finally:
            await backlog.stop()

    before, after, read = asyncio.run(scenario())
    assert before == 12
    assert read == 5 and after == 12 - 5
