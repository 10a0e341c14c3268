"""Webhooks over real HTTP (uvicorn) into the real broker (tansu) and the faust worker; the samples,
resolve requests, outcomes and dead letters that come out are read back from the broker."""

from __future__ import annotations

import json
import time
import uuid
from datetime import datetime, timedelta, timezone

import httpx
import pytest

from clonedesk.core.domain import topics
from clonedesk.core.kafka import encode
from clonedesk.core.settings import Settings
from clonedesk.v1 import common_pb2, events_pb2, outcomes_pb2, resolver_pb2, training_pb2
from tests.conftest import free_port
from tests.ingest import payloads as p
from tests.ingest.conftest import Stack
from tests.ingest.harness import keyed, sign_intercom, sign_zendesk, start_service, stop_service, wait_for_http

pytestmark = pytest.mark.integration
Outcome = outcomes_pb2.ResolutionOutcome.Kind


def ticket() -> str:
    return uuid.uuid4().hex[:10]


def decoded(records, message_type):
    result = []
    for record in records:
        message = message_type()
        message.ParseFromString(record.value)
        result.append(message)
    return result


def accepted(response: httpx.Response) -> None:
    assert response.status_code == 200, response.text
    assert response.json()["status"] == "accepted"


def test_a_zendesk_ticket_solved_by_humans_becomes_scrubbed_training_samples(stack):
    tid = ticket()
    for payload in [
        p.zendesk_created(tid),
        p.zendesk_comment(tid, f"{tid}-1", "My card was charged twice for order 1138, can you refund one?",
                          staff=False, time="2026-11-21T10:00:30Z"),
        p.zendesk_comment(tid, f"{tid}-2", "Sorry! Which e-mail is on the account?", staff=True,
                          time="2026-11-21T10:01:00Z"),
        p.zendesk_comment(tid, f"{tid}-3", "It is jane.doe@example.com", staff=False, time="2026-11-21T10:02:00Z"),
        p.zendesk_comment(tid, f"{tid}-4", "Checked ledger, dup confirmed", staff=True, public=False,
                          time="2026-11-21T10:03:00Z"),
        p.zendesk_comment(tid, f"{tid}-5", "Refunded the duplicate charge.", staff=True,
                          time="2026-11-21T10:04:00Z"),
        p.zendesk_status(tid, f"{tid}-s", "OPEN", "SOLVED", time="2026-11-21T10:05:00Z"),
    ]:
        accepted(stack.zendesk(stack.quiet, payload))
    samples = decoded(stack.recorder.wait_for(topics.TRAINING_SAMPLES, keyed(stack.quiet.id, tid), 2, settle=2),
                      training_pb2.TrainingSample)
    assert len(samples) == 2
    ask, resolve = sorted(samples, key=lambda s: s.turn_index)
    assert (ask.decision, resolve.decision) == (common_pb2.ASK, common_pb2.RESOLVE)
    assert resolve.reply == "Refunded the duplicate charge."
    assert [t.text for t in resolve.context] == [
        "My card was charged twice for order 1138, can you refund one?",
        "Sorry! Which e-mail is on the account?", "It is [EMAIL]"]
    assert all("Checked ledger" not in t.text for t in resolve.context)
    assert stack.recorder.matching(topics.TICKETS_TO_RESOLVE, keyed(stack.quiet.id, tid)) == []  # not live


