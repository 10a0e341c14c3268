"""The resolver as operators run it: `clonedesk resolver` and `clonedesk helpdesk-sim` as real processes
(gRPC health, an answer, clean stop on SIGTERM), and the components `clonedesk up` starts."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import grpc
import httpx
import pytest
from clonedesk.core.settings import Settings
from clonedesk.resolver.stack import components
from clonedesk.core.components import discover_components
from clonedesk.stack.stack import components as stack_components
from clonedesk.v1 import common_pb2, resolver_pb2_grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from .conftest import CUSTOMER_LINES, resolve_request


def test_the_stack_gets_three_resolver_components_and_the_simulator_with_their_ports(settings, monkeypatch):
    found = {c.name: c for c in components(settings)}
    assert set(found) == {"resolver", "bridge", "outbound"}
    # The helpdesk simulator stands in for Zendesk and Intercom: the stack's own component, found by
    # `clonedesk up` like every service's.
    found.update({c.name: c for c in stack_components(settings)})
    assert {"helpdesk-sim", "resolver", "bridge", "outbound"} <= {c.name for c in discover_components(settings)}
    assert (found["resolver"].port, found["resolver"].port_env) == (
        settings.resolver_port,
        "CLONEDESK_RESOLVER_PORT",
    )
    assert found["helpdesk-sim"].port == settings.helpdesk_sim_port
    assert found["resolver"].argv[-1] == "resolver" and found["bridge"].argv[-1] == "bridge"
    assert all(c.order >= 100 for c in found.values())
    # With the vllm engine, the resolver runs from vLLM's own environment.
    monkeypatch.setenv("CLONEDESK_VLLM_PYTHON", "/opt/vllm-env/bin/python")
    vllm = {c.name: c for c in components(Settings(engine="vllm"))}
    assert vllm["resolver"].argv[0] == "/opt/vllm-env/bin/python" and vllm["bridge"].argv[0] == sys.executable


def _start(*args: str, env: dict) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "clonedesk", *args],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        stdin=subprocess.DEVNULL,
    )


def _stop(process: subprocess.Popen) -> int:
    process.send_signal(signal.SIGTERM)
    try:
        return process.wait(timeout=20)
    finally:
        if process.poll() is None:
            process.kill()


@pytest.mark.integration
def test_clonedesk_resolver_serves_and_stops_cleanly(zoo, settings):
    zoo.install(settings.resolved_data_dir, "alpha", [1], current=1)
    env = {**os.environ, **settings.child_env(), "CLONEDESK_BASE_MODEL": str(zoo.base_model)}
    process = _start("resolver", env=env)
    try:
        with grpc.insecure_channel(f"127.0.0.1:{settings.resolver_port}") as channel:
            health = health_pb2_grpc.HealthStub(channel)
            deadline = time.monotonic() + 90
            while True:
                assert process.poll() is None, process.stderr.read().decode()[-2000:]
                try:
                    if (
                        health.Check(
                            health_pb2.HealthCheckRequest(service="clonedesk.v1.Resolver"), timeout=2
                        ).status
                        == health_pb2.HealthCheckResponse.SERVING
                    ):
                        break
                except grpc.RpcError:
                    pass
                assert time.monotonic() < deadline, "the resolver never became SERVING"
                time.sleep(0.3)
            answer = resolver_pb2_grpc.ResolverStub(channel).Resolve(
                resolve_request("alpha", "cli-1", CUSTOMER_LINES[0]), timeout=30
            )
        assert (answer.decision, answer.reply, answer.adapter_version) == (
            common_pb2.RESOLVE,
            zoo.expected("alpha", 1)[2],
            "alpha@v1",
        )
    finally:
        code = _stop(process)
    assert code == 0
    log_lines = process.stderr.read().decode()
    assert '"service": "resolver"' in log_lines and "resolver listening" in log_lines  # JSON-line logs


@pytest.mark.integration
def test_clonedesk_helpdesk_sim_serves_and_stops_cleanly(settings):
    process = _start("helpdesk-sim", env={**os.environ, **settings.child_env()})
    try:
        deadline = time.monotonic() + 30
        while True:
            assert process.poll() is None, process.stderr.read().decode()[-2000:]
            try:
                if httpx.get(f"http://127.0.0.1:{settings.helpdesk_sim_port}/healthz", timeout=1).is_success:
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline
            time.sleep(0.2)
        posted = httpx.post(
            f"http://127.0.0.1:{settings.helpdesk_sim_port}/conversations/c-1/reply",
            json={"message_type": "comment", "type": "admin", "body": "Hi"},
            headers={"Authorization": "Bearer x"},
        )
        assert posted.status_code == 200
    finally:
        assert _stop(process) == 0
    assert (settings.resolved_data_dir / "helpdesk-sim" / "replies.jsonl").read_text().count("\n") == 1
