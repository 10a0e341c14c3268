"""CLI: `clonedesk resolver | bridge | outbound | helpdesk-sim` (found by the `clonedesk` command)."""

from __future__ import annotations

import asyncio
import contextlib
import signal

import click
from clonedesk.core.settings import Settings


def register(main: click.Group) -> None:
    for command in (resolver, bridge, outbound, helpdesk_sim):
        main.add_command(command)


def _settings(ctx: click.Context) -> Settings:
    from clonedesk.core.command_line import settings_from

    return settings_from(ctx)


def _run_until_signalled(service: str, settings: Settings, work) -> None:
    """Logs, telemetry, then `work(stop)` until SIGTERM/SIGINT sets `stop`."""
    from clonedesk.core.logs import configure_logging
    from clonedesk.core.telemetry import setup_telemetry

    configure_logging(service, settings.log_level)
    telemetry = setup_telemetry(service, settings)

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        await work(stop)

    try:
        asyncio.run(main())
    finally:
        telemetry.shutdown()


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
    _run_until_signalled("resolver", settings, lambda stop: run_resolver(settings, resolver_settings, stop))


@click.command()
@click.pass_context
def bridge(ctx: click.Context) -> None:
    """Resolve tickets from tickets.to_resolve into resolutions and helpdesk.outbound."""
    from clonedesk.resolver.entrypoints.bridge import Bridge
    from clonedesk.resolver.settings import ResolverSettings

    settings = _settings(ctx)
    _run_until_signalled("bridge", settings, Bridge(settings, ResolverSettings()).run)


@click.command()
@click.pass_context
def outbound(ctx: click.Context) -> None:
    """Post replies from helpdesk.outbound to each tenant's helpdesk, with retries and a dead-letter topic."""
    from clonedesk.resolver.entrypoints.outbound import OutboundPoster
    from clonedesk.resolver.settings import ResolverSettings

    settings = _settings(ctx)
    _run_until_signalled("outbound", settings, OutboundPoster(settings, ResolverSettings()).run)


@click.command("helpdesk-sim")
@click.pass_context
def helpdesk_sim(ctx: click.Context) -> None:
    """A local helpdesk (Zendesk and Intercom reply APIs) that records replies; GET /replies lists them."""
    import uvicorn
    from clonedesk.resolver.entrypoints.helpdesk_sim import create_app

    class Server(uvicorn.Server):
        # Signals are ours (see _run_until_signalled); uvicorn's own would re-raise SIGTERM after a
        # graceful shutdown, turning a clean stop into exit code -15.
        def capture_signals(self):
            return contextlib.nullcontext()

    settings = _settings(ctx)
    app = create_app(settings.path("helpdesk-sim", "replies.jsonl"))
    server = Server(
        uvicorn.Config(app, host=settings.bind_host, port=settings.helpdesk_sim_port, log_level="warning")
    )

    async def serve(stop: asyncio.Event) -> None:
        task = asyncio.create_task(server.serve())
        await asyncio.wait({task, asyncio.create_task(stop.wait())}, return_when=asyncio.FIRST_COMPLETED)
        server.should_exit = True
        await task

    _run_until_signalled("helpdesk-sim", settings, serve)
