"""The `AdapterPublished` announcement of a registry version, and sending it on `adapters.published`:
the trainer's worker after a promotion, `clonedesk adapter rollback` after a rollback. The resolver
applies an announcement only for the version the registry calls current, so a stale one is harmless."""

from __future__ import annotations

from google.protobuf.timestamp_pb2 import Timestamp

from clonedesk.core.domain import topics
from clonedesk.core.adapters import adapter_name
from clonedesk.core.kafka import encode
from clonedesk.core.telemetry import inject_headers
from clonedesk.trainer.adapters.version_registry import AdapterRegistry
from clonedesk.v1 import adapters_pb2


def version_metrics(meta: dict) -> dict[str, float]:
    """The numeric metrics of a version, flat, for AdapterPublished.metrics."""
    flat = {k: float(v) for k, v in meta.get("metrics", {}).items() if isinstance(v, (int, float))}
    flat["holdout_score"] = float(meta.get("holdout_score", 0.0))
    return flat


def announcement(registry: AdapterRegistry, tenant_id: str, version: int) -> adapters_pb2.AdapterPublished:
    meta = registry.meta(tenant_id, version)
    published_at = Timestamp()
    published_at.GetCurrentTime()
    return adapters_pb2.AdapterPublished(
        tenant_id=tenant_id, version=version, path=str(registry.path(tenant_id, version)),
        metrics=version_metrics(meta), name=adapter_name(tenant_id, version),
        base_model=meta.get("base_model", ""), sample_count=int(meta.get("sample_count", 0)),
        published_at=published_at)


async def send_announcement(producer, message: adapters_pb2.AdapterPublished) -> None:
    """Keyed by tenant, so a tenant's announcements keep their order; waits for the broker's ack."""
    await producer.send_and_wait(topics.ADAPTERS_PUBLISHED, encode(message), key=message.tenant_id.encode(),
                                 headers=inject_headers())
