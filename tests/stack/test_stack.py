"""The embedded stack as an operator runs it: `clonedesk up/status/down` as real processes."""

import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time

import httpx
import pytest

from clonedesk.core.kafka import make_consumer, make_producer
from clonedesk.core.settings import Settings
from clonedesk.core.components import Component
from clonedesk.stack.state import pid_alive
from clonedesk.stack.supervisor import Supervisor
from clonedesk.v1 import events_pb2
from tests.conftest import free_port, wait_until
from tests.ingest import payloads
from tests.ingest.harness import sign_zendesk

pytestmark = pytest.mark.integration


def stack_env(tmp_path, **extra) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CLONEDESK_")}
    env.update({
        "CLONEDESK_DATA_DIR": str(tmp_path / "data"),
        "CLONEDESK_BROKER_PORT": str(free_port()),
        "CLONEDESK_STORE_PORT": str(free_port()),
        "CLONEDESK_TOPIC_PARTITIONS": "2",
        "CLONEDESK_BASE_MODEL": "tiny",  # were a trainer or resolver to start: never the real model here
    })
    env.update(extra)
    return env


def clonedesk(env, *args, timeout=120, check=True):
    result = subprocess.run([sys.executable, "-m", "clonedesk", *args], env=env, capture_output=True, text=True,
                            timeout=timeout)
    if check and result.returncode != 0:
        raise AssertionError(f"clonedesk {' '.join(args)} failed ({result.returncode}):\n{result.stdout}\n{result.stderr}")
    return result


def status(env) -> dict:
    return {c["name"]: c for c in json.loads(clonedesk(env, "status", "--json").stdout)}


async def read_all(bootstrap, topic, expected, timeout=60, value_of=lambda record_value: record_value):
    """`value_of` every record on `topic`, read until `expected` are all there or `timeout` passed."""
    consumer = make_consumer(bootstrap, topic, group_id=None)
    await consumer.start()
    seen = set()
    try:
        async with asyncio.timeout(timeout):
            while not expected <= seen:
                for records in (await consumer.getmany(timeout_ms=300)).values():
                    seen.update(value_of(r.value) for r in records)
    except TimeoutError:
        pass  # the caller's subset assertion says what is missing
    finally:
        await consumer.stop()
    return seen


async def produce_many(bootstrap, topic, values):
    """Send all at once and wait for every acknowledgement (acks=all)."""
    producer = make_producer(bootstrap)
    await producer.start()
    try:
        futures = [await producer.send(topic, value, key=value[-3:]) for value in values]
        await asyncio.gather(*futures)
    finally:
        await producer.stop()


def event_body(value: bytes) -> str:
    return events_pb2.HelpdeskEvent.FromString(value).body


class WebhookSender(threading.Thread):
    """A helpdesk posting signed comment webhooks to the gateway without pause; remembers which bodies
    the gateway acknowledged (2xx). Refused or failed posts are simply not acknowledged."""

    def __init__(self, url: str, tenant: str, secret: str):
        super().__init__(daemon=True)
        self.url, self.tenant, self.secret = url, tenant, secret
        self.acknowledged: list[str] = []
        self.failed = 0
        self.no_answer = 0  # requests that got no HTTP answer at all (refused or dropped connections)
        self.retry_later = 0  # 503s that carried Retry-After, as the contract promises
        self.other_refusals: list[int] = []
        self.stopping = threading.Event()

    def run(self):
        number = 0
        with httpx.Client(timeout=15) as client:
            while not self.stopping.is_set():
                text = f"message number {number}"
                body = payloads.body_of(payloads.zendesk_comment(f"t{number % 7}", f"c{number}", text,
                                                                 staff=False))
                try:
                    response = client.post(f"{self.url}/webhooks/zendesk/{self.tenant}", content=body,
                                           headers=sign_zendesk(self.secret, body))
                    if response.is_success:
                        self.acknowledged.append(text)
                    else:
                        self.failed += 1
                        if response.status_code == 503 and response.headers.get("retry-after"):
                            self.retry_later += 1
                            time.sleep(0.05)
                        else:
                            self.other_refusals.append(response.status_code)
                except httpx.HTTPError:
                    self.failed += 1
                    self.no_answer += 1
                    time.sleep(0.1)
                number += 1


