"""How a long-running service starts and stops: its structured logs and telemetry first, then its work
until SIGTERM or SIGINT, then telemetry flushed (every `clonedesk <service>` command runs this way)."""

from __future__ import annotations

import asyncio
import signal
from typing import Awaitable, Callable

from clonedesk.core.settings import Settings


def run_service(service: str, settings: Settings, work: Callable[[asyncio.Event], Awaitable[None]], *,
                telemetry: bool = True) -> None:
    """Logs, telemetry (unless the work sets up its own), then `await work(stop)`; SIGTERM/SIGINT set
    `stop`, and `work` returns on it."""
    from clonedesk.core.logs import configure_logging
    from clonedesk.core.telemetry import setup_telemetry

    configure_logging(service, settings.log_level)
    providers = setup_telemetry(service, settings) if telemetry else None

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
