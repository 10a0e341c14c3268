"""Use cases that join the core and the store: record a batch of events, then settle what they touched."""

from __future__ import annotations

import logging
from collections import defaultdict
from pathlib import Path
from typing import Callable, Sequence

from clonedesk.core.tenants import TenantStore
from clonedesk.metering.adapters.store import MeteringStore
from clonedesk.metering.domain.events import AiReply, Outcome
from clonedesk.metering.domain.lifecycle import Lifecycle, settle
from clonedesk.metering.domain.terms import DEFAULT_TERMS, Terms

log = logging.getLogger(__name__)

TermsLookup = Callable[[str], Terms]


def terms_from_tenants(data_dir: Path) -> TermsLookup:
    """Each tenant's plan as Terms; a tenant without a record (yet) is billed on the default plan."""
    tenants = TenantStore(data_dir)

    def lookup(tenant_id: str) -> Terms:
        record = tenants.find(tenant_id)
        return Terms.from_plan(record.plan) if record else DEFAULT_TERMS

    return lookup


def record_and_settle(store: MeteringStore, replies: Sequence[AiReply], outcomes: Sequence[Outcome],
                      terms_for: TermsLookup) -> list[Lifecycle]:
    """Store the raw events (idempotent on their ids), then re-settle every resolution they touched and
    every pending one whose quiet window the tenant's new watermark closed. Returns what was written."""
    store.insert_replies(replies)
    store.insert_outcomes(outcomes)
    touched: dict[str, set[str]] = defaultdict(set)
    for event in [*replies, *outcomes]:
        touched[event.tenant_id].add(event.resolution_id)
    written: list[Lifecycle] = []
    for tenant_id, resolution_ids in sorted(touched.items()):
        written += settle_tenant(store, tenant_id, resolution_ids, terms_for(tenant_id))
    return written


def settle_tenant(store: MeteringStore, tenant_id: str, resolution_ids: set[str], terms: Terms) -> list[Lifecycle]:
    watermark = store.watermark(tenant_id)
    if watermark is None:
        return []
    ids = set(resolution_ids) | set(store.pending_due(tenant_id, watermark))
    replies, outcomes = store.histories(tenant_id, ids)
    settled = [settle(replies.get(rid), outcomes.get(rid, ()), terms, watermark) for rid in sorted(ids)]
    settled = [life for life in settled if life is not None]
    store.write_lifecycles(settled)
    return settled
