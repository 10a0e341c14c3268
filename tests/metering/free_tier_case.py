"""One tenant's October and November, with the expected invoices written out by hand (not derived by the
code under test): the free tier taken in event-time order while the resolution ids sort the other way,
and a charge that becomes billable across the month boundary.

Plan: 3 free units a month, then $0.99.

- Oct 30: r0005, r0004, r0003, r0002, r0001 replied at 08:00, 09:00, ... 12:00 and were confirmed ten
  minutes later. In event time r0005 comes first, so r0005, r0004, r0003 are free and r0002, r0001 paid
  (by id it would be the reverse).
- Oct 31 23:00: r0000 replied and nothing followed. Its 24 h window closes on Nov 1 23:00: assumed and
  billed then, a November charge, while its reply counts among October's resolutions.
- Nov 2 10:00: r0005, r0004 (free) and r0002 (paid) are reopened. October keeps its charges; only
  r0002 is credited in November.
- Nov 3: r0009, r0008, r0007, r0006 replied at 08:00 ... 11:00, confirmed ten minutes later. November's
  charges in event time: r0000, r0009, r0008 free; r0007, r0006 paid.
"""

from datetime import datetime, timedelta, timezone

from clonedesk.metering.domain.events import AiReply, Outcome, OutcomeKind
from clonedesk.metering.domain.terms import Terms

TENANT = "acme"
TERMS = Terms(free_units=3)
CONFIRMED_AFTER = timedelta(minutes=10)


def utc(month, day, hour, minute=0):
    return datetime(2026, month, day, hour, minute, tzinfo=timezone.utc)


REPLIED_AT = {
    "r0005": utc(10, 30, 8), "r0004": utc(10, 30, 9), "r0003": utc(10, 30, 10), "r0002": utc(10, 30, 11),
    "r0001": utc(10, 30, 12),
    "r0000": utc(10, 31, 23),
    "r0009": utc(11, 3, 8), "r0008": utc(11, 3, 9), "r0007": utc(11, 3, 10), "r0006": utc(11, 3, 11),
}
QUIET = ("r0000",)  # no outcome: assumed when its window closes
REOPENED = ("r0005", "r0004", "r0002")
REOPENED_AT = utc(11, 2, 10)
BOUNDARY_BILLED_AT = utc(11, 1, 23)  # r0000's reply + 24 h

OCTOBER_CHARGES = ["r0005", "r0004", "r0003", "r0002", "r0001"]  # in event-time order
OCTOBER_PAID = ["r0002", "r0001"]
NOVEMBER_CHARGES = ["r0000", "r0009", "r0008", "r0007", "r0006"]
NOVEMBER_PAID = ["r0007", "r0006"]

OCTOBER_INVOICE = {
    "tenant_id": TENANT, "month": "2026-10",
    # r0000..r0005 replied in October; r0000 is assumed (in November), three are reopened by now
    "resolutions": {"pending": 0, "confirmed": 2, "assumed": 1, "escalated": 0, "reopened": 3},
    "billable_units": 5, "free_units": 3, "charged_units": 2, "unit_price_usd": "0.99",
    "credit_units": 0, "credits_usd": "0.00", "total_usd": "1.98",
    "dispute_credit_units": 0, "dispute_credits_usd": "0.00",
}
NOVEMBER_INVOICE = {
    "tenant_id": TENANT, "month": "2026-11",
    "resolutions": {"pending": 0, "confirmed": 4, "assumed": 0, "escalated": 0, "reopened": 0},
    # r0000 (assumed Nov 1 23:00) and the four of Nov 3; r0002's October charge credited
    "billable_units": 5, "free_units": 3, "charged_units": 2, "unit_price_usd": "0.99",
    "credit_units": 1, "credits_usd": "0.99", "total_usd": "0.99",
    "dispute_credit_units": 0, "dispute_credits_usd": "0.00",
}
# Before r0000's window closes (the tenant's latest event is Nov 1 22:59) it is still pending.
OCTOBER_INVOICE_BEFORE_THE_WINDOW_CLOSES = {
    "tenant_id": TENANT, "month": "2026-10",
    "resolutions": {"pending": 1, "confirmed": 5, "assumed": 0, "escalated": 0, "reopened": 0},
    "billable_units": 5, "free_units": 3, "charged_units": 2, "unit_price_usd": "0.99",
    "credit_units": 0, "credits_usd": "0.00", "total_usd": "1.98",
    "dispute_credit_units": 0, "dispute_credits_usd": "0.00",
}


def replies() -> list[AiReply]:
    return [AiReply(rid, TENANT, f"t-{rid}", "resolve", at, latency_ms=120)
            for rid, at in REPLIED_AT.items()]


def confirmations() -> list[Outcome]:
    return [Outcome(f"{rid}-confirmed", rid, TENANT, f"t-{rid}", OutcomeKind.CUSTOMER_CONFIRMED,
                    at + CONFIRMED_AFTER)
            for rid, at in REPLIED_AT.items() if rid not in QUIET]


def reopens() -> list[Outcome]:
    return [Outcome(f"{rid}-reopened", rid, TENANT, f"t-{rid}", OutcomeKind.REOPENED, REOPENED_AT)
            for rid in REOPENED]
