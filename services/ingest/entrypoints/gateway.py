"""The webhook gateway (FastAPI): verify, normalise, write to `helpdesk.events`, and only then answer 2xx.

Checks run cheapest-first and before anything is written: body size (413), tenant (404), signature (401),
JSON (400), shape (422). A broker that does not acknowledge gives 503 with Retry-After, so the vendor
retries; the retried webhook carries the same vendor ids, hence the same event ids. While the embedded
stack restarts its broker (core.broker_hold) the gateway stays up and answers 503 the same way,
writing nothing.
"""

from __future__ import annotations

import asyncio
import gc
import json
import logging
from contextlib import asynccontextmanager
from typing import Callable

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from opentelemetry import metrics, trace

from clonedesk.core.broker_hold import broker_held, hold_marker
from clonedesk.core.kafka import BrokerUnavailable
from clonedesk.core.settings import Settings
from clonedesk.core.telemetry import TallyCounter
from clonedesk.core.tenants import Tenant, TenantStore, UnknownTenant
from clonedesk.core.signatures import DEFAULT_TOLERANCE_S, BadSignature, verify_intercom, verify_zendesk
from clonedesk.ingest.adapters.writer import EventWriter
from clonedesk.ingest.domain import intercom, zendesk
from clonedesk.ingest.domain.events import MAX_JSON_DEPTH, Normalised, WrongShape, payload_problem

log = logging.getLogger(__name__)

DEFAULT_MAX_BODY_BYTES = 1024 * 1024
RETRY_AFTER_S = 5
HOLD_POLL_S = 0.1


class Rejected(Exception):
    def __init__(self, status: int, reason: str, headers: dict | None = None):
        super().__init__(reason)
        self.status, self.reason, self.headers = status, reason, headers or {}


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


def _parse_json(body: bytes):
    try:
        payload = json.loads(body)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise Rejected(400, f"malformed JSON: {exc}") from None
    except RecursionError:
        raise Rejected(400, f"malformed JSON: nested deeper than {MAX_JSON_DEPTH} levels") from None
    problem = payload_problem(payload)
    if problem:
        raise Rejected(422, problem)
    return payload


def create_app(settings: Settings, *, writer: EventWriter | None = None,
               max_body_bytes: int = DEFAULT_MAX_BODY_BYTES, tolerance_s: float = DEFAULT_TOLERANCE_S,
               clock: Callable | None = None) -> FastAPI:
    writer = writer or EventWriter(settings.bootstrap, timeout_s=5.0)
    marker = hold_marker(settings.resolved_data_dir)  # only a supervisor of this data dir writes it
    tenants = TenantStore(settings.resolved_data_dir)
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
    # second (bench/ingest.py: 714 against 1,404 without it). The webhook span below is the root of a
    # ticket turn's trace (its duration is the request's), the webhook counters count them.
    app = FastAPI(title="CloneDesk ingest gateway", lifespan=lifespan,
                  telemetry={"tracing": False, "metrics": False, "operation_spans": False})
    app.state.writer = writer

    def tenant_of(tenant_id: str) -> Tenant:
        try:
            return tenants.get(tenant_id)  # re-read per request: a tenant added while running works at once
        except UnknownTenant:
            raise Rejected(404, f"unknown tenant {tenant_id!r}") from None

    async def handle(vendor: str, tenant_id: str, request: Request, verify, normalise) -> JSONResponse:
        with tracer.start_as_current_span(f"webhook.{vendor}") as span:
            span.set_attribute("tenant.id", tenant_id)
            try:
                if broker_held(marker):
                    await writer.abort()  # a fresh producer after the hold: nothing queued from before it
                    raise Rejected(503, "the broker is restarting; retry later", {"Retry-After": str(RETRY_AFTER_S)})
                body = await _read_limited(request, max_body_bytes)
                tenant = tenant_of(tenant_id)
                try:
                    verify(tenant, request.headers, body)
                except BadSignature as exc:
                    raise Rejected(401, str(exc)) from None
                payload = _parse_json(body)
                try:
                    normalised: Normalised = normalise(tenant.id, payload)
                except (WrongShape, ValueError, TypeError, KeyError, AttributeError, OverflowError) as exc:
                    # A value of the wrong kind anywhere (a list for an id, a time no calendar holds) is
                    # the sender's mistake: 422 with the reason, never a 500.
                    raise Rejected(422, f"not a {vendor} webhook: {type(exc).__name__}: {exc}"[:500]) from None
                if normalised.ignored:
                    log.info("ignored a webhook type", extra={"vendor": vendor, "type": normalised.ignored,
                                                              "tenant": tenant.id})
                    webhooks.add(1, {"vendor": vendor, "result": "ignored"})
                    return JSONResponse({"status": "ignored", "type": normalised.ignored}, status_code=202)
                for event in normalised.events:
                    event.received_at.GetCurrentTime()
                if normalised.events:
                    span.set_attribute("ticket.id", normalised.events[0].ticket_id)
                try:
                    await writer.write(normalised.events)
                    if broker_held(marker):  # acknowledged by a broker that has since died: say so
                        raise BrokerUnavailable("the broker restarted while the write was in flight")
                except BrokerUnavailable as exc:
                    raise Rejected(503, str(exc), {"Retry-After": str(RETRY_AFTER_S)}) from None
            except Rejected as rejected:
                span.set_attribute("http.status_code", rejected.status)
                webhooks.add(1, {"vendor": vendor, "result": str(rejected.status)})
                log.warning("rejected a webhook", extra={"vendor": vendor, "tenant": tenant_id,
                                                         "status": rejected.status, "reason": rejected.reason})
                return JSONResponse({"error": rejected.reason}, status_code=rejected.status,
                                    headers=rejected.headers)
            webhooks.add(1, {"vendor": vendor, "result": "accepted"})
            events_written.add(len(normalised.events), {"vendor": vendor})
            return JSONResponse({"status": "accepted", "event_ids": [e.event_id for e in normalised.events]})

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
