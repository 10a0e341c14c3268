"""The resolver's wiring: the real engine and the answering service built from the settings, in one place
(the gRPC entrypoint calls these; tests build `ResolverService` with their own engine instead)."""

from __future__ import annotations

from clonedesk.core.settings import Settings
from clonedesk.core.tenants import TenantStore
from clonedesk.resolver.adapters.back_office import BackOffice
from clonedesk.resolver.adapters.lora_cache import AdapterCache
from clonedesk.resolver.engines.base import Engine
from clonedesk.resolver.service_layer.resolve import ResolverService
from clonedesk.resolver.settings import ResolverSettings


def make_engine(kind: str, base_model: str, resolver_settings: ResolverSettings) -> Engine:
    """The engine the settings choose; vLLM is imported only when chosen."""
    if kind == "hf":
        from clonedesk.resolver.engines.hf import HFEngine

        return HFEngine(base_model, resolver_settings)
    if kind == "vllm":
        from clonedesk.resolver.engines.vllm import VLLMEngine

        return VLLMEngine(base_model, resolver_settings)
    raise ValueError(f"unknown engine {kind!r}: use 'hf' or 'vllm'")


def build_service(engine: Engine, settings: Settings, resolver_settings: ResolverSettings) -> ResolverService:
    """The service that answers tickets with `engine`, over this data dir's tenants and adapters."""
    data_dir = settings.resolved_data_dir
    return ResolverService(engine, data_dir, resolver_settings.max_loras, resolver_settings.max_pending,
                           context_turns=resolver_settings.context_turns, back_office=BackOffice(),
                           tenants=TenantStore(data_dir),
                           adapters=AdapterCache(engine, data_dir, resolver_settings.max_loras))
