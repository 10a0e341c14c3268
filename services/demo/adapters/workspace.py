"""The demo's data dir: the run marker, and the rule that makes a second run start clean.

A run writes `<data>/demo.json` first ({status: running}) and marks it complete at the end. A later run
that finds the marker, complete or half-done, stops that run's stack and wipes the data dir before it
starts: a clean slate instead of a resume, so no half-sent history, half-trained adapter or stale
trainer threshold can leak into the new run. The base models imported or built into
<data>/base-models are kept (the same every time, and the slowest thing to remake). A data dir with
tenants but no marker belongs to someone else's installation: the demo refuses to touch it. So does a run configured with an external Kafka or
ClickHouse, which a wipe could not reach.
"""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path

from clonedesk.core.settings import Settings
from clonedesk.core.tenants import TenantStore
from clonedesk.demo.adapters.helpdesk import DemoStepFailed

MARKER = "demo.json"
KEPT = ("base-models",)  # survives a wipe (clonedesk.core.base_model.BASE_MODELS_DIR)


def read_marker(data_dir: Path) -> dict | None:
    try:
        return json.loads((data_dir / MARKER).read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return None


def write_marker(data_dir: Path, **fields) -> None:
    data_dir.mkdir(parents=True, exist_ok=True)
    marker = {**(read_marker(data_dir) or {}), **fields, "updated_at": time.time()}
    tmp = data_dir / f".{MARKER}.tmp"
    tmp.write_text(json.dumps(marker, indent=2))
    tmp.replace(data_dir / MARKER)


def prepare(settings: Settings, stop_stack) -> str:
    """Make the data dir ready for a fresh run; return what was found there, in words.

    `stop_stack(settings)` stops a stack running on this data dir (True if one ran)."""
    external = [name for name, value in (("CLONEDESK_KAFKA_BOOTSTRAP", settings.kafka_bootstrap),
                                         ("CLONEDESK_CLICKHOUSE_DSN", settings.clickhouse_dsn)) if value]
    if external:
        # A rerun wipes the data dir, not an external Kafka or ClickHouse: the first run's tickets and
        # resolutions would stay there and be counted again. The demo is the embedded stack's.
        raise DemoStepFailed(f"the demo runs on the embedded stack, which a second run wipes: unset"
                             f" {' and '.join(external)} (point them at real services for `clonedesk up`)")
    data_dir = settings.resolved_data_dir
    marker = read_marker(data_dir)
    if marker is None and TenantStore(data_dir).list():
        raise DemoStepFailed(f"{data_dir} holds tenants that the demo did not create: point"
                             " CLONEDESK_DATA_DIR at another folder to run the demo")
    stopped = stop_stack(settings)
    if marker is None:
        empty = not data_dir.exists() or not any(data_dir.iterdir())
        found = "an empty data dir" if empty else "a data dir without tenants"
        write_marker(data_dir, status="running", started_at=time.time())
        return found + (" (its running stack was stopped)" if stopped else "")
    for entry in data_dir.iterdir():
        if entry.name in KEPT:
            continue
        if entry.is_dir() and not entry.is_symlink():
            shutil.rmtree(entry)
        else:
            entry.unlink()
    write_marker(data_dir, status="running", started_at=time.time())
    previous = "a complete" if marker.get("status") == "complete" else "an unfinished"
    return (f"{previous} earlier demo run: {'its stack was stopped and ' if stopped else ''}"
            "its data wiped (the base model kept), starting clean")
