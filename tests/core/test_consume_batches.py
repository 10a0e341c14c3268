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


def offset_records(*offsets, size=1):
    from types import SimpleNamespace

    return [SimpleNamespace(offset=o, value=b"x" * size) for o in offsets]


class GatedConsumer(OffsetConsumer):
    """Scripted polls; `writes_may_end` is set once the script ran out, so every write stays in flight
    until then (the polls a write overlaps are deterministic)."""

    def __init__(self, polls, stop):
        super().__init__(polls, stop)
        self.writes_may_end = asyncio.Event()

    async def getmany(self, timeout_ms=0, max_records=None):
        self.log.append(("waits", timeout_ms))
        if len(self.polls) <= 1:
            self.writes_may_end.set()
        return await super().getmany(timeout_ms, max_records)


def test_overlapped_polls_read_while_a_write_runs_go_together_into_the_next_write_committed_once_written():
    from clonedesk.core.kafka import consume_overlapped

    stop = asyncio.Event()
    consumer = GatedConsumer([{"p0": offset_records(0, 1), "p1": offset_records(0)}, {"p0": offset_records(2)},
                              {"p1": offset_records(1, 2)}, {}], stop)

    async def prepare(records):
        consumer.log.append(("prepared", len(records)))
        return len(records)

    async def write(parts):
        consumer.log.append(("writing", tuple(parts)))
        await consumer.writes_may_end.wait()
        consumer.log.append(("written", tuple(parts)))

    async def after_poll(had_records, drain):
        consumer.log.append(("after", had_records))

    asyncio.run(consume_overlapped(consumer, stop, prepare, write, max_records=50, after_poll=after_poll))
    log = consumer.log
    # the first poll is written alone; the two read while it was written go together in the next write
    assert [entry[1] for entry in log if entry[0] == "writing"] == [(3,), (1, 2)]
    assert log.index(("prepared", 2)) < log.index(("written", (3,)))
    # a poll while a write runs takes only what is there (timeout 0); with none in flight it waits
    assert [entry[1] for entry in log if entry[0] == "waits"][:3] == [500, 0, 0]
    # every commit follows its own write and names the next offset of each partition in it, in order
    assert log.index(("written", (3,))) < log.index(("commit", {"p0": 2, "p1": 1}))
    assert log.index(("written", (1, 2))) < log.index(("commit", {"p0": 3, "p1": 3}))
    assert [entry for entry in log if entry[0] == "commit"] == [
        ("commit", {"p0": 2, "p1": 1}), ("commit", {"p0": 3, "p1": 3})]


def test_overlapped_a_batch_ends_at_its_record_or_byte_cap_and_the_loop_waits_for_the_write_then():
    from clonedesk.core.kafka import consume_overlapped

    def polls_of(sizes, size=1):
        offsets = iter(range(100))
        return [{"p0": offset_records(*(next(offsets) for _ in range(n)), size=size)} for n in sizes]

    async def prepare(records):
        return len(records)

    for caps, polls, want_writes, want_polls_while_blocked in (
            (dict(max_records=3), polls_of([1, 2, 1, 1]), [(1,), (2, 1), (1,)], 3),
            (dict(max_bytes=250), polls_of([1, 1, 1, 1, 1], size=100), [(1,), (1, 1, 1), (1,)], 4)):
        stop = asyncio.Event()
        consumer = OffsetConsumer(polls, stop)
        polls_while_blocked = []

        async def run():
            release = asyncio.Event()

            async def write(parts):
                consumer.log.append(("writing", tuple(parts)))
                await release.wait()

            async def release_later():
                await asyncio.sleep(0.2)  # the first write is held this long: the loop stops at the cap
                polls_while_blocked.append(sum(1 for entry in consumer.log if entry[0] == "poll"))
                release.set()

            releaser = asyncio.create_task(release_later())
            await consume_overlapped(consumer, stop, prepare, write, **caps)
            await releaser

        asyncio.run(run())
        assert [entry[1] for entry in consumer.log if entry[0] == "writing"] == want_writes, caps
        assert polls_while_blocked == [want_polls_while_blocked], caps
        assert consumer.log[-1] == ("commit", {"p0": sum(len(poll["p0"]) for poll in polls)}), caps


