"""`clonedesk demo --quick` end to end: the real stack as child processes (broker, gateway, faust worker,
trainer, resolver, bridge, outbound poster, helpdesk simulator, metering, API), driven by the demo as
a subprocess with its own data dir and ports; then its outcomes are checked from outside, over the
broker and HTTP, and the stack is stopped.

A first run is killed halfway (its stack left running, its history half sent): the run that follows
must stop that stack and start clean, which the exact counts checked afterwards would show if not."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import threading
from collections import defaultdict
from datetime import datetime, timezone
from pathlib import Path

import httpx
import pytest

from clonedesk.core.kafka import decode, make_consumer
from clonedesk.core.domain.topics import ADAPTERS_PUBLISHED, RESOLUTIONS
from clonedesk.v1 import adapters_pb2, resolver_pb2
from tests.conftest import REPO, free_port

pytestmark = [pytest.mark.integration, pytest.mark.slow]

TENANTS = ("banks-1", "rentalcars-1", "hotels-1")
# Its own bound inside the test's: a slow CI machine runs the demo at about twice this machine's pace.
DEMO_TIMEOUT_S = 900


def demo_env(data_dir: Path, base_model: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CLONEDESK_")}
    env.update({
        "CLONEDESK_DATA_DIR": str(data_dir),
        "CLONEDESK_BASE_MODEL": str(base_model),
        "CLONEDESK_TOPIC_PARTITIONS": "2",
        **{f"CLONEDESK_{name}_PORT": str(free_port())
           for name in ("BROKER", "STORE", "GATEWAY", "RESOLVER", "API", "HELPDESK_SIM")},
    })
    return env


def clonedesk(env: dict, *args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "clonedesk", *args], env=env, capture_output=True, text=True,
                          timeout=timeout, cwd=REPO)


async def read_topic(bootstrap: str, topic: str, message_type, settle_s: float = 3.0) -> list:
    """Every record of `topic`, decoded: read from the start until nothing new came for `settle_s`."""
    consumer = make_consumer(bootstrap, topic, group_id=None)
    await consumer.start()
    found, quiet = [], 0.0
    try:
        while quiet < settle_s:
            batches = await consumer.getmany(timeout_ms=500)
            records = [r for rs in batches.values() for r in rs]
            quiet = 0.0 if records else quiet + 0.5
            found.extend(decode(message_type, r.value) for r in records)
    finally:
        await consumer.stop()
    return found


def kill_demo_halfway(env: dict, after: str, timeout: float = 240) -> str:
    """Start `clonedesk demo --quick` and kill -9 it half a second after its output shows `after`."""
    demo = subprocess.Popen([sys.executable, "-m", "clonedesk", "demo", "--quick"], cwd=REPO, text=True,
                            env={**env, "PYTHONUNBUFFERED": "1"}, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT)
    watchdog = threading.Timer(timeout, demo.kill)
    watchdog.start()
    seen = []
    try:
        for line in demo.stdout:
            seen.append(line)
            if after in line:
                threading.Timer(0.5, demo.kill).start()
    finally:
        watchdog.cancel()
        demo.wait()
    output = "".join(seen)
    assert after in output, f"the first run never reached {after!r}:\n{output[-3000:]}"
    return output


def table_rows(output: str, first_cell: str) -> list[list[str]]:
    """The cells of every table row of the demo's output that starts with `first_cell`."""
    rows = []
    for line in output.splitlines():
        cells = [c.strip() for c in line.strip().strip("│").split("│")]
        if len(cells) > 1 and cells[0] == first_cell:
            rows.append(cells)
    return rows


