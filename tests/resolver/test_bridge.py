"""The stream bridge end to end on real parts: tickets.to_resolve on the broker → gRPC resolver (HF
engine, real adapters) → `resolutions` and `helpdesk.outbound` → outbound worker → the helpdesk
simulator over HTTP. Escalations post nothing; poison and unservable requests are dead-lettered;
a redelivered request keeps its resolution id and is posted once."""

from __future__ import annotations

import asyncio
import uuid

import pytest
from clonedesk.core.kafka import decode, encode, make_producer
from clonedesk.core.domain.topics import HELPDESK_OUTBOUND, RESOLUTIONS, TICKETS_TO_RESOLVE, dlq, message_key
from clonedesk.resolver.entrypoints.bridge import Bridge
from clonedesk.resolver.entrypoints.outbound import OutboundPoster
from clonedesk.resolver.settings import ResolverSettings
from clonedesk.v1 import common_pb2, outbound_pb2, resolver_pb2

from .conftest import CUSTOMER_LINES, RunningResolver, SimulatorServer, read_topic, resolve_request

pytestmark = pytest.mark.integration


async def test_tickets_become_resolutions_and_replies_posted_back(zoo, settings, group_id):
    data = settings.resolved_data_dir
    zoo.install(data, "alpha", [1], current=1)
    zoo.install(data, "gamma", [1], current=1)  # gamma's adapter escalates
    run = uuid.uuid4().hex[:6]
    answered = resolve_request(
        "alpha",
        f"a-{run}",
        CUSTOMER_LINES[5],
        request_id=f"evt-{run}",
        source=common_pb2.ZENDESK,
        category="restaurants",
    )
    escalated = resolve_request("gamma", f"g-{run}", CUSTOMER_LINES[6], request_id=f"evt-g-{run}")
    unknown = resolve_request("nobody", f"n-{run}", CUSTOMER_LINES[0])
    producer = make_producer(settings.bootstrap)
    await producer.start()
    try:
        for request in (answered, escalated, unknown, answered):  # the last one: a redelivery
            await producer.send_and_wait(
                TICKETS_TO_RESOLVE, encode(request), key=message_key(request.tenant_id, request.ticket_id)
            )
        await producer.send_and_wait(
            TICKETS_TO_RESOLVE, b"\x08\xff\xff garbage", key=f"alpha:p-{run}".encode()
        )
    finally:
        await producer.stop()

    with SimulatorServer(settings.helpdesk_sim_port) as simulator:
        async with RunningResolver(zoo, data) as resolver:
            fast = ResolverSettings(resolver_address=f"127.0.0.1:{resolver.port}", outbound_backoff_s=0.01)
            bridge, poster = Bridge(settings, fast), OutboundPoster(settings, fast)
            stop = asyncio.Event()
            workers = [
                asyncio.create_task(bridge.run(stop, group_id=group_id)),
                asyncio.create_task(poster.run(stop, group_id=group_id + "-out")),
            ]
            try:
                resolutions = await read_topic(
                    settings.bootstrap, RESOLUTIONS, lambda rs: len(_mine(rs, run)) >= 3
                )
                outbound = await read_topic(
                    settings.bootstrap, HELPDESK_OUTBOUND, lambda rs: len(_mine(rs, run)) >= 2
                )
                dead = await read_topic(
                    settings.bootstrap, dlq(TICKETS_TO_RESOLVE), lambda rs: len(_mine(rs, run)) >= 2
                )
                posted = await asyncio.to_thread(_wait_for_replies, simulator, f"a-{run}")
            finally:
                stop.set()
                await asyncio.gather(*workers)

    decoded = [decode(resolver_pb2.Resolution, r.value) for r in _mine(resolutions, run)]
    alpha = [r for r in decoded if r.tenant_id == "alpha"]
    [gamma] = [r for r in decoded if r.tenant_id == "gamma"]
    assert len(alpha) == 2 and alpha[0].resolution_id == alpha[1].resolution_id  # redelivery, same id
    first = alpha[0]
    assert (first.ticket_id, first.decision, first.reply, first.adapter_version, first.category) == (
        f"a-{run}",
        common_pb2.RESOLVE,
        zoo.expected("alpha", 1)[2],
        "alpha@v1",
        "restaurants",
    )
    assert first.latency_ms >= 0 and first.created_at.seconds > 0 and first.request_id == f"evt-{run}"
    assert (gamma.decision, gamma.reply, gamma.adapter_version) == (common_pb2.ESCALATE, "", "gamma@v1")

    replies = [decode(outbound_pb2.OutboundReply, r.value) for r in _mine(outbound, run)]
    assert {r.ticket_id for r in replies} == {f"a-{run}"}  # nothing for the escalated ticket
    assert {r.resolution_id for r in replies} == {first.resolution_id} and replies[
        0
    ].source == common_pb2.ZENDESK

    reasons = {r.key: dict(r.headers)["dlq.reason"] for r in _mine(dead, run)}
    assert b"NOT_FOUND" in reasons[f"nobody:n-{run}".encode()]
    assert f"alpha:p-{run}".encode() in reasons

    assert [(p["api"], p["tenant_id"], p["body"], p["author_id"]) for p in posted] == [
        ("zendesk", "alpha", zoo.expected("alpha", 1)[2], "clonedesk-ai")
    ]  # posted once, though sent twice


def _mine(records, run: str):
    return [r for r in records if r.key and run.encode() in r.key]


def _wait_for_replies(simulator, ticket: str, timeout: float = 30.0) -> list[dict]:
    import time

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = simulator.replies(ticket_id=ticket)
        if found:
            time.sleep(1.0)  # give a duplicate the chance to show up, if it were going to
            return simulator.replies(ticket_id=ticket)
        time.sleep(0.1)
    raise AssertionError(f"no reply posted for {ticket}")
