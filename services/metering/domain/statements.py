"""Monthly statements: a month's invoice, open while what it says can still change, then closed and
frozen (pure; no I/O).

A month closes when the tenant's watermark (its latest event time: metering's only clock) has passed the
month's end plus the assumed window and the reopen window: by then every resolution of the month has
had its quiet window, and every charge its chance to be reopened. Its statement is then computed once:

- counts by state **as of the month's end**: each resolution of the month settled on the events before
  the month ended (`state_at_month_end`), so a resolution assumed on Oct 30 and reopened on Nov 3 is an
  assumed one in October's statement, a credit in November's;
- the money as the invoice has it (charges by the month they became billable, credits in the month of
  the reopen), which by then no later event changes;
- the terms it was billed on, as they were at the close.

A closed statement is stored and read back as stored: neither later events, nor a replay of every
event, nor a change of the tenant's plan alters it. A replay gives the same statement because it is a
function of the events before the close only.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime
from typing import Iterable, Mapping

from clonedesk.metering.domain.billing import Invoice, Month
from clonedesk.metering.domain.events import AiReply, Outcome
from clonedesk.metering.domain.lifecycle import STATES, State, settle
from clonedesk.metering.domain.terms import Terms

OPEN, CLOSED = "open", "closed"


def closes_at(month: Month, terms: Terms) -> datetime:
    return month.end + terms.assumed_window + terms.reopen_window


def is_closed(month: Month, watermark: datetime | None, terms: Terms) -> bool:
    return watermark is not None and watermark >= closes_at(month, terms)


def state_at_month_end(reply: AiReply, outcomes: Iterable[Outcome], terms: Terms, month: Month) -> State:
    """The state a resolution of `month` had when the month ended: settled on the events before then."""
    before = [o for o in outcomes if o.occurred_at < month.end]
    life = settle(reply, before, terms, watermark=month.end)
    return life.state if life is not None else State.PENDING


def counts_at_month_end(month: Month, replies: Iterable[AiReply], outcomes_of: Mapping[str, list[Outcome]],
                        terms: Terms) -> dict[State, int]:
    counts = {state: 0 for state in STATES}
    for reply in replies:
        if month.contains(reply.created_at):
            counts[state_at_month_end(reply, outcomes_of.get(reply.resolution_id, ()), terms, month)] += 1
    return counts


@dataclass(frozen=True)
class Statement:
    invoice: Invoice
    status: str  # OPEN or CLOSED
    closes_at: datetime
    # When it closed: its close time (not the watermark of whichever batch crossed it), so the statement
    # is a function of the events alone, the same in every replay whatever the batches.
    closed_at: datetime | None = None

    def to_json(self) -> dict:
        body = self.invoice.to_json()
        body.update(status=self.status, closes_at=_iso(self.closes_at),
                    closed_at=_iso(self.closed_at) if self.closed_at else None,
                    free_allowance=self.invoice.free_allowance)
        return body


def closed_statement(invoice: Invoice, counts: Mapping[State, int], terms: Terms) -> Statement:
    """The frozen statement of a month whose invoice (money) and month-end counts were computed at its close."""
    closing = closes_at(invoice.month, terms)
    return Statement(replace(invoice, resolutions={s: int(counts.get(s, 0)) for s in STATES}), CLOSED,
                     closing, closing)


def open_statement(invoice: Invoice, terms: Terms) -> Statement:
    return Statement(invoice, OPEN, closes_at(invoice.month, terms))


def _iso(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")
