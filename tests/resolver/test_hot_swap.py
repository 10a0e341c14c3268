"""Hot adapter swaps on the real HF engine: new requests use the published version, requests in flight
finish on theirs, old versions are unloaded when idle; and, under load, through gRPC with publications
arriving over Kafka, no tenant is ever answered with another tenant's adapter."""

from __future__ import annotations

import asyncio
import random
import time

import pytest
from clonedesk.core.adapters import set_current_version, version_dir
from clonedesk.core.domain.conversation_format import parse_target
from clonedesk.core.kafka import encode, make_producer
from clonedesk.core.domain.topics import ADAPTERS_PUBLISHED
from clonedesk.resolver.adapters.lora_cache import AdapterCache
from clonedesk.resolver.engines.base import GenerationRequest
from clonedesk.resolver.entrypoints.grpc_server import follow_publications
from clonedesk.v1 import adapters_pb2, common_pb2, resolver_pb2

from .conftest import (
    CUSTOMER_LINES,
    RunningResolver,
    available_engines,
    make_test_engine,
    resolve_request,
    tenant_messages,
)

pytestmark = pytest.mark.integration

TENANTS = ("alpha", "beta", "gamma")


@pytest.fixture
async def engine(zoo):
    engine = make_test_engine("hf", zoo)
    await engine.start()
    yield engine
    await engine.close()


async def test_in_flight_requests_finish_on_the_version_they_started_with(engine, zoo, tmp_path):
    data = tmp_path / "data"
    zoo.install(data, "alpha", [1, 2], current=1)
    cache = AdapterCache(engine, data, capacity=8)
    messages = tenant_messages("alpha", CUSTOMER_LINES[4])
    async with cache.lease("alpha") as started_on_v1:
        assert started_on_v1.name == "alpha@v1"
        set_current_version(data, "alpha", 2)
        assert await cache.publish("alpha", 2, version_dir(data, "alpha", 2))
        assert cache.current_name("alpha") == "alpha@v2"
        assert set(engine.loaded_adapters()) == {"alpha@v1", "alpha@v2"}  # v1 still has a request
        async with cache.lease("alpha") as new_request:
            assert new_request.name == "alpha@v2"
            fresh = await engine.generate(GenerationRequest(new_request.name, messages))
        finishing = await engine.generate(GenerationRequest(started_on_v1.name, messages))
    assert parse_target(finishing.text).reply == zoo.expected("alpha", 1)[2]
    assert parse_target(fresh.text).reply == zoo.expected("alpha", 2)[2]
    assert engine.loaded_adapters() == ["alpha@v2"]  # v1 unloaded once its last request ended
    # A replayed old publication changes nothing; a rollback the registry agrees with does.
    assert not await cache.publish("alpha", 1, version_dir(data, "alpha", 1))
    assert cache.current_name("alpha") == "alpha@v2"
    set_current_version(data, "alpha", 1)
    assert await cache.publish("alpha", 1, version_dir(data, "alpha", 1))
    assert cache.current_name("alpha") == "alpha@v1" and engine.loaded_adapters() == ["alpha@v1"]


async def test_at_most_capacity_adapters_stay_resident(engine, zoo, tmp_path):
    data = tmp_path / "data"
    for tenant in TENANTS:
        zoo.install(data, tenant, [2], current=2)
    cache = AdapterCache(engine, data, capacity=2)
    for round_ in range(2):
        for tenant in TENANTS:
            async with cache.lease(tenant) as lease:
                generation = await engine.generate(
                    GenerationRequest(lease.name, tenant_messages(tenant, CUSTOMER_LINES[round_]))
                )
            assert parse_target(generation.text).reply == zoo.expected(tenant, 2)[2]
            assert len(engine.loaded_adapters()) <= 2
    assert cache.loads == 6 and cache.unloads == 4  # LRU: each tenant evicted before its next turn


