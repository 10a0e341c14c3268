"""Metering's wiring: the store the settings point at (chDB in-process, or a ClickHouse server), the sink
over it, and the analytics app (the processes in entrypoints/service.py run these; tests build the sink
and the app over their own store)."""

from __future__ import annotations

from clonedesk.core.telemetry import Telemetry
from clonedesk.metering.adapters.store import MeteringStore
from clonedesk.metering.entrypoints.api import create_app
from clonedesk.metering.entrypoints.proxy import create_proxy_app
from clonedesk.metering.entrypoints.sink import MeteringSink
from clonedesk.metering.service_layer.settlement import terms_from_tenants
from clonedesk.metering.settings import MeteringSettings


def connect_store(settings: MeteringSettings) -> MeteringStore:
    return MeteringStore.connect(settings.clickhouse, settings.clickhouse_database)


def metering_sink(settings: MeteringSettings, store: MeteringStore, telemetry: Telemetry) -> MeteringSink:
    """The Kafka sink into `store`, billing each tenant on its plan."""
    return MeteringSink(settings.bootstrap, store, terms_from_tenants(settings.resolved_data_dir),
                        batch_size=settings.metering_batch_size, batch_bytes=settings.metering_batch_bytes,
                        telemetry=telemetry)


def analytics_app(store: MeteringStore, settings: MeteringSettings):
    """The analytics app over `store`, as these settings configure it (admin key included)."""
    return create_app(store, settings.resolved_data_dir, admin_key=settings.admin_api_key or None)


def api_app(settings: MeteringSettings):
    """What `clonedesk api` serves: with chDB a forwarder to the metering process's socket (only that process
    may open the data path), else the app itself over the ClickHouse server."""
    if settings.embedded_clickhouse:
        return create_proxy_app(settings.metering_socket)
    return analytics_app(connect_store(settings), settings)