def live_zendesk_flow(stack: Stack, tid: str, times: int) -> None:
    """A live tenant's ticket: the customer writes, the AI answers (posted back as clonedesk-ai), the
    customer confirms, the ticket is solved and rated. Every webhook is sent `times` times."""
    opening = [p.zendesk_created(tid),
               p.zendesk_comment(tid, f"{tid}-1", p.zendesk_detail(tid)["description"], staff=False,
                                 time="2026-11-21T10:00:10Z")]
    for _ in range(times):
        for payload in opening:
            accepted(stack.zendesk(stack.live, payload))
    request = decoded(stack.recorder.wait_for(topics.TICKETS_TO_RESOLVE, keyed(stack.live.id, tid), 1, settle=2),
                      resolver_pb2.ResolveRequest)
    assert len(request) == 1, "one customer message, one request"
    assert request[0].conversation[0].role == common_pb2.CUSTOMER and request[0].request_id
    resolution = resolver_pb2.Resolution(resolution_id=f"res-{tid}", tenant_id=stack.live.id, ticket_id=tid,
                                         decision=common_pb2.RESOLVE, reply="I refunded the second charge.",
                                         request_id=request[0].request_id)
    for _ in range(times):
        stack.produce(topics.RESOLUTIONS, f"{stack.live.id}:{tid}".encode(), encode(resolution))
    rest = [p.zendesk_comment(tid, f"{tid}-ai", "I refunded the second charge.", staff=True,
                              author_id="clonedesk-ai", time="2026-11-21T10:01:00Z"),
            p.zendesk_comment(tid, f"{tid}-2", "Thanks, that worked!", staff=False, time="2026-11-21T10:02:00Z"),
            p.zendesk_status(tid, f"{tid}-s", "OPEN", "SOLVED", time="2026-11-21T10:03:00Z"),
            p.zendesk_rating(tid, f"{tid}-r", "good", time="2026-11-21T10:04:00Z")]
    # Give the resolution time to reach the worker before the helpdesk events that follow it.
    stack.recorder.wait_for(topics.HELPDESK_EVENTS, keyed(stack.live.id, tid), 2 * times)
    time.sleep(1.5)
    for _ in range(times):
        for payload in rest:
            accepted(stack.zendesk(stack.live, payload))


def test_a_live_ticket_gets_a_resolve_request_and_its_outcomes(stack):
    tid, conversation = ticket(), ticket()
    # An Intercom conversation opened on the live tenant, its webhook delivered twice: one request.
    opened = p.intercom_notification("conversation.user.created", p.intercom_conversation(conversation))
    for _ in range(2):
        accepted(stack.intercom(stack.live, opened))
    live_zendesk_flow(stack, tid, times=1)
    # After the solve the customer comes back (Zendesk reopens the ticket), a human takes it over, and the
    # customer's rating changes, through the satisfaction trigger's body this time.
    for payload in [
        p.zendesk_status(tid, f"{tid}-s2", "SOLVED", "OPEN", time="2026-11-21T10:05:00Z"),
        p.zendesk_comment(tid, f"{tid}-3", "It charged me a third time?", staff=False,
                          time="2026-11-21T10:05:30Z"),
        p.zendesk_assigned(tid, f"{tid}-a", p.AGENT_ID, time="2026-11-21T10:06:00Z"),
        p.zendesk_trigger_rating(tid, "Bad, I'm unsatisfied", "Still charged", "2026-11-21T10:09Z"),
    ]:
        accepted(stack.zendesk(stack.live, payload))
    outcomes = decoded(stack.recorder.wait_for(topics.RESOLUTION_OUTCOMES, keyed(stack.live.id, tid), 7,
                                               settle=2), outcomes_pb2.ResolutionOutcome)
    assert [(o.kind, o.csat_score) for o in outcomes] == [
        (Outcome.CUSTOMER_CONFIRMED, 0), (Outcome.SOLVED, 0), (Outcome.CSAT, 5),
        (Outcome.REOPENED, 0), (Outcome.CUSTOMER_REPLIED, 0), (Outcome.HUMAN_TOOK_OVER, 0), (Outcome.CSAT, 1)]
    assert {o.resolution_id for o in outcomes} == {f"res-{tid}"}
    assert stack.recorder.matching(topics.TRAINING_SAMPLES, keyed(stack.live.id, tid)) == []  # the AI answered
    # The customer's return, before the human took over, asked the AI again; the conversation so far.
    requests = decoded(stack.recorder.matching(topics.TICKETS_TO_RESOLVE, keyed(stack.live.id, tid)),
                       resolver_pb2.ResolveRequest)
    assert len(requests) == 2
    assert [(t.role, t.text) for t in requests[1].conversation][1:] == [
        (common_pb2.AI, "I refunded the second charge."), (common_pb2.CUSTOMER, "Thanks, that worked!"),
        (common_pb2.CUSTOMER, "It charged me a third time?")]

    intercom_requests = decoded(stack.recorder.wait_for(
        topics.TICKETS_TO_RESOLVE, keyed(stack.live.id, conversation), 1), resolver_pb2.ResolveRequest)
    assert len(intercom_requests) == 1
    assert intercom_requests[0].source == common_pb2.INTERCOM
    assert [(t.role, t.text) for t in intercom_requests[0].conversation] == [
        (common_pb2.CUSTOMER, "Hi, my parcel never arrived.")]


