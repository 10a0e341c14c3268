"""The dashboard's figures (pure): rates from counts by state (a rate is over the resolutions whose
outcome is known: pending ones have not had their chance yet, so they count in neither side), escalation
reasons counted by kind, the month's spend forecast, and the charts' granularity."""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal
from typing import Mapping

from clonedesk.core.domain.escalations import escalation_kind
from clonedesk.metering.domain.lifecycle import State
from clonedesk.metering.domain.terms import CENT


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


def escalations_by_kind(rows) -> list[tuple[str, int]]:
    """(reason, count) rows → (kind, count), the most frequent first."""
    kinds: dict[str, int] = {}
    for reason, n in rows:
        kind = escalation_kind(reason)
        kinds[kind] = kinds.get(kind, 0) + int(n)
    return sorted(kinds.items(), key=lambda item: (-item[1], item[0]))


def month_forecast(spent: Decimal, month_start: datetime, month_end: datetime, now: datetime) -> Decimal | None:
    """The month's total if it goes on as it went so far: the spend scaled by the share of the month
    elapsed. The spend itself once the month is over; None before it began or in its first hour (too
    little to go on)."""
    if now >= month_end:
        return spent
    elapsed = (now - month_start).total_seconds()
    if elapsed < 3600:
        return None
    return (spent * Decimal((month_end - month_start).total_seconds()) / Decimal(elapsed)).quantize(CENT)


HOURLY_BELOW = timedelta(days=3)


def chart_granularity(first: datetime | None, last: datetime | None) -> str:
    """Hourly points when the activity spans under three days (a demo, a new tenant), else daily."""
    if first is None or last is None or last - first >= HOURLY_BELOW:
        return "day"
    return "hour"
