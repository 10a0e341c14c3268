"""How a long-running service starts and stops: its structured logs and telemetry first (`start_service`),
the broker and its topics where it needs them (`broker_with_topics`), then its work until SIGTERM or
SIGINT, then telemetry flushed (`run_service`). Every `clonedesk <service>` command starts this way;
the ones whose server owns the loop and the signals (uvicorn, faust) call `start_service` alone."""

from __future__ import annotations

import asyncio
import signal
from typing import Awaitable, Callable

from clonedesk.core.logs import configure_logging
from clonedesk.core.settings import Settings
from clonedesk.core.telemetry import Telemetry, setup_telemetry


def start_service(service: str, settings: Settings, *, telemetry: bool = True) -> Telemetry | None:
    """JSON-lines logs named after `service`, and its traces and metrics (unless the work sets up its own)."""
    configure_logging(service, settings.log_level)
    return setup_telemetry(service, settings) if telemetry else None


def broker_with_topics(settings: Settings, timeout: float = 30.0) -> list[str]:
    """Wait for the broker, create whichever CloneDesk topics are missing; the names created."""
    from clonedesk.core.domain.topics import all_topic_specs
    from clonedesk.core.kafka import ensure_topics, wait_for_broker

    asyncio.run(wait_for_broker(settings.bootstrap, timeout=timeout))
    return asyncio.run(ensure_topics(settings.bootstrap, all_topic_specs(settings.topic_partitions)))


def run_service(service: str, settings: Settings, work: Callable[[asyncio.Event], Awaitable[None]], *,
                telemetry: bool = True) -> None:
    """Logs, telemetry (unless the work sets up its own), then `await work(stop)`; SIGTERM/SIGINT set
    `stop`, and `work` returns on it."""
    providers = start_service(service, settings, telemetry=telemetry)

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        await work(stop)

    try:
        asyncio.run(main())
    finally:
        if providers is not None:
            providers.shutdown()
