"""The resolver's part of `clonedesk up`: the gRPC resolver, the stream bridge, the outbound poster and
the local helpdesk simulator."""

from __future__ import annotations

from clonedesk.core.settings import Settings
from clonedesk.resolver.settings import ResolverSettings
from clonedesk.stack.component import Component, clonedesk_command


def components(settings: Settings) -> list[Component]:
    resolver_settings = ResolverSettings()
    # vLLM cannot share the main environment (see DEVELOPERS.md): run the resolver from its own.
    python = resolver_settings.vllm_python if settings.engine == "vllm" else None
    return [
        Component("helpdesk-sim", clonedesk_command("helpdesk-sim"), port=settings.helpdesk_sim_port,
                  port_env="CLONEDESK_HELPDESK_SIM_PORT", order=110),
        Component("resolver", clonedesk_command("resolver", python=python), port=settings.resolver_port,
                  port_env="CLONEDESK_RESOLVER_PORT", order=120, start_timeout=120.0),
        Component("bridge", clonedesk_command("bridge"), order=130),
        Component("outbound", clonedesk_command("outbound"), order=130),
    ]
