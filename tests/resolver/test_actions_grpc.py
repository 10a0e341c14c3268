"""ACTION answers over a real gRPC socket: the resolver calls a real HTTP back office (which checks the
signature itself), writes the reply from the call's result, and escalates whenever the call did not
happen: a timeout, `ok: false`, a name the tenant does not allow, no actions URL."""

from __future__ import annotations

import pytest
from clonedesk.core.tenants import TenantStore
from clonedesk.resolver.domain.actions import Status
from clonedesk.v1 import common_pb2

from .conftest import ACTION_CALL, ACTION_TENANT, CUSTOMER_LINES, RunningResolver, hotel_reply, resolve_request
from .test_actions import BackOfficeServer

pytestmark = pytest.mark.integration


def _ok(hotel: str, delay_s: float = 0.0):
    return (200, {"ok": True, "results": [{"hotel": hotel, "day": "Friday"}]}, delay_s)


@pytest.fixture
def data_dir(tmp_path, zoo):
    data = tmp_path / "data"
    zoo.install(data, ACTION_TENANT, [1], current=1)
    return data


def _configure(data_dir, **fields):
    store = TenantStore(data_dir)
    tenant = store.get(ACTION_TENANT)
    for name, value in fields.items():
        setattr(tenant, name, value)
    store.save(tenant)
    return tenant


@pytest.fixture
async def resolver(zoo, data_dir):
    async with RunningResolver(zoo, data_dir) as running:
        yield running


@pytest.mark.parametrize("hotel", ["Savoy", "Ritz"])
async def test_the_call_is_carried_out_and_the_reply_is_written_from_its_result(resolver, data_dir, hotel):
    tenant = TenantStore(data_dir).get(ACTION_TENANT)
    with BackOfficeServer(tenant.actions_secret, [_ok(hotel)]) as office:
        _configure(data_dir, actions_url=office.url)
        first = await resolver.stub.Resolve(resolve_request(ACTION_TENANT, "t-1", CUSTOMER_LINES[0], request_id="r-1"))
        again = await resolver.stub.Resolve(resolve_request(ACTION_TENANT, "t-1", CUSTOMER_LINES[0], request_id="r-1"))
    assert (first.decision, first.action, first.reply) == (common_pb2.ACTION, ACTION_CALL, hotel_reply(hotel))
    run = first.action_run
    assert (run.status, run.call, run.attempts) == (Status.OK, ACTION_CALL, 1) and hotel in run.answer
    assert all(r["signed"] for r in office.requests) and len(office.requests) == 2
    body = office.requests[0]["body"]
    assert (body["tenant_id"], body["ticket_id"], body["resolution_id"], body["action"], body["parameters"]) == (
        ACTION_TENANT, "t-1", first.resolution_id, "BookRoom", {"day": "Friday"})
    # a redelivered request asks for the same thing under the same key: the back office can deduplicate it
    assert office.requests[0]["key"] == office.requests[1]["key"] == run.idempotency_key
    assert again.resolution_id == first.resolution_id


@pytest.mark.parametrize("script, status, reason", [
    ([_ok("Savoy", delay_s=1.5)], Status.TIMED_OUT, "timed out"),
    ([(200, {"ok": False, "error": "no rooms on Friday"}, 0)], Status.FAILED, "no rooms on Friday"),
    ([(503, {"ok": False, "error": "down"}, 0)], Status.FAILED, "HTTP 503"),
])
async def test_a_call_that_did_not_happen_is_escalated_and_nothing_is_said(resolver, data_dir, script, status,
                                                                           reason):
    tenant = TenantStore(data_dir).get(ACTION_TENANT)
    with BackOfficeServer(tenant.actions_secret, script) as office:
        _configure(data_dir, actions_url=office.url, actions_timeout_s=0.3)
        response = await resolver.stub.Resolve(resolve_request(ACTION_TENANT, "t-2", CUSTOMER_LINES[1]))
    assert (response.decision, response.reply) == (common_pb2.ESCALATE, "")
    assert response.action_run.status == status and reason in response.escalation_reason
    assert response.action == ACTION_CALL and office.requests


async def test_a_call_the_tenant_does_not_allow_is_never_sent(resolver, data_dir):
    tenant = TenantStore(data_dir).get(ACTION_TENANT)
    with BackOfficeServer(tenant.actions_secret, [_ok("Savoy")]) as office:
        _configure(data_dir, actions_url=office.url, actions_allow=["CancelRoom"])
        response = await resolver.stub.Resolve(resolve_request(ACTION_TENANT, "t-3", CUSTOMER_LINES[2]))
    assert (response.decision, response.reply, response.action_run.status) == (
        common_pb2.ESCALATE, "", Status.NOT_ALLOWED)
    assert "BookRoom is not allowed" in response.escalation_reason and office.requests == []


async def test_without_an_actions_url_an_action_escalates(resolver):
    response = await resolver.stub.Resolve(resolve_request(ACTION_TENANT, "t-4", CUSTOMER_LINES[3]))
    assert (response.decision, response.reply, response.action_run.status) == (
        common_pb2.ESCALATE, "", Status.NOT_CONFIGURED)
    assert "no actions URL" in response.escalation_reason
