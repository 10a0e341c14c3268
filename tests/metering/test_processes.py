"""The embedded shape: `clonedesk metering` and `clonedesk api` as real processes over one chDB data
path (the sink owns it, the api reads through it), and `clonedesk invoice` with and without the sink."""

import json
import signal
import subprocess
import sys
import uuid
from datetime import datetime, timezone

import httpx
import pytest

from clonedesk.core.tenants import TenantStore
from clonedesk.metering.domain.terms import Terms
from clonedesk.metering.stack import components
from tests.conftest import wait_until
from tests.metering.helpers import expected_invoices, produce, scenario

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def clonedesk(*args, **kwargs):
    return subprocess.run([sys.executable, "-m", "clonedesk", *args], capture_output=True, text=True,
                          timeout=120, **kwargs)


def test_stack_components(settings):
    metering, api = components(settings)
    assert (metering.name, metering.port) == ("metering", None)
    assert (api.name, api.port, api.port_env) == ("api", settings.api_port, "CLONEDESK_API_PORT")
    assert api.order > metering.order


def test_the_metering_socket_fits_a_unix_socket_path(settings, tmp_path):
    from clonedesk.metering.settings import MeteringSettings

    short = MeteringSettings.from_settings(settings)
    assert short.embedded_clickhouse and short.clickhouse_database == "clonedesk"
    deep = MeteringSettings(data_dir=tmp_path / ("d" * 120))
    other = MeteringSettings(data_dir=tmp_path / ("e" * 120))
    assert len(str(deep.metering_socket)) <= 100 and deep.metering_socket != other.metering_socket
    assert not MeteringSettings(clickhouse_dsn="http://clickhouse:8123").embedded_clickhouse