@pytest.mark.parametrize("kind", available_engines())
async def test_swaps_under_load_never_cross_tenants(kind, zoo, settings):
    """Requests of three tenants run continuously through gRPC while each tenant's v2 is published on
    `adapters.published`; every response is checked: its tenant, its version, and that its answer is
    the one that version's adapter gives."""
    data = settings.resolved_data_dir
    for tenant in TENANTS:
        zoo.install(data, tenant, [1, 2], current=1)
    responses: list[tuple[str, float, float, object]] = []
    stop_load = asyncio.Event()

    async def client(tenant: str, seed: int) -> None:
        rng = random.Random(seed)
        while not stop_load.is_set():
            line = CUSTOMER_LINES[rng.randrange(len(CUSTOMER_LINES))]
            started = time.monotonic()
            response = await running.stub.Resolve(
                resolve_request(tenant, f"{tenant}-{seed}", line), timeout=60
            )
            responses.append((tenant, started, time.monotonic(), response))

    async with RunningResolver(zoo, data, kind, max_batch_size=8) as running:
        stop_follow = asyncio.Event()
        follower = asyncio.create_task(follow_publications(running.service, settings.bootstrap, stop_follow))
        clients = [asyncio.create_task(client(t, i)) for i in range(3) for t in TENANTS]
        producer = make_producer(settings.bootstrap)
        await producer.start()
        try:
            await _wait_for(lambda: len(responses) >= 20, "first responses")
            published_at = {}
            for tenant in TENANTS:  # the trainer's order: registry first, then the publication
                set_current_version(data, tenant, 2)
                published = adapters_pb2.AdapterPublished(
                    tenant_id=tenant, version=2, path=str(version_dir(data, tenant, 2)), name=f"{tenant}@v2"
                )
                await producer.send_and_wait(ADAPTERS_PUBLISHED, encode(published), key=tenant.encode())
                published_at[tenant] = time.monotonic()
                await asyncio.sleep(0.3)
            await _wait_for(
                lambda: all(running.service.adapters.current_name(t) == f"{t}@v2" for t in TENANTS),
                "every swap applied",
            )
            swapped_at = time.monotonic()
            await _wait_for(
                lambda: sum(1 for r in responses if r[1] > swapped_at) >= 30, "load after the swaps"
            )
        finally:
            stop_load.set()
            await asyncio.gather(*clients, return_exceptions=True)
            stop_follow.set()
            await follower
            await producer.stop()
        for task in clients:
            assert task.exception() is None, task.exception()
        assert running.engine.largest_batch > 1  # tenants really shared batches during the swaps
        resident = sorted(running.engine.loaded_adapters())

    assert len(responses) >= 50
    versions_seen = {t: set() for t in TENANTS}
    for tenant, started, _, response in responses:
        assert response.tenant_id == tenant
        name_tenant, _, version = response.adapter_version.partition("@v")
        assert name_tenant == tenant, f"{tenant}'s request answered by {response.adapter_version}"
        decision, action, reply = zoo.expected(tenant, int(version))
        if decision == common_pb2.ESCALATE:
            assert (response.decision, response.reply) == (common_pb2.ESCALATE, "")
        elif decision == common_pb2.ACTION:  # these tenants have no back office: nothing is announced
            assert (response.decision, response.action, response.reply) == (common_pb2.ESCALATE, action, "")
            assert response.action_run.status == resolver_pb2.ActionRun.NOT_CONFIGURED
        else:
            assert (response.decision, response.action, response.reply) == (decision, action, reply)
        if started > swapped_at:
            assert version == "2", f"{tenant}'s request started after the swap was served by v{version}"
        versions_seen[tenant].add(version)
    assert all(seen == {"1", "2"} for seen in versions_seen.values()), versions_seen
    assert resident == [f"{t}@v2" for t in TENANTS]  # every v1 unloaded once idle


async def _wait_for(predicate, what: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.05)

async def _answer(cache, engine, tenant: str, line: str) -> tuple[str, str]:
    """(the adapter that answered, its reply) for one request of `tenant` served through `cache`."""
    async with cache.lease(tenant) as lease:
        generation = await engine.generate(GenerationRequest(lease.name, tenant_messages(tenant, line)))
    return lease.name, parse_target(generation.text).reply



async def test_bad_publications_are_dead_lettered_and_later_ones_still_apply(engine, zoo, settings):
    """Undecodable, pointing nowhere, pointing at another tenant's registry (directly or through a
    symlink inside this tenant's folder): each dead-lettered; none loads another tenant's weights as
    `beta@v2`, and the good publication after them applies."""
    from clonedesk.core.domain.topics import dlq
    from clonedesk.resolver.service_layer.resolve import ResolverService

    from .conftest import read_topic

    data = settings.resolved_data_dir
    zoo.install(data, "alpha", [1, 2], current=2)
    zoo.install(data, "beta", [1, 2], current=1)
    smuggled = version_dir(data, "beta", 1).parent / "imported"
    smuggled.symlink_to(version_dir(data, "alpha", 2), target_is_directory=True)
    service = ResolverService(engine, data, capacity=4, max_pending=8)
    async with service.adapters.lease("beta"):  # serving v1 when v2 is promoted
        pass
    set_current_version(data, "beta", 2)  # the trainer's order: registry first, then the publication
    producer = make_producer(settings.bootstrap)
    await producer.start()
    bad = [
        adapters_pb2.AdapterPublished(tenant_id="beta", version=7, path=str(data / "nowhere")),
        adapters_pb2.AdapterPublished(tenant_id="beta", version=2, path=str(version_dir(data, "alpha", 2))),
        adapters_pb2.AdapterPublished(tenant_id="beta", version=2, path=str(smuggled)),
    ]
    good = adapters_pb2.AdapterPublished(tenant_id="beta", version=2, path=str(version_dir(data, "beta", 2)))
    marker = f"beta-{time.monotonic_ns()}".encode()
    for value in (b"\xff\xfe not a publication", *map(encode, bad), encode(good)):
        await producer.send_and_wait(ADAPTERS_PUBLISHED, value, key=marker)
    await producer.stop()
    stop = asyncio.Event()
    follower = asyncio.create_task(follow_publications(service, settings.bootstrap, stop))
    try:
        await _wait_for(lambda: service.adapters.current_name("beta") == "beta@v2", "the good publication")
        dead = await read_topic(
            settings.bootstrap, dlq(ADAPTERS_PUBLISHED), lambda rs: sum(r.key == marker for r in rs) >= 4
        )
    finally:
        stop.set()
        await follower
    reasons = [dict(r.headers)["dlq.reason"] for r in dead if r.key == marker]
    assert any(b"cannot decode" in r for r in reasons) and any(b"beta@v7" in r for r in reasons)
    assert sum(b"not inside the tenant's adapter registry" in r for r in reasons) == 3
    assert engine.loaded_adapters() == ["beta@v2"]
    _, reply = await _answer(service.adapters, engine, "beta", CUSTOMER_LINES[0])
    assert reply == zoo.expected("beta", 2)[2]  # beta's own weights


