"""Helpers of the metering integration tests: protobuf events, a real uvicorn server, a sink run."""

from __future__ import annotations

import asyncio
import threading
import time
from datetime import datetime

import uvicorn

from clonedesk.core.kafka import encode, make_producer
from clonedesk.core.domain.topics import RESOLUTION_OUTCOMES, RESOLUTIONS, message_key
from clonedesk.metering.domain.events import AiReply, Outcome
from clonedesk.metering.entrypoints.sink import MeteringSink
from clonedesk.v1 import common_pb2, outcomes_pb2, resolver_pb2
from tests.conftest import free_port

DECISIONS = {"resolve": common_pb2.RESOLVE, "ask": common_pb2.ASK, "action": common_pb2.ACTION,
             "escalate": common_pb2.ESCALATE}


def reply_message(reply: AiReply) -> resolver_pb2.Resolution:
    message = resolver_pb2.Resolution(
        resolution_id=reply.resolution_id, tenant_id=reply.tenant_id, ticket_id=reply.ticket_id,
        decision=DECISIONS[reply.decision], reply="Here is how to fix it.",
        adapter_version=f"{reply.tenant_id}@v1",
        latency_ms=reply.latency_ms, category=reply.category, confidence=0.9)
    message.created_at.FromDatetime(reply.created_at)
    return message


def outcome_message(outcome: Outcome) -> outcomes_pb2.ResolutionOutcome:
    message = outcomes_pb2.ResolutionOutcome(
        event_id=outcome.event_id, resolution_id=outcome.resolution_id, tenant_id=outcome.tenant_id,
        ticket_id=outcome.ticket_id, kind=outcomes_pb2.ResolutionOutcome.Kind.Value(outcome.kind.name),
        csat_score=outcome.csat_score, category=outcome.category)
    message.occurred_at.FromDatetime(outcome.occurred_at)
    return message


async def produce(bootstrap: str, replies, outcomes, raw: list[tuple[str, bytes, bytes]] = (),
                  headers: list[tuple[str, bytes]] | None = None, chunk: int = 500) -> None:
    """Send the events (keyed tenant:ticket) and wait for every ack, `chunk` records in flight at most."""
    records = [(RESOLUTIONS, message_key(r.tenant_id, r.ticket_id), encode(reply_message(r)), headers)
               for r in replies]
    records += [(RESOLUTION_OUTCOMES, message_key(o.tenant_id, o.ticket_id), encode(outcome_message(o)), None)
                for o in outcomes]
    records += [(topic, key, value, None) for topic, key, value in raw]
    producer = make_producer(bootstrap)
    await producer.start()
    try:
        for start in range(0, len(records), chunk):
            sends = [producer.send(topic, value, key=key, headers=extra)
                     for topic, key, value, extra in records[start:start + chunk]]
            for pending in await asyncio.gather(*sends):
                await pending
    finally:
        await producer.stop()


async def run_sink_until_idle(sink: MeteringSink, at_least: int, idle_s: float = 1.5,
                              timeout: float = 90) -> None:
    """Run the sink until it consumed `at_least` records and then saw nothing new for `idle_s`."""
    stop = asyncio.Event()
    task = asyncio.create_task(sink.run(stop))
    deadline = time.monotonic() + timeout
    seen, quiet_since = -1, time.monotonic()
    try:
        while time.monotonic() < deadline:
            await asyncio.sleep(0.25)
            if task.done():
                task.result()
            now = sink.stats.replies + sink.stats.outcomes + sink.stats.dead_letters
            if now != seen:
                seen, quiet_since = now, time.monotonic()
            elif now >= at_least and time.monotonic() - quiet_since >= idle_s:
                return
        raise AssertionError(f"sink consumed {seen} records, expected at least {at_least}")
    finally:
        stop.set()
        await asyncio.wait_for(task, 30)


class ApiServer:
    """A FastAPI app served by a real uvicorn on a free loopback port, in a thread."""

    def __init__(self, app):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        config = uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="warning")
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> "ApiServer":
        self.thread.start()
        deadline = time.monotonic() + 20
        while not self.server.started:
            if time.monotonic() > deadline:
                raise AssertionError("uvicorn did not start")
            time.sleep(0.05)
        return self

    def __exit__(self, *exc) -> None:
        self.server.should_exit = True
        self.thread.join(10)


def utc_month_start(moment: datetime) -> datetime:
    return moment.replace(day=1, hour=0, minute=0, second=0, microsecond=0)


def scenario(tenant: str, start: datetime, count: int, every_hours: float = 4.0):
    """A tenant's resolutions and outcomes over `count * every_hours` hours, with every lifecycle path."""
    from datetime import timedelta

    from clonedesk.metering.domain.events import OutcomeKind

    replies, outcomes = [], []
    for n in range(count):
        at = start + timedelta(hours=every_hours * n)
        rid, ticket = f"{tenant}-r{n:05d}", f"t{n}"
        replies.append(AiReply(rid, tenant, ticket, "escalate" if n % 11 == 0 else "resolve", at,
                               latency_ms=80 + n % 50, category=("billing", "travel", "account")[n % 3]))

        def add(kind, after, score=0):
            outcomes.append(Outcome(f"{rid}-{kind.value}", rid, tenant, ticket, kind, at + after,
                                    csat_score=score))

        if n % 5 == 0:
            add(OutcomeKind.CUSTOMER_CONFIRMED, timedelta(minutes=20))
        elif n % 7 == 0:
            add(OutcomeKind.HUMAN_TOOK_OVER, timedelta(hours=1))
        elif n % 13 == 0:
            add(OutcomeKind.CUSTOMER_REPLIED, timedelta(hours=2))
        if n % 5 == 0 and n % 3 == 0:
            add(OutcomeKind.REOPENED, timedelta(days=2))
        if n % 4 == 0:
            add(OutcomeKind.CSAT, timedelta(hours=3), score=1 + n % 5)
    return replies, outcomes


def expected_invoices(tenant, replies, outcomes, terms, months):
    """What the statements must be, from the pure core alone (every event known, final watermark): a
    closed month's counts as of its end, an open one's as they are now."""
    from collections import defaultdict

    from clonedesk.metering.domain.billing import Month, compute_invoice
    from clonedesk.metering.domain.lifecycle import settle
    from clonedesk.metering.domain.statements import (closed_statement, counts_at_month_end, is_closed,
                                                      open_statement)

    by_resolution = defaultdict(list)
    for outcome in outcomes:
        by_resolution[outcome.resolution_id].append(outcome)
    watermark = max([r.created_at for r in replies] + [o.occurred_at for o in outcomes])
    lifecycles = [settle(r, by_resolution[r.resolution_id], terms, watermark) for r in replies]
    statements = {}
    for name in months:
        month = Month.parse(name)
        invoice = compute_invoice(tenant, month, lifecycles, terms)
        if is_closed(month, watermark, terms):
            counts = counts_at_month_end(month, replies, by_resolution, terms)
            statements[name] = closed_statement(invoice, counts, terms).to_json()
        else:
            statements[name] = open_statement(invoice, terms).to_json()
    return statements
