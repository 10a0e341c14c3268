"""Replies posted back through real HTTP: the helpdesk simulator (uvicorn) speaking the Zendesk and
Intercom reply APIs, and the outbound worker's retries, backoff and dead-lettering over the real broker."""

from __future__ import annotations

import asyncio
import uuid

import httpx
import pytest
from clonedesk.core.kafka import encode, make_producer
from clonedesk.core.tenants import TenantStore
from clonedesk.core.domain.topics import HELPDESK_OUTBOUND, dlq, message_key
from clonedesk.resolver.domain.outbound import body_digest, delivery_key
from clonedesk.core.domain.ids import reply_id
from clonedesk.resolver.entrypoints.outbound import OutboundPoster
from clonedesk.resolver.settings import ResolverSettings
from clonedesk.v1 import common_pb2, outbound_pb2

from .conftest import SimulatorServer, read_topic

pytestmark = pytest.mark.integration

FAST_RETRIES = ResolverSettings(outbound_max_attempts=3, outbound_backoff_s=0.01, outbound_backoff_max_s=0.05)


def outbound_reply(tenant: str, ticket: str, source=common_pb2.ZENDESK, body="Your table is booked."):
    resolution = f"res-{uuid.uuid4().hex[:8]}"
    return outbound_pb2.OutboundReply(
        reply_id=reply_id(resolution),
        resolution_id=resolution,
        tenant_id=tenant,
        ticket_id=ticket,
        source=source,
        body=body,
    )


@pytest.fixture
def simulator(settings):
    with SimulatorServer(settings.helpdesk_sim_port, settings.path("helpdesk-sim", "replies.jsonl")) as sim:
        yield sim


def test_the_simulator_speaks_both_apis_and_checks_what_it_gets(simulator):
    zendesk = f"{simulator.url}/api/v2/tickets/77.json"
    comment = {
        "ticket": {"comment": {"body": "Hello from the AI", "public": True, "author_id": "clonedesk-ai"}}
    }
    assert httpx.put(zendesk, json=comment).status_code == 401  # no credentials
    assert httpx.put(zendesk, json={"ticket": {}}, headers={"Authorization": "Basic eDp5"}).status_code == 422
    headers = {"Authorization": "Basic eDp5", "Idempotency-Key": "k-1", "X-Clonedesk-Tenant": "acme"}
    first = httpx.put(zendesk, json=comment, headers=headers)
    again = httpx.put(zendesk, json=comment, headers=headers)
    assert first.status_code == again.status_code == 200
    assert first.json()["audit"]["id"] == again.json()["audit"]["id"]
    intercom = f"{simulator.url}/conversations/c-9/reply"
    reply = {"message_type": "comment", "type": "admin", "admin_id": "clonedesk-ai", "body": "Hi!"}
    assert httpx.post(intercom, json=reply).status_code == 401
    assert (
        httpx.post(
            intercom, json={**reply, "message_type": "shout"}, headers={"Authorization": "Bearer t"}
        ).status_code
        == 422
    )
    assert (
        httpx.post(
            intercom, json=reply, headers={"Authorization": "Bearer t", "X-Clonedesk-Tenant": "acme"}
        ).status_code
        == 200
    )
    recorded = simulator.replies(tenant_id="acme")
    assert [(r["api"], r["ticket_id"], r["body"], r["author_id"]) for r in recorded] == [
        ("zendesk", "77", "Hello from the AI", "clonedesk-ai"),
        ("intercom", "c-9", "Hi!", "clonedesk-ai"),
    ]
    # Recorded on disk too, so a restarted simulator still lists them.
    assert len((simulator.app.state.replies.path).read_text().splitlines()) == 2


async def _send_replies(bootstrap: str, *replies) -> None:
    """Each reply onto helpdesk.outbound, keyed tenant:ticket, acknowledged before the next."""
    producer = make_producer(bootstrap)
    await producer.start()
    try:
        for reply in replies:
            await producer.send_and_wait(
                HELPDESK_OUTBOUND, encode(reply), key=message_key(reply.tenant_id, reply.ticket_id)
            )
    finally:
        await producer.stop()


