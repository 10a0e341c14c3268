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
