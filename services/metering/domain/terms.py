"""A tenant's billing terms, read from its plan (core.domain.tenants.Plan) into exact types."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal

from clonedesk.core.domain.tenants import Plan

CENT = Decimal("0.01")


@dataclass(frozen=True)
class Terms:
    unit_price: Decimal = Decimal("0.99")
    free_units: int = 100
    bill_assumed: bool = True
    assumed_window: timedelta = timedelta(hours=24)
    reopen_window: timedelta = timedelta(days=7)

    def __post_init__(self):
        if not isinstance(self.unit_price, Decimal):
            raise TypeError("unit_price must be a Decimal: money never passes through a float")
        if self.unit_price < 0 or self.free_units < 0:
            raise ValueError("unit price and free units cannot be negative")

    @classmethod
    def from_plan(cls, plan: Plan) -> "Terms":
        return cls(
            unit_price=Decimal(str(plan.unit_price_usd)),
            free_units=int(plan.free_units),
            bill_assumed=bool(plan.bill_assumed),
            assumed_window=timedelta(hours=plan.assumed_window_hours),
            reopen_window=timedelta(days=plan.reopen_window_days),
        )


DEFAULT_TERMS = Terms()
