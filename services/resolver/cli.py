"""CLI: `clonedesk resolver | bridge | outbound` (found by the `clonedesk` command)."""

from __future__ import annotations

import click

from clonedesk.core.service_runner import run_service
from clonedesk.core.settings import Settings


def register(main: click.Group) -> None:
    for command in (resolver, bridge, outbound):
        main.add_command(command)


def _settings(ctx: click.Context) -> Settings:
    from clonedesk.core.command_line import settings_from

    return settings_from(ctx)


@click.command()
@click.pass_context
def resolver(ctx: click.Context) -> None:
    """Serve gRPC clonedesk.v1.Resolver/Resolve (with health and reflection) on CLONEDESK_RESOLVER_PORT."""
    from clonedesk.resolver.entrypoints.grpc_server import run_resolver
    from clonedesk.resolver.settings import ResolverSettings

    settings = _settings(ctx)
    resolver_settings = ResolverSettings()
    if settings.engine == "vllm":
        from clonedesk.resolver.engines.vllm import vllm_available

        if not vllm_available():
            from clonedesk.core.command_line import OperatorError

            raise OperatorError(
                "CLONEDESK_ENGINE=vllm but vLLM is not installed in this environment "
                "(install the vllm extra, or set CLONEDESK_VLLM_PYTHON for `clonedesk up`)"
            )
    run_service("resolver", settings, lambda stop: run_resolver(settings, resolver_settings, stop))


@click.command()
@click.pass_context
def bridge(ctx: click.Context) -> None:
    """Resolve tickets from tickets.to_resolve into resolutions and helpdesk.outbound."""
    from clonedesk.resolver.entrypoints.bridge import Bridge
    from clonedesk.resolver.settings import ResolverSettings

    settings = _settings(ctx)
    run_service("bridge", settings, Bridge(settings, ResolverSettings()).run)


@click.command()
@click.pass_context
def outbound(ctx: click.Context) -> None:
    """Post replies from helpdesk.outbound to each tenant's helpdesk, with retries and a dead-letter topic."""
    from clonedesk.resolver.entrypoints.outbound import OutboundPoster
    from clonedesk.resolver.settings import ResolverSettings

    settings = _settings(ctx)
    run_service("outbound", settings, OutboundPoster(settings, ResolverSettings()).run)
