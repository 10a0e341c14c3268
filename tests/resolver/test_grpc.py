"""Resolver/Resolve over a real gRPC socket, HF engine on real peft adapters: each tenant's own
behaviour, escalation, status codes, deadlines, overload, health and reflection."""

from __future__ import annotations

import asyncio
import logging
import time

import grpc
import pytest
from clonedesk.core.tenants import TenantStore
from clonedesk.resolver.domain.requests import resolution_id
from clonedesk.v1 import common_pb2, resolver_pb2
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

from .conftest import CUSTOMER_LINES, RunningResolver, SlowEngine, conversation, resolve_request

pytestmark = pytest.mark.integration


@pytest.fixture
def data_dir(tmp_path, zoo):
    data = tmp_path / "data"
    zoo.install(data, "alpha", [1], current=1)
    zoo.install(data, "beta", [1], current=1)
    zoo.install(data, "gamma", [1], current=1)
    TenantStore(data).add("delta")  # a tenant without any adapter yet
    return data


@pytest.fixture
async def resolver(zoo, data_dir):
    async with RunningResolver(zoo, data_dir) as running:
        yield running


async def test_each_tenant_is_answered_by_its_own_adapter(resolver, zoo):
    alpha = await resolver.stub.Resolve(
        resolve_request("alpha", "t-1", CUSTOMER_LINES[0], request_id="req-1")
    )
    beta = await resolver.stub.Resolve(resolve_request("beta", "t-1", CUSTOMER_LINES[0], request_id="req-1"))
    assert (alpha.tenant_id, alpha.adapter_version, alpha.decision, alpha.reply) == (
        "alpha",
        "alpha@v1",
        common_pb2.RESOLVE,
        zoo.expected("alpha", 1)[2],
    )
    assert (beta.tenant_id, beta.adapter_version, beta.decision, beta.reply) == (
        "beta",
        "beta@v1",
        common_pb2.ASK,
        zoo.expected("beta", 1)[2],
    )
    assert alpha.confidence > 0.5 and beta.confidence > 0.5
    assert alpha.resolution_id == resolution_id("alpha", "req-1") != beta.resolution_id
    assert alpha.ticket_id == "t-1"


async def test_concurrent_tenants_are_batched_and_each_keeps_its_answer(resolver, zoo):
    tenants = ["alpha", "beta"] * 6
    responses = await asyncio.gather(
        *(
            resolver.stub.Resolve(resolve_request(t, f"t-{i}", CUSTOMER_LINES[i % 12]))
            for i, t in enumerate(tenants)
        )
    )
    for tenant, response in zip(tenants, responses):
        assert response.tenant_id == tenant and response.adapter_version == f"{tenant}@v1"
        assert response.reply == zoo.expected(tenant, 1)[2]
    assert resolver.engine.largest_batch > 1


async def test_a_redelivered_request_gets_the_same_resolution_id(resolver):
    request = resolve_request("alpha", "t-9", CUSTOMER_LINES[2], request_id="evt-77")
    first, again = await resolver.stub.Resolve(request), await resolver.stub.Resolve(request)
    assert first.resolution_id == again.resolution_id
    other = await resolver.stub.Resolve(
        resolve_request("alpha", "t-9", CUSTOMER_LINES[2], request_id="evt-78")
    )
    assert other.resolution_id != first.resolution_id


async def test_escalations_carry_no_customer_reply(resolver, data_dir):
    escalated = await resolver.stub.Resolve(resolve_request("gamma", "t-1", CUSTOMER_LINES[1]))
    assert escalated.decision == common_pb2.ESCALATE and escalated.reply == ""
    assert escalated.adapter_version == "gamma@v1"
    # A confident answer under a stricter tenant threshold escalates too.
    store = TenantStore(data_dir)
    alpha = store.get("alpha")
    alpha.escalation_threshold = 0.9999
    store.save(alpha)
    strict = await resolver.stub.Resolve(resolve_request("alpha", "t-2", CUSTOMER_LINES[1]))
    assert strict.decision == common_pb2.ESCALATE and strict.reply == "" and 0.5 < strict.confidence < 0.9999


