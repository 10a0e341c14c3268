"""Which version a rollback makes current (pure): one that was promoted once, never a rejected one.

Without an explicit target, the promoted version just below the current one. Naming the current version
itself is allowed: it re-announces it (for a rollback whose announcement never reached the broker).
"""

from __future__ import annotations

from typing import Mapping


class RollbackRefused(ValueError):
    """No such version, or one that may not serve."""


def rollback_target(statuses: Mapping[int, str], current: int | None, to: int | None = None) -> int:
    """`statuses` maps each version to its meta status ("promoted" / "rejected")."""
    promoted = sorted(v for v, status in statuses.items() if status == "promoted")
    if current is None:
        raise RollbackRefused("the tenant has no current adapter to roll back")
    if to is None:
        earlier = [v for v in promoted if v < current]
        if not earlier:
            raise RollbackRefused(f"no promoted version before v{current} (versions: {_listing(statuses)})")
        return earlier[-1]
    if to not in statuses:
        raise RollbackRefused(f"no version v{to} (versions: {_listing(statuses)})")
    if to not in promoted:
        raise RollbackRefused(f"v{to} was {statuses[to]}, never promoted: it may not serve")
    return to


def _listing(statuses: Mapping[int, str]) -> str:
    return ", ".join(f"v{v} {s}" for v, s in sorted(statuses.items())) or "none"
