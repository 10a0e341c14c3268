"""Ingest's integration fixtures: one gateway and one faust worker (child processes) for the whole
package, on the session's broker, with a live and a not-live tenant."""

from __future__ import annotations

import asyncio
import subprocess
import threading
import uuid
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

from clonedesk.core.domain import topics
from clonedesk.core.kafka import make_producer
from clonedesk.core.settings import Settings
from clonedesk.core.tenants import Tenant, TenantStore
from clonedesk.ingest.entrypoints.streams import STALLED_EXIT_CODE
from tests.conftest import free_port
from tests.ingest import payloads as p
from tests.ingest.harness import TopicRecorder, sign_intercom, sign_zendesk, start_service, stop_service, wait_for_http

RECORDED = [topics.HELPDESK_EVENTS, topics.TRAINING_SAMPLES, topics.TICKETS_TO_RESOLVE, topics.RESOLUTION_OUTCOMES,
            topics.dlq(topics.HELPDESK_EVENTS), topics.dlq(topics.RESOLUTIONS)]


@dataclass
class Stack:
    settings: Settings
    url: str
    live: Tenant
    quiet: Tenant
    recorder: TopicRecorder
    root: Path
    streams: subprocess.Popen
    streams_args: list[str]
    # Exit codes of the worker's own exits (its stall watch's way out), each restarted as `clonedesk up`'s
    # supervisor would; a test that restarts on purpose does so under the lock, so it is never counted.
    unplanned_exits: list[int] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _closed: threading.Event = field(default_factory=threading.Event)

    def restart_streams(self, kill: bool = False) -> None:
        """Stop the faust worker (SIGTERM, or SIGKILL if `kill`) and start it again under the same app id:
        its table is recovered from the changelog topic, its offsets from the consumer group."""
        with self._lock:
            if kill:
                self.streams.kill()
                self.streams.wait()
            stop_service(self.streams)
            self._start_streams()

    def _start_streams(self) -> None:
        self.streams = start_service(self.streams_args, self.settings.child_env(), self.root / "streams.log")

    def supervise(self) -> None:
        """Restart the worker whenever it exits by itself, for the package's lifetime (a thread)."""
        def watch():
            while not self._closed.wait(0.5):
                with self._lock:
                    code = self.streams.poll()
                    if code is not None and not self._closed.is_set():
                        self.unplanned_exits.append(code)
                        self._start_streams()
        threading.Thread(target=watch, daemon=True, name="streams-supervisor").start()

    def close(self) -> None:
        self._closed.set()
        with self._lock:
            stop_service(self.streams)
        # A stall watch's exit is the worker's designed way out; any other exit is a crash to look at. The
        # supervisor restarts either, as `clonedesk up` does, so it is reported rather than failed on.
        crashes = [code for code in self.unplanned_exits if code != STALLED_EXIT_CODE]
        if crashes:
            warnings.warn(f"the faust worker exited with codes {crashes} and was restarted: see "
                          f"{self.root / 'streams.log'}", stacklevel=1)

    def wait_for(self, topic: str, predicate, count: int, timeout: float = 60.0, settle: float = 0.0):
        """The recorder's wait, with the worker's log tail and its unplanned exits in the error: the clue
        to a worker that took the records and never answered."""
        try:
            return self.recorder.wait_for(topic, predicate, count, timeout=timeout, settle=settle)
        except AssertionError as exc:
            tail = (self.root / "streams.log").read_text(errors="replace")[-6000:]
            raise AssertionError(f"{exc}; the worker's unplanned exits: {self.unplanned_exits}; "
                                 f"the end of its log:\n{tail}") from None

    def zendesk(self, tenant: Tenant, payload: dict) -> httpx.Response:
        body = p.body_of(payload)
        return httpx.post(f"{self.url}/webhooks/zendesk/{tenant.id}", content=body,
                          headers=sign_zendesk(tenant.zendesk_secret, body), timeout=30)

    def intercom(self, tenant: Tenant, payload: dict) -> httpx.Response:
        body = p.body_of(payload)
        return httpx.post(f"{self.url}/webhooks/intercom/{tenant.id}", content=body,
                          headers=sign_intercom(tenant.intercom_secret, body), timeout=30)

    def produce(self, topic: str, key: bytes, value: bytes) -> None:
        async def send():
            producer = make_producer(self.settings.bootstrap)
            await producer.start()
            try:
                await producer.send_and_wait(topic, value=value, key=key)
            finally:
                await producer.stop()
        asyncio.run(send())


@pytest.fixture(scope="package")
def stack(kafka_bootstrap, tmp_path_factory):
    root = tmp_path_factory.mktemp("ingest")
    settings = Settings(data_dir=root / "data", kafka_bootstrap=kafka_bootstrap, gateway_port=free_port(),
                        topic_partitions=2,
                        streams_stall_after_s=30)  # short: a false stall would stop the worker mid-package
    store = TenantStore(settings.resolved_data_dir)
    live = store.add("acme-live")
    live.live = True
    store.save(live)
    quiet = store.add("acme-quiet")
    recorder = TopicRecorder(kafka_bootstrap, RECORDED).start()
    env = settings.child_env()
    streams_args = ["streams", "--app-id", f"ingest-test-{uuid.uuid4().hex[:8]}"]
    streams = start_service(streams_args, env, root / "streams.log")
    gateway = start_service(["ingest"], env, root / "gateway.log")
    url = f"http://127.0.0.1:{settings.gateway_port}"
    try:
        wait_for_http(f"{url}/healthz", gateway)
        stack = Stack(settings, url, live, quiet, recorder, root, streams, streams_args)
        stack.supervise()
        yield stack
    finally:
        stop_service(gateway)
        if "stack" in locals():
            stack.close()
        else:
            stop_service(streams)
        recorder.stop()


