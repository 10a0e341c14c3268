"""Property-based: the real vendor payloads, one value replaced by something no helpdesk should send,
validly signed and POSTed to the running gateway. Whatever the value, the answer is 2xx, 400, 413 or 422
with a reason: never a 5xx, never a dropped connection."""

from __future__ import annotations

import json
import uuid

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.ingest import payloads as p
from tests.ingest.harness import sign_intercom, sign_zendesk

pytestmark = pytest.mark.integration


def _deep(levels: int):
    value = "x"
    for _ in range(levels):
        value = {"a": value}
    return value


HOSTILE = st.one_of(
    st.sampled_from([10**30, -10**30, 1e30, -1.0, 0, 2**63, 1e308, True, None, "", [], {}, [[[]]],
                     "2026-13-45T99:99:99Z", "9999-12-31T23:59:59Z", "0001-01-01T00:00:00Z", "\x00\x06",
                     "\U00105000" * 3, "x" * 70_000, _deep(40), _deep(200), [_deep(10)] * 3]),
    st.text(max_size=80), st.integers(), st.floats(allow_nan=False), st.lists(st.integers(), max_size=3),
    st.dictionaries(st.text(max_size=5), st.text(max_size=5), max_size=3),
)


def _leaf_paths(value, path=()):
    """Every position in a payload: each key's value and each list item, at any depth."""
    yield path
    if isinstance(value, dict):
        for key, child in value.items():
            yield from _leaf_paths(child, path + (key,))
    elif isinstance(value, list):
        for index, child in enumerate(value):
            yield from _leaf_paths(child, path + (index,))


def _replaced(payload, path, new):
    if not path:
        return new
    copy = json.loads(json.dumps(payload))
    target = copy
    for step in path[:-1]:
        target = target[step]
    target[path[-1]] = new
    return copy


def _zendesk_payloads(ticket: str) -> list[dict]:
    return [p.zendesk_created(ticket), p.zendesk_comment(ticket, f"c-{ticket}", "Where is my refund?", staff=False),
            p.zendesk_status(ticket, f"s-{ticket}", "OPEN", "SOLVED"), p.zendesk_assigned(ticket, f"a-{ticket}", "42"),
            p.zendesk_rating(ticket, f"r-{ticket}", "good")]


def _intercom_payloads(ticket: str) -> list[dict]:
    parts = [p.intercom_part(f"part-{ticket}", "comment", "Thanks, sorted.")]
    return [p.intercom_notification("conversation.user.created", p.intercom_conversation(ticket)),
            p.intercom_notification("conversation.admin.replied", p.intercom_conversation(ticket, parts))]


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                   HealthCheck.too_slow])
@given(data=st.data(), hostile=HOSTILE, vendor=st.sampled_from(["zendesk", "intercom"]))
def test_no_mutated_webhook_gets_a_5xx(stack, data, hostile, vendor):
    ticket = f"fz{uuid.uuid4().hex[:10]}"
    payloads = _zendesk_payloads(ticket) if vendor == "zendesk" else _intercom_payloads(ticket)
    payload = data.draw(st.sampled_from(payloads))
    path = data.draw(st.sampled_from(list(_leaf_paths(payload))))
    mutated = _replaced(payload, path, hostile)
    body = json.dumps(mutated).encode()
    tenant = stack.quiet
    headers = (sign_zendesk(tenant.zendesk_secret, body) if vendor == "zendesk"
               else sign_intercom(tenant.intercom_secret, body))
    response = httpx.post(f"{stack.url}/webhooks/{vendor}/{tenant.id}", content=body, headers=headers, timeout=30)
    assert response.status_code in (200, 202, 400, 413, 422), (path, str(hostile)[:80], response.text[:300])
    if response.status_code >= 400:
        assert response.json()["error"]


@pytest.mark.parametrize("raw", [b'{"a": ' * 100_000 + b"1" + b"}" * 100_000,
                                 b'{"type": "zen:event-type:ticket.created", "time": NaN}',
                                 b'{"type": "zen:event-type:ticket.created", "time": 1e999}'])
def test_json_no_parser_should_take_is_refused_with_a_reason(stack, raw):
    tenant = stack.quiet
    response = httpx.post(f"{stack.url}/webhooks/zendesk/{tenant.id}", content=raw,
                          headers=sign_zendesk(tenant.zendesk_secret, raw), timeout=30)
    assert response.status_code in (400, 413, 422) and response.json()["error"]