def test_overlapped_drain_writes_and_commits_everything_read_so_far():
    from clonedesk.core.kafka import consume_overlapped

    stop = asyncio.Event()
    consumer = GatedConsumer([{"p0": offset_records(0)}, {"p0": offset_records(1)}, {"p0": offset_records(2)}],
                             stop)
    seen_at_drain, prepared = [], []

    async def prepare(records):
        prepared.append(records[-1].offset)
        return records[-1].offset

    async def write(parts):
        await asyncio.sleep(0)

    async def after_poll(had_records, drain):
        if had_records and prepared[-1] == 1:
            await drain()  # e.g. closing a month: everything read so far must be in ClickHouse
            seen_at_drain.append([entry for entry in consumer.log if entry[0] == "commit"][-1])

    asyncio.run(consume_overlapped(consumer, stop, prepare, write, after_poll=after_poll))
    # the drain came after the second poll: both polls written and committed, the gathered one included
    assert seen_at_drain == [("commit", {"p0": 2})]


def test_overlapped_a_failed_write_is_never_committed():
    from clonedesk.core.kafka import consume_overlapped

    stop = asyncio.Event()
    consumer = OffsetConsumer([{"p0": offset_records(0)}, {"p0": offset_records(1)}], stop)

    async def prepare(records):
        return records[0].offset

    async def write(parts):
        if 0 in parts:
            raise RuntimeError("ClickHouse refused the batch")

    with pytest.raises(RuntimeError):
        asyncio.run(consume_overlapped(consumer, stop, prepare, write))
    assert not [entry for entry in consumer.log if entry[0] == "commit"]


def test_overlapped_a_write_in_two_steps_is_committed_after_its_last_step_in_order_the_next_write_beside_it():
    from clonedesk.core.kafka import consume_overlapped

    stop = asyncio.Event()
    consumer = OffsetConsumer([{"p0": offset_records(0)}, {"p0": offset_records(1)}, {"p0": offset_records(2)},
                               {}, {}, {}], stop)
    first_settles = asyncio.Event()

    async def prepare(records):
        return records[0].offset

    async def write(parts):
        consumer.log.append(("stored", parts))

        async def settle():
            if parts == [0]:
                await first_settles.wait()  # held until the second batch was stored beside it
            consumer.log.append(("settled", parts))

        if parts == [1]:
            first_settles.set()
        return settle()

    asyncio.run(consume_overlapped(consumer, stop, prepare, write))
    log = [entry for entry in consumer.log if entry[0] != "poll"]
    # the second batch was stored while the first one settled; each commit follows its own last step
    assert log.index(("stored", [1])) < log.index(("settled", [0])) < log.index(("commit", {"p0": 1}))
    assert log.index(("settled", [1])) < log.index(("commit", {"p0": 2}))
    assert [entry for entry in log if entry[0] == "commit"] == [
        ("commit", {"p0": 1}), ("commit", {"p0": 2}), ("commit", {"p0": 3})]
    # at most one last step waits while a write runs: the third batch is stored after the first settled
    assert log.index(("settled", [0])) < log.index(("stored", [2]))


def test_overlapped_a_failed_last_step_commits_neither_its_batch_nor_any_after_it():
    from clonedesk.core.kafka import consume_overlapped

    stop = asyncio.Event()
    consumer = OffsetConsumer([{"p0": offset_records(0)}, {"p0": offset_records(1)}, {"p0": offset_records(2)},
                               {}, {}], stop)

    async def prepare(records):
        return records[0].offset

    async def write(parts):
        async def settle():
            await asyncio.sleep(0.01)
            if parts == [1]:
                raise RuntimeError("ClickHouse refused the settling")
        return settle()

    with pytest.raises(RuntimeError, match="settling"):
        asyncio.run(consume_overlapped(consumer, stop, prepare, write))
    assert [entry for entry in consumer.log if entry[0] == "commit"] == [("commit", {"p0": 1})]