@pytest.mark.slow
def test_acknowledged_records_survive_a_stack_restart_and_a_broker_kill(tmp_path):
    env = stack_env(tmp_path, CLONEDESK_GATEWAY_PORT=str(free_port()))
    bootstrap = f"127.0.0.1:{env['CLONEDESK_BROKER_PORT']}"
    clonedesk(env, "up", "--detach", "--only", "store,broker,gateway")
    try:
        secret = json.loads(clonedesk(env, "tenant", "add", "acme", "--json").stdout)["zendesk_secret"]
        first = {f"record-{i:05d}".encode() for i in range(5000)}
        asyncio.run(produce_many(bootstrap, "tickets.to_resolve", sorted(first)))

        # 1. stop everything cleanly (SIGTERM to the supervisor), start again: every record is there.
        children = [c["pid"] for c in status(env).values() if c["pid"]]
        assert len(children) == 3
        assert "stack stopped" in clonedesk(env, "down").stdout
        assert not any(pid_alive(pid) for pid in children), "children must stop with the stack"
        assert all(not c["up"] for c in status(env).values())
        clonedesk(env, "up", "--detach", "--only", "store,broker,gateway")
        assert first <= asyncio.run(read_all(bootstrap, "tickets.to_resolve", first))

        # 2. SIGKILL the broker while webhooks keep arriving: the supervisor holds the services, restarts
        # the broker, prepares it, releases them; the gateway stays up all along, answering 503 with
        # Retry-After meanwhile (never a refused connection); every webhook acknowledged before, during
        # or after is on helpdesk.events, and so is everything from before.
        sender = WebhookSender(f"http://127.0.0.1:{env['CLONEDESK_GATEWAY_PORT']}", "acme", secret)
        sender.start()
        try:
            wait_until(lambda: len(sender.acknowledged) >= 30, timeout=60, message="webhooks to flow")
            old_pid = status(env)["broker"]["pid"]
            os.kill(old_pid, signal.SIGKILL)
            supervisor_out = tmp_path / "data" / "logs" / "supervisor.out"
            wait_until(lambda: "released 1 services after the broker restart" in supervisor_out.read_text(),
                       timeout=90, message="the broker to be restarted and the gateway released")
            acknowledged_at_release = len(sender.acknowledged)
            wait_until(lambda: len(sender.acknowledged) >= acknowledged_at_release + 30, timeout=60,
                       message="webhooks to flow again")
        finally:
            sender.stopping.set()
            sender.join(timeout=30)
        assert status(env)["broker"]["up"] and status(env)["broker"]["pid"] != old_pid
        acknowledged = set(sender.acknowledged)
        assert sender.failed > 0, "the kill should have refused some webhooks"
        assert sender.no_answer == 0, f"{sender.no_answer} requests got no answer while the broker was away"
        assert sender.retry_later == sender.failed and not sender.other_refusals, sender.other_refusals[:5]
        on_topic = asyncio.run(read_all(bootstrap, "helpdesk.events", acknowledged, value_of=event_body))
        assert acknowledged <= on_topic, f"acknowledged webhooks lost: {sorted(acknowledged - on_topic)[:5]}"
        assert first <= asyncio.run(read_all(bootstrap, "tickets.to_resolve", first))
        log = supervisor_out.read_text()
        assert "broker exited with code -9" in log and "broker restarted (restart #1" in log
        assert "holding 1 services until the broker is back (1 answering 503 meanwhile)" in log
        assert not (tmp_path / "data" / "run" / "broker-hold").exists()
    finally:
        clonedesk(env, "down", check=False)


def test_status_names_each_component_on_its_own_line(tmp_path):
    env = stack_env(tmp_path)
    lines = clonedesk(env, "status").stdout.splitlines()
    names = [line.split()[0] for line in lines]
    assert names[:2] == ["store", "broker"]
    assert all(line.split()[-1] == "down" for line in lines)
    assert f"port {env['CLONEDESK_BROKER_PORT']}" in lines[1]


def _single_error_line(result) -> str:
    assert result.returncode != 0
    assert "Traceback" not in result.stderr + result.stdout
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    return lines[0]