def intercom_human_flow(tid: str) -> list[dict]:
    conversation = lambda parts=None, rating=None: p.intercom_conversation(tid, parts, rating)  # noqa: E731
    return [
        p.intercom_notification("conversation.user.created", conversation()),
        p.intercom_notification("conversation.admin.assigned", conversation([p.intercom_part(
            f"{tid}-a", "assignment", assigned_to={"type": "admin", "id": "814860"}, created_at=1763719230)])),
        p.intercom_notification("conversation.admin.replied", conversation([p.intercom_part(
            f"{tid}-1", "comment", "<p>Sorry! What is your order number?</p>", created_at=1763719260)])),
        p.intercom_notification("conversation.user.replied", conversation([p.intercom_part(
            f"{tid}-2", "comment", "<p>It's 1138, call me on 415-555-1234</p>", author_type="user",
            author_id="5310d8e7598c9a0b24000002", created_at=1763719320)])),
        p.intercom_notification("conversation.admin.replied", conversation([p.intercom_part(
            f"{tid}-3", "comment", "<p>Found it, a new parcel ships today.</p>", created_at=1763719380)])),
        p.intercom_notification("conversation.admin.closed", conversation([p.intercom_part(
            f"{tid}-4", "close", created_at=1763719440)])),
        p.intercom_notification("conversation.rating.added", conversation(rating={
            "rating": 5, "remark": "quick", "created_at": 1763719500})),
    ]


def test_every_webhook_replayed_twice_doubles_nothing_downstream(stack):
    human, ai = ticket(), ticket()
    flow = intercom_human_flow(human)
    for _ in range(2):  # the whole history delivered twice, as a vendor retrying everything would
        for payload in flow:
            accepted(stack.intercom(stack.quiet, payload))
    live_zendesk_flow(stack, ai, times=2)

    events = stack.recorder.wait_for(topics.HELPDESK_EVENTS, keyed(stack.quiet.id, human), 2 * len(flow))
    ids = [e.event_id for e in decoded(events, events_pb2.HelpdeskEvent)]
    # One event per webhook, and the broker did get every one twice.
    assert len(ids) == 2 * len(flow) and all(ids.count(i) == 2 for i in ids)

    samples = decoded(stack.recorder.wait_for(topics.TRAINING_SAMPLES, keyed(stack.quiet.id, human), 2, settle=3),
                      training_pb2.TrainingSample)
    assert sorted(s.reply for s in samples) == ["Found it, a new parcel ships today.",
                                                "Sorry! What is your order number?"]
    last = max(samples, key=lambda s: s.turn_index)
    assert last.context[-1].text == "It's 1138, call me on [PHONE]"
    outcomes = decoded(stack.recorder.wait_for(topics.RESOLUTION_OUTCOMES, keyed(stack.live.id, ai), 3, settle=3),
                       outcomes_pb2.ResolutionOutcome)
    assert sorted(o.kind for o in outcomes) == sorted([Outcome.CUSTOMER_CONFIRMED, Outcome.SOLVED, Outcome.CSAT])
    assert len(stack.recorder.matching(topics.TICKETS_TO_RESOLVE, keyed(stack.live.id, ai))) == 1


