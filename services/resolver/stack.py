"""The resolver's part of `clonedesk up`: the gRPC resolver, the stream bridge and the outbound poster."""

from __future__ import annotations

import importlib.util
from pathlib import Path

from clonedesk.core.settings import Settings
from clonedesk.resolver.settings import ResolverSettings
from clonedesk.core.components import Component, clonedesk_command

REPO = Path(__file__).resolve().parents[2]


def vllm_interpreter(resolver_settings: ResolverSettings) -> str | None:
    """The interpreter to run a vLLM resolver with: CLONEDESK_VLLM_PYTHON, else this environment when it
    has vLLM, else `.venv-vllm` beside the project (services/resolver/vllm_env/setup.sh builds it)."""
    if resolver_settings.vllm_python:
        return resolver_settings.vllm_python
    if importlib.util.find_spec("vllm") is not None:
        return None
    beside = REPO / ".venv-vllm" / "bin" / "python"
    return str(beside) if beside.exists() else None


def components(settings: Settings) -> list[Component]:
    resolver_settings = ResolverSettings()
    # vLLM cannot share the main environment (click pins clash with faust): run the resolver from its own.
    python = vllm_interpreter(resolver_settings) if settings.engine == "vllm" else None
    return [
        Component(
            "resolver",
            clonedesk_command("resolver", python=python),
            port=settings.resolver_port,
            port_env="CLONEDESK_RESOLVER_PORT",
            order=120,
            start_timeout=120.0,
        ),
        Component("bridge", clonedesk_command("bridge"), order=130),
        Component("outbound", clonedesk_command("outbound"), order=130),
    ]
