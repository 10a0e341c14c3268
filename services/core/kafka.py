"""Kafka adapters every service uses: producers that wait for acks=all, consumers tuned for the
embedded broker, topic creation, protobuf (de)serialisation and dead-lettering."""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import logging
import time
from typing import Iterable, TypeVar

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import KafkaError, TopicAlreadyExistsError
from google.protobuf.message import DecodeError, Message

from clonedesk.core.domain.topics import TopicSpec, dlq

log = logging.getLogger(__name__)

M = TypeVar("M", bound=Message)

# Group joins on the embedded broker wait half the session timeout: keep it short.
SESSION_TIMEOUT_MS = 6000
HEARTBEAT_INTERVAL_MS = 1000


class BrokerUnavailable(RuntimeError):
    """The Kafka broker could not be reached; the message says where we looked."""


class PoisonMessage(ValueError):
    """A record that cannot be decoded or processed; it goes to the topic's dead-letter topic."""


def encode(message: Message) -> bytes:
    return message.SerializeToString(deterministic=True)


def decode(message_type: type[M], payload: bytes | None) -> M:
    if payload is None:
        raise PoisonMessage(f"empty record where a {message_type.__name__} was expected")
    message = message_type()
    try:
        message.ParseFromString(payload)
    except DecodeError as exc:
        raise PoisonMessage(f"cannot decode {message_type.__name__}: {exc}") from None
    return message


def make_producer(bootstrap: str, **overrides) -> AIOKafkaProducer:
    # acks=all: a write is acknowledged only once every in-sync replica has it. No idempotence: the
    # embedded broker lacks it, so every consumer is idempotent on event ids instead.
    options = dict(bootstrap_servers=bootstrap, acks="all", enable_idempotence=False, linger_ms=5,
                   request_timeout_ms=15000, max_request_size=4 * 1024 * 1024)
    options.update(overrides)
    return AIOKafkaProducer(**options)


def make_consumer(bootstrap: str, *topics: str, group_id: str | None, **overrides) -> AIOKafkaConsumer:
    options = dict(
        bootstrap_servers=bootstrap,
        group_id=group_id,
        auto_offset_reset="earliest",
        enable_auto_commit=False,  # commit only after the work a record caused is durable
        session_timeout_ms=SESSION_TIMEOUT_MS,
        heartbeat_interval_ms=HEARTBEAT_INTERVAL_MS,
    )
    options.update(overrides)
    return AIOKafkaConsumer(*topics, **options)


async def wait_for_broker(bootstrap: str, timeout: float = 30.0) -> None:
    """Return once the broker answers a metadata request; raise BrokerUnavailable after `timeout`."""
    deadline = time.monotonic() + timeout
    with _quiet("aiokafka"):  # each failed attempt logs an error; the one outcome that matters is ours
        while time.monotonic() < deadline:
            if await _answers(bootstrap):
                return
            await asyncio.sleep(0.3)
    raise BrokerUnavailable(f"Kafka broker at {bootstrap} is not reachable")


async def _answers(bootstrap: str) -> bool:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=5000)
    try:
        await admin.start()
        await admin.list_topics()
        return True
    except (KafkaError, OSError):
        return False
    finally:
        try:
            await admin.close()
        except Exception:  # noqa: BLE001 - closing a client that never connected
            pass


@contextlib.contextmanager
def _quiet(logger_name: str):
    logger = logging.getLogger(logger_name)
    previous = logger.level
    logger.setLevel(logging.CRITICAL)
    try:
        yield
    finally:
        logger.setLevel(previous)


async def ensure_topics(bootstrap: str, specs: Iterable[TopicSpec]) -> list[str]:
    """Create the topics that do not exist yet, with explicit partition counts; return those created."""
    specs = list(specs)
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=15000)
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        missing = [s for s in specs if s.name not in existing]
        created = []
        for spec in missing:  # one at a time: a topic racing into existence must not fail the rest
            try:
                await admin.create_topics([NewTopic(spec.name, spec.partitions, 1)])
                created.append(spec.name)
            except TopicAlreadyExistsError:
                pass
        return created
    finally:
        await admin.close()


