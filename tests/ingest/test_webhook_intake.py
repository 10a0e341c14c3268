"""The webhook use case on its own: checks in order, nothing written on a refusal, the write awaited
before an answer. The writer here is a list (this is the use case's logic; the gateway's integration
tests write to the real broker)."""

from __future__ import annotations

import asyncio
import json

import pytest

from clonedesk.core.kafka import BrokerUnavailable
from clonedesk.core.signatures import verify_zendesk
from clonedesk.core.tenants import TenantStore
from clonedesk.ingest.domain import zendesk
from clonedesk.ingest.domain.events import MAX_JSON_DEPTH
from clonedesk.ingest.service_layer.webhooks import Rejected, WebhookIntake, parse_json
from tests.ingest import payloads
from tests.ingest.harness import sign_zendesk


def _verify(tenant, headers, body):
    verify_zendesk(tenant.zendesk_secret, headers.get("X-Zendesk-Webhook-Signature"),
                   headers.get("X-Zendesk-Webhook-Signature-Timestamp"), body)


class Writes:
    def __init__(self, fail: bool = False):
        self.events, self.fail = [], fail

    async def __call__(self, events):
        if self.fail:
            raise BrokerUnavailable("no ack")
        self.events += events
        return len(events)


@pytest.fixture
def store(tmp_path):
    store = TenantStore(tmp_path)
    store.add("acme")
    return store


def _accept(intake, tenant_id, body, headers):
    return asyncio.run(intake.accept("zendesk", tenant_id, headers, body, _verify, zendesk.normalise_webhook))


def test_an_accepted_webhook_is_written_before_its_ids_are_returned(store):
    writes = Writes()
    body = json.dumps(payloads.zendesk_created("1001")).encode()
    accepted = _accept(WebhookIntake(store, writes, lambda: False), "acme", body,
                       sign_zendesk(store.get("acme").zendesk_secret, body))
    assert accepted.event_ids == [e.event_id for e in writes.events] and len(accepted.event_ids) == 1
    assert accepted.ticket_id == "1001" and writes.events[0].received_at.seconds > 0


@pytest.mark.parametrize("case, status", [("unknown tenant", 404), ("bad signature", 401),
                                          ("malformed", 400), ("wrong shape", 422)])
def test_refusals_carry_their_status_and_write_nothing(store, case, status):
    writes = Writes()
    secret = store.get("acme").zendesk_secret
    body = {"malformed": b"{not json", "wrong shape": b'{"type": "zen:event-type:ticket.created"}'}.get(
        case, json.dumps(payloads.zendesk_created("1001")).encode())
    headers = sign_zendesk("not-the-secret" if case == "bad signature" else secret, body)
    with pytest.raises(Rejected) as refused:
        _accept(WebhookIntake(store, writes, lambda: False), "nobody" if case == "unknown tenant" else "acme",
                body, headers)
    assert refused.value.status == status and writes.events == []


def _nested(levels: int) -> bytes:
    return b'{"a": ' * (levels - 1) + b'{"a": "x"}' + b"}" * (levels - 1)


@pytest.mark.parametrize("body, status, reason", [
    (b'{"time": NaN}', 422, "not finite"), (b'{"time": -Infinity}', 422, "not finite"),
    (b'{"tags": [1, 1e999]}', 422, "not finite"), (b'[-1e400]', 422, "not finite"),
    (_nested(MAX_JSON_DEPTH + 1), 422, "deeper than"), (b'[' * 100_000 + b']' * 100_000, 400, "deeper than"),
    (b'{"a": 1', 400, "malformed JSON"), (b'\xff{}', 400, "malformed JSON"),
])
def test_bodies_no_webhook_can_be_are_refused_with_their_reason(body, status, reason):
    with pytest.raises(Rejected) as refused:
        parse_json(body)
    assert refused.value.status == status and reason in refused.value.reason


def test_bodies_within_the_limits_parse_as_json_does():
    # Braces inside strings count towards the cheap bracket test: the exact walk then finds them harmless.
    for body in (_nested(MAX_JSON_DEPTH), b'{"text": "' + b"{[" * 40 + b'", "n": 1.5, "big": 1e300}',
                 '{"name": "Zoë", "n": -0.0, "i": 12345678901234567890}'.encode("utf-16"),
                 json.dumps(payloads.zendesk_created("1001")).encode()):
        assert parse_json(body) == json.loads(body)


def test_an_unacknowledged_write_and_a_broker_that_restarted_mid_write_ask_for_a_retry(store):
    body = json.dumps(payloads.zendesk_created("1001")).encode()
    headers = sign_zendesk(store.get("acme").zendesk_secret, body)
    for intake in (WebhookIntake(store, Writes(fail=True), lambda: False),
                   WebhookIntake(store, Writes(), lambda: True)):
        with pytest.raises(Rejected) as refused:
            _accept(intake, "acme", body, headers)
        assert refused.value.status == 503 and refused.value.headers["Retry-After"]
