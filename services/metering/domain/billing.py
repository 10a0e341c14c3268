"""Invoices: what a tenant owes for one calendar month (UTC), in Decimal.

A month's invoice holds what happened in that month:
- its charges are the resolutions that became billable in the month, except those reopened in the
  same month (a charge reversed before the invoice closes never shows);
- the first `free_units` of those charges, in event-time order (then resolution id), are free;
- a resolution charged (not free) in an earlier month and reopened in this one is a credit here; the
  earlier month's invoice keeps the charge;
- a dispute accepted into this month credits what its charge cost (domain/disputes.py); a resolution
  whose dispute was accepted is settled for good, so a reopen of it afterwards reverses nothing.

`invoice_from_figures` is the arithmetic; `compute_invoice` also derives the figures from plain
lifecycles (the store derives the same figures in SQL, and a test holds the two equal).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from datetime import datetime, timezone
from decimal import Decimal
from typing import Collection, Iterable, Mapping, Sequence

from clonedesk.metering.domain.lifecycle import STATES, Lifecycle, State
from clonedesk.metering.domain.terms import CENT, Terms

_MONTH = re.compile(r"^(\d{4})-(0[1-9]|1[0-2])$")
# The years an event time can have (see adapters.codec); a month outside them holds nothing.
FIRST_YEAR, LAST_YEAR = 2000, 2199


@dataclass(frozen=True, order=True)
class Month:
    year: int
    month: int

    @classmethod
    def parse(cls, text: str) -> "Month":
        match = _MONTH.fullmatch(text or "")
        if not match:
            raise ValueError(f"invalid month {text!r}: use YYYY-MM")
        year = int(match.group(1))
        if not FIRST_YEAR <= year <= LAST_YEAR:
            raise ValueError(f"invalid month {text!r}: the year must be within {FIRST_YEAR}..{LAST_YEAR}")
        return cls(year, int(match.group(2)))

    @classmethod
    def of(cls, moment: datetime) -> "Month":
        moment = moment.astimezone(timezone.utc) if moment.tzinfo else moment
        return cls(moment.year, moment.month)

    @property
    def start(self) -> datetime:
        return datetime(self.year, self.month, 1, tzinfo=timezone.utc)

    @property
    def end(self) -> datetime:
        return self.next().start

    def next(self) -> "Month":
        return Month(self.year + self.month // 12, self.month % 12 + 1)

    def contains(self, moment: datetime | None) -> bool:
        return moment is not None and self.start <= moment < self.end

    def __str__(self) -> str:
        return f"{self.year:04d}-{self.month:02d}"


def money(amount: Decimal) -> str:
    return str(amount.quantize(CENT))


def usd(amount: Decimal | str) -> str:
    """For people: "$4.95", "-$0.99"."""
    amount = Decimal(amount)
    text = money(amount if amount != 0 else abs(amount))  # no "-$0.00"
    return f"-${text[1:]}" if text.startswith("-") else f"${text}"


@dataclass(frozen=True)
class Invoice:
    tenant_id: str
    month: Month
    resolutions: Mapping[State, int]  # the AI replies of the month, by their state now
    billable_units: int
    free_units: int
    charged_units: int
    unit_price: Decimal
    credit_units: int
    credits: Decimal
    total: Decimal
    free_allowance: int
    # Of credit_units / credits: those of disputes accepted into this month.
    dispute_credit_units: int = 0
    dispute_credits: Decimal = Decimal("0")

    @property
    def free_units_left(self) -> int:
        return max(self.free_allowance - self.free_units, 0)

    def to_json(self) -> dict:
        """The public shape (ARCHITECTURE.md): money as decimal strings."""
        return {
            "tenant_id": self.tenant_id,
            "month": str(self.month),
            "resolutions": {state.value: int(self.resolutions.get(state, 0)) for state in STATES},
            "billable_units": self.billable_units,
            "free_units": self.free_units,
            "charged_units": self.charged_units,
            "unit_price_usd": money(self.unit_price),
            "credit_units": self.credit_units,
            "credits_usd": money(self.credits),
            "total_usd": money(self.total),
            "dispute_credit_units": self.dispute_credit_units,
            "dispute_credits_usd": money(self.dispute_credits),
        }


def invoice_from_json(body: dict, free_allowance: int | None = None) -> Invoice:
    """An invoice back from its public shape (a frozen statement's), exactly: money stays Decimal."""
    return Invoice(
        tenant_id=body["tenant_id"], month=Month.parse(body["month"]),
        resolutions={state: int(body["resolutions"].get(state.value, 0)) for state in STATES},
        billable_units=int(body["billable_units"]), free_units=int(body["free_units"]),
        charged_units=int(body["charged_units"]), unit_price=Decimal(body["unit_price_usd"]),
        credit_units=int(body["credit_units"]), credits=Decimal(body["credits_usd"]),
        total=Decimal(body["total_usd"]),
        free_allowance=int(body.get("free_allowance", free_allowance if free_allowance is not None
                                    else body["free_units"])),
        dispute_credit_units=int(body.get("dispute_credit_units", 0)),
        dispute_credits=Decimal(body.get("dispute_credits_usd", "0")))


def invoice_from_figures(tenant_id: str, month: Month, terms: Terms, resolutions: Mapping[State, int],
                         billable_units: int, paid_reversals: int,
                         dispute_credits: Sequence[Decimal] = ()) -> Invoice:
    """The invoice from the month's counted figures: billable charges, reopened paid charges, and what
    the disputes accepted into the month credit (one amount each; a free charge's is zero)."""
    free = min(billable_units, terms.free_units)
    charged = billable_units - free
    paid_disputes = [Decimal(c) for c in dispute_credits if Decimal(c) > 0]
    disputed = sum(paid_disputes, Decimal("0"))
    credits = terms.unit_price * paid_reversals + disputed
    return Invoice(
        tenant_id=tenant_id, month=month, resolutions={s: int(resolutions.get(s, 0)) for s in STATES},
        billable_units=billable_units, free_units=free, charged_units=charged, unit_price=terms.unit_price,
        credit_units=paid_reversals + len(paid_disputes), credits=credits,
        total=terms.unit_price * charged - credits, free_allowance=terms.free_units,
        dispute_credit_units=len(paid_disputes), dispute_credits=disputed,
    )


def charges_of(month: Month, lifecycles: Iterable[Lifecycle]) -> list[Lifecycle]:
    """The month's charges in event-time order: billed in it and not reopened within it."""
    charges = [life for life in lifecycles
               if month.contains(life.billed_at) and not month.contains(life.reopened_at)]
    return sorted(charges, key=lambda life: (life.billed_at, life.resolution_id))


def paid_charges(month: Month, lifecycles: Iterable[Lifecycle], terms: Terms) -> list[Lifecycle]:
    """The month's charges past the free allowance: the ones the tenant actually paid for."""
    return charges_of(month, lifecycles)[terms.free_units:]


def settled_by_disputes(lifecycles: Iterable[Lifecycle], accepted: Collection[str]) -> list[Lifecycle]:
    """The lifecycles as billing sees them: a resolution whose dispute was accepted is reopened for no one."""
    return [replace(life, reopened_at=None) if life.resolution_id in accepted else life for life in lifecycles]


def compute_invoice(tenant_id: str, month: Month, lifecycles: Iterable[Lifecycle], terms: Terms,
                    disputes: Sequence = ()) -> Invoice:
    """`disputes`: the tenant's (domain.disputes.Dispute); the accepted ones settle their resolutions and
    credit the month they were accepted into."""
    accepted = [d for d in disputes if d.status == "accepted" and d.tenant_id == tenant_id]
    lifecycles = settled_by_disputes([life for life in lifecycles if life.tenant_id == tenant_id],
                                     {d.resolution_id for d in accepted})
    counts = {state: 0 for state in STATES}
    for life in lifecycles:
        if month.contains(life.created_at):
            counts[life.state] += 1
    reversed_here = [life for life in lifecycles
                     if month.contains(life.reopened_at) and life.billed_at is not None
                     and life.billed_at < month.start]
    paid_ids: set[str] = set()
    for earlier in sorted({Month.of(life.billed_at) for life in reversed_here}):
        paid_ids.update(life.resolution_id for life in paid_charges(earlier, lifecycles, terms))
    paid_reversals = sum(1 for life in reversed_here if life.resolution_id in paid_ids)
    billable = len(charges_of(month, lifecycles))
    return invoice_from_figures(tenant_id, month, terms, counts, billable, paid_reversals,
                                [d.credit for d in accepted if d.credit_month == str(month)])