async def test_sink_and_api_processes_share_chdb_and_invoice_cli(settings, kafka_bootstrap, tmp_path,
                                                                 monkeypatch):
    # the embedded default: chDB in the data dir
    monkeypatch.delenv("CLONEDESK_CLICKHOUSE_DSN", raising=False)
    tenant = TenantStore(settings.resolved_data_dir).add("proc-" + uuid.uuid4().hex[:6])
    replies, outcomes = scenario(tenant.id, datetime(2026, 10, 1, tzinfo=timezone.utc), 200, every_hours=3.5)
    want = expected_invoices(tenant.id, replies, outcomes, Terms(), ["2026-10"])["2026-10"]
    assert want["charged_units"] > 0
    await produce(kafka_bootstrap, replies, outcomes)

    logs = tmp_path / "logs"
    logs.mkdir()
    processes = {}
    for name in ("metering", "api"):
        processes[name] = subprocess.Popen([sys.executable, "-m", "clonedesk", name],
                                           stdin=subprocess.DEVNULL, stdout=open(logs / f"{name}.out", "w"),
                                           stderr=subprocess.STDOUT)
    try:
        url = f"http://127.0.0.1:{settings.api_port}/v1/tenants/{tenant.id}/invoice"
        headers = {"Authorization": f"Bearer {tenant.api_key}"}

        def settled_invoice():
            try:
                response = httpx.get(url, params={"month": "2026-10"}, headers=headers, timeout=10)
            except httpx.TransportError:
                return None
            if response.status_code != 200:
                return None
            body = response.json()
            return body if body == want else None

        wait_until(settled_invoice, timeout=90, interval=0.5, message="the invoice through the api process")
        assert httpx.get(url, params={"month": "2026-10"}, timeout=10).status_code == 401

        printed = clonedesk("invoice", "--tenant", tenant.id, "--month", "2026-10", "--json")
        assert printed.returncode == 0, printed.stderr
        assert json.loads(printed.stdout) == want
        table = clonedesk("invoice", "--tenant", tenant.id, "--month", "2026-10").stdout
        last_line = table.splitlines()[-1]
        assert f"${want['total_usd']}" in last_line and last_line.split()[0] == "total"
        assert f"free units {want['free_units']:>14}" in table and "confirmed" in table

        # a dispute through the public port (the api process forwards the POST), decided by the operator
        # with `clonedesk dispute` through the metering process
        base = f"http://127.0.0.1:{settings.api_port}/v1/tenants/{tenant.id}"
        confirmed = httpx.get(f"{base}/resolutions", params={"state": "confirmed", "limit": 500}, headers=headers,
                              timeout=10).json()["items"]
        paid = max(confirmed, key=lambda item: (item["billed_at"], item["resolution_id"]))["resolution_id"]
        opened = httpx.post(f"{base}/resolutions/{paid}/dispute", json={"reason": "not what we asked"},
                            headers=headers, timeout=10)
        assert opened.status_code == 201, opened.text
        queue = clonedesk("dispute", "list", "--status", "open", "--json")
        assert queue.returncode == 0, queue.stderr
        assert [json.loads(line)["resolution_id"] for line in queue.stdout.splitlines()] == [paid]
        decided = clonedesk("dispute", "accept", tenant.id, paid, "--note", "agreed")
        assert decided.returncode == 0, decided.stderr
        credit_month = datetime.now(timezone.utc).strftime("%Y-%m")
        assert f"accepted: $0.99 credited to {tenant.id} in {credit_month}" in decided.stdout
        again = clonedesk("dispute", "reject", tenant.id, paid)
        assert again.returncode == 1 and "409" in again.stderr and "Traceback" not in again.stderr
        credited = httpx.get(f"{base}/invoice", params={"month": credit_month}, headers=headers, timeout=10).json()
        assert (credited["dispute_credit_units"], credited["dispute_credits_usd"]) == (1, "0.99")
    finally:
        for process in processes.values():
            process.send_signal(signal.SIGTERM)
        for name, process in processes.items():
            code = process.wait(timeout=30)
            # uvicorn shuts down gracefully, then re-raises the signal it caught: -SIGTERM is a clean stop
            clean = (0, -signal.SIGTERM) if name == "api" else (0,)
            assert code in clean, (name, (logs / f"{name}.out").read_text())
        assert "Application shutdown complete" in (logs / "api.out").read_text()

    # with the sink gone, `invoice` opens the data path itself and finds the same figures
    again = clonedesk("invoice", "--tenant", tenant.id, "--month", "2026-10", "--json")
    assert again.returncode == 0, again.stderr
    assert json.loads(again.stdout) == want

    # and `dispute list` reads the same disputes from the data path itself
    listed = clonedesk("dispute", "list", "--tenant", tenant.id, "--json")
    assert listed.returncode == 0, listed.stderr
    assert [(d["status"], d["credit_usd"], d["note"]) for d in map(json.loads, listed.stdout.splitlines())] == [
        ("accepted", "0.99", "agreed")]

    bad = clonedesk("invoice", "--tenant", tenant.id, "--month", "2026-13")
    assert bad.returncode == 2 and "YYYY-MM" in bad.stderr
    unknown = clonedesk("invoice", "--tenant", "nobody", "--month", "2026-10")
    assert unknown.returncode == 1 and "unknown tenant" in unknown.stderr
    assert "Traceback" not in unknown.stderr


def test_a_held_chdb_path_is_one_clear_line(settings, tmp_path, monkeypatch):
    from clonedesk.metering.adapters.store import chdb_path_held

    dsn = f"chdb://{tmp_path / 'held'}"
    monkeypatch.setenv("CLONEDESK_CLICKHOUSE_DSN", dsn)
    # another process holds the path (this one may have a chDB path open already: one per process)
    hold = (f"import sys, clickhouse_connect; client = clickhouse_connect.get_client(dsn={dsn!r});"
            " client.command('SELECT 1'); sys.stdin.read()")
    holder = subprocess.Popen([sys.executable, "-c", hold], stdin=subprocess.PIPE)
    try:
        wait_until(lambda: chdb_path_held(dsn), timeout=60, message="the holder to open chDB")
        tenant = TenantStore(settings.resolved_data_dir).add("held-" + uuid.uuid4().hex[:6])
        result = clonedesk("invoice", "--tenant", tenant.id, "--month", "2026-10")
        assert result.returncode == 1 and "another process holds this chDB data path" in result.stderr, result
        assert "Traceback" not in result.stderr
    finally:
        holder.communicate(b"", timeout=30)
