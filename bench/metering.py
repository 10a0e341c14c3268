"""Metering benchmark.

1. Ingest: rows/s from Kafka into ClickHouse through the metering sink (decode, insert, settle the
   lifecycles, commit), against a direct `client.insert` of the same raw rows, in the same run; then
   again into tables that already hold `--history` resolutions (settling reads what a batch's
   resolutions stored before, and uuid5 ids put those in every granule).
2. Queries: invoice and usage latency over N million resolutions generated inside ClickHouse with
   numbers(), against one plain FINAL scan of the same tenant's rows as the baseline.

Everything runs locally: a tansu broker (memory storage) as a child process and chDB in a temp dir.
    .venv/bin/python bench/metering.py [--events 200000] [--history 1000000] [--resolutions 10000000]
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import replace
from datetime import datetime, timedelta, timezone
from pathlib import Path

from rich.console import Console
from rich.table import Table
from tqdm import tqdm

from clonedesk.core.kafka import ensure_topics, make_consumer, wait_for_broker
from clonedesk.core.domain.topics import RESOLUTION_OUTCOMES, RESOLUTIONS, all_topic_specs
from clonedesk.metering.adapters.codec import outcome_row, reply_row
from clonedesk.metering.adapters.store import MeteringStore
from clonedesk.metering.settings import MeteringSettings
from clonedesk.metering.domain.billing import Month
from clonedesk.metering.domain.events import OutcomeRow, ReplyRow
from clonedesk.metering.domain.terms import Terms
from clonedesk.metering.entrypoints.sink import MeteringSink
from clonedesk.stack.infra import tansu_binary

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from tests.metering.helpers import produce, scenario  # noqa: E402 - the same event generator as the tests

console = Console(width=150)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_broker(log: Path) -> tuple[subprocess.Popen, str]:
    bootstrap = f"127.0.0.1:{free_port()}"
    url = f"tcp://{bootstrap}"
    argv = [tansu_binary(), "broker", "--listener-url", url, "--advertised-listener-url", url,
            "--storage-engine", "memory://tansu/"]
    process = subprocess.Popen(argv, stdout=open(log, "ab"), stderr=subprocess.STDOUT,
                               stdin=subprocess.DEVNULL)
    asyncio.run(wait_for_broker(bootstrap, timeout=30))
    asyncio.run(ensure_topics(bootstrap, all_topic_specs(2)))
    return process, bootstrap


def bench_events(events: int, random_ids: bool = False) -> tuple[list, list]:
    """About `events` records of 4 tenants (one outcome per resolution on average). `random_ids`: resolution
    ids spread over the key space as the resolver's uuid5 ids are (else sequential per tenant)."""
    tenants = [f"bench-{i}" for i in range(4)]
    replies, outcomes = [], []
    start = datetime(2026, 10, 1, tzinfo=timezone.utc)
    per_tenant = max(events // (2 * len(tenants)), 1)
    for tenant in tenants:
        r, o = scenario(tenant, start, per_tenant, every_hours=0.5)
        replies += r
        outcomes += o
    if random_ids:
        spread = {r.resolution_id: str(uuid.uuid5(uuid.NAMESPACE_URL, r.resolution_id)) for r in replies}
        replies = [replace(r, resolution_id=spread[r.resolution_id]) for r in replies]
        outcomes = [replace(o, resolution_id=spread[o.resolution_id]) for o in outcomes]
    return replies, outcomes


def run_sink(client, bootstrap: str, database: str, rows: int, desc: str):
    """Run the sink from the start of the topics until it wrote `rows` records; its stats. Its store is
    opened from the DSN, as the service opens it (staging then has a connection of its own), and what is
    alive before it starts is frozen out of the collector's sight, as the service freezes its start-up
    (`run_metering`): here that includes the generated events, which no sink process holds."""
    store = MeteringStore.connect(f"chdb://{client.path}", database)
    gc.freeze()
    sink = MeteringSink(bootstrap, store, lambda _t: Terms(), group_id="bench-" + uuid.uuid4().hex[:8],
                        batch_size=MeteringSettings.model_fields["metering_batch_size"].default,
                        batch_bytes=MeteringSettings.model_fields["metering_batch_bytes"].default)

    async def run() -> None:
        stop = asyncio.Event()
        task = asyncio.create_task(sink.run(stop))
        with tqdm(total=rows, desc=desc, disable=None) as bar:
            while sink.stats.replies + sink.stats.outcomes < rows:
                if task.done():
                    task.result()
                await asyncio.sleep(0.1)
                bar.n = sink.stats.replies + sink.stats.outcomes
                bar.refresh()
        stop.set()
        await task

    asyncio.run(run())
    return sink.stats


def bench_ingest(client, bootstrap: str, events: int, runs: int) -> dict:
    """The direct insert and the sink, `runs` times each, taking turns, each run into tables of its own: the
    median of the runs' ratios (each run's two sides measured seconds apart; one run of either swung
    by half between runs on this shared machine), and the medians of their rates."""
    replies, outcomes = bench_events(events)
    rows = len(replies) + len(outcomes)
    console.print(f"producing {len(replies)} resolutions and {len(outcomes)} outcomes to Kafka")
    asyncio.run(produce(bootstrap, replies, outcomes))

    consume_s = asyncio.run(consume_only(bootstrap, rows))

    # The baseline inserts the rows the sink writes, built beforehand, through the same insert path.
    reply_rows, outcome_rows = [ReplyRow.of(r) for r in replies], [OutcomeRow.of(o) for o in outcomes]
    # The generated events stay alive all run: out of the collector's sight, as run_sink puts them, so that
    # a full collection during either side walks no more than it would in that side's own process.
    gc.freeze()
    direct_rates, sink_rates, batches, lifecycles = [], [], [], []
    for run in range(runs):
        direct = MeteringStore(client, f"bench_direct_{run}")
        direct.migrate()
        began = time.perf_counter()
        for i in tqdm(range(0, len(reply_rows), 2000), desc="direct insert (resolutions)", disable=None):
            direct.insert_reply_rows(reply_rows[i:i + 2000])
        for i in tqdm(range(0, len(outcome_rows), 2000), desc="direct insert (outcomes)", disable=None):
            direct.insert_outcome_rows(outcome_rows[i:i + 2000])
        direct_rates.append(rows / (time.perf_counter() - began))

        stats = run_sink(client, bootstrap, f"bench_sink_{run}", rows, "sink (Kafka -> ClickHouse)")
        sink_rates.append(rows / (stats.last_commit_at - stats.first_records_at))
        batches.append(stats.batches)
        lifecycles.append(stats.settled)
        console.print(f"run {run + 1}: sink {sink_rates[-1]:,.0f} rows/s, direct insert {direct_rates[-1]:,.0f}"
                      f" rows/s: {sink_rates[-1] / direct_rates[-1]:.3f}")
    run_ratios = [s / d for s, d in zip(sink_rates, direct_rates)]
    return {"rows": rows, "runs": runs, "direct_rows_s": statistics.median(direct_rates),
            "sink_rows_s": statistics.median(sink_rates), "consume_rows_s": rows / consume_s,
            "run_ratios": run_ratios, "ratio": statistics.median(run_ratios),
            "lifecycles": lifecycles[0], "batches": statistics.median(batches)}


def bench_ingest_with_history(client, events: int, history: int, log: Path) -> dict:
    """The sink again, into tables that already hold `history` resolutions, all with ids spread as uuid5
    spreads them: a batch's keys then fall in every granule of the tables its settling reads."""
    database = "bench_history"
    MeteringStore(client, database).migrate()
    generate_resolutions(client, database, history, 4, random_ids=True)
    client.command(f"""
        INSERT INTO {database}.resolution_events (resolution_id, tenant_id, ticket_id, decision, created_at,
                                                  latency_ms, category)
        SELECT resolution_id, tenant_id, ticket_id, decision, created_at, latency_ms, category
        FROM {database}.resolution_lifecycles""")
    MeteringStore(client, database).rebuild_counters()
    replies, outcomes = bench_events(events, random_ids=True)
    rows = len(replies) + len(outcomes)
    broker, bootstrap = start_broker(log)
    try:
        asyncio.run(produce(bootstrap, replies, outcomes))
        stats = run_sink(client, bootstrap, database, rows, f"sink over {history:,} stored resolutions")
    finally:
        broker.terminate()
        broker.wait(10)
    return {"rows": rows, "history": history, "sink_rows_s": rows / (stats.last_commit_at - stats.first_records_at)}


async def consume_only(bootstrap: str, rows: int) -> float:
    """Seconds to read and decode `rows` records from Kafka, writing nothing: the broker's share."""
    consumer = make_consumer(bootstrap, RESOLUTIONS, RESOLUTION_OUTCOMES,
                             group_id="bench-" + uuid.uuid4().hex[:8], max_poll_records=2000)
    await consumer.start()
    seen, began = 0, None
    try:
        while seen < rows:
            batches = await consumer.getmany(timeout_ms=500, max_records=2000)
            for tp, records in batches.items():
                if began is None:
                    began = time.perf_counter()
                for record in records:
                    (reply_row if tp.topic == RESOLUTIONS else outcome_row)(record.value)
                seen += len(records)
        return time.perf_counter() - began
    finally:
        await consumer.stop()


def generate_resolutions(client, database: str, total: int, tenants: int, random_ids: bool = False) -> None:
    """`total` settled resolutions over 2026 for `tenants` tenants, plus a CSAT for about a quarter.
    `random_ids`: resolution ids spread over the key space (as uuid5 spreads them)."""
    resolution_id = ("lower(hex(MD5(toString(number))))" if random_ids else "concat('r', toString(number))")
    per_tenant_ms = int(365 * 24 * 3600 * 1000 / max(total // tenants, 1))
    chunk = 2_000_000
    for offset in tqdm(range(0, total, chunk), desc=f"generating {total:,} resolutions", disable=None):
        size = min(chunk, total - offset)
        numbers = f"(SELECT number + {offset} AS number FROM numbers({size}))"
        client.command(f"""
            INSERT INTO {database}.resolution_lifecycles
            SELECT tenant_id, resolution_id, ticket_id, state, created_at, created_at + toIntervalHour(1),
                   if(state IN ('confirmed', 'assumed', 'reopened'), created_at + toIntervalHour(1), NULL),
                   if(state = 'reopened', created_at + toIntervalDay(2), NULL),
                   '', csat, category, latency, if(state = 'escalated', 'escalate', 'resolve'), 1, NULL
            FROM (SELECT concat('bench-', toString(number % {tenants})) AS tenant_id,
                         {resolution_id} AS resolution_id,
                         concat('t', toString(number)) AS ticket_id,
                         ['confirmed', 'confirmed', 'confirmed', 'assumed', 'assumed', 'escalated',
                          'escalated', 'reopened', 'pending'][1 + cityHash64(number) % 9] AS state,
                         toDateTime64('2026-01-01 00:00:00', 3, 'UTC')
                           + toIntervalMillisecond(intDiv(number, {tenants}) * {per_tenant_ms}) AS created_at,
                         if(cityHash64(number, 1) % 4 = 0, 1 + cityHash64(number, 2) % 5, 0) AS csat,
                         ['billing', 'travel', 'account', 'orders'][1 + number % 4] AS category,
                         50 + cityHash64(number, 3) % 900 AS latency
                  FROM {numbers})""")
        client.command(f"""
            INSERT INTO {database}.outcome_events
                (event_id, resolution_id, tenant_id, ticket_id, kind, csat_score, occurred_at, category)
            SELECT concat('e', toString(number)), {resolution_id},
                   concat('bench-', toString(number % {tenants})), concat('t', toString(number)), 'csat',
                   1 + cityHash64(number, 2) % 5,
                   toDateTime64('2026-01-01 00:00:00', 3, 'UTC')
                     + toIntervalMillisecond(intDiv(number, {tenants}) * {per_tenant_ms}) + toIntervalHour(3),
                   ['billing', 'travel', 'account', 'orders'][1 + number % 4]
            FROM {numbers} WHERE cityHash64(number, 1) % 4 = 0""")


def timed(call, repeat: int) -> float:
    call()  # warm
    samples = []
    for _ in range(repeat):
        began = time.perf_counter()
        call()
        samples.append(time.perf_counter() - began)
    return statistics.median(samples)


def bench_queries(client, total: int, tenants: int, repeat: int) -> dict:
    store = MeteringStore(client, "bench_queries")
    store.migrate()
    generate_resolutions(client, "bench_queries", total, tenants)
    began = time.perf_counter()
    store.rebuild_counters()  # the rows were generated around the sink: count them once
    rebuild_s = time.perf_counter() - began
    tenant = "bench-0"
    scan = timed(lambda: client.query(
        "SELECT count(), sum(latency_ms) FROM bench_queries.resolution_lifecycles FINAL"
        " WHERE tenant_id = %(t)s", parameters={"t": tenant}), repeat)
    month, start = Month(2026, 6), datetime(2026, 6, 1, tzinfo=timezone.utc)
    invoice = timed(lambda: store.invoice(tenant, month, Terms()), repeat)
    invoice_rows = timed(lambda: store.invoice_from_rows(tenant, month, Terms()), repeat)
    usage = timed(lambda: store.usage(tenant, start, start + timedelta(days=30), "day"), repeat)
    usage_rows = timed(lambda: store.usage_from_rows(tenant, start, start + timedelta(days=30), "day"), repeat)
    check = store.invoice(tenant, month, Terms())
    if check != store.invoice_from_rows(tenant, month, Terms()):
        raise SystemExit("the invoice from the counters differs from the one counted from the rows")
    return {"tenant_rows": total // tenants, "scan_s": scan, "invoice_s": invoice, "usage_s": usage,
            "invoice_rows_s": invoice_rows, "usage_rows_s": usage_rows, "rebuild_s": rebuild_s,
            "invoice": check.to_json()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=200_000,
                        help="Kafka records for the ingest runs: enough for batches of a backlog's size.")
    parser.add_argument("--resolutions", type=int, default=10_000_000, help="resolutions for the query run.")
    parser.add_argument("--history", type=int, default=1_000_000,
                        help="resolutions already stored for the sink's second run (0: no second run).")
    parser.add_argument("--runs", type=int, default=3,
                        help="runs of the direct insert and of the sink (their medians are compared).")
    parser.add_argument("--tenants", type=int, default=10)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()

    import clickhouse_connect

    with tempfile.TemporaryDirectory(prefix="clonedesk-bench-") as tmp:
        client = clickhouse_connect.get_client(dsn=f"chdb://{tmp}/clickhouse")
        broker, bootstrap = start_broker(Path(tmp) / "tansu.log")
        try:
            ingest = bench_ingest(client, bootstrap, args.events, args.runs)
        finally:
            broker.terminate()
            broker.wait(10)
        aged = bench_ingest_with_history(client, args.events, args.history, Path(tmp) / "tansu-history.log") \
            if args.history else None
        queries = bench_queries(client, args.resolutions, args.tenants, args.repeat)

    table = Table(title="metering benchmark")
    for column in ("measure", "value", "baseline", "ratio"):
        table.add_column(column, justify="right" if column != "measure" else "left")
    table.add_row(f"ingest rows/s, Kafka -> sink -> ClickHouse ({ingest['rows']:,} rows; medians of"
                  f" {ingest['runs']} runs, whose ratios were {' / '.join(f'{r:.2f}' for r in ingest['run_ratios'])})",
                  f"{ingest['sink_rows_s']:,.0f}", f"{ingest['direct_rows_s']:,.0f} (direct client.insert)",
                  f"{ingest['ratio']:.3f}")
    table.add_row("  the same, against reading + decoding from Kafka alone", f"{ingest['sink_rows_s']:,.0f}",
                  f"{ingest['consume_rows_s']:,.0f} (consume only)",
                  f"{ingest['sink_rows_s'] / ingest['consume_rows_s']:.3f}")
    if aged:
        table.add_row(f"  the same with {aged['history']:,} resolutions already stored (ids spread as uuid5's)",
                      f"{aged['sink_rows_s']:,.0f}", f"{ingest['direct_rows_s']:,.0f} (direct client.insert)",
                      f"{aged['sink_rows_s'] / ingest['direct_rows_s']:.3f}")
    base = f"{queries['scan_s'] * 1000:.0f} ms (FINAL scan of the tenant)"
    scale = f"{args.resolutions:,} resolutions, {queries['tenant_rows']:,} of the tenant"
    table.add_row(f"invoice latency, from the counters ({scale})",
                  f"{queries['invoice_s'] * 1000:.1f} ms", base,
                  f"{queries['invoice_s'] / queries['scan_s']:.3f}")
    table.add_row("  the same invoice counted from the rows", f"{queries['invoice_rows_s'] * 1000:.0f} ms", base,
                  f"{queries['invoice_rows_s'] / queries['scan_s']:.2f}")
    table.add_row("usage latency (30 days by day), from the counters", f"{queries['usage_s'] * 1000:.1f} ms", base,
                  f"{queries['usage_s'] / queries['scan_s']:.3f}")
    table.add_row("  the same usage counted from the rows", f"{queries['usage_rows_s'] * 1000:.0f} ms", base,
                  f"{queries['usage_rows_s'] / queries['scan_s']:.2f}")
    console.print(table)
    inv = queries["invoice"]
    console.print(f"sample invoice {inv['tenant_id']} {inv['month']}: billable {inv['billable_units']}, "
                  f"credits {inv['credits_usd']}, total {inv['total_usd']} USD")
    console.print(f"(the sink wrote {ingest['rows']:,} records in {ingest['batches']:,.0f} batches and settled"
                  f" {ingest['lifecycles']:,} resolutions into a state while ingesting; counting the"
                  f" generated rows into the counters took {queries['rebuild_s']:.1f} s)")


if __name__ == "__main__":
    main()
