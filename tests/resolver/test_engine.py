"""Engines on real peft adapters: each adapter's own output, mixed-tenant batches equal to solo runs,
unloaded adapters refused. Runs on `hf`, and on `vllm` where it is installed. And vLLM's rank limit,
checked before vLLM is involved (so that test runs everywhere)."""

from __future__ import annotations

import asyncio
import json
import math

import pytest
import pytest_asyncio
from clonedesk.core.adapters import set_current_version, version_dir
from clonedesk.core.domain.conversation_format import parse_target
from clonedesk.resolver.adapters.lora_cache import AdapterCache, NoLiveAdapter
from clonedesk.resolver.domain.lora_adapters import AdapterRankTooHigh
from clonedesk.resolver.domain.decisions import sequence_confidence
from clonedesk.resolver.engines.base import AdapterNotLoaded, GenerationRequest
from clonedesk.resolver.engines.vllm import VLLMEngine

from .conftest import CUSTOMER_LINES, available_engines, engine_settings, make_test_engine, tenant_messages

# One engine per kind for the module (vLLM takes most of a minute to start on CPU).
pytestmark = [pytest.mark.integration, pytest.mark.asyncio(loop_scope="module")]

NAMES = [("alpha", 1), ("beta", 1), ("gamma", 1), ("beta", 2)]


@pytest_asyncio.fixture(params=available_engines(), scope="module", loop_scope="module")
async def engine(request, zoo):
    engine = make_test_engine(request.param, zoo)
    await engine.start()
    for tenant, version in NAMES:
        await engine.load_adapter(f"{tenant}@v{version}", zoo.adapters[(tenant, version)])
    yield engine
    await engine.close()


async def test_each_adapter_answers_with_what_it_learned(engine, zoo):
    for tenant, version in NAMES:
        generation = await engine.generate(
            GenerationRequest(f"{tenant}@v{version}", tenant_messages(tenant, CUSTOMER_LINES[3])))
        decision, action, reply = zoo.expected(tenant, version)
        turn = parse_target(generation.text)
        assert generation.adapter_name == f"{tenant}@v{version}"
        assert (turn.decision, turn.action, turn.reply) == (decision, action, reply)
        assert sequence_confidence(generation.token_logprobs) > 0.5


async def test_a_constrained_header_carries_its_probability(engine, zoo):
    """With the tenant's action names, the header is one of the valid ones and the engine reports its
    probability (renormalised over the valid headers on the HF engine, as the trainer scored it)."""
    request = GenerationRequest("beta@v2", tenant_messages("beta", CUSTOMER_LINES[3]),
                                action_names=("BookFlight", "CancelFlight"))
    generation = await engine.generate(request)
    turn = parse_target(generation.text)
    assert (turn.decision, turn.action) == zoo.expected("beta", 2)[:2]
    assert generation.header_logprob is not None and math.exp(generation.header_logprob) > 0.5
    free = await engine.generate(GenerationRequest("beta@v2", tenant_messages("beta", CUSTOMER_LINES[3])))
    assert free.header_logprob is None and parse_target(free.text) == turn


async def test_a_mixed_tenant_batch_equals_solo_runs(engine):
    requests = [
        GenerationRequest(f"{t}@v{v}", tenant_messages(t, CUSTOMER_LINES[i % 5]))
        for i, (t, v) in enumerate(NAMES * 3)
    ]
    solo = [await engine.generate(r) for r in requests]
    together = await asyncio.gather(*(engine.generate(r) for r in requests))
    assert [g.adapter_name for g in together] == [r.adapter_name for r in requests]
    assert [g.text for g in together] == [g.text for g in solo]
    assert engine.largest_batch > 1  # the concurrent requests of different tenants shared a batch


async def test_unloaded_adapters_are_refused_and_a_new_name_serves_new_weights(engine, zoo):
    await engine.unload_adapter("alpha@v1")
    assert "alpha@v1" not in engine.loaded_adapters()
    with pytest.raises(AdapterNotLoaded):
        await engine.generate(GenerationRequest("alpha@v1", tenant_messages("alpha", CUSTOMER_LINES[0])))
    await engine.load_adapter("alpha@v2", zoo.adapters[("alpha", 2)])
    generation = await engine.generate(
        GenerationRequest("alpha@v2", tenant_messages("alpha", CUSTOMER_LINES[0]))
    )
    assert parse_target(generation.text).reply == zoo.expected("alpha", 2)[2]
    await engine.unload_adapter("alpha@v2")
    await engine.load_adapter("alpha@v1", zoo.adapters[("alpha", 1)])  # as the other tests expect it


async def test_an_adapter_trained_on_another_base_model_is_never_loaded(engine, zoo, tmp_path):
    from clonedesk.core.base_model import base_model_identity

    data = tmp_path / "data"
    zoo.install(data, "alpha", [1], current=1)
    meta = version_dir(data, "alpha", 1) / "meta.json"
    meta.write_text(json.dumps({"base_model_identity": "/elsewhere/base-model#sha256:0123456789abcdef"}))
    with pytest.raises(NoLiveAdapter, match="trained on /elsewhere/base-model"):
        async with AdapterCache(engine, data, capacity=4).lease("alpha"):
            pass
    # The same files imported under another path are the same model.
    moved = "/other/data/base-models/x#sha256:" + base_model_identity(str(zoo.base_model)).split("#sha256:")[1]
    meta.write_text(json.dumps({"base_model_identity": moved}))
    async with AdapterCache(engine, data, capacity=4).lease("alpha") as lease:
        assert lease.name == "alpha@v1"


async def test_vllm_refuses_an_adapter_above_its_rank_limit_before_handing_it_over(tmp_path):
    data = tmp_path / "data"
    adapter = version_dir(data, "acme", 1)
    adapter.mkdir(parents=True)
    # The trainer's default rank, against an engine started for less.
    (adapter / "adapter_config.json").write_text(json.dumps({"peft_type": "LORA", "r": 32, "lora_alpha": 64}))
    set_current_version(data, "acme", 1)
    engine = VLLMEngine("never-started", engine_settings(max_lora_rank=16))  # the check needs no vLLM
    try:
        with pytest.raises(AdapterRankTooHigh, match="CLONEDESK_MAX_LORA_RANK"):
            await engine.load_adapter("acme@v1", adapter)
        # Through the adapter cache a request gets the same words as FAILED_PRECONDITION.
        cache = AdapterCache(engine, data, capacity=2)
        with pytest.raises(NoLiveAdapter, match="rank 32.*CLONEDESK_MAX_LORA_RANK"):
            async with cache.lease("acme"):
                pass
        assert engine.loaded_adapters() == [] and cache.resident() == []
    finally:
        await engine.close()
