"""The conversation processor: a faust-streaming worker. It wires Kafka to the pure reducer
(domain/conversation.py) and keeps each ticket's state in a faust Table keyed `tenant:ticket`.

It reads `helpdesk.events` and `resolutions` (both keyed tenant:ticket with the same partition count, so a
ticket's state, its events and its resolutions share one partition) and writes `training.samples`,
`tickets.to_resolve` and `resolution.outcomes`. A record that cannot be decoded goes to `<topic>.dlq`
with the reason in its headers, and the worker goes on.

Per record, what the reducer emits is sent and acknowledged by the broker before the table takes the new
state (see `ConversationUpdater`), so a crash in between repeats outputs rather than losing them.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from typing import Awaitable, Callable, MutableMapping

import faust
from opentelemetry import metrics, trace

from clonedesk.core.domain import topics
from clonedesk.core.kafka import PoisonMessage, decode, encode
from clonedesk.core.settings import Settings
from clonedesk.core.telemetry import extract_context, inject_headers
from clonedesk.core.tenants import TenantStore
from clonedesk.ingest.adapters.backlog import GroupBacklog
from clonedesk.ingest.domain.conversation import Context, Conversation, Emit, apply
from clonedesk.ingest.domain.finished import FinishedOffsets
from clonedesk.ingest.domain.stall import DroppedFetchWatch, StallWatch, fetched_past_commit
from clonedesk.v1 import events_pb2, resolver_pb2

log = logging.getLogger(__name__)

DEFAULT_APP_ID = "clonedesk-conversations"
DEFAULT_TABLE = "conversations"
OUTPUT_TOPICS = (topics.TRAINING_SAMPLES, topics.TICKETS_TO_RESOLVE, topics.RESOLUTION_OUTCOMES)
INPUT_TOPICS = (topics.HELPDESK_EVENTS, topics.RESOLUTIONS)
STALL_CHECK_INTERVAL_S = 5.0
STALLED_EXIT_CODE = 75  # EX_TEMPFAIL: the supervisor restarts a child that exits


def validate_event(event: events_pb2.HelpdeskEvent) -> events_pb2.HelpdeskEvent:
    if not event.event_id or not event.tenant_id or not event.ticket_id:
        raise PoisonMessage("HelpdeskEvent without event_id, tenant_id or ticket_id")
    return event


def validate_resolution(resolution: resolver_pb2.Resolution) -> resolver_pb2.Resolution:
    if not resolution.resolution_id or not resolution.tenant_id or not resolution.ticket_id:
        raise PoisonMessage("Resolution without resolution_id, tenant_id or ticket_id")
    return resolution


# (topic, key, value) → the send's delivery, which resolves once the broker acknowledged the record.
Send = Callable[[str, bytes, bytes], Awaitable[Awaitable]]


class ConversationUpdater:
    """One decoded input → the conversation table and the output topics.

    Order matters for "nothing accepted is lost": the outputs are sent and each acknowledged by the broker
    first, and only then does the table (whose changelog marks the input as seen) take the new state. A
    crash in between makes the redelivered input apply again and send its outputs again; that duplicate is
    harmless because every consumer downstream is idempotent on the message's id (the trainer's buffer by
    sample id; the resolver bridge by request id, which yields the same resolution id; metering by event
    id)."""

    def __init__(self, table: MutableMapping, send: Send, is_live: Callable[[str], bool]):
        self.table, self.send, self.is_live = table, send, is_live

    async def update(self, item: events_pb2.HelpdeskEvent | resolver_pb2.Resolution) -> list[Emit] | None:
        """What was emitted, or None when the input was a redelivery that changed nothing."""
        key = f"{item.tenant_id}:{item.ticket_id}"
        stored = self.table.get(key)
        state = Conversation.from_dict(stored) if stored else None
        before = len(state.seen) if state else 0
        live = isinstance(item, events_pb2.HelpdeskEvent) and self.is_live(item.tenant_id)
        state, emits = apply(state, item, Context(live=live))
        if len(state.seen) == before:
            return None
        deliveries = [await self.send(emit.topic, emit.key, encode(emit.message)) for emit in emits]
        await asyncio.gather(*deliveries)  # raises if the broker did not take one: the table stays as it was
        self.table[key] = state.to_dict()
        return emits


def create_app(settings: Settings, app_id: str = DEFAULT_APP_ID, table_name: str = DEFAULT_TABLE) -> faust.App:
    partitions = settings.topic_partitions
    datadir = settings.resolved_data_dir / "streams" / app_id  # not `<app id>-data` in the working dir
    datadir.mkdir(parents=True, exist_ok=True)  # faust makes only the last level
    app = faust.App(
        app_id,
        broker=f"kafka://{settings.bootstrap}",
        datadir=datadir,
        store="memory://",  # the changelog topic is the durable copy; recovery replays it
        topic_partitions=partitions,
        topic_replication_factor=1,
        web_enabled=False,
        consumer_auto_offset_reset="earliest",
        broker_session_timeout=6.0,
        broker_heartbeat_interval=1.0,
        producer_max_batch_size=1,  # table recovery after a restart needs it on the embedded broker
        producer_acks=-1,
        broker_commit_every=1,
        broker_commit_interval=0.5,
    )
    table = app.Table(table_name, default=None, partitions=partitions)
    inputs = app.topic(*INPUT_TOPICS, key_serializer="raw", value_serializer="raw",
                       partitions=partitions)
    outputs = {name: app.topic(name, key_serializer="raw", value_serializer="raw", partitions=partitions)
               for name in OUTPUT_TOPICS}
    dead_letters = {name: app.topic(topics.dlq(name), key_serializer="raw", value_serializer="raw", partitions=1)
                    for name in (topics.HELPDESK_EVENTS, topics.RESOLUTIONS)}
    tenants = TenantStore(settings.resolved_data_dir)
    tracer = trace.get_tracer("clonedesk.ingest.streams")
    meter = metrics.get_meter("clonedesk.ingest.streams")
    processed = meter.create_counter("clonedesk.streams.records", description="inputs by topic and result")
    emitted = meter.create_counter("clonedesk.streams.emitted", description="messages sent, by topic")

    def tenant_is_live(tenant_id: str) -> bool:
        tenant = tenants.find(tenant_id)  # re-read per record: go-live takes effect at once
        return bool(tenant and tenant.live)

    async def dead_letter(message, reason: str) -> None:
        headers = list(message.headers or []) if isinstance(message.headers, list) else list(
            (message.headers or {}).items())
        headers += [("dlq.reason", reason.encode()[:1000]), ("dlq.source_topic", message.topic.encode()),
                    ("dlq.failed_at", str(time.time()).encode()),
                    ("dlq.source_partition", str(message.partition).encode()),
                    ("dlq.source_offset", str(message.offset).encode())]
        delivery = await dead_letters[message.topic].send(key=message.key, value=message.value,
                                                          headers=headers)
        await delivery  # acknowledged before the poison record's offset can be committed
        log.warning("dead-lettered a record", extra={"topic": message.topic, "reason": reason})

    async def send_output(topic: str, key: bytes, value: bytes):
        return await outputs[topic].send(key=key, value=value, headers=inject_headers())

    updater = ConversationUpdater(table, send_output, tenant_is_live)
    progress = {"processed": 0, "seeks_back": 0}
    finished = FinishedOffsets()
    commit_only_finished(app, finished)

    @app.agent(inputs, name=f"{app_id}-process")
    async def process(stream):
        async for record in stream.events():
            progress["processed"] += 1
            message = record.message
            await handle(message)
            finished.finish(message.tp, message.offset)

    async def handle(message) -> None:
        """One input record: dead-lettered, found a redelivery, or applied and its outputs sent."""
        try:
            if message.topic == topics.HELPDESK_EVENTS:
                item = validate_event(decode(events_pb2.HelpdeskEvent, message.value))
            else:
                item = validate_resolution(decode(resolver_pb2.Resolution, message.value))
        except PoisonMessage as exc:
            await dead_letter(message, str(exc))
            processed.add(1, {"topic": message.topic, "result": "dead-lettered"})
            return
        headers = message.headers.items() if isinstance(message.headers, dict) else message.headers
        with tracer.start_as_current_span("conversation.apply", context=extract_context(headers)) as span:
            key = f"{item.tenant_id}:{item.ticket_id}"
            span.set_attribute("tenant.id", item.tenant_id)
            span.set_attribute("ticket.id", item.ticket_id)
            emits = await updater.update(item)
            if emits is None:
                processed.add(1, {"topic": message.topic, "result": "duplicate"})
                return  # a redelivery: nothing changed, nothing to send
            for emit in emits:
                emitted.add(1, {"topic": emit.topic})
            processed.add(1, {"topic": message.topic, "result": "applied"})
            span.set_attribute("clonedesk.emitted", len(emits))
            if emits:
                log.info("conversation updated", extra={"ticket": key, "emitted": len(emits)})

    if settings.streams_stall_after_s > 0:
        watch_for_stalls(app, settings, progress)
    app.conversations, app.updater, app.finished = table, updater, finished  # for tests and tools
    return app


def commit_only_finished(app: faust.App, finished: FinishedOffsets) -> None:
    """The app's consumer commits an input partition only up to the first record the agent did not finish
    (domain/finished.py says how faust lets records go by). Other topics commit as faust decides."""
    base = app.transport.Consumer

    class FinishedOnlyConsumer(base):
        def _filter_committable_offsets(self, tps):
            wanted = super()._filter_committable_offsets(tps)
            inputs = {tp: offset for tp, offset in wanted.items() if tp.topic in INPUT_TOPICS}
            commits, held_back = finished.cap(inputs, self._committed_offset)
            if held_back:
                log.warning("records faust let go by unprocessed are not committed; they will be read again",
                            extra={"held_back": {f"{tp.topic}:{tp.partition}": offset
                                                 for tp, offset in held_back.items()}})
            return {**{tp: offset for tp, offset in wanted.items() if tp not in inputs}, **commits}

    app.transport.Consumer = FinishedOnlyConsumer


def watch_for_stalls(app: faust.App, settings: Settings, progress: dict) -> None:
    """Every few seconds, the two rules of domain/stall.py: records faust fetched and dropped → seek back to
    the committed offsets; records waiting and none processed for `streams_stall_after_s` → log it and
    exit, for the supervisor to start a fresh one."""
    watch = StallWatch(settings.streams_stall_after_s)
    dropped_watch = DroppedFetchWatch()
    backlog = GroupBacklog(settings.bootstrap, app.conf.id, INPUT_TOPICS)
    log.info("watching for stalls", extra={"stall_after_s": watch.stall_after_s})

    @app.timer(interval=STALL_CHECK_INTERVAL_S, traced=False, name=f"{app.conf.id}-stall-watch")
    async def check_for_a_stall():
        if getattr(app, "rebalancing", False) or getattr(app, "in_recovery", False):
            watch.reset()  # catching up or reassigning is not a stall
            dropped_watch.reset()
            return
        try:
            waiting_by_partition = await backlog.waiting_by_partition()
        except Exception as exc:  # a broker away is the supervisor's business, not a stall
            log.warning("could not read the backlog", extra={"error": repr(exc)})
            watch.reset()
            return
        waiting = sum(end - committed for committed, end in waiting_by_partition.values())
        dropped = fetched_past_commit(client_positions(app), waiting_by_partition,
                                      in_processing=len(app.consumer._unacked_messages))
        to_seek = dropped_watch.observe(dropped, progress["processed"])
        if to_seek:
            log.warning("records were fetched and never processed: reading them again from the committed offsets",
                        extra={"partitions": sorted(to_seek), "waiting_by_partition": waiting_by_partition})
            assigned = {f"{tp.topic}:{tp.partition}": tp for tp in app.consumer.assignment()}
            for name in sorted(to_seek & assigned.keys()):
                await app.consumer.seek(assigned[name], waiting_by_partition[name][0])  # and faust's read offset
            progress["seeks_back"] += 1
            watch.reset()
            return
        if watch.observe(time.monotonic(), waiting, progress["processed"]):
            log.error("stalled: records are waiting and none was processed; exiting to be restarted",
                      extra={"records_waiting": waiting, "stall_after_s": watch.stall_after_s,
                             "processed": progress["processed"], "waiting_by_partition": waiting_by_partition,
                             **describe_consumer(app)})
            dump_stacks()  # where each task and thread waits: the clue to a cause not yet known
            logging.shutdown()
            os._exit(STALLED_EXIT_CODE)  # a clean stop could hang on whatever stalled


def client_positions(app: faust.App) -> dict[str, int]:
    """"topic:partition" → the Kafka client's next offset to hand over, for each assigned partition with a
    position (read across threads without a lock: a int per partition, looked at, never changed)."""
    kafka = app.consumer._thread._consumer
    subscription = kafka._subscription.subscription if kafka is not None else None
    assignment = subscription.assignment if subscription is not None else None
    if assignment is None:
        return {}
    positions = {}
    for tp in assignment.tps:
        state = assignment.state_value(tp)
        if state is not None and state.has_valid_position:
            positions[f"{tp.topic}:{tp.partition}"] = state.position
    return positions


def describe_consumer(app: faust.App) -> dict:
    """What faust's consumer believes when the watch fires (read without locks: a diagnostic only)."""
    facts: dict = {}
    try:
        consumer = app.consumer
        facts["assigned"] = sorted(f"{tp.topic}:{tp.partition}" for tp in consumer.assignment())
        facts["paused"] = sorted(f"{tp.topic}:{tp.partition}" for tp in consumer._paused_partitions)
        facts["buffered"] = sorted(f"{tp.topic}:{tp.partition}" for tp in consumer._buffered_partitions)
        facts["active"] = sorted(f"{tp.topic}:{tp.partition}" for tp in (consumer._active_partitions or ()))
        facts["read_offsets"] = {f"{tp.topic}:{tp.partition}": offset for tp, offset in consumer._read_offset.items()}
        facts["committed_offsets"] = {f"{tp.topic}:{tp.partition}": offset
                                      for tp, offset in consumer._committed_offset.items()}
        facts["flow_suspended"] = consumer.suspend_flow.is_set()
        facts["unacked"] = len(consumer._unacked_messages)
        facts["waiting_for_ack"] = consumer._waiting_for_ack is not None
        facts["flow_control_active"] = app.flow_control.is_active()
        kafka = consumer._thread._consumer
        if kafka is not None:
            facts["kafka_paused"] = sorted(f"{tp.topic}:{tp.partition}" for tp in kafka.paused())
            facts["fetcher_holds"] = {f"{tp.topic}:{tp.partition}": repr(records)
                                      for tp, records in kafka._fetcher._records.items()}
            facts["fetches_in_flight"] = sorted(kafka._fetcher._in_flight)
            facts["positions"] = client_positions(app)
    except Exception as exc:  # diagnostics must never hide the stall itself
        facts["describe_failed"] = repr(exc)
    return facts


def dump_stacks() -> None:
    import faulthandler
    import io
    import sys

    for task in asyncio.all_tasks():
        buffer = io.StringIO()
        task.print_stack(limit=12, file=buffer)
        sys.stderr.write(f"--- task {task.get_name()}\n{buffer.getvalue()}")
    faulthandler.dump_traceback(file=sys.stderr, all_threads=True)
    sys.stderr.flush()
