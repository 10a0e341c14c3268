"""Ingest's wiring: the gateway over the real Kafka writer and the data dir's tenant store (`clonedesk
ingest` calls this; tests build `create_app` or `WebhookIntake` with their own)."""

from __future__ import annotations

from fastapi import FastAPI

from clonedesk.core.settings import Settings
from clonedesk.core.tenants import TenantStore
from clonedesk.ingest.adapters.writer import EventWriter
from clonedesk.ingest.entrypoints.gateway import create_app


def gateway_app(settings: Settings, **options) -> FastAPI:
    """`options`: max_body_bytes, tolerance_s, clock (see create_app)."""
    return create_app(settings, writer=EventWriter(settings.bootstrap, timeout_s=5.0),
                      tenants=TenantStore(settings.resolved_data_dir), **options)