async def test_a_restart_replaying_the_topic_cannot_undo_a_rollback(engine, zoo, tmp_path):
    data = tmp_path / "data"
    zoo.install(data, "alpha", [1, 2], current=2)  # v2 was promoted and published...
    set_current_version(data, "alpha", 1)  # ...then an operator rolled the registry back to v1
    cache = AdapterCache(engine, data, capacity=4)  # a fresh resolver replays the topic from the start
    await cache.publish("alpha", 1, version_dir(data, "alpha", 1))
    assert not await cache.publish("alpha", 2, version_dir(data, "alpha", 2))
    assert cache.current_name("alpha") == "alpha@v1"
    name, reply = await _answer(cache, engine, "alpha", CUSTOMER_LINES[2])
    assert name == "alpha@v1"
    assert reply == zoo.expected("alpha", 1)[2]
    assert "alpha@v2" not in engine.loaded_adapters()


async def test_the_rollback_command_swaps_a_running_resolver_back_at_once(engine, zoo, settings):
    """`clonedesk adapter rollback` moves the registry and announces it on `adapters.published`: a
    running resolver answers with the earlier version without waiting for the trainer's next run; a
    rejected or missing version is refused and nothing moves."""
    import json

    from click.testing import CliRunner

    from clonedesk.cli import main
    from clonedesk.resolver.service_layer.resolve import ResolverService

    data = settings.resolved_data_dir
    zoo.install(data, "alpha", [1, 2], current=2)
    for version, status in ((1, "promoted"), (2, "promoted")):
        meta = {"status": status, "trigger": "first" if version == 1 else "refresh:new-samples",
                "sample_count": 12, "holdout_score": 0.5}
        (version_dir(data, "alpha", version) / "meta.json").write_text(json.dumps(meta))
    service = ResolverService(engine, data, capacity=4, max_pending=8)
    async with service.adapters.lease("alpha") as lease:
        assert lease.name == "alpha@v2"
    stop = asyncio.Event()
    follower = asyncio.create_task(follow_publications(service, settings.bootstrap, stop))
    runner = CliRunner()
    try:
        refused = await asyncio.to_thread(runner.invoke, main, ["adapter", "rollback", "alpha", "--to", "7"])
        assert refused.exit_code == 1 and "no version v7" in refused.output
        result = await asyncio.to_thread(runner.invoke, main, ["adapter", "rollback", "alpha"])
        assert result.exit_code == 0, result.output
        assert "v2 -> v1" in result.output
        await _wait_for(lambda: service.adapters.current_name("alpha") == "alpha@v1", "the rollback applied")
    finally:
        stop.set()
        await follower
    name, reply = await _answer(service.adapters, engine, "alpha", CUSTOMER_LINES[3])
    assert name == "alpha@v1"
    assert reply == zoo.expected("alpha", 1)[2]
    listing = runner.invoke(main, ["adapter", "list", "alpha"])
    assert listing.exit_code == 0 and listing.output.splitlines()[0].startswith("* v1  promoted")
    # Nothing before v1 to roll back to: refused, v1 stays.
    again = runner.invoke(main, ["adapter", "rollback", "alpha"])
    assert again.exit_code == 1 and "no promoted version before v1" in again.output
    assert service.adapters.current_name("alpha") == "alpha@v1"


async def test_a_registry_moved_by_hand_is_followed_without_an_announcement(engine, zoo, settings):
    """An operator re-points `current` by hand (or an announcement never reached the broker): the
    follower's registry check swaps the running resolver within one interval."""
    from clonedesk.resolver.service_layer.resolve import ResolverService

    data = settings.resolved_data_dir
    zoo.install(data, "beta", [1, 2], current=2)
    service = ResolverService(engine, data, capacity=4, max_pending=8)
    async with service.adapters.lease("beta") as lease:
        assert lease.name == "beta@v2"
    stop = asyncio.Event()
    follower = asyncio.create_task(follow_publications(service, settings.bootstrap, stop, registry_check_s=0.5))
    try:
        set_current_version(data, "beta", 1)  # no publication follows
        await _wait_for(lambda: service.adapters.current_name("beta") == "beta@v1", "the registry followed", 30)
    finally:
        stop.set()
        await follower
    name, reply = await _answer(service.adapters, engine, "beta", CUSTOMER_LINES[1])
    assert name == "beta@v1"
    assert reply == zoo.expected("beta", 1)[2]
