"""The closing figures of each tenant, from the analytics API's invoice and usage answers (pure).
Money stays Decimal from the API's decimal strings to the printed cell."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

STATES = ("confirmed", "assumed", "escalated", "reopened", "pending")


def month_of(moment: datetime) -> str:
    return moment.strftime("%Y-%m")


@dataclass(frozen=True)
class TenantFigures:
    resolutions: dict[str, int]
    resolution_rate: float | None
    escalation_rate: float | None
    csat_average: float | None
    csat_count: int

    @property
    def replies(self) -> int:
        return sum(self.resolutions.values())

    def cells(self) -> list[str]:
        def rate(value: float | None) -> str:
            return "—" if value is None else f"{value:.0%}"

        csat = "—" if self.csat_average is None else f"{self.csat_average:.2f} ({self.csat_count})"
        confirmed = self.resolutions["confirmed"] + self.resolutions["assumed"]
        return [str(self.replies), str(confirmed), str(self.resolutions["escalated"]),
                str(self.resolutions["reopened"]), str(self.resolutions["pending"]),
                rate(self.resolution_rate), rate(self.escalation_rate), csat]


def tenant_figures(invoices: list[dict], usage: dict) -> TenantFigures:
    """Invoices of the months the demo ran in (usually one) added up, and the usage answer's rates."""
    resolutions = {state: sum(int(i["resolutions"].get(state, 0)) for i in invoices) for state in STATES}
    csat = usage.get("csat") or {}
    return TenantFigures(
        resolutions=resolutions,
        resolution_rate=usage.get("resolution_rate"),
        escalation_rate=usage.get("escalation_rate"),
        csat_average=csat.get("average"),
        csat_count=int(csat.get("count") or 0),
    )


def invoice_cells(invoice: dict) -> list[str]:
    """billable, free, charged, unit price, credits, total of one month's invoice."""
    def usd(text: str) -> str:
        return f"${Decimal(text):.2f}"

    return [str(invoice["billable_units"]), str(invoice["free_units"]), str(invoice["charged_units"]),
            usd(invoice["unit_price_usd"]), usd(invoice["credits_usd"]), usd(invoice["total_usd"])]
