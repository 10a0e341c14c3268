"""Real parts for ingest's integration tests and bench: the gateway and the faust worker as child
processes (`clonedesk ingest`, `clonedesk streams`), and a recorder that reads topics from the broker."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import os
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import httpx

from clonedesk.core.kafka import make_consumer

REPO = Path(__file__).resolve().parents[2]


def sign_zendesk(secret: str, body: bytes, stamp: str | None = None) -> dict:
    """Headers Zendesk would send, computed here with hmac/hashlib (independently of the gateway)."""
    stamp = stamp or datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    digest = hmac.new(secret.encode(), stamp.encode() + body, hashlib.sha256).digest()
    return {"X-Zendesk-Webhook-Signature": base64.b64encode(digest).decode(),
            "X-Zendesk-Webhook-Signature-Timestamp": stamp, "Content-Type": "application/json"}


def sign_intercom(secret: str, body: bytes) -> dict:
    return {"X-Hub-Signature": "sha1=" + hmac.new(secret.encode(), body, hashlib.sha1).hexdigest(),
            "Content-Type": "application/json"}


def start_service(args: list[str], env: dict, log_path: Path) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "clonedesk", *args], cwd=REPO, env={**os.environ, **env},
                            stdout=open(log_path, "ab"), stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)


def stop_service(process: subprocess.Popen) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def wait_for_http(url: str, process: subprocess.Popen, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{url}: the process exited with {process.returncode}")
        try:
            if httpx.get(url, timeout=1.0).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise TimeoutError(f"{url} did not answer within {timeout}s")


@dataclass(frozen=True)
class Record:
    topic: str
    key: bytes | None
    value: bytes | None
    headers: tuple


class TopicRecorder:
    """Reads the given topics from the beginning, without a consumer group (no join wait), into a list
    that tests poll."""

    def __init__(self, bootstrap: str, topics: list[str]):
        self.bootstrap, self.topics = bootstrap, topics
        self.records: list[Record] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=lambda: asyncio.run(self._run()), daemon=True)

    def start(self) -> "TopicRecorder":
        self._thread.start()
        if not self._ready.wait(30):
            raise TimeoutError("the topic recorder did not start")
        return self

    async def _run(self) -> None:
        consumer = make_consumer(self.bootstrap, *self.topics, group_id=None)
        await consumer.start()
        self._ready.set()
        try:
            while not self._stop.is_set():
                batch = await consumer.getmany(timeout_ms=200)
                with self._lock:
                    for records in batch.values():
                        self.records.extend(Record(r.topic, r.key, r.value, tuple(r.headers or ())) for r in records)
        finally:
            await consumer.stop()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(10)

    def matching(self, topic: str, predicate=lambda record: True) -> list[Record]:
        with self._lock:
            return [r for r in self.records if r.topic == topic and predicate(r)]

    def wait_for(self, topic: str, predicate, count: int, timeout: float = 60.0, settle: float = 0.0) -> list[Record]:
        """At least `count` matching records (then `settle` seconds more, so extras would show)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = self.matching(topic, predicate)
            if len(found) >= count:
                time.sleep(settle)
                return self.matching(topic, predicate)
            time.sleep(0.1)
        raise AssertionError(f"timed out waiting for {count} records on {topic}; saw "
                             f"{len(self.matching(topic, predicate))}")


def keyed(tenant_id: str, ticket_id: str):
    key = f"{tenant_id}:{ticket_id}".encode()
    return lambda record: record.key == key
