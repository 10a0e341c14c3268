"""Disputes: a tenant contests a charge, an operator accepts or rejects it (pure; no I/O).

The rules:
- only a billed resolution whose charge still stands (confirmed or assumed, not reopened) can be
  disputed; opening a dispute twice gives back the first one (the reason of the first is kept);
- an operator decides an open dispute once: accepting or rejecting it again is the same answer, the other
  decision is a conflict; a resolution reopened since the dispute was opened cannot be accepted (the
  reopen already reversed its charge);
- an accepted dispute credits what the charge cost — the unit price it was billed at, nothing when it
  was one of its month's free units — in the month it is accepted, or, if that month's statement is
  already closed, the first open month after it: a closed statement never changes;
- once accepted, the resolution's charge is settled for good: a later reopen credits nothing again.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime
from decimal import Decimal
from typing import Collection

from clonedesk.metering.domain.billing import Month
from clonedesk.metering.domain.lifecycle import Lifecycle, State

OPEN, ACCEPTED, REJECTED = "open", "accepted", "rejected"
STATUSES = (OPEN, ACCEPTED, REJECTED)
MAX_REASON_CHARS = 2000
MAX_NOTE_CHARS = 2000


class DisputeRefused(Exception):
    """A dispute that cannot be opened or decided; `status` is the HTTP status that says why."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class Dispute:
    tenant_id: str
    resolution_id: str
    reason: str
    status: str
    opened_at: datetime
    decided_at: datetime | None = None
    note: str = ""
    credit_month: str = ""  # the month an accepted dispute's credit lands in
    credit: Decimal = Decimal("0")

    def to_json(self) -> dict:
        return {"tenant_id": self.tenant_id, "resolution_id": self.resolution_id, "reason": self.reason,
                "status": self.status, "opened_at": self.opened_at, "decided_at": self.decided_at,
                "note": self.note or None, "credit_month": self.credit_month or None,
                "credit_usd": str(self.credit.quantize(Decimal("0.01"))) if self.status == ACCEPTED else None}


def clean_text(text: str, what: str, limit: int, *, required: bool) -> str:
    text = (text or "").strip()
    if required and not text:
        raise DisputeRefused(422, f"the {what} must not be empty")
    if len(text) > limit:
        raise DisputeRefused(422, f"the {what} is longer than {limit} characters")
    if any(ord(c) < 32 and c not in "\n\t" for c in text):
        raise DisputeRefused(422, f"the {what} holds control characters")
    return text


def check_disputable(life: Lifecycle | None) -> Lifecycle:
    if life is None:
        raise DisputeRefused(404, "unknown resolution")
    if life.state is State.REOPENED:
        raise DisputeRefused(409, "its charge was already reversed: the ticket was reopened")
    if life.billed_at is None:
        raise DisputeRefused(409, f"not billed ({life.state.value}): there is no charge to dispute")
    return life


def open_dispute(existing: Dispute | None, life: Lifecycle | None, reason: str, now: datetime) -> tuple[Dispute, bool]:
    """(the dispute, whether it is new). The same resolution disputed again is the first dispute."""
    if existing is not None:
        return existing, False
    check_disputable(life)
    return Dispute(life.tenant_id, life.resolution_id, clean_text(reason, "reason", MAX_REASON_CHARS, required=True),
                   OPEN, now), True


def credit_for(charge_rank: int | None, free_units: int, unit_price: Decimal) -> Decimal:
    """What a charge cost: its unit price, or nothing when it was among its month's free units (or never
    showed on a statement)."""
    if charge_rank is None or charge_rank <= free_units:
        return Decimal("0")
    return unit_price


def credit_month(accepted_at: datetime, closed_months: Collection[str]) -> Month:
    """The month of the acceptance, or the first after it whose statement is still open."""
    month = Month.of(accepted_at)
    while str(month) in closed_months:
        month = month.next()
    return month


def decide(dispute: Dispute | None, accept: bool, note: str, now: datetime, *, life: Lifecycle | None,
           credit: Decimal, closed_months: Collection[str]) -> tuple[Dispute, bool]:
    """(the decided dispute, whether this call decided it). `credit` is what the charge cost (credit_for)."""
    if dispute is None:
        raise DisputeRefused(404, "no dispute for this resolution")
    wanted = ACCEPTED if accept else REJECTED
    if dispute.status == wanted:
        return dispute, False
    if dispute.status != OPEN:
        raise DisputeRefused(409, f"the dispute was already {dispute.status}")
    note = clean_text(note, "note", MAX_NOTE_CHARS, required=False)
    if not accept:
        return replace(dispute, status=REJECTED, decided_at=now, note=note), True
    if life is not None and life.state is State.REOPENED:
        raise DisputeRefused(409, "reopened since it was disputed: the reopen already reversed its charge")
    return replace(dispute, status=ACCEPTED, decided_at=now, note=note,
                   credit_month=str(credit_month(now, closed_months)), credit=credit), True