async def test_an_answer_under_the_threshold_chosen_on_the_holdout_is_escalated(zoo, tmp_path):
    """No override: the threshold comes from the adapter's calibration record. A holdout on which this
    adapter was right only when very sure puts the threshold above what its calibration gives now."""
    import json

    from clonedesk.core.adapters import CALIBRATION_FILE, version_dir

    data = tmp_path / "calibrated"
    zoo.install(data, "alpha", [1], current=1)
    zoo.install(data, "beta", [1], current=1)
    # alpha: calibrated confidences of ~0.6 at most; right only at 0.97 and above on its holdout.
    (version_dir(data, "alpha", 1) / CALIBRATION_FILE).write_text(json.dumps(
        {"slope": 0.05, "bias": 0.3, "turns": 4, "points": [[0.98, True], [0.97, True], [0.6, False], [0.5, False]]}))
    # beta: a calibration that keeps it sure, and a holdout on which it was right from 0.3 up.
    (version_dir(data, "beta", 1) / CALIBRATION_FILE).write_text(json.dumps(
        {"slope": 1.0, "bias": 0.0, "turns": 2, "points": [[0.9, True], [0.3, True]]}))
    store = TenantStore(data)
    assert store.get("alpha").escalation_threshold is None  # nothing overrides the holdout's choice
    async with RunningResolver(zoo, data) as running:
        unsure = await running.stub.Resolve(resolve_request("alpha", "t-c1", CUSTOMER_LINES[0]))
        sure = await running.stub.Resolve(resolve_request("beta", "t-c1", CUSTOMER_LINES[0]))
    assert unsure.decision == common_pb2.ESCALATE and unsure.reply == "" and unsure.confidence < 0.97
    assert sure.decision == common_pb2.ASK and sure.reply == zoo.expected("beta", 1)[2] and sure.confidence >= 0.3


async def test_a_customer_asking_for_a_human_is_escalated_whatever_the_adapter_would_say(resolver):
    answered = await resolver.stub.Resolve(resolve_request("alpha", "t-h", CUSTOMER_LINES[0]))
    assert answered.decision != common_pb2.ESCALATE and answered.reply
    asked = await resolver.stub.Resolve(resolve_request("alpha", "t-h2", "I want to talk to a real person please"))
    assert asked.decision == common_pb2.ESCALATE and asked.reply == "" and asked.adapter_version == "alpha@v1"


@pytest.mark.parametrize(
    "request_fields, code",
    [
        (dict(tenant_id="nobody", ticket_id="1", conversation=conversation("hi")), grpc.StatusCode.NOT_FOUND),
        (
            dict(tenant_id="delta", ticket_id="1", conversation=conversation("hi")),
            grpc.StatusCode.FAILED_PRECONDITION,
        ),
        (dict(tenant_id="alpha", ticket_id="1"), grpc.StatusCode.INVALID_ARGUMENT),
        (dict(tenant_id="alpha", conversation=conversation("hi")), grpc.StatusCode.INVALID_ARGUMENT),
        (
            dict(tenant_id="../etc", ticket_id="1", conversation=conversation("hi")),
            grpc.StatusCode.INVALID_ARGUMENT,
        ),
    ],
)
async def test_errors_have_proper_status_codes(resolver, request_fields, code):
    with pytest.raises(grpc.aio.AioRpcError) as failure:
        await resolver.stub.Resolve(resolver_pb2.ResolveRequest(**request_fields))
    assert failure.value.code() == code
    assert failure.value.details()


async def test_the_routing_header_must_name_the_requests_tenant(resolver):
    request = resolve_request("alpha", "t-route", CUSTOMER_LINES[0])
    with pytest.raises(grpc.aio.AioRpcError) as failure:
        await resolver.stub.Resolve(request, metadata=[("x-tenant-id", "beta")], timeout=30)
    assert failure.value.code() == grpc.StatusCode.INVALID_ARGUMENT and "x-tenant-id" in failure.value.details()
    answered = await resolver.stub.Resolve(request, metadata=[("x-tenant-id", "alpha")], timeout=30)
    assert answered.tenant_id == "alpha" and answered.adapter_version.startswith("alpha@")


