"""The two processes of metering.

`clonedesk metering`: the Kafka sink. With chDB (the embedded default) it is also the only process that
may open the data path, so it serves the analytics app on a unix socket for the `api` process (and for
`clonedesk invoice`) to read through. With a ClickHouse server it is a sink and nothing else.

`clonedesk api`: the analytics API and dashboard on the API port: a forwarder to that socket with chDB,
or the app itself over the ClickHouse server.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import signal
import threading
import time

import uvicorn

from clonedesk.core.kafka import wait_for_broker
from clonedesk.core.telemetry import setup_telemetry
from clonedesk.metering.bootstrap import analytics_app, api_app, connect_store, metering_sink
from clonedesk.metering.settings import MeteringSettings

log = logging.getLogger(__name__)


class ThreadedServer:
    """uvicorn in a thread: the process's main loop keeps the signals and the sink."""

    def __init__(self, config: uvicorn.Config):
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, name="metering-api", daemon=True)

    def start(self, timeout: float = 30.0) -> None:
        self.thread.start()
        deadline = time.monotonic() + timeout
        while not self.server.started:
            if not self.thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the metering API server did not start")
            time.sleep(0.05)

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(15)


async def run_metering(settings: MeteringSettings, stop: asyncio.Event | None = None) -> None:
    stop = stop or asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        try:
            loop.add_signal_handler(signum, stop.set)
        except (NotImplementedError, RuntimeError):  # not the main thread (tests drive `stop` themselves)
            pass
    telemetry = setup_telemetry("metering", settings)
    try:
        await wait_for_broker(settings.bootstrap, timeout=60)
        store = connect_store(settings)
        log.info("metering store ready", extra={"database": settings.clickhouse_database,
                                                "embedded": settings.embedded_clickhouse})
        server = None
        if settings.embedded_clickhouse:
            socket = settings.metering_socket
            socket.parent.mkdir(parents=True, exist_ok=True)
            socket.unlink(missing_ok=True)  # a stale socket of a previous run
            app = analytics_app(store, settings)
            config = uvicorn.Config(app, uds=str(socket), log_level="warning", log_config=None)
            server = ThreadedServer(config)
            server.start()
            log.info("serving the analytics app for the api process", extra={"socket": str(socket)})
        sink = metering_sink(settings, store, telemetry)
        # What start-up built (modules, the schema, the store, the app) lives as long as the process: out
        # of the collector's sight, a full collection walks only what the sink holds meanwhile. A full
        # collection stops every thread's Python, the loop reading Kafka and the threads handing batches
        # to ClickHouse alike (bench/metering.py: one took 0.22 s of a 2.3 s run over a large heap).
        gc.freeze()
        try:
            await sink.run(stop)
        finally:
            if server:
                server.stop()
                settings.metering_socket.unlink(missing_ok=True)
            store.close()
    finally:
        telemetry.shutdown()


def run_api(settings: MeteringSettings, host: str) -> None:
    setup_telemetry("api", settings)
    # log_config=None: uvicorn's records go through the JSON-lines root handler like everything else
    uvicorn.run(api_app(settings), host=host, port=settings.api_port, log_level=settings.log_level.lower(),
                access_log=False, log_config=None)