async def test_a_failing_helpdesk_is_retried_until_it_takes_the_reply(settings, simulator):
    TenantStore(settings.resolved_data_dir).add("acme")
    httpx.post(f"{simulator.url}/_sim/faults", json={"fail_next": 2, "status": 503})
    poster = OutboundPoster(settings, FAST_RETRIES)
    async with httpx.AsyncClient() as client:
        delivery = await poster.deliver(client, outbound_reply("acme", "501"), asyncio.Event())
    assert delivery.delivered and delivery.attempts == 3
    assert [r["ticket_id"] for r in simulator.replies(tenant_id="acme")] == ["501"]


async def test_the_worker_posts_and_dead_letters_what_it_cannot_deliver(settings, simulator, group_id):
    store = TenantStore(settings.resolved_data_dir)
    store.add("acme")
    intercom = store.add("initech")
    intercom.helpdesk.intercom_base_url = simulator.url  # its own configured helpdesk, Intercom API
    intercom.helpdesk.intercom_token = "secret"
    store.save(intercom)
    run = uuid.uuid4().hex[:6]
    good_zendesk = outbound_reply("acme", f"z-{run}")
    good_intercom = outbound_reply("initech", f"i-{run}", source=common_pb2.INTERCOM)
    unknown_tenant = outbound_reply("nobody", f"n-{run}")
    keeps_failing = outbound_reply("acme", f"f-{run}")
    await _send_replies(settings.bootstrap, good_zendesk, good_intercom, unknown_tenant)
    producer = make_producer(settings.bootstrap)
    await producer.start()
    try:
        await producer.send_and_wait(
            HELPDESK_OUTBOUND, b"\xff not a protobuf", key=f"acme:poison-{run}".encode()
        )
    finally:
        await producer.stop()
    poster = OutboundPoster(settings, FAST_RETRIES)
    stop, ready = asyncio.Event(), asyncio.Event()
    worker = asyncio.create_task(poster.run(stop, ready, group_id=group_id))
    try:
        await asyncio.wait_for(ready.wait(), 30)
        await _until(
            lambda: len(simulator.replies(ticket_id=good_intercom.ticket_id)) == 1, "the intercom reply"
        )
        # Now the helpdesk goes down for longer than the retries last.
        httpx.post(f"{simulator.url}/_sim/faults", json={"fail_next": 1000, "status": 502})
        await _send_replies(settings.bootstrap, keeps_failing)
        dead = await read_topic(
            settings.bootstrap, dlq(HELPDESK_OUTBOUND), lambda rs: len(_ours(rs, run)) >= 3
        )
    finally:
        stop.set()
        await worker
    [zendesk_posted] = simulator.replies(ticket_id=good_zendesk.ticket_id)
    assert (zendesk_posted["api"], zendesk_posted["tenant_id"], zendesk_posted["body"]) == (
        "zendesk",
        "acme",
        good_zendesk.body,
    )
    assert simulator.replies(ticket_id=good_intercom.ticket_id)[0]["api"] == "intercom"
    reasons = {key: dict(headers) for key, headers in _ours(dead, run)}
    assert b"unknown tenant" in reasons[f"nobody:n-{run}".encode()]["dlq.reason"]
    failing = reasons[f"acme:f-{run}".encode()]
    assert b"gave up after 3 attempts" in failing["dlq.reason"] and failing["dlq.attempts"] == b"3"
    assert f"acme:poison-{run}".encode() in reasons
    assert not simulator.replies(ticket_id=keeps_failing.ticket_id)