@pytest.mark.timeout(DEMO_TIMEOUT_S + 600)
def test_quick_demo_runs_the_whole_loop_on_the_real_stack(tmp_path, demo_base_model):
    data_dir = tmp_path / "data"
    env = demo_env(data_dir, demo_base_model)
    bootstrap = f"127.0.0.1:{env['CLONEDESK_BROKER_PORT']}"
    try:
        first = kill_demo_halfway(env, "2/6 history arrives")
        assert "1/6" in first and "3/6" not in first
        assert json.loads((data_dir / "demo.json").read_text())["status"] == "running"
        try:
            run = clonedesk(env, "demo", "--quick", timeout=DEMO_TIMEOUT_S)
        except subprocess.TimeoutExpired as exc:
            tail = (exc.stdout or b"")[-4000:]
            pytest.fail(f"`clonedesk demo --quick` ran past {DEMO_TIMEOUT_S}s:\n{tail!r}")
        output = run.stdout + run.stderr
        assert run.returncode == 0, f"demo failed ({run.returncode}):\n{output[-6000:]}"
        words = " ".join(output.split())  # rich wraps long lines
        assert "an unfinished earlier demo run: its stack was stopped and its data wiped" in words
        summary = json.loads((data_dir / "demo" / "summary.json").read_text())["tenants"]

        # The stack it started is still up, every component of it.
        status = {c["name"]: c for c in json.loads(clonedesk(env, "status", "--json").stdout)}
        for name in ("broker", "gateway", "streams", "trainer", "resolver", "bridge", "outbound", "metering",
                     "api", "helpdesk-sim"):
            assert status[name]["up"], f"{name} is down after the demo"

        # Every tenant's first adapter and its refresh were trained; the published ones reached the broker.
        published = asyncio.run(read_topic(bootstrap, ADAPTERS_PUBLISHED, adapters_pb2.AdapterPublished))
        versions = defaultdict(set)
        for message in published:
            versions[message.tenant_id].add(message.version)
        for tenant in TENANTS:
            assert 1 in versions[tenant], f"{tenant}: no v1 published ({dict(versions)})"
            meta = json.loads((data_dir / "adapters" / tenant / "v2" / "meta.json").read_text())
            assert meta["trigger"].startswith("refresh") and meta["parent_version"] == 1
            assert (meta["status"] == "promoted") == (2 in versions[tenant])
            assert (data_dir / "adapters" / tenant / "v1" / "preview.json").exists()
        assert any(2 in versions[t] for t in TENANTS), "no refresh was promoted and hot-swapped"

        # The accuracy preview printed is each v1's saved preview, every metric of it.
        for tenant in TENANTS:
            saved = json.loads((data_dir / "adapters" / tenant / "v1" / "preview.json").read_text())
            assert summary[tenant]["preview"] == saved
            low, high = saved["intervals"]["adapter"]["decision_accuracy"]
            assert table_rows(output, saved["adapter_version"])[0][3] == \
                f"{saved['adapter']['decision_accuracy']:.1%} [{low:.0%}–{high:.0%}]"
            assert len(saved["confidence"]["curve"]) == 7
        preview_rows = [r for t in TENANTS for r in table_rows(output, f"{t}@v1")] + table_rows(output, "")
        assert {"decision accuracy", "reply chrF", "escalation precision", "escalation recall",
                "projected resolution", "answered at threshold", "accuracy of answered"} <= {
            r[2] for r in preview_rows if len(r) == 6}
        assert "answered turns / their decision accuracy, by confidence threshold" in output

        # The resolver answered every live ticket: all the dialogues that were not history or refresh.
        resolutions = asyncio.run(read_topic(bootstrap, RESOLUTIONS, resolver_pb2.Resolution))
        by_tenant = defaultdict(list)
        for resolution in resolutions:
            by_tenant[resolution.tenant_id].append(resolution)
        for tenant in TENANTS:
            dialogues = summary[tenant]["dialogues"]
            assert dialogues["history"] > dialogues["live"] == dialogues["live_played"] > 0
            assert len({r.ticket_id for r in by_tenant[tenant]}) == dialogues["live"]

        # Hot swap: where the refresh was promoted, the tickets played after it were answered by v2.
        for tenant in TENANTS:
            if 2 in versions[tenant]:
                ordered = sorted(by_tenant[tenant], key=lambda r: r.created_at.ToDatetime())
                assert ordered[-1].adapter_version == f"{tenant}@v2", [r.adapter_version for r in ordered]
                assert summary[tenant]["swap"]["current"] == 2
                assert summary[tenant]["swap"]["answered_by"][f"{tenant}@v2"] >= 1
        sim = f"http://127.0.0.1:{env['CLONEDESK_HELPDESK_SIM_PORT']}"
        api = f"http://127.0.0.1:{env['CLONEDESK_API_PORT']}"
        admin = (data_dir / "admin_key").read_text().strip()
        month = datetime.now(timezone.utc).strftime("%Y-%m")
        replies_total = 0
        with httpx.Client(timeout=30) as client:
            for tenant in TENANTS:
                assert by_tenant[tenant], f"{tenant}: no resolutions"
                assert {r.adapter_version.split("@")[0] for r in by_tenant[tenant]} == {tenant}  # isolation
                replies = client.get(f"{sim}/replies", params={"tenant_id": tenant}).json()["replies"]
                answered = {r.reply for r in by_tenant[tenant] if r.reply}
                assert {r["body"] for r in replies} == answered
                assert all(r["author_id"] == "clonedesk-ai" for r in replies)
                replies_total += len(replies)

                # The invoice, through the analytics API, counts every resolution the resolver made.
                invoice = client.get(f"{api}/v1/tenants/{tenant}/invoice", params={"month": month},
                                     headers={"Authorization": f"Bearer {admin}"}).json()
                assert sum(invoice["resolutions"].values()) == len(by_tenant[tenant])
                assert invoice["resolutions"]["escalated"] >= sum(
                    1 for r in by_tenant[tenant] if not r.reply)
                assert invoice["unit_price_usd"] == "0.99"

                # The rates printed are the invoice's counts over the settled resolutions.
                counts = invoice["resolutions"]
                settled = sum(counts.values()) - counts["pending"]
                row = table_rows(output, tenant)
                printed = next(r for r in row if len(r) == 9)  # the resolutions table
                if settled:
                    resolved = (counts["confirmed"] + counts["assumed"]) / settled
                    assert printed[6] == f"{resolved:.0%}"
                    assert printed[7] == f"{counts['escalated'] / settled:.0%}"
                    assert summary[tenant]["resolution_rate"] == pytest.approx(resolved, abs=1e-4)
                else:
                    assert printed[6] == printed[7] == "—"
                assert printed[1] == str(len(by_tenant[tenant]))
        assert replies_total > 0, "every live message was escalated: no reply was posted"

        # The output says what came from the dialogues and what was simulated, and ends with the bill.
        assert "from the dialogue" in output and "simulated (seeded)" in output
        # Each AI reply the customers got was judged against the agent's (demo/domain/judge.py).
        judged = {t: summary[t]["judged"] for t in TENANTS}
        assert 0 < sum(j["answers"] for j in judged.values()) <= replies_total, judged
        assert "AI answers judged right (decision and reply as the agent's)" in words
        assert "invoices" in output and f"{api}/tenants/banks-1" in output
    finally:
        clonedesk(env, "down", timeout=90)
    status = {c["name"]: c for c in json.loads(clonedesk(env, "status", "--json").stdout)}
    assert not any(c["up"] for c in status.values()), "the stack did not stop"
