"""The shared consume → handle → commit loop's order of things, on a scripted consumer (the loop's logic;
the trainer's and the metering sink's integration tests run it on the real broker)."""

from __future__ import annotations

import asyncio

import pytest

from clonedesk.core.kafka import consume_batches


class ScriptedConsumer:
    def __init__(self, polls, stop):
        self.polls, self.stop, self.log = list(polls), stop, []

    async def getmany(self, timeout_ms=0, max_records=None):
        self.log.append(("poll", max_records))
        if not self.polls:
            self.stop.set()
            return {}
        return self.polls.pop(0)

    async def commit(self):
        self.log.append(("commit",))


def test_each_poll_is_committed_only_after_its_handler_returned_and_housekeeping_runs_every_poll():
    stop = asyncio.Event()
    consumer = ScriptedConsumer([{"p0": ["a", "b"], "p1": ["c"]}, {}, {"p0": ["d"]}], stop)

    async def handle(records):
        consumer.log.append(("handled", tuple(records)))

    async def after_poll(had_records):
        consumer.log.append(("after", had_records))

    asyncio.run(consume_batches(consumer, stop, handle, max_records=10, after_poll=after_poll))
    assert consumer.log == [
        ("poll", 10), ("handled", ("a", "b", "c")), ("commit",), ("after", True),
        ("poll", 10), ("after", False),
        ("poll", 10), ("handled", ("d",)), ("commit",), ("after", True),
        ("poll", 10), ("after", False),
    ]


def test_a_failed_handler_commits_nothing():
    stop = asyncio.Event()
    consumer = ScriptedConsumer([{"p0": ["a"]}], stop)

    async def handle(records):
        raise RuntimeError("ClickHouse refused the batch")

    with pytest.raises(RuntimeError):
        asyncio.run(consume_batches(consumer, stop, handle))
    assert ("commit",) not in consumer.log


def test_by_key_each_keys_records_stay_in_order_and_a_stop_mid_poll_commits_nothing():
    from types import SimpleNamespace

    from clonedesk.core.kafka import consume_by_key

    stop = asyncio.Event()
    records = [SimpleNamespace(key=k, value=v) for k, v in (("t1", 1), ("t2", 2), ("t1", 3))]
    consumer = ScriptedConsumer([{"p0": records}], stop)
    seen = []

    async def handle(group):
        seen.append([r.value for r in group])

    asyncio.run(consume_by_key(consumer, stop, handle))
    assert sorted(seen) == [[1, 3], [2]] and ("commit",) in consumer.log

    stop = asyncio.Event()
    consumer = ScriptedConsumer([{"p0": records}], stop)

    async def stopping(group):
        stop.set()  # e.g. SIGTERM while a ticket's records were half handled

    asyncio.run(consume_by_key(consumer, stop, stopping))
    assert ("commit",) not in consumer.log


class OffsetConsumer(ScriptedConsumer):
    async def commit(self, offsets=None):
        self.log.append(("commit", dict(offsets)))


def test_overlapped_a_batch_is_read_while_the_one_before_is_written_and_committed_only_once_written():
    from types import SimpleNamespace

    from clonedesk.core.kafka import consume_overlapped

    def part(*offsets):
        return [SimpleNamespace(offset=o) for o in offsets]

    stop = asyncio.Event()
    consumer = OffsetConsumer([{"p0": part(0, 1), "p1": part(0)}, {"p0": part(2)}, {}, {"p1": part(1, 2)}], stop)

    async def prepare(records):
        consumer.log.append(("prepared", len(records)))
        return len(records)

    async def write(size):
        consumer.log.append(("writing", size))
        await asyncio.sleep(0)  # still in flight when the next poll comes
        consumer.log.append(("written", size))

    async def after_poll(had_records, drain):
        consumer.log.append(("after", had_records))

    asyncio.run(consume_overlapped(consumer, stop, prepare, write, max_records=5, after_poll=after_poll))
    log = consumer.log
    # the second poll was read and prepared before the first batch's write was committed
    assert log.index(("prepared", 1)) < log.index(("commit", {"p0": 2, "p1": 1}))
    # every commit follows its own write, and names the next offset of each partition in the batch
    assert log.index(("written", 3)) < log.index(("commit", {"p0": 2, "p1": 1}))
    assert log.index(("written", 1)) < log.index(("commit", {"p0": 3}))
    assert log.index(("written", 2)) < log.index(("commit", {"p1": 3}))
    # an empty poll drains what is in flight before the housekeeping
    assert log.index(("commit", {"p0": 3})) < log.index(("after", False))
    assert [entry for entry in log if entry[0] == "commit"] == [
        ("commit", {"p0": 2, "p1": 1}), ("commit", {"p0": 3}), ("commit", {"p1": 3})]


def test_overlapped_a_failed_write_is_never_committed():
    from types import SimpleNamespace

    from clonedesk.core.kafka import consume_overlapped

    stop = asyncio.Event()
    consumer = OffsetConsumer([{"p0": [SimpleNamespace(offset=0)]}, {"p0": [SimpleNamespace(offset=1)]}], stop)

    async def prepare(records):
        return records[0].offset

    async def write(offset):
        if offset == 0:
            raise RuntimeError("ClickHouse refused the batch")

    with pytest.raises(RuntimeError):
        asyncio.run(consume_overlapped(consumer, stop, prepare, write))
    assert not [entry for entry in consumer.log if entry[0] == "commit"]
