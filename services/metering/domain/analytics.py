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


def action_figures(rows) -> dict:
    """Back-office calls from (status, count, average latency) rows: how many, how many ok, the failure
    rate (every outcome but ok: the call failed, timed out, or was refused before it was sent) and the
    count by outcome."""
    by_status: dict[str, int] = {}
    latency_sum = 0.0
    for status, n, avg_latency in rows:
        by_status[status] = by_status.get(status, 0) + n
        latency_sum += avg_latency * n
    total = sum(by_status.values())
    ok = by_status.get("ok", 0)
    return {"total": total, "ok": ok, "failed": total - ok,
            "failure_rate": round((total - ok) / total, 4) if total else None,
            "avg_latency_ms": round(latency_sum / total, 1) if total else None,
            "by_status": dict(sorted(by_status.items()))}
