"""The webhook gateway (FastAPI): read the body, hand it to the intake (service_layer/webhooks.py), answer.

Checks run cheapest-first and before anything is written: body size (413), tenant (404), signature (401),
JSON (400), shape (422). A broker that does not acknowledge gives 503 with Retry-After, so the vendor
retries; the retried webhook carries the same vendor ids, hence the same event ids. While the embedded
stack restarts its broker (core.broker_hold) the gateway stays up and answers 503 the same way,
writing nothing.
"""

from __future__ import annotations

import asyncio
import gc
import logging
from contextlib import asynccontextmanager
from typing import Callable

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from opentelemetry import metrics, trace

from clonedesk.core.broker_hold import broker_held, hold_marker
from clonedesk.core.settings import Settings
from clonedesk.core.telemetry import TallyCounter
from clonedesk.core.domain.tenants import Tenant
from clonedesk.core.tenants import TenantStore
from clonedesk.core.signatures import DEFAULT_TOLERANCE_S, verify_intercom, verify_zendesk
from clonedesk.ingest.adapters.writer import EventWriter
from clonedesk.ingest.domain import intercom, zendesk
from clonedesk.ingest.service_layer.webhooks import RETRY_AFTER_S, Rejected, WebhookIntake, retry_later

log = logging.getLogger(__name__)

DEFAULT_MAX_BODY_BYTES = 1024 * 1024
HOLD_POLL_S = 0.1


def _webhook_body(description: str) -> dict:
    """The body in the OpenAPI document (the handlers read it raw, to check its signature on the bytes)."""
    return {"requestBody": {"required": True, "description": description,
                            "content": {"application/json": {"schema": {"type": "object"}}}}}


async def _read_limited(request: Request, limit: int) -> bytes:
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit:
        raise Rejected(413, f"body larger than {limit} bytes")
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise Rejected(413, f"body larger than {limit} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


def create_app(settings: Settings, *, writer: EventWriter, tenants: TenantStore,
               max_body_bytes: int = DEFAULT_MAX_BODY_BYTES, tolerance_s: float = DEFAULT_TOLERANCE_S,
               clock: Callable | None = None) -> FastAPI:
    """The gateway over the writer and tenant store it is given (ingest/bootstrap.py builds the real ones)."""
    marker = hold_marker(settings.resolved_data_dir)  # only a supervisor of this data dir writes it
    intake = WebhookIntake(tenants, writer.write, lambda: broker_held(marker))
    tracer = trace.get_tracer("clonedesk.ingest.gateway")
    meter = metrics.get_meter("clonedesk.ingest.gateway")
    webhooks = TallyCounter(meter, "clonedesk.gateway.webhooks", description="webhooks by vendor and result")
    events_written = TallyCounter(meter, "clonedesk.gateway.events_written")

    async def watch_hold() -> None:
        # Within a tenth of a second of the supervisor's hold, drop what the producer still holds: its
        # retries must not land on the restarted broker before the supervisor prepared it.
        while True:
            if broker_held(marker):
                await writer.abort()
            await asyncio.sleep(HOLD_POLL_S)

    @asynccontextmanager
    async def lifespan(_app: FastAPI):
        # What start-up built (modules, the app, settings) lives as long as the process: out of the
        # collector's sight, a full collection no longer walks it while webhooks wait (p99).
        gc.freeze()
        watcher = asyncio.create_task(watch_hold())
        yield
        if watcher is not None:
            watcher.cancel()
        await writer.close()

    # FastAPI's own telemetry (a request span, per-operation spans, request metrics) halved the webhooks a
    # second (bench/ingest.py: 714 against 1,404 without it); its logs, left on, would look for a logger
    # provider on every request. The webhook span below is the root of a ticket turn's trace (its duration
    # is the request's), the webhook counters count them; our own log lines say what went wrong.
    app = FastAPI(title="CloneDesk ingest gateway", lifespan=lifespan,
                  telemetry={"tracing": False, "metrics": False, "operation_spans": False, "logs": False})
    app.state.writer = writer

    async def handle(vendor: str, tenant_id: str, request: Request, verify, normalise) -> JSONResponse:
        with tracer.start_as_current_span(f"webhook.{vendor}") as span:
            span.set_attribute("tenant.id", tenant_id)
            try:
                if broker_held(marker):
                    await writer.abort()  # a fresh producer after the hold: nothing queued from before it
                    raise retry_later("the broker is restarting; retry later")
                body = await _read_limited(request, max_body_bytes)
                accepted = await intake.accept(vendor, tenant_id, request.headers, body, verify, normalise)
            except Rejected as rejected:
                span.set_attribute("http.status_code", rejected.status)
                webhooks.add(1, {"vendor": vendor, "result": str(rejected.status)})
                log.warning("rejected a webhook", extra={"vendor": vendor, "tenant": tenant_id,
                                                         "status": rejected.status, "reason": rejected.reason})
                return JSONResponse({"error": rejected.reason}, status_code=rejected.status,
                                    headers=rejected.headers)
            if accepted.ignored:
                webhooks.add(1, {"vendor": vendor, "result": "ignored"})
                return JSONResponse({"status": "ignored", "type": accepted.ignored}, status_code=202)
            if accepted.ticket_id:
                span.set_attribute("ticket.id", accepted.ticket_id)
            webhooks.add(1, {"vendor": vendor, "result": "accepted"})
            events_written.add(len(accepted.event_ids), {"vendor": vendor})
            return JSONResponse({"status": "accepted", "event_ids": accepted.event_ids})

    def verify_zendesk_request(tenant: Tenant, headers, body: bytes) -> None:
        verify_zendesk(tenant.zendesk_secret, headers.get("x-zendesk-webhook-signature"),
                       headers.get("x-zendesk-webhook-signature-timestamp"), body,
                       now=clock() if clock else None, tolerance_s=tolerance_s)

    def verify_intercom_request(tenant: Tenant, headers, body: bytes) -> None:
        verify_intercom(tenant.intercom_secret, headers.get("x-hub-signature"), body)

    @app.post("/webhooks/zendesk/{tenant_id}", openapi_extra=_webhook_body(
        "A Zendesk webhook, signed: X-Zendesk-Webhook-Signature over timestamp + body."))
    async def zendesk_webhook(tenant_id: str, request: Request) -> JSONResponse:
        return await handle("zendesk", tenant_id, request, verify_zendesk_request, zendesk.normalise_webhook)

    @app.post("/webhooks/intercom/{tenant_id}", openapi_extra=_webhook_body(
        "An Intercom notification, signed: X-Hub-Signature (sha1) over the body."))
    async def intercom_webhook(tenant_id: str, request: Request) -> JSONResponse:
        return await handle("intercom", tenant_id, request, verify_intercom_request, intercom.normalise_webhook)

    @app.get("/healthz")
    async def healthz() -> dict:
        return {"status": "ok"}

    @app.get("/readyz")
    async def readyz() -> JSONResponse:
        if not broker_held(marker) and await writer.reachable():
            return JSONResponse({"status": "ready"})
        return JSONResponse({"status": "broker unreachable"}, status_code=503,
                            headers={"Retry-After": str(RETRY_AFTER_S)})

    return app
