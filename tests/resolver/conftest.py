"""Resolver fixtures: a small base model and real peft adapters, built once per session with the
trainer's own code (`build_base_model`, `train_adapter`), each adapter taught one tenant's behaviour."""

from __future__ import annotations

import asyncio
import shutil
from dataclasses import dataclass
from pathlib import Path

import pytest
from clonedesk.core.adapters import set_current_version, version_dir
from clonedesk.core.tenants import TenantStore
from clonedesk.v1 import common_pb2, training_pb2

# What each (tenant, version) adapter is taught to answer, whatever the customer writes: distinct per
# version, so every response shows which adapter produced it.
BEHAVIOUR: dict[tuple[str, int], tuple[int, str, str]] = {
    ("alpha", 1): (common_pb2.RESOLVE, "", "Alpha one: your table is booked."),
    ("alpha", 2): (common_pb2.RESOLVE, "", "Alpha two: your refund is on its way."),
    ("beta", 1): (common_pb2.ASK, "", "Beta one: which day do you fly?"),
    ("beta", 2): (common_pb2.ACTION, "BookFlight(day=Friday)", "Beta two: your flight is booked."),
    ("gamma", 1): (common_pb2.ESCALATE, "", "Gamma one: a colleague will take over."),
    ("gamma", 2): (common_pb2.RESOLVE, "", "Gamma two: all sorted for you."),
}

# A tenant whose history records its calls' results: it decides the call, and after the back office's
# answer writes the reply from it (the hotel named in the result), so a test can tell a reply written
# from the result from one written without it.
ACTION_TENANT = "omega"
ACTION_CALL = "BookRoom(day=Friday)"
HOTELS = ("Savoy", "Ritz")


def hotel_reply(hotel: str) -> str:
    return f"The {hotel} is booked for Friday."


def action_result(hotel: str) -> str:
    from clonedesk.core.domain.action_calls import ActionAnswer

    return ActionAnswer(True, ({"hotel": hotel, "day": "Friday"},)).to_json()


CUSTOMER_LINES = [
    "Hi, I need a table for two tonight.",
    "Can you help me with my booking?",
    "I want to change my flight.",
    "Where is my refund?",
    "My order has not arrived yet.",
    "Please cancel my reservation.",
    "Is there parking at the venue?",
    "I would like to book a room for Friday.",
    "How much does it cost?",
    "Can I bring my dog?",
    "The app keeps crashing.",
    "I was charged twice.",
]


def conversation(text: str):
    return [common_pb2.Turn(role=common_pb2.CUSTOMER, text=text)]


def tenant_messages(tenant: str, text: str) -> list[dict[str, str]]:
    """The prompt messages the resolver sends for `tenant` (its system prompt, then the customer's line):
    what the zoo's adapters were trained on."""
    from clonedesk.core.domain.conversation_format import chat_messages, system_prompt

    return chat_messages(conversation(text), system_prompt(tenant))


@dataclass(frozen=True)
class Zoo:
    base_model: Path
    adapters: dict[tuple[str, int], Path]

    def expected(self, tenant: str, version: int) -> tuple[int, str, str]:
        return BEHAVIOUR[(tenant, version)]

    def install(self, data_dir: Path, tenant: str, versions: list[int], current: int | None) -> None:
        """Register `tenant` (if new) with copies of its adapter versions in the data dir's registry."""
        store = TenantStore(data_dir)
        if store.find(tenant) is None:
            store.add(tenant)
        for version in versions:
            target = version_dir(data_dir, tenant, version)
            if not target.exists():
                shutil.copytree(self.adapters[(tenant, version)], target)
        if current is not None:
            set_current_version(data_dir, tenant, current)

    def install_as(self, data_dir: Path, tenant: str, source: tuple[str, int], version: int) -> None:
        """Another tenant id served by a copy of `source`'s adapter (for many-tenant runs)."""
        store = TenantStore(data_dir)
        if store.find(tenant) is None:
            store.add(tenant)
        shutil.copytree(self.adapters[source], version_dir(data_dir, tenant, version))
        set_current_version(data_dir, tenant, version)


