"""Which adapter versions a resolver should hold (pure): publication ordering and LRU eviction."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class ResidentAdapter:
    name: str  # tenant@vN
    tenant_id: str
    version: int
    in_flight: int = 0
    last_used: float = 0.0


def publication_applies(
    known_version: int | None, published_version: int, registry_current: int | None
) -> bool:
    """A publication replaces the tenant's version when it is newer than the one we serve, or when the
    registry's `current` now points at it (a rollback). Replayed old publications change nothing."""
    if known_version is None:
        return True
    if published_version == known_version:
        return False
    return published_version > known_version or registry_current == published_version


def eviction_candidates(
    resident: list[ResidentAdapter], current: dict[str, int], capacity: int, keep: str | None = None
) -> list[str]:
    """Names to unload so that at most `capacity` stay resident: idle superseded versions first, then
    idle current versions, least recently used first. Adapters with requests in flight are never chosen
    (so `keep`, the one about to be used, is not either); if not enough are idle, fewer are returned."""
    excess = len(resident) - capacity
    if excess <= 0:
        return []
    idle = [a for a in resident if a.in_flight == 0 and a.name != keep]
    idle.sort(key=lambda a: (current.get(a.tenant_id) == a.version, a.last_used))
    return [a.name for a in idle[:excess]]