async def test_deadlines_are_honoured_and_the_server_carries_on(resolver, zoo):
    with pytest.raises(grpc.aio.AioRpcError) as failure:
        await resolver.stub.Resolve(resolve_request("alpha", "t-1", CUSTOMER_LINES[0]), timeout=0.001)
    assert failure.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
    after = await resolver.stub.Resolve(resolve_request("alpha", "t-1", CUSTOMER_LINES[0]), timeout=30)
    assert after.reply == zoo.expected("alpha", 1)[2]


async def test_the_server_itself_gives_up_at_the_deadline_and_carries_on(zoo, data_dir, caplog):
    """Slow adapter load, then slow generation: each time the server abandons the request at its
    deadline (logged, counted), frees its slot long before the slow work would end, and serves the next."""
    caplog.set_level(logging.WARNING, logger="clonedesk.resolver.service_layer.resolve")
    async with RunningResolver(zoo, data_dir, wrap=SlowEngine) as running:
        service, engine = running.service, running.engine
        engine.load_delay_s = 6.0  # alpha's adapter is not loaded yet: the lease itself is slow
        started = time.monotonic()
        with pytest.raises(TimeoutError):  # a direct caller's deadline covers the load too
            await service.resolve(resolve_request("alpha", "t-1", CUSTOMER_LINES[0]), timeout=1.0)
        assert time.monotonic() - started < 3.0
        assert (service.abandoned, service.in_flight) == (1, 0)

        engine.load_delay_s, engine.generate_delay_s = 0.0, 30.0
        started = time.monotonic()
        with pytest.raises(grpc.aio.AioRpcError) as failure:
            await running.stub.Resolve(resolve_request("beta", "t-2", CUSTOMER_LINES[1]), timeout=1.5)
        assert failure.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
        await _until(lambda: service.abandoned == 2 and service.in_flight == 0, "the server to give up")
        assert time.monotonic() - started < 6.0  # the generation would have taken 30 s

        engine.generate_delay_s = 0.0
        after = await running.stub.Resolve(resolve_request("alpha", "t-3", CUSTOMER_LINES[0]), timeout=30)
        assert after.reply == zoo.expected("alpha", 1)[2] and service.in_flight == 0
    abandoned = [r for r in caplog.records if r.getMessage() == "request abandoned"]
    assert [(r.tenant, r.stage) for r in abandoned] == [("alpha", "lease"), ("beta", "generate")]


async def _until(predicate, what: str, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.05)


async def test_overload_is_resource_exhausted(zoo, data_dir):
    async with RunningResolver(zoo, data_dir, max_pending=2, batch_wait_ms=50) as small:
        results = await asyncio.gather(
            *(small.stub.Resolve(resolve_request("alpha", f"t-{i}", CUSTOMER_LINES[0])) for i in range(10)),
            return_exceptions=True,
        )
    codes = [r.code() for r in results if isinstance(r, grpc.aio.AioRpcError)]
    answered = [r for r in results if isinstance(r, resolver_pb2.ResolveResponse)]
    assert codes and set(codes) == {grpc.StatusCode.RESOURCE_EXHAUSTED}
    assert answered and all(r.adapter_version == "alpha@v1" for r in answered)


async def test_health_and_reflection(resolver):
    health = health_pb2_grpc.HealthStub(resolver.channel)
    for service in ("", "clonedesk.v1.Resolver"):
        reply = await health.Check(health_pb2.HealthCheckRequest(service=service))
        assert reply.status == health_pb2.HealthCheckResponse.SERVING
    reflection = reflection_pb2_grpc.ServerReflectionStub(resolver.channel)
    responses = reflection.ServerReflectionInfo(
        iter([reflection_pb2.ServerReflectionRequest(list_services="")])
    )
    names = [s.name async for r in responses for s in r.list_services_response.service]
    assert "clonedesk.v1.Resolver" in names and "grpc.health.v1.Health" in names