async def test_a_redelivered_reply_is_posted_once_even_where_the_helpdesk_ignores_idempotency_keys(
    settings, simulator, group_id
):
    """Real Zendesk and Intercom do not de-duplicate on Idempotency-Key: the worker's own record under
    `<data>/outbound/` must. The same record arrives twice (a redelivery), then once more after a restart.
    The simulator's raw post count is what such a helpdesk would have recorded."""
    TenantStore(settings.resolved_data_dir).add("dedup")  # the topic also holds other tests' replies
    reply = outbound_reply("dedup", f"dup-{uuid.uuid4().hex[:6]}")
    await _send_replies(settings.bootstrap, reply, reply)
    poster = OutboundPoster(settings, FAST_RETRIES)
    stop, ready = asyncio.Event(), asyncio.Event()
    worker = asyncio.create_task(poster.run(stop, ready, group_id=group_id))
    try:
        await asyncio.wait_for(ready.wait(), 30)
        await _until(lambda: poster.skipped_already_posted >= 1, "the redelivered copy")
    finally:
        stop.set()
        await worker
    assert poster.skipped_already_posted == 1
    assert _raw_posts(simulator, reply.ticket_id) == 1
    assert len(simulator.replies(ticket_id=reply.ticket_id)) == 1
    assert (settings.resolved_data_dir / "outbound" / "delivered.sqlite").exists()

    restarted = OutboundPoster(settings, FAST_RETRIES)  # the record is on disk, not in memory
    async with httpx.AsyncClient() as client:
        again = await restarted.deliver(client, reply, asyncio.Event())
        other = await restarted.deliver(client, outbound_reply("dedup", reply.ticket_id), asyncio.Event())
    assert again.delivered and again.already_posted and again.attempts == 0
    assert other.delivered and not other.already_posted  # another reply on the same ticket still goes
    assert _raw_posts(simulator, reply.ticket_id) == 2


def _raw_posts(simulator, ticket_id: str) -> int:
    return httpx.get(f"{simulator.url}/replies", params={"ticket_id": ticket_id}, timeout=10).json()["posts"]


def _ours(records, run: str):
    return [(r.key, r.headers) for r in records if r.key and run.encode() in r.key]


async def _until(predicate, what: str, timeout: float = 30.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not await asyncio.to_thread(predicate):
        if loop.time() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.1)


class Crash(BaseException):
    """The outbound worker dying at a chosen point (not an Exception: nothing may catch it)."""


def _crash_after_the_helpdesk_acknowledged(poster, monkeypatch) -> None:
    def record(*args, **kwargs):
        raise Crash("killed after the helpdesk's acknowledgement, before our record")

    monkeypatch.setattr(poster.posted, "record", record)


def _crash_before_the_post_left(client, monkeypatch) -> None:
    async def request(method, url, **kwargs):
        raise Crash("killed after marking the reply, before sending it")

    monkeypatch.setattr(client, "request", request)


@pytest.mark.parametrize("source", [common_pb2.ZENDESK, common_pb2.INTERCOM], ids=["zendesk", "intercom"])
async def test_a_reply_cut_off_by_a_crash_is_posted_once_whichever_side_of_the_post_it_died(
    settings, simulator, monkeypatch, source
):
    """A worker killed between the helpdesk's acknowledgement and its own record leaves the reply marked
    `posting`; the restarted worker asks the helpdesk, finds it there and does not post it again. Killed
    before the post left, the restarted worker finds nothing and posts it. The same words sent earlier on
    purpose (another reply) are told apart by our record of them."""
    TenantStore(settings.resolved_data_dir).add("crash")
    ticket = f"cut-{uuid.uuid4().hex[:6]}"
    earlier = outbound_reply("crash", ticket, source, body="Anything else I can help with?")
    same_words = outbound_reply("crash", ticket, source, body="Anything else I can help with?")
    lost_before_post = outbound_reply("crash", ticket, source, body="Anything else I can help with?")
    async with httpx.AsyncClient() as client:
        assert (await OutboundPoster(settings, FAST_RETRIES).deliver(client, earlier, asyncio.Event())).delivered

        dying = OutboundPoster(settings, FAST_RETRIES)
        _crash_after_the_helpdesk_acknowledged(dying, monkeypatch)
        with pytest.raises(Crash):
            await dying.deliver(client, same_words, asyncio.Event())
        assert _raw_posts(simulator, ticket) == 2

        restarted = OutboundPoster(settings, FAST_RETRIES)
        again = await restarted.deliver(client, same_words, asyncio.Event())
        assert again.delivered and again.already_posted and restarted.found_on_helpdesk == 1
        assert _raw_posts(simulator, ticket) == 2  # not posted a second time

    async with httpx.AsyncClient() as client:
        dying = OutboundPoster(settings, FAST_RETRIES)
        _crash_before_the_post_left(client, monkeypatch)
        with pytest.raises(Crash):
            await dying.deliver(client, lost_before_post, asyncio.Event())
    async with httpx.AsyncClient() as client:
        restarted = OutboundPoster(settings, FAST_RETRIES)
        posted = await restarted.deliver(client, lost_before_post, asyncio.Event())
        assert posted.delivered and not posted.already_posted and restarted.found_on_helpdesk == 0
        assert _raw_posts(simulator, ticket) == 3  # two replies with these words on the helpdesk, then ours
        assert (await restarted.deliver(client, lost_before_post, asyncio.Event())).already_posted
    assert _raw_posts(simulator, ticket) == 3
    assert [r["body"] for r in simulator.replies(ticket_id=ticket)] == ["Anything else I can help with?"] * 3


