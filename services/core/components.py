"""What the supervisor knows of a child process, and how services declare theirs.

A service plugs into `clonedesk up` by shipping `clonedesk/<service>/stack.py` with a
`components(settings) -> list[Component]` function; the supervisor finds it, nothing else changes.
"""

from __future__ import annotations

import importlib
import importlib.util
import pkgutil
import sys
from dataclasses import dataclass, field
from typing import Callable

from clonedesk.core.settings import Settings


@dataclass(frozen=True)
class Component:
    name: str
    argv: tuple[str, ...]
    port: int | None = None
    # The setting that moves the port, named in the error when the port is taken.
    port_env: str | None = None
    env: dict[str, str] = field(default_factory=dict)
    # Start order: infrastructure first (store 0, broker 10), then services (100+).
    order: int = 100
    # Seconds the component gets to answer on its port before the stack calls it failed.
    start_timeout: float = 60.0
    # Extra readiness check beyond the port accepting connections (e.g. the broker answering Kafka).
    ready: Callable[[], bool] | None = field(default=None, compare=False)
    # Keeps running while the broker restarts, answering 503 (core.broker_hold) instead of being stopped:
    # a helpdesk retries a 503 with Retry-After, a refused connection it may count as a failed delivery.
    serves_through_broker_restart: bool = False


def clonedesk_command(*args: str, python: str | None = None) -> tuple[str, ...]:
    """argv that runs `clonedesk <args>` with this (or another environment's) interpreter."""
    return (python or sys.executable, "-m", "clonedesk", *args)


def discover_components(settings: Settings) -> list[Component]:
    """Every service's components, found through `clonedesk.<package>.stack` modules, in start order."""
    import clonedesk

    found: list[Component] = []
    for module_info in pkgutil.iter_modules(clonedesk.__path__):
        if not module_info.ispkg:
            continue
        name = f"clonedesk.{module_info.name}.stack"
        if importlib.util.find_spec(name) is None:
            continue
        found.extend(importlib.import_module(name).components(settings))
    return sorted(found, key=lambda c: (c.order, c.name))