def test_a_port_already_taken_is_one_clear_line(tmp_path):
    env = stack_env(tmp_path)
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", int(env["CLONEDESK_BROKER_PORT"])))
        holder.listen()
        line = _single_error_line(clonedesk(env, "up", "--ephemeral", "--only", "broker", check=False))
    assert f"port {env['CLONEDESK_BROKER_PORT']} for broker is already in use" in line
    assert "CLONEDESK_BROKER_PORT" in line


def test_an_unreachable_broker_is_one_clear_line(tmp_path):
    env = stack_env(tmp_path, CLONEDESK_KAFKA_BOOTSTRAP=f"127.0.0.1:{free_port()}")
    started = time.monotonic()
    line = _single_error_line(clonedesk(env, "up", check=False))
    assert "is not reachable" in line and env["CLONEDESK_KAFKA_BOOTSTRAP"] in line
    assert time.monotonic() - started < 60


def test_bad_tenant_ids_and_duplicates_are_one_clear_line(tmp_path):
    env = stack_env(tmp_path)
    for bad in ("Acme", "acme_corp", "x" * 41, ""):
        line = _single_error_line(clonedesk(env, "tenant", "add", bad, check=False))
        assert "invalid tenant id" in line and "lowercase letters, digits and '-'" in line
    clonedesk(env, "tenant", "add", "acme")
    assert "already exists" in _single_error_line(clonedesk(env, "tenant", "add", "acme", check=False))
    assert "unknown tenant" in _single_error_line(clonedesk(env, "tenant", "show", "nobody", check=False))


def test_bad_setting_is_one_clear_line(tmp_path):
    env = stack_env(tmp_path, CLONEDESK_ENGINE="tensorrt")
    assert "CLONEDESK_ENGINE" in _single_error_line(clonedesk(env, "tenant", "list", check=False))


def test_tenant_commands(tmp_path):
    env = stack_env(tmp_path)
    created = json.loads(clonedesk(env, "tenant", "add", "acme", "--json").stdout)
    assert set(created) == {"id", "zendesk_secret", "intercom_secret", "api_key", "actions_secret"}
    assert created["id"] == "acme" and created["actions_secret"]
    shown = json.loads(clonedesk(env, "tenant", "show", "acme", "--json").stdout)
    assert shown["live"] is False and shown["adapter_version"] is None
    assert not {"zendesk_secret", "intercom_secret", "api_key", "actions_secret"} & set(shown)
    assert (shown["actions_url"], shown["actions_allow"], shown["actions_timeout_s"]) == ("", [], 5.0)
    assert created["api_key"] not in clonedesk(env, "tenant", "show", "acme").stdout
    with_secrets = json.loads(clonedesk(env, "tenant", "show", "acme", "--secrets", "--json").stdout)
    assert with_secrets["zendesk_secret"] == created["zendesk_secret"]
    assert with_secrets["actions_secret"] == created["actions_secret"]
    clonedesk(env, "tenant", "set", "acme", "--actions-url", "https://backoffice.acme.test/clonedesk",
              "--actions-allow", "BookRoom, FindHotel", "--actions-timeout-s", "2.5")
    back_office = json.loads(clonedesk(env, "tenant", "show", "acme", "--secrets", "--json").stdout)
    assert (back_office["actions_url"], back_office["actions_allow"], back_office["actions_timeout_s"]) == (
        "https://backoffice.acme.test/clonedesk", ["BookRoom", "FindHotel"], 2.5)
    assert back_office["actions_secret"] == created["actions_secret"]
    rotated = clonedesk(env, "tenant", "set", "acme", "--rotate-actions-secret", "--actions-allow", "").stdout
    after = json.loads(clonedesk(env, "tenant", "show", "acme", "--secrets", "--json").stdout)
    assert after["actions_secret"] != created["actions_secret"] and after["actions_secret"] in rotated
    assert after["actions_allow"] == []  # '' = the calls the tenant's history made
    for bad in (["--actions-url", "ftp://x"], ["--actions-url", "not a url"], ["--actions-allow", "Book Room"],
                ["--actions-timeout-s", "0"]):
        refused = clonedesk(env, "tenant", "set", "acme", *bad, check=False)
        assert refused.returncode != 0 and "Traceback" not in refused.stderr, bad
    clonedesk(env, "tenant", "add", "globex")
    assert [t["id"] for t in json.loads(clonedesk(env, "tenant", "list", "--json").stdout)] == ["acme", "globex"]
    refused = clonedesk(env, "tenant", "go-live", "acme", check=False)
    assert refused.returncode != 0 and "no trained adapter" in refused.stderr

    clonedesk(env, "tenant", "set", "acme", "--escalation-threshold", "0.7", "--unit-price", "1.25",
              "--free-units", "10", "--no-bill-assumed", "--reopen-window-days", "3",
              "--zendesk-base-url", "https://acme.zendesk.com", "--zendesk-token", "tok")
    changed = json.loads(clonedesk(env, "tenant", "show", "acme", "--secrets", "--json").stdout)
    assert changed["escalation_threshold"] == 0.7
    assert changed["plan"] == {"unit_price_usd": "1.25", "free_units": 10, "bill_assumed": False,
                               "assumed_window_hours": 24, "reopen_window_days": 3}
    assert changed["helpdesk"]["zendesk_base_url"] == "https://acme.zendesk.com"
    assert changed["helpdesk"]["zendesk_token"] == "tok" and changed["api_key"] == created["api_key"]
    assert changed["target_accuracy"] == 0.9  # the default the holdout threshold is chosen for
    clonedesk(env, "tenant", "set", "acme", "--holdout-threshold", "--target-accuracy", "0.95")
    chosen = json.loads(clonedesk(env, "tenant", "show", "acme", "--json").stdout)
    assert chosen["escalation_threshold"] is None and chosen["target_accuracy"] == 0.95
    clonedesk(env, "tenant", "set", "acme", "--escalation-threshold", "0.7")
    for bad in (["--unit-price", "0.1.2"], ["--escalation-threshold", "1.5"], [], ["--target-accuracy", "1.5"],
                ["--escalation-threshold", "0.5", "--holdout-threshold"]):
        refused = clonedesk(env, "tenant", "set", "acme", *bad, check=False)
        assert refused.returncode != 0 and "Traceback" not in refused.stderr, bad
    assert json.loads(clonedesk(env, "tenant", "show", "acme", "--json").stdout)["plan"] == changed["plan"]