async def test_the_look_up_reads_every_page_of_a_busy_ticket(settings, simulator, monkeypatch):
    """An earlier reply with the same words lies beyond the newest 100 comments: read from the first
    page alone, the cut-off copy would look like the earlier one and be posted a second time."""
    TenantStore(settings.resolved_data_dir).add("busy")
    ticket = f"busy-{uuid.uuid4().hex[:6]}"
    words = "Is there anything else I can do for you?"
    async with httpx.AsyncClient() as client:
        poster = OutboundPoster(settings, FAST_RETRIES)
        assert (await poster.deliver(client, outbound_reply("busy", ticket, body=words), asyncio.Event())).delivered
        for n in range(230):  # the conversation goes on: other replies, other words
            other = outbound_reply("busy", ticket, body=f"Update {n}: your parcel moved.")
            assert (await poster.deliver(client, other, asyncio.Event())).delivered
        dying = OutboundPoster(settings, FAST_RETRIES)
        _crash_after_the_helpdesk_acknowledged(dying, monkeypatch)
        cut_off = outbound_reply("busy", ticket, body=words)
        with pytest.raises(Crash):
            await dying.deliver(client, cut_off, asyncio.Event())
        monkeypatch.undo()
        restarted = OutboundPoster(settings, FAST_RETRIES)
        again = await restarted.deliver(client, cut_off, asyncio.Event())
    assert again.delivered and again.already_posted and restarted.found_on_helpdesk == 1
    assert _raw_posts(simulator, ticket) == 232  # the cut-off reply once, not twice


async def test_a_cut_off_reply_is_dead_lettered_when_the_helpdesk_cannot_say_whether_it_has_it(
    settings, simulator, monkeypatch
):
    """Posting blindly could post twice: when the lookup keeps failing, the reply goes to the DLQ with
    the reason (an operator can check the ticket and replay it)."""
    TenantStore(settings.resolved_data_dir).add("crash")
    reply = outbound_reply("crash", f"dark-{uuid.uuid4().hex[:6]}")
    poster = OutboundPoster(settings, FAST_RETRIES)
    poster.posted.begin(delivery_key(reply), reply.tenant_id, reply.ticket_id, body_digest(reply.body))
    async with httpx.AsyncClient() as client:
        real_request = client.request

        async def lookups_fail(method, url, **kwargs):
            if method == "GET":
                return httpx.Response(503, request=httpx.Request(method, url))
            return await real_request(method, url, **kwargs)

        monkeypatch.setattr(client, "request", lookups_fail)
        delivery = await poster.deliver(client, reply, asyncio.Event())
    assert not delivery.delivered and delivery.attempts == 3 and "gave up" in delivery.reason
    assert _raw_posts(simulator, reply.ticket_id) == 0
