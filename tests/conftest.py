"""Shared fixtures. Unit tests need none of them; integration tests use the real parts:
a tansu broker on a free port (one per test session) and the ClickHouse engine in-process (chDB)."""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import time
import uuid
from pathlib import Path

import pytest

from clonedesk.core.kafka import ensure_topics, wait_for_broker
from clonedesk.core.settings import Settings
from clonedesk.core.domain.topics import all_topic_specs
from clonedesk.stack.infra import tansu_binary

REPO = Path(__file__).resolve().parents[1]
SHARED_DATASETS = REPO.parent / "shared" / "datasets"
TEST_PARTITIONS = 2

try:  # keep torch to one thread: the machine has two cores and tests run beside other work
    import torch

    torch.set_num_threads(1)
except ImportError:  # pragma: no cover
    pass


@pytest.fixture(scope="session", autouse=True)
def tiny_base_model_by_default():
    """Every test runs on the tiny offline base model unless it says otherwise (or CLONEDESK_BASE_MODEL
    is set already): the default, SmolLM2 imported from its wheel, is for real use and its own tests.
    Exported, so the stacks and services that tests start as child processes inherit it."""
    with pytest.MonkeyPatch.context() as patch:
        if not os.environ.get("CLONEDESK_BASE_MODEL"):
            patch.setenv("CLONEDESK_BASE_MODEL", "tiny")
        yield


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class TansuBroker:
    """A real Kafka-protocol broker (tansu, memory storage) as a child process."""

    def __init__(self, log_path: Path):
        self.port = free_port()
        self.bootstrap = f"127.0.0.1:{self.port}"
        self.log_path = log_path
        self.process: subprocess.Popen | None = None

    def start(self) -> "TansuBroker":
        url = f"tcp://{self.bootstrap}"
        self.process = subprocess.Popen(
            [tansu_binary(), "broker", "--listener-url", url, "--advertised-listener-url", url,
             "--storage-engine", "memory://tansu/"],
            stdout=open(self.log_path, "ab"), stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
        )
        asyncio.run(wait_for_broker(self.bootstrap, timeout=30))
        return self

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=10)


@pytest.fixture(scope="session")
def kafka_broker(tmp_path_factory) -> TansuBroker:
    broker = TansuBroker(tmp_path_factory.mktemp("broker") / "tansu.log").start()
    asyncio.run(ensure_topics(broker.bootstrap, all_topic_specs(TEST_PARTITIONS)))
    yield broker
    broker.stop()


@pytest.fixture(scope="session")
def kafka_bootstrap(kafka_broker) -> str:
    """host:port of the session's broker, every CloneDesk topic created (2 partitions each)."""
    return kafka_broker.bootstrap


@pytest.fixture
def settings(tmp_path, kafka_bootstrap, monkeypatch) -> Settings:
    """Settings for one test: its own data dir and ports, the session broker, exported as env too."""
    values = {
        "CLONEDESK_DATA_DIR": str(tmp_path / "data"),
        "CLONEDESK_KAFKA_BOOTSTRAP": kafka_bootstrap,
        "CLONEDESK_GATEWAY_PORT": str(free_port()),
        "CLONEDESK_RESOLVER_PORT": str(free_port()),
        "CLONEDESK_API_PORT": str(free_port()),
        "CLONEDESK_HELPDESK_SIM_PORT": str(free_port()),
        "CLONEDESK_TOPIC_PARTITIONS": str(TEST_PARTITIONS),
    }
    for key, value in values.items():
        monkeypatch.setenv(key, value)
    return Settings()


@pytest.fixture(scope="session")
def clickhouse_dsn(tmp_path_factory) -> str:
    """chDB allows one data path per process, so the session shares one; tests take their own database."""
    return f"chdb://{tmp_path_factory.mktemp('clickhouse')}"


@pytest.fixture
def clickhouse_client(clickhouse_dsn):
    import clickhouse_connect

    return clickhouse_connect.get_client(dsn=clickhouse_dsn)


@pytest.fixture
def unique_database() -> str:
    return "t_" + uuid.uuid4().hex[:12]


@pytest.fixture
def group_id() -> str:
    """A fresh consumer group: the embedded broker under-reports 'latest', so tests read from earliest."""
    return "test-" + uuid.uuid4().hex[:10]


@pytest.fixture(scope="session")
def zoo(tmp_path_factory):
    """A tiny base model and real peft adapters, one behaviour per (tenant, version), trained once per
    session with the trainer's own code (see tests/resolver/conftest.py: build_zoo, BEHAVIOUR)."""
    from tests.resolver.conftest import build_zoo

    return build_zoo(tmp_path_factory.mktemp("zoo"))


@pytest.fixture(scope="session")
def sgd_dir() -> Path:
    """The SGD conversations: the shared copy if present, else the subset the project carries."""
    shared = SHARED_DATASETS / "sgd"
    return shared if shared.exists() else REPO / "data" / "sgd"


def wait_until(predicate, timeout: float = 30.0, interval: float = 0.2, message: str = "condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {message}")


def kcat_env() -> dict[str, str]:
    """Environment in which Debian's kcat can talk to tansu.

    Debian bookworm's librdkafka 2.0.2 misreads the tagged fields of tansu's ApiVersions v3 response
    ("Read underflow"); the newer librdkafka inside the confluent-kafka wheel reads it. kcat itself stays
    the independent client; only its shared library is newer.
    """
    import confluent_kafka

    libs = Path(confluent_kafka.__file__).resolve().parent.parent / "confluent_kafka.libs"
    library = next(libs.glob("librdkafka*.so*"))
    shim = Path(os.environ.get("TMPDIR", "/tmp")) / f"clonedesk-librdkafka-{os.getuid()}"
    shim.mkdir(exist_ok=True)
    link = shim / "librdkafka.so.1"
    if not link.exists():
        link.symlink_to(library)
    return {**os.environ, "LD_LIBRARY_PATH": str(shim)}
