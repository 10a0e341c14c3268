"""Rates from counts by state (pure). A rate is over the resolutions whose outcome is known: pending
ones have not had their chance yet, so they count in neither side."""

from __future__ import annotations

from typing import Mapping

from clonedesk.metering.domain.lifecycle import State


def settled(counts: Mapping[str, int]) -> int:
    return sum(n for state, n in counts.items() if state != State.PENDING.value)


def resolution_rate(counts: Mapping[str, int]) -> float | None:
    """Confirmed and assumed, of the settled ones (reopened ones count against)."""
    known = settled(counts)
    resolved = counts.get(State.CONFIRMED.value, 0) + counts.get(State.ASSUMED.value, 0)
    return round(resolved / known, 4) if known else None


def escalation_rate(counts: Mapping[str, int]) -> float | None:
    known = settled(counts)
    return round(counts.get(State.ESCALATED.value, 0) / known, 4) if known else None