def build_zoo(root: Path) -> Zoo:
    from clonedesk.core.domain.conversation_format import format_target
    from clonedesk.core.tiny_model import build_base_model, render_conversation
    from clonedesk.trainer.adapters.lora import LoraTrainingConfig, train_adapter

    from clonedesk.core.domain.action_calls import ActionAnswer, result_text

    texts = []
    for (_, _), (decision, action, reply) in BEHAVIOUR.items():
        for line in CUSTOMER_LINES:
            texts.append(
                render_conversation([("user", line), ("assistant", format_target(decision, action, reply))])
            )
    for i, line in enumerate(CUSTOMER_LINES):
        hotel = HOTELS[i % 2]
        texts.append(render_conversation([
            ("user", line), ("assistant", format_target(common_pb2.ACTION, ACTION_CALL, "")),
            ("tool", result_text(ActionAnswer.from_json(action_result(hotel)))), ("assistant", hotel_reply(hotel))]))
    base = build_base_model(root / "base", texts, seed=0, steps=150, progress=False, vocab_size=600)
    config = LoraTrainingConfig(rank=8, alpha=16, learning_rate=1e-2, final_lr_fraction=0.05, epochs=60, max_steps=60,
                                batch_size=6, mixed_precision="no")
    adapters = {}
    for (tenant, version), (decision, action, reply) in BEHAVIOUR.items():
        samples = [
            training_pb2.TrainingSample(
                tenant_id=tenant,
                ticket_id=f"t{i}",
                context=conversation(line),
                decision=decision,
                action=action,
                reply=reply,
            )
            for i, line in enumerate(CUSTOMER_LINES)
        ]
        out = root / f"{tenant}-v{version}"
        train_adapter(str(base), samples, out, config=config)
        adapters[(tenant, version)] = out
    # Each line twice, once per hotel: only the tool turn tells the replies apart.
    action_samples = [
        training_pb2.TrainingSample(tenant_id=ACTION_TENANT, ticket_id=f"t{i}-{hotel}", context=conversation(line),
                                    decision=common_pb2.ACTION, action=ACTION_CALL, reply=hotel_reply(hotel),
                                    action_result=action_result(hotel))
        for i, line in enumerate(CUSTOMER_LINES) for hotel in HOTELS
    ]
    out = root / f"{ACTION_TENANT}-v1"
    train_adapter(str(base), action_samples, out, config=LoraTrainingConfig(
        rank=8, alpha=16, learning_rate=1e-2, final_lr_fraction=0.05, epochs=60, max_steps=120, batch_size=8,
        mixed_precision="no"))
    adapters[(ACTION_TENANT, 1)] = out
    return Zoo(base, adapters)


def pytest_configure(config):
    config.addinivalue_line("markers", "vllm: runs the vllm engine (collected only where vLLM is installed)")


def available_engines() -> list:
    """Engine kinds to run the engine tests on: `hf` always, `vllm` where it is installed."""
    from clonedesk.resolver.engines.vllm import vllm_available

    kinds = [pytest.param("hf", id="hf"), pytest.param("hf-peft", id="hf-peft")]  # stacked / peft multi-LoRA
    if vllm_available():
        kinds.append(pytest.param("vllm", id="vllm", marks=pytest.mark.vllm))
    return kinds


def engine_settings(**overrides):
    from clonedesk.resolver.settings import ResolverSettings

    values = dict(max_new_tokens=40, max_batch_size=8, batch_wait_ms=5)
    values.update(overrides)
    return ResolverSettings(**values)


def make_test_engine(kind: str, zoo: Zoo, **overrides):
    from clonedesk.resolver.bootstrap import make_engine

    if kind == "vllm":
        from clonedesk.resolver.engines.vllm import VLLMEngine

        # On the CPU build "gpu" memory is RAM: reserve a little, the machine is shared.
        overrides.setdefault("vllm_memory_utilization", 0.1)
        return VLLMEngine(str(zoo.base_model), engine_settings(**overrides), enforce_eager=True)
    if kind == "hf-peft":
        kind = "hf"
        overrides.setdefault("hf_multi_lora", "peft")
    return make_engine(kind, str(zoo.base_model), engine_settings(**overrides))


