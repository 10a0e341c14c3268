"""History import (the onboarding backfill): an export file → the same normalised events the webhooks
produce, on `helpdesk.events`. A bad record is reported with its line and skipped; event ids come from the
vendor's ids (SGD: dialogue id and turn index), so re-importing a file writes the same ids."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path


from clonedesk.core.progress import progress_bar
from clonedesk.core.settings import Settings
from clonedesk.ingest.adapters.files import read_export
from clonedesk.ingest.adapters.writer import EventWriter
from clonedesk.ingest.domain import intercom, sgd, zendesk
from clonedesk.ingest.domain.events import WrongShape

log = logging.getLogger(__name__)
BATCH_EVENTS = 500


@dataclass
class ImportReport:
    records: int = 0
    written: int = 0
    rejected: int = 0
    problems: list[str] = field(default_factory=list)


def normaliser(kind: str, tenant_id: str, sideloads: dict):
    if kind == "zendesk":
        users = sideloads.get("users") if isinstance(sideloads.get("users"), list) else []
        agents = frozenset(str(u.get("id")) for u in users if isinstance(u, dict)
                           and u.get("role") in ("agent", "admin"))
        return lambda record: zendesk.normalise_export_ticket(tenant_id, record, agent_ids=agents)
    if kind == "intercom":
        return lambda record: intercom.normalise_export_conversation(tenant_id, record)
    if kind == "sgd":
        return lambda record: sgd.normalise_dialogue(tenant_id, record)
    raise ValueError(f"unknown import kind {kind!r}")


async def run_import(settings: Settings, kind: str, path: Path, tenant_id: str, progress: bool = True,
                     writer: EventWriter | None = None) -> ImportReport:
    export = read_export(path)
    normalise = normaliser(kind, tenant_id, export.sideloads)
    report = ImportReport()
    own_writer = writer is None
    writer = writer or EventWriter(settings.bootstrap, timeout_s=30.0, linger_ms=20)
    pending = []
    try:
        for record in progress_bar(export.records, description=f"import {kind} ({tenant_id})", unit="record",
                                   enabled=progress):
            report.records += 1
            if record.error is not None:
                report.rejected += 1
                report.problems.append(f"{record.line}: {record.error}")
                continue
            try:
                pending.extend(normalise(record.value))
            except (WrongShape, TypeError, ValueError, KeyError, AttributeError) as exc:
                report.rejected += 1
                report.problems.append(f"{record.line}: {exc}")
                continue
            if len(pending) >= BATCH_EVENTS:
                report.written += await writer.write(pending)
                pending = []
        report.written += await writer.write(pending)
    finally:
        if own_writer:
            await writer.close()
    log.info("import finished", extra={"kind": kind, "tenant": tenant_id, "records": report.records,
                                       "written": report.written, "rejected": report.rejected})
    return report
