"""A tenant's dispute of a billed resolution: opened by the tenant, decided by the operator."""

from __future__ import annotations

import logging
from datetime import datetime, timezone
from decimal import Decimal

from clonedesk.metering.adapters.store import MeteringStore
from clonedesk.metering.domain.billing import Month
from clonedesk.metering.domain import disputes as dispute_rules
from clonedesk.metering.domain.terms import Terms
from clonedesk.metering.service_layer.statements import billed_terms

log = logging.getLogger(__name__)


def _now() -> datetime:
    """Wall-clock now at the store's precision (ms), so what the API answers is what it stored."""
    moment = datetime.now(timezone.utc)
    return moment.replace(microsecond=moment.microsecond // 1000 * 1000)


def open_dispute(store: MeteringStore, tenant_id: str, resolution_id: str, reason: str,
                 now: datetime | None = None) -> tuple[dispute_rules.Dispute, bool]:
    """Dispute a charge (domain/disputes.py); (the dispute, whether it is new). Raises DisputeRefused."""
    with store.exclusive():  # one check-then-write at a time: two racing calls make one dispute
        dispute, created = dispute_rules.open_dispute(
            store.dispute(tenant_id, resolution_id), store.lifecycle_of(tenant_id, resolution_id), reason,
            now or _now())
        if created:
            store.write_dispute(dispute)
    if created:
        log.info("dispute opened", extra={"tenant": tenant_id, "resolution": resolution_id})
    return dispute, created


def decide_dispute(store: MeteringStore, tenant_id: str, resolution_id: str, accept: bool, note: str,
                   terms: Terms, now: datetime | None = None) -> tuple[dispute_rules.Dispute, bool]:
    """Accept (credit what the charge cost, in the first open month from now) or reject a dispute;
    (the dispute, whether this call decided it). Raises DisputeRefused."""
    with store.exclusive():
        life = store.lifecycle_of(tenant_id, resolution_id)
        credit = Decimal("0")
        if accept and life is not None and life.billed_at is not None:
            month = Month.of(life.billed_at)
            billed_on = billed_terms(store, tenant_id, month, terms)
            credit = dispute_rules.credit_for(store.charge_rank(tenant_id, resolution_id, month),
                                              billed_on.free_units, billed_on.unit_price)
        dispute, decided = dispute_rules.decide(
            store.dispute(tenant_id, resolution_id), accept, note, now or _now(), life=life,
            credit=credit, closed_months=store.closed_months(tenant_id))
        if decided:
            store.write_dispute(dispute)
    if decided:
        log.info("dispute decided", extra={"tenant": tenant_id, "resolution": resolution_id,
                                           "status": dispute.status, "credit_usd": str(dispute.credit),
                                           "credit_month": dispute.credit_month})
    return dispute, decided
