"""The Kafka sink: `resolutions` + `resolution.outcomes` -> ClickHouse, in batches.

A batch is written to ClickHouse and settled first; only then are its offsets committed (the next batch
is read and decoded meanwhile, and stored while the batch settles). A crash in between redelivers the
batch, which the store absorbs (rows keyed by event id), so every figure holds. Poison records go to
`<topic>.dlq` and the sink carries on.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from aiokafka.coordinator.assignors.range import RangePartitionAssignor
from opentelemetry import trace
from opentelemetry.trace import Link

from clonedesk.core.kafka import (PoisonMessage, consume_overlapped, make_consumer, make_producer,
                                  send_dead_letter)
from clonedesk.core.telemetry import ConsumerLag, Telemetry, extract_context
from clonedesk.core.domain.topics import RESOLUTION_OUTCOMES, RESOLUTIONS
from clonedesk.metering.adapters.codec import outcome_row, reply_row
from clonedesk.metering.adapters.store import MeteringStore, StagedBatch, StagingFailed
from clonedesk.metering.entrypoints.staging import PollStager, StagedPoll
from clonedesk.metering.service_layer.settlement import (TermsLookup, close_months, record_rows_and_settle,
                                                         settle_stored, store_staged)

log = logging.getLogger(__name__)

DEFAULT_GROUP = "clonedesk-metering"
# A batch span links to the traces of the records in it (the resolver's, ingest's), up to this many.
MAX_LINKS = 64
# Records per poll: decoded while the batch before is written, so a batch gathers many of them.
POLL_RECORDS = 5000


@dataclass
class SinkStats:
    batches: int = 0
    replies: int = 0
    outcomes: int = 0
    dead_letters: int = 0
    settled: int = 0  # resolutions the batches moved into a state (a first lifecycle, or a new state)
    started: float = field(default_factory=time.monotonic)
    first_records_at: float | None = None  # when the first non-empty poll returned
    last_commit_at: float | None = None  # when the latest batch was committed
    months_closed: int = 0  # statements frozen (service_layer/settlement.py close_months)
    decoded_in_python: int = 0  # polls ClickHouse could not decode, judged record by record instead


CLOSE_CHECK_S = 10.0


async def caught_up(consumer) -> bool:
    """Has the consumer read everything on its partitions (as far as the broker has told it)?"""
    for tp in consumer.assignment():
        highwater = consumer.highwater(tp)
        if highwater is None or await consumer.position(tp) < highwater:
            return False
    return True


class MeteringSink:
    def __init__(self, bootstrap: str, store: MeteringStore, terms_for: TermsLookup, *,
                 group_id: str = DEFAULT_GROUP, batch_size: int = 100_000,
                 batch_bytes: int = 64 * 1024 * 1024, max_wait_ms: int = 500,
                 telemetry: Telemetry | None = None):
        self.bootstrap = bootstrap
        self.store = store
        self.terms_for = terms_for
        self.group_id = group_id
        self.batch_size = batch_size
        self.batch_bytes = batch_bytes
        self.max_wait_ms = max_wait_ms
        self.stats = SinkStats()
        self._stager: PollStager | None = None  # per run: its polls are staged beside the writes
        self.ready = asyncio.Event()
        # ClickHouse calls block: run them off the event loop, one at a time, in order; a batch's rows are
        # stored on a connection and thread of their own (`_storing_store`), beside the settling before.
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="metering-store")
        self._storing = ThreadPoolExecutor(max_workers=1, thread_name_prefix="metering-storing")
        self._storing_store: MeteringStore | None = None  # per run
        self._settling: asyncio.Future | None = None  # the latest batch's settling
        self._tracer = telemetry.tracer if telemetry else trace.get_tracer("clonedesk.metering")
        meter = telemetry.meter if telemetry else None
        self._rows = self._dead = self._states = None
        self._lag = ConsumerLag(group_id, meter)
        if meter:
            self._rows = meter.create_counter("metering.rows", description="events written to ClickHouse")
            self._dead = meter.create_counter("metering.dead_letters", description="records parked on a DLQ")
            self._states = meter.create_counter(
                "metering.resolutions.settled",
                description="resolutions entering a lifecycle state, by state")

    def _record_spans(self, written, started_ns: int, batch) -> None:
        """One `metering.write` span per record, a child of the span that produced it, so each ticket
        turn's trace ends in its metering write (the batch span links to them the other way)."""
        ended_ns = time.time_ns()
        for record, value in written:
            if value is None or not record.headers:  # no trace to join (and extracting nothing costs as much per record)
                continue
            parent = extract_context(record.headers)
            if not trace.get_current_span(parent).get_span_context().is_valid:
                continue
            span = self._tracer.start_span("metering.write", context=parent, start_time=started_ns,
                                           links=[Link(batch)], attributes={
                                               "tenant.id": value.tenant_id, "ticket.id": value.ticket_id,
                                               "resolution.id": value.resolution_id, "topic": record.topic})
            span.end(end_time=ended_ns)

    async def run(self, stop: asyncio.Event) -> SinkStats:
        # Range assignment gives each sink replica the same partition numbers of both topics (they are
        # co-partitioned by tenant:ticket), so a resolution and its outcomes meet in one replica.
        consumer = make_consumer(self.bootstrap, RESOLUTIONS, RESOLUTION_OUTCOMES, group_id=self.group_id,
                                 max_poll_records=min(self.batch_size, POLL_RECORDS),
                                 partition_assignment_strategy=(RangePartitionAssignor,))
        producer = make_producer(self.bootstrap)
        # Counters a previous run may have left short (it died mid-batch), or never built (the migration
        # that added them): from the raw rows, before anything else writes them.
        await asyncio.get_running_loop().run_in_executor(self._executor, self.store.repair_counters)
        # The first batch's one-off costs (imports, column types), paid before consuming.
        await asyncio.get_running_loop().run_in_executor(self._executor, self.store.prepare_inserts)
        self._storing_store = await asyncio.get_running_loop().run_in_executor(self._storing, self.store.reopen)
        await asyncio.get_running_loop().run_in_executor(self._storing, self._storing_store.prepare_inserts)
        self._settling = None
        self._stager = PollStager(self.store)
        await self._stager.start()
        await consumer.start()
        await producer.start()
        log.info("metering sink started", extra={"group": self.group_id})
        self.ready.set()
        closing_due, last_close = False, float("-inf")

        async def prepare(records: list):
            if self.stats.first_records_at is None:
                self.stats.first_records_at = time.monotonic()
            return await self._decode(records, producer)

        async def after_poll(had_records: bool, drain) -> None:
            nonlocal closing_due, last_close
            closing_due = closing_due or had_records
            # Months close rarely: look at most every CLOSE_CHECK_S, off the per-batch path, and only once
            # the batch in flight is written too.
            if closing_due and time.monotonic() - last_close >= CLOSE_CHECK_S and await caught_up(consumer):
                await drain()
                await self._close_months()
                closing_due, last_close = False, time.monotonic()

        def committed() -> None:
            self.stats.last_commit_at = time.monotonic()  # ClickHouse has the batch

        try:
            # Polls are decoded while the batch before them is written, and go to ClickHouse together
            # (a backlog makes big batches, light traffic small ones); each batch is committed only once
            # ClickHouse accepted it.
            await consume_overlapped(consumer, stop, prepare, lambda polls: self._write(polls, producer), lag=self._lag,
                                     poll_ms=self.max_wait_ms, max_records=self.batch_size,
                                     max_bytes=self.batch_bytes, poll_records=POLL_RECORDS,
                                     after_poll=after_poll, on_commit=committed)
            if closing_due and await caught_up(consumer):
                await self._close_months()
        finally:
            await self._stager.close()
            await consumer.stop()
            await producer.stop()
            if self._storing_store not in (None, self.store):
                with contextlib.suppress(Exception):  # the store is gone already
                    await asyncio.get_running_loop().run_in_executor(self._storing, self._storing_store.close)
            self._storing.shutdown(wait=True)
            self._executor.shutdown(wait=True)
            log.info("metering sink stopped", extra=vars(self.stats))
        return self.stats

    async def _close_months(self) -> None:
        """Freeze the statements of the months the tenants' watermarks closed: only once everything on
        the topics so far is recorded, so no month is frozen without events still unread."""
        loop = asyncio.get_running_loop()
        closed = await loop.run_in_executor(self._executor, close_months, self.store, self.terms_for)
        self.stats.months_closed += len(closed)

    async def _decode(self, records, producer) -> StagedPoll:
        """A poll's records queued for staging (ClickHouse decodes them); a record with no value at all
        is poison at once (there is nothing to stage)."""
        if any(record.value is None for record in records):
            for record in records:
                if record.value is None:
                    await self._park(producer, record, f"empty record where a {_MESSAGES[record.topic]} was expected")
            records = [record for record in records if record.value is not None]
        return self._stager.frame(records)

    async def _park(self, producer, record, reason: str) -> None:
        await send_dead_letter(producer, record.topic, record.key, record.value, reason,
                               headers=list(record.headers or ()), partition=record.partition, offset=record.offset)
        self.stats.dead_letters += 1
        if self._dead:
            self._dead.add(1, {"topic": record.topic})

    async def _write(self, polls: list[StagedPoll], producer):
        """One ClickHouse batch of every poll gathered since the last write: its records judged where they
        were staged (rejects parked), then stored there; a poll ClickHouse could not decode is judged by
        the Python codec. Returns the batch's settling, which runs beside the next batch's storing (on a
        connection of its own) and after the settling before it; the batch is committed once it is done.
        A batch with records decoded in Python settles before this returns: their rows are stored as it
        settles, and the next batch's counters must not read them half-stored."""
        decoded = []  # (record, row) of the polls decoded in Python
        staged_polls, verdicts = [], []  # the staged polls, and each one's rejects (seq -> why)
        for poll in polls:
            try:
                verdict = await poll.verdict
            except StagingFailed as exc:
                log.warning("ClickHouse could not decode a poll; judging its records in Python",
                            extra={"records": len(poll.records), "error": str(exc)})
                self.stats.decoded_in_python += 1
                decoded += await self._decode_in_python(poll.records, producer)
                continue
            for seq, why in sorted(verdict.items()):
                await self._park(producer, poll.record(seq), why)
            if poll.records:
                staged_polls.append(poll)
                verdicts.append(verdict)
        kept = sum(len(poll.records) - len(verdict) for poll, verdict in zip(staged_polls, verdicts))
        traced = [poll.record(seq) for poll, verdict in zip(staged_polls, verdicts) for seq in poll.traced
                  if seq not in verdict]
        traced += [r for r, _ in decoded if r.headers]
        outcomes = sum(poll.outcome_count - sum(1 for seq in verdict if poll.record(seq).topic == RESOLUTION_OUTCOMES)
                       for poll, verdict in zip(staged_polls, verdicts))
        outcomes += sum(1 for r, _ in decoded if r.topic != RESOLUTIONS)
        replies = kept + len(decoded) - outcomes
        rows_of = {id(r): row for r, row in decoded}
        written = [(r, rows_of[id(r)] if id(r) in rows_of else _decoded(r)) for r in traced]

        batch_started_ns = time.time_ns()
        span = self._tracer.start_span("metering.batch", links=_links(traced))
        span.set_attribute("metering.replies", replies)
        span.set_attribute("metering.outcomes", outcomes)
        loop = asyncio.get_running_loop()
        stored = None
        try:
            if staged_polls:
                batch = StagedBatch(self._stager.stager, staged_polls[0].first, staged_polls[-1].last, b"", b"")
                stored = await loop.run_in_executor(self._storing, store_staged, self._storing_store, batch,
                                                    self.terms_for, kept)
        except BaseException as exc:
            span.record_exception(exc)
            span.end()
            raise
        before = self._settling

        async def settle() -> None:
            try:
                if before is not None:
                    await before  # batches settle one at a time, in order
                settled = await loop.run_in_executor(self._executor, settle_stored, self.store, stored)
                if decoded:
                    span.set_attribute("metering.decoded_in_python", len(decoded))
                    more = await loop.run_in_executor(
                        self._executor, record_rows_and_settle, self.store,
                        [row for r, row in decoded if r.topic == RESOLUTIONS],
                        [row for r, row in decoded if r.topic != RESOLUTIONS], self.terms_for)
                    settled = {key: settled.get(key, 0) + more.get(key, 0) for key in settled.keys() | more.keys()}
            except BaseException as exc:
                span.record_exception(exc)
                raise
            finally:
                span.end()
            span.set_attribute("metering.settled", sum(settled.values()))
            self._record_spans(written, batch_started_ns, span.get_span_context())
            self._count(replies, outcomes, settled)

        self._settling = asyncio.ensure_future(settle())
        if decoded:
            await self._settling
            return None
        return self._settling

    def _count(self, replies: int, outcomes: int, settled: dict[tuple[str, str], int]) -> None:
        self.stats.batches += 1
        self.stats.replies += replies
        self.stats.outcomes += outcomes
        self.stats.settled += sum(settled.values())
        if self._rows:
            self._rows.add(replies, {"topic": RESOLUTIONS})
            self._rows.add(outcomes, {"topic": RESOLUTION_OUTCOMES})
        if self._states:
            for (tenant_id, state), n in settled.items():
                self._states.add(n, {"state": state, "tenant.id": tenant_id})
        log.debug("batch written", extra={"replies": replies, "outcomes": outcomes})

    async def _decode_in_python(self, records, producer) -> list:
        """(record, row) of each record the Python codec (adapters/codec.py) decodes; the others parked."""
        rows = []
        for record in records:
            try:
                rows.append((record, (reply_row if record.topic == RESOLUTIONS else outcome_row)(record.value)))
            except PoisonMessage as exc:
                await self._park(producer, record, str(exc))
        return rows


_MESSAGES = {RESOLUTIONS: "Resolution", RESOLUTION_OUTCOMES: "ResolutionOutcome"}


def _links(traced: list) -> list[Link]:
    """Links to the traces of a batch's records (MAX_LINKS at most)."""
    links = []
    for record in traced:
        if len(links) >= MAX_LINKS:
            break
        context = trace.get_current_span(extract_context(record.headers)).get_span_context()
        if context.is_valid:
            links.append(Link(context))
    return links


def _decoded(record):
    """A written record's row, for its span's attributes (only records that carry headers get a span)."""
    try:
        return (reply_row if record.topic == RESOLUTIONS else outcome_row)(record.value)
    except PoisonMessage:  # ClickHouse kept what the codec rejects: tests/metering/test_staged_records.py
        log.error("a record ClickHouse accepted does not decode in Python", extra={"topic": record.topic})
        return None