def test_supervisor_restarts_a_dying_child_with_backoff(tmp_path, kafka_bootstrap):
    settings = Settings(data_dir=tmp_path / "data", kafka_bootstrap=kafka_bootstrap, topic_partitions=2)
    flaky = Component("flaky", argv=(sys.executable, "-c", "import sys; print('dying'); sys.exit(3)"), order=100,
                      start_timeout=0.5)
    said: list[str] = []
    supervisor = Supervisor(settings, components=[flaky], say=said.append)
    supervisor.start()
    try:
        deadline = time.monotonic() + 6
        while time.monotonic() < deadline:
            supervisor.supervise_once()
            time.sleep(0.1)
    finally:
        supervisor.stop()
    restarts = [line for line in said if line.startswith("flaky restarted")]
    delays = [line.rsplit("restarting in ", 1)[1] for line in said if "exited with code 3" in line]
    assert 2 <= len(restarts) <= 3, said  # 1 s, then 2 s, then 4 s: backoff, not a busy loop
    assert delays[:3] == ["1s", "2s", "4s"][: len(delays[:3])]
    assert (tmp_path / "data" / "logs" / "flaky.log").read_text().count("dying") >= 3


def test_two_stacks_run_side_by_side_on_their_own_data_dirs_and_ports(tmp_path):
    first, second = stack_env(tmp_path / "one"), stack_env(tmp_path / "two")
    try:
        for env in (first, second):
            clonedesk(env, "up", "--detach", "--ephemeral", "--only", "broker")
        for env in (first, second):
            broker = status(env)["broker"]
            assert broker["up"] and broker["port"] == int(env["CLONEDESK_BROKER_PORT"])
        asyncio.run(produce_many(f"127.0.0.1:{first['CLONEDESK_BROKER_PORT']}", "helpdesk.events", [b"only-in-one"]))
        assert b"only-in-one" in asyncio.run(read_all(f"127.0.0.1:{first['CLONEDESK_BROKER_PORT']}",
                                                       "helpdesk.events", {b"only-in-one"}))
        clonedesk(first, "down")
        assert not status(first)["broker"]["up"] and status(second)["broker"]["up"]  # stopping one spares the other
    finally:
        for env in (first, second):
            clonedesk(env, "down", check=False)
