"""The running stack's state file (`<data>/run/stack.json`) and the status derived from it."""

from __future__ import annotations

import json
import os
import socket
from dataclasses import dataclass
from pathlib import Path

from clonedesk.core.files import write_atomically
from clonedesk.core.settings import Settings


def state_file(settings: Settings) -> Path:
    return settings.path("run", "stack.json")


def read_state(settings: Settings) -> dict | None:
    try:
        return json.loads(state_file(settings).read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return None


def write_state(settings: Settings, state: dict) -> None:
    write_atomically(state_file(settings), json.dumps(state, indent=2))


def pid_alive(pid: int | None) -> bool:
    if not pid:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie still answers kill(0); read its state so an exited child is reported down.
    try:
        with open(f"/proc/{pid}/stat") as handle:
            return handle.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return True


def port_accepts(port: int, host: str = "127.0.0.1", timeout: float = 0.5) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


@dataclass
class ComponentStatus:
    name: str
    port: int | None
    pid: int | None
    up: bool

    def line(self) -> str:
        port = str(self.port) if self.port else "-"
        pid = str(self.pid) if self.pid else "-"
        return f"{self.name:<13} port {port:<6} pid {pid:<8} {'up' if self.up else 'down'}"


def stack_status(settings: Settings, known: list[tuple[str, int | None]]) -> list[ComponentStatus]:
    """One status per component: those the running stack recorded, then any known one it lacks."""
    state = read_state(settings) or {}
    supervisor_alive = pid_alive(state.get("supervisor_pid"))
    statuses: list[ComponentStatus] = []
    seen = set()
    for entry in state.get("components", []):
        pid = entry.get("pid") if supervisor_alive else None
        up = pid_alive(pid) and (entry.get("port") is None or port_accepts(entry["port"]))
        statuses.append(ComponentStatus(entry["name"], entry.get("port"), pid if up else pid, up))
        seen.add(entry["name"])
    for name, port in known:
        if name not in seen:
            statuses.append(ComponentStatus(name, port, None, False))
    return statuses
