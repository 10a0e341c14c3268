"""The embedded stack's broker hold: a marker file under the data dir, present while the supervisor
restarts and prepares the broker. Services that must keep answering meanwhile (the webhook gateway)
read it and write nothing: they answer 503 with Retry-After, and write again once it is gone.

A file, not a signal: it is there for a process that (re)starts during the hold too, and it shows in
the data dir what the stack is doing.
"""

from __future__ import annotations

import os
from pathlib import Path

MARKER = ("run", "broker-hold")


def hold_marker(data_dir: Path) -> Path:
    return Path(data_dir).joinpath(*MARKER)


def broker_held(marker: Path | None) -> bool:
    # os.access answers False without raising: Path.exists builds and catches an exception per miss, and the
    # gateway asks twice per webhook.
    return marker is not None and os.access(marker, os.F_OK)


def hold(marker: Path, reason: str) -> None:
    marker.parent.mkdir(parents=True, exist_ok=True)
    marker.write_text(reason + "\n")


def release(marker: Path) -> None:
    marker.unlink(missing_ok=True)