def test_bad_requests_are_refused_and_nothing_is_written(stack):
    tid = ticket()
    tenant = stack.quiet
    good = p.body_of(p.zendesk_created(tid))
    url = f"{stack.url}/webhooks/zendesk/{tenant.id}"
    stale = (datetime.now(timezone.utc) - timedelta(minutes=6)).strftime("%Y-%m-%dT%H:%M:%SZ")
    cases = [
        (good, sign_zendesk("not-the-secret", good), 401),
        (good, sign_zendesk(tenant.zendesk_secret, good, stamp=stale), 401),
        (good.replace(tid.encode(), tid[:-1].encode() + b"X", 1), sign_zendesk(tenant.zendesk_secret, good), 401),
        (good, {"Content-Type": "application/json"}, 401),
        (b'{"type": "zen:event-type:ticket.created", ' + tid.encode(), None, 400),
        (json.dumps({"type": "zen:event-type:ticket.created", "id": tid}).encode(), None, 422),
        (b'{"pad": "' + b"x" * (1024 * 1024) + b'", "id": "' + tid.encode() + b'"}', None, 413),
    ]
    for body, headers, expected in cases:
        headers = headers or sign_zendesk(tenant.zendesk_secret, body)
        response = httpx.post(url, content=body, headers=headers, timeout=30)
        assert response.status_code == expected, (expected, response.text)
        assert response.json()["error"]
    def chunks():  # no Content-Length: the limit must hold while the body streams in
        for _ in range(20):
            yield b"x" * 100_000
    chunked = httpx.post(url, content=chunks(), headers=sign_zendesk(tenant.zendesk_secret, b""), timeout=30)
    assert chunked.status_code == 413
    unknown = httpx.post(f"{stack.url}/webhooks/zendesk/nobody-here", content=good,
                         headers=sign_zendesk(tenant.zendesk_secret, good), timeout=30)
    assert unknown.status_code == 404
    intercom_body = p.body_of(p.intercom_notification("conversation.user.created", p.intercom_conversation(tid)))
    bad_intercom = httpx.post(f"{stack.url}/webhooks/intercom/{tenant.id}", content=intercom_body,
                              headers=sign_intercom("wrong", intercom_body), timeout=30)
    assert bad_intercom.status_code == 401
    ignored = stack.zendesk(tenant, p.zendesk_event("ticket.priority_changed", tid, {"current": "HIGH"}, tid))
    assert ignored.status_code == 202 and ignored.json()["status"] == "ignored"
    # A good webhook for another ticket, once on the broker, shows the refused ones would have been there too.
    sentinel = ticket()
    accepted(stack.zendesk(tenant, p.zendesk_created(sentinel)))
    stack.recorder.wait_for(topics.HELPDESK_EVENTS, keyed(tenant.id, sentinel), 1, settle=1)
    assert stack.recorder.matching(topics.HELPDESK_EVENTS, keyed(tenant.id, tid)) == []
    assert stack.recorder.matching(topics.HELPDESK_EVENTS, lambda r: tid.encode() in (r.key or b"")) == []


def test_readiness_and_a_broker_that_is_down(stack):
    assert httpx.get(f"{stack.url}/readyz", timeout=10).status_code == 200
    settings = Settings(data_dir=stack.settings.resolved_data_dir, kafka_bootstrap=f"127.0.0.1:{free_port()}",
                        gateway_port=free_port(), topic_partitions=2)
    gateway = start_service(["ingest"], settings.child_env(), stack.root / "gateway-no-broker.log")
    try:
        url = f"http://127.0.0.1:{settings.gateway_port}"
        wait_for_http(f"{url}/healthz", gateway)
        body = p.body_of(p.zendesk_created(ticket()))
        response = httpx.post(f"{url}/webhooks/zendesk/{stack.quiet.id}", content=body,
                              headers=sign_zendesk(stack.quiet.zendesk_secret, body), timeout=30)
        assert response.status_code == 503 and int(response.headers["Retry-After"]) > 0
        ready = httpx.get(f"{url}/readyz", timeout=30)
        assert ready.status_code == 503
    finally:
        stop_service(gateway)


def test_a_poison_record_is_dead_lettered_and_the_worker_goes_on(stack):
    poison_key = f"{stack.live.id}:poison-{ticket()}".encode()
    stack.produce(topics.HELPDESK_EVENTS, poison_key, b"\xff\x00 not a protobuf \xff")
    dead = stack.recorder.wait_for(topics.dlq(topics.HELPDESK_EVENTS), lambda r: r.key == poison_key, 1)
    headers = dict(dead[0].headers)
    assert b"cannot decode" in headers["dlq.reason"] or b"without" in headers["dlq.reason"]
    assert headers["dlq.source_topic"] == topics.HELPDESK_EVENTS.encode()
    # A Resolution without its ids is poison too, on the other input topic.
    idless = resolver_pb2.Resolution(reply="hello")
    stack.produce(topics.RESOLUTIONS, poison_key, encode(idless))
    dead = stack.recorder.wait_for(topics.dlq(topics.RESOLUTIONS), lambda r: r.key == poison_key, 1)
    assert b"without resolution_id" in dict(dead[0].headers)["dlq.reason"]
    tid = ticket()
    accepted(stack.zendesk(stack.live, p.zendesk_created(tid)))
    stack.recorder.wait_for(topics.TICKETS_TO_RESOLVE, keyed(stack.live.id, tid), 1)
