"""`clonedesk demo`: the product end to end on the embedded stack.

So far it brings the stack up and checks the broker and its topics; the later steps (history import,
training, live resolution, billing) join as their services land.
"""

from __future__ import annotations

import asyncio

from aiokafka.admin import AIOKafkaAdminClient
from rich.console import Console
from rich.table import Table

from clonedesk.core.kafka import wait_for_broker
from clonedesk.core.settings import Settings
from clonedesk.core.topics import all_topic_specs

console = Console()


async def _topic_partitions(bootstrap: str) -> dict[str, int]:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        described = await admin.describe_topics()
        return {t["topic"]: len(t["partitions"]) for t in described}
    finally:
        await admin.close()


def run_demo(settings: Settings, quick: bool = False, ephemeral: bool = False) -> None:
    from clonedesk.stack.cli import _print_status, start_detached

    with console.status("[1/2] starting the embedded stack (broker, S3 store, services)…"):
        state = start_detached(settings, ephemeral=ephemeral)
    console.print(f"[green]✓[/] [1/2] stack up on {state['bootstrap']} (data dir {settings.resolved_data_dir})")
    with console.status("[2/2] checking the broker and its topics…"):
        asyncio.run(wait_for_broker(settings.bootstrap, timeout=30))
        partitions = asyncio.run(_topic_partitions(settings.bootstrap))
    table = Table("topic", "partitions", title="topics")
    for spec in all_topic_specs(settings.topic_partitions):
        table.add_row(spec.name, str(partitions.get(spec.name, "missing")))
    console.print(table)
    missing = [s.name for s in all_topic_specs(settings.topic_partitions) if s.name not in partitions]
    if missing:
        raise SystemExit(f"topics missing on the broker: {', '.join(missing)}")
    console.print("[green]✓[/] [2/2] broker healthy, every topic in place")
    _print_status(settings)
    console.print("The stack keeps running: `clonedesk status` shows it, `clonedesk down` stops it.")
