"""The helpdesk simulator's back office (the demo's actions URL), called over HTTP by the resolver's own
client: it answers a live ticket's calls from the dialogue's recorded results and says so, refuses a
bad signature, never invents a call, and answers a repeated idempotency key the same way."""

from __future__ import annotations

import json

import httpx
import pytest
from clonedesk.core.domain.action_calls import ActionCall
from clonedesk.core.tenants import Tenant
from clonedesk.resolver.adapters.back_office import BackOffice
from clonedesk.resolver.domain.actions import Status, request_body
from clonedesk.core.domain.sgd import recorded_calls
from tests.conftest import free_port

from .conftest import SimulatorServer

pytestmark = pytest.mark.integration


@pytest.fixture
def hotels_dialogue(sgd_dir) -> dict:
    for line in (sgd_dir / "train_Hotels_2.jsonl").open():
        dialogue = json.loads(line)
        if len(recorded_calls(dialogue)) >= 2:
            return dialogue
    raise AssertionError("no Hotels_2 dialogue with two calls")


async def test_calls_are_answered_from_the_tickets_recorded_results(hotels_dialogue):
    calls = recorded_calls(hotels_dialogue)
    ticket = hotels_dialogue["dialogue_id"]
    tenant = Tenant.new("hotels")
    with SimulatorServer(free_port()) as sim:
        tenant.actions_url = f"{sim.url}/back-office/hotels/actions"
        httpx.put(f"{sim.url}/_sim/back-office/hotels", json={"secret": tenant.actions_secret}).raise_for_status()
        httpx.put(f"{sim.url}/_sim/back-office/hotels/tickets/{ticket}",
                  json={"dialogue_id": ticket, "calls": calls}).raise_for_status()
        office = BackOffice(retry_pause_s=0.01)
        try:
            first = await office.call(tenant, ticket, "r-1", ActionCall(calls[0]["action"], calls[0]["parameters"]))
            repeated = await office.call(tenant, ticket, "r-1", ActionCall(calls[0]["action"], calls[0]["parameters"]))
            never = await office.call(tenant, ticket, "r-2", ActionCall("TransferMoney", {"amount": "5"}))
            elsewhere = await office.call(tenant, "no-such-ticket", "r-3", ActionCall(calls[0]["action"], {}))
        finally:
            await office.close()
        body = request_body("hotels", ticket, "r-9", ActionCall("X"), 1)
        forged = httpx.post(tenant.actions_url, content=body,
                            headers={"X-CloneDesk-Signature": "sha256=" + "0" * 64})
        log = httpx.get(f"{sim.url}/_sim/back-office/calls", params={"tenant_id": "hotels"}).json()["calls"]
    assert first.status == Status.OK and list(first.answer.results) == calls[0]["results"]
    assert repeated.answer == first.answer  # same key: same answer, no other recorded call used up
    assert never.status == Status.FAILED and "never called TransferMoney" in never.reason
    assert elsewhere.status == Status.FAILED and "no recorded dialogue" in elsewhere.reason
    assert forged.status_code == 401
    assert f"recorded service_results of dialogue {ticket}" in log[0]["answer"]["source"]
    assert len(log) == 3  # the repeat was answered from its key, not carried out again