class RunningResolver:
    """A real resolver: an engine (HF unless told) on the zoo's base model, gRPC on a loopback socket."""

    def __init__(self, zoo: Zoo, data_dir: Path, kind: str = "hf", wrap=None, **overrides):
        from tests.conftest import free_port

        self.zoo = zoo
        self.data_dir = data_dir
        self.port = free_port()
        self.overrides = overrides
        self.kind = kind
        self.wrap = wrap  # e.g. SlowEngine: the engine the service gets, around the real one

    async def __aenter__(self):
        import grpc
        from clonedesk.resolver.entrypoints.grpc_server import ResolverServer
        from clonedesk.resolver.service_layer.resolve import ResolverService
        from clonedesk.v1 import resolver_pb2_grpc

        settings = engine_settings(**self.overrides)
        self.engine = make_test_engine(self.kind, self.zoo, **self.overrides)
        if self.wrap is not None:
            self.engine = self.wrap(self.engine)
        await self.engine.start()
        self.service = ResolverService(self.engine, self.data_dir, settings.max_loras, settings.max_pending)
        self.server = ResolverServer(self.port)
        await self.server.start()
        await self.server.attach(self.service)
        self.channel = grpc.aio.insecure_channel(f"127.0.0.1:{self.port}")
        self.stub = resolver_pb2_grpc.ResolverStub(self.channel)
        return self

    async def __aexit__(self, *exc):
        await self.channel.close()
        await self.server.stop(0)
        await self.engine.close()


class SlowEngine:
    """A real engine made slow on demand: waits `load_delay_s` before each adapter load and
    `generate_delay_s` before each generation, so the server has to give up on a deadline."""

    def __init__(self, engine):
        self.inner = engine
        self.load_delay_s = 0.0
        self.generate_delay_s = 0.0

    def __getattr__(self, name):
        return getattr(self.inner, name)

    async def load_adapter(self, adapter_name, path):
        await asyncio.sleep(self.load_delay_s)
        await self.inner.load_adapter(adapter_name, path)

    async def generate(self, request):
        await asyncio.sleep(self.generate_delay_s)
        return await self.inner.generate(request)


def resolve_request(tenant: str, ticket: str, line: str, **fields):
    from clonedesk.v1 import resolver_pb2

    return resolver_pb2.ResolveRequest(
        tenant_id=tenant, ticket_id=ticket, conversation=conversation(line), **fields
    )


class SimulatorServer:
    """The helpdesk simulator served by a real uvicorn server on a loopback port (in a thread)."""

    def __init__(self, port: int, log_path: Path | None = None):
        import uvicorn
        from clonedesk.stack.helpdesk_sim import create_app

        self.app = create_app(log_path)
        self.url = f"http://127.0.0.1:{port}"
        self.server = uvicorn.Server(
            uvicorn.Config(self.app, host="127.0.0.1", port=port, log_level="warning")
        )
        self.thread = None

    def __enter__(self):
        import threading
        import time

        self.thread = threading.Thread(target=self.server.run, daemon=True)
        self.thread.start()
        deadline = time.monotonic() + 20
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("the helpdesk simulator did not start")
            time.sleep(0.05)
        return self

    def __exit__(self, *exc):
        self.server.should_exit = True
        self.thread.join(timeout=10)

    def replies(self, **query) -> list[dict]:
        import httpx

        return httpx.get(f"{self.url}/replies", params=query, timeout=10).json()["replies"]


async def read_topic(bootstrap: str, topic: str, done, timeout: float = 60.0) -> list:
    """Records of `topic` (from the start, a fresh group) until `done(records)` holds."""
    import time
    import uuid

    from clonedesk.core.kafka import make_consumer

    consumer = make_consumer(bootstrap, topic, group_id="read-" + uuid.uuid4().hex[:10])
    await consumer.start()
    records: list = []
    try:
        deadline = time.monotonic() + timeout
        while not done(records):
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out reading {topic}: {len(records)} records")
            for batch in (await consumer.getmany(timeout_ms=300)).values():
                records.extend(batch)
        return records
    finally:
        await consumer.stop()