async def send_dead_letter(producer: AIOKafkaProducer, source_topic: str, key: bytes | None,
                           value: bytes | None, reason: str, headers: list | None = None,
                           partition: int | None = None, offset: int | None = None) -> None:
    """Park a poison record on `<topic>.dlq`, unchanged, with why and where it came from in headers."""
    extra = [
        ("dlq.reason", reason.encode()[:1000]),
        ("dlq.source_topic", source_topic.encode()),
        ("dlq.failed_at", str(time.time()).encode()),
    ]
    if partition is not None:
        extra.append(("dlq.source_partition", str(partition).encode()))
    if offset is not None:
        extra.append(("dlq.source_offset", str(offset).encode()))
    await producer.send_and_wait(dlq(source_topic), value=value, key=key, headers=list(headers or []) + extra)
    log.warning("dead-lettered a record", extra={"topic": source_topic, "reason": reason})


async def warm_up_partitions(bootstrap: str, topics: Iterable[str], timeout_ms: int = 2000) -> int:
    """Fetch near the end of every partition of `topics` once; return how many records came back.

    Why: tansu on S3 storage, restarted, appends to a partition at a stale end offset until something
    has fetched from it, and so overwrites acknowledged records. One fetch per partition after every
    broker start sets its end right. (Apache Kafka does not need this; it is harmless there.)
    """
    from aiokafka import TopicPartition

    consumer = make_consumer(bootstrap, group_id=None)
    await consumer.start()
    try:
        partitions = []
        for topic in topics:
            for partition in sorted(consumer.partitions_for_topic(topic) or await _partitions(consumer, topic)):
                partitions.append(TopicPartition(topic, partition))
        if not partitions:
            return 0
        consumer.assign(partitions)
        ends = await consumer.end_offsets(partitions)
        for tp in partitions:
            consumer.seek(tp, max(0, ends[tp] - 1))
        fetched = await consumer.getmany(timeout_ms=timeout_ms)
        return sum(len(records) for records in fetched.values())
    finally:
        await consumer.stop()


async def _partitions(consumer: AIOKafkaConsumer, topic: str) -> set[int]:
    await consumer._client.force_metadata_update()  # noqa: SLF001 - aiokafka has no public refresh
    return consumer.partitions_for_topic(topic) or set()


async def consume_batches(consumer: AIOKafkaConsumer, stop: asyncio.Event, handle_batch, *, lag=None,
                          poll_ms: int = 500, max_records: int | None = None, after_poll=None,
                          commit_after_stop: bool = True) -> None:
    """The one consume → handle → commit loop. Poll until `stop`; hand each poll's records to `await
    handle_batch(records)` and commit only once it returned (what it wrote is durable by then), so a crash
    mid-batch redelivers instead of skipping. `await after_poll(had_records)` runs after every poll,
    records or none (scheduling, housekeeping). With
    `commit_after_stop=False` a poll whose handling saw `stop` is not committed (handlers that give up on
    a stop leave work half-done; it is redelivered). `lag`: a telemetry.ConsumerLag."""
    while not stop.is_set():
        batches = await consumer.getmany(timeout_ms=poll_ms, max_records=max_records)
        if lag is not None:
            lag.update(consumer, batches)
        records = [record for part in batches.values() for record in part]
        if records:
            await handle_batch(records)
            if stop.is_set() and not commit_after_stop:
                break
            await consumer.commit()
        if after_poll is not None:
            await after_poll(bool(records))


# While a write runs, the loop looks at the fetcher this often for records to gather for the next one.
GATHER_POLL_S = 0.02


async def consume_overlapped(consumer: AIOKafkaConsumer, stop: asyncio.Event, prepare_batch, write_batch, *,
                             lag=None, poll_ms: int = 500, max_records: int | None = None,
                             max_bytes: int | None = None, poll_records: int | None = None, after_poll=None,
                             on_commit=None) -> None:
    """`consume_batches` with the writes beside the reading: each poll's records go through `await
    prepare_batch(records)` on the loop (decoding) as they arrive, and `await write_batch(parts)` (off the
    loop: ClickHouse) gets every prepared poll gathered since the last write started, in poll order. At
    most one write is in flight, and polls go on while it runs, so a batch grows with the backlog (up to
    `max_records` records or `max_bytes` of record values; then the loop waits for the write) and stays
    one poll when traffic is light. A poll takes `poll_records` at most, so the first write starts early
    and decoding keeps pace beside the writes.

    A write may end in two steps: where `write_batch` returns an awaitable, the batch is done once that
    resolves too, and the next write may run beside it (at most one such last step waits at a time). A
    batch's offsets are committed once it is done, in order, so a crash still redelivers what was not
    written. `await after_poll(had_records, drain)` runs after every poll; `await drain()` writes and
    commits everything read so far (housekeeping that must see every record written calls it). A failed
    write raises here with nothing of it, or after it, committed. `on_commit()` after each commit."""
    in_flight: tuple[asyncio.Future, dict] | None = None
    finishing: list[tuple[asyncio.Future | None, dict]] = []  # written batches not committed yet, in order
    gathered: list = []  # prepared polls not yet handed to a write
    gathered_offsets: dict = {}
    gathered_records = gathered_bytes = 0

    def full() -> bool:
        return ((max_records is not None and gathered_records >= max_records)
                or (max_bytes is not None and gathered_bytes >= max_bytes))

    def start_write() -> None:
        nonlocal in_flight, gathered, gathered_offsets, gathered_records, gathered_bytes
        in_flight = (asyncio.ensure_future(write_batch(gathered)), gathered_offsets)
        gathered, gathered_offsets, gathered_records, gathered_bytes = [], {}, 0, 0

    async def commit_done(most: int | None = None) -> None:
        """Commit the batches that are done, oldest first; with `most`, wait until at most that many are
        left uncommitted."""
        while finishing and ((most is not None and len(finishing) > most)
                             or finishing[0][0] is None or finishing[0][0].done()):
            last_step, offsets = finishing.pop(0)
            if last_step is not None:
                await last_step
            await consumer.commit(offsets)
            if on_commit is not None:
                on_commit()

    async def finish_write() -> None:
        nonlocal in_flight
        if in_flight is None:
            return
        (write, offsets), in_flight = in_flight, None
        last_step = await write
        finishing.append((asyncio.ensure_future(last_step) if inspect.isawaitable(last_step) else None, offsets))
        await commit_done(most=1)

    async def drain() -> None:
        await finish_write()
        if gathered:
            start_write()
            await finish_write()
        await commit_done(most=0)

    try:
        while not stop.is_set():
            await commit_done()
            if in_flight is not None and (in_flight[0].done() or full()):
                await finish_write()
            if in_flight is None and gathered:
                start_write()
                # Let the write begin (hand its batch to the store) before reading on: a poll of records
                # already fetched and their decoding never yield to the loop.
                await asyncio.sleep(0)
            room = None if max_records is None else max(max_records - gathered_records, 1)
            if poll_records is not None:
                room = poll_records if room is None else min(room, poll_records)
            # With a write running (or a batch to commit), take only what the fetcher holds already, and
            # look again shortly.
            pending = {in_flight[0]} if in_flight is not None else {f for f, _ in finishing[:1] if f is not None}
            batches = await consumer.getmany(timeout_ms=0 if pending else poll_ms, max_records=room)
            if lag is not None:
                lag.update(consumer, batches)
            records = [record for part in batches.values() for record in part]
            if records:
                gathered.append(await prepare_batch(records))
                gathered_offsets.update({tp: part[-1].offset + 1 for tp, part in batches.items() if part})
                gathered_records += len(records)
                gathered_bytes += sum(len(record.value or b"") for record in records)
            elif pending:
                await asyncio.wait(pending, timeout=GATHER_POLL_S)
            if after_poll is not None:
                await after_poll(bool(records), drain)
    except BaseException:
        # Let what was started finish (the store is shared); commit nothing more.
        for started in ([in_flight[0]] if in_flight is not None else []) + [f for f, _ in finishing if f is not None]:
            with contextlib.suppress(BaseException):
                await started
        raise
    await drain()


async def consume_by_key(consumer: AIOKafkaConsumer, stop: asyncio.Event, handle_records, lag=None,
                         poll_ms: int = 500) -> None:
    """`consume_batches` with each poll's records split by key: keys run concurrently through
    `handle_records(records)`, one key's records stay in order, and the poll is committed once every
    key's handler has finished."""
    from collections import defaultdict

    async def by_key(records) -> None:
        groups: dict = defaultdict(list)
        for record in records:
            groups[record.key].append(record)
        await asyncio.gather(*(handle_records(group) for group in groups.values()))

    # A handler stops between records on `stop`: what it left is redelivered, not committed.
    await consume_batches(consumer, stop, by_key, lag=lag, poll_ms=poll_ms, commit_after_stop=False)
