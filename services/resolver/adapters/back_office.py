"""The tenant's back office over HTTP: one signed POST per ACTION call, retried on 5xx and timeouts
(resolver.domain.actions has the rules; this module only talks)."""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass

import httpx
from opentelemetry import metrics, trace

from clonedesk.core.domain.action_calls import ActionAnswer, ActionCall
from clonedesk.resolver.domain.actions import (Status, idempotency_key, read_answer, request_body, retryable,
                                               signed_headers)

log = logging.getLogger(__name__)
tracer = trace.get_tracer("clonedesk.resolver")

# Requests per call at most (the first and two retries), and the pause before each retry, doubled.
MAX_ATTEMPTS = 3
RETRY_PAUSE_S = 0.2


@dataclass(frozen=True)
class CallOutcome:
    status: int  # domain.actions.Status
    answer: ActionAnswer | None
    reason: str  # why it failed ("" when ok)
    latency_ms: int
    attempts: int
    idempotency_key: str


class BackOffice:
    """Carries out calls for any tenant; one pooled HTTP client for all of them."""

    def __init__(self, max_attempts: int = MAX_ATTEMPTS, retry_pause_s: float = RETRY_PAUSE_S,
                 transport: httpx.AsyncBaseTransport | None = None):
        self.max_attempts = max_attempts
        self.retry_pause_s = retry_pause_s
        self._client = httpx.AsyncClient(transport=transport, follow_redirects=False)
        meter = metrics.get_meter("clonedesk.resolver")
        self._calls = meter.create_counter("resolver.actions", description="back-office calls by outcome")
        self._latency = meter.create_histogram("resolver.action.latency_ms", unit="ms")

    async def close(self) -> None:
        await self._client.aclose()

    async def call(self, tenant, ticket_id: str, resolution_id: str, call: ActionCall) -> CallOutcome:
        """POST the call to `tenant.actions_url`; never raises for what the back office does."""
        key = idempotency_key(resolution_id, call)
        timestamp = int(time.time())
        body = request_body(tenant.id, ticket_id, resolution_id, call, timestamp)
        headers = signed_headers(tenant.actions_secret, body, timestamp, key)
        timeout = httpx.Timeout(tenant.actions_timeout_s)
        started = time.monotonic()
        attempts, reason, status = 0, "", Status.FAILED
        with tracer.start_as_current_span("resolver.action", attributes={"tenant.id": tenant.id,
                                                                         "action": call.name}) as span:
            while attempts < self.max_attempts:
                if attempts:
                    await asyncio.sleep(self.retry_pause_s * 2 ** (attempts - 1))
                attempts += 1
                try:
                    response = await self._client.post(tenant.actions_url, content=body, headers=headers,
                                                       timeout=timeout)
                except httpx.TimeoutException:
                    status, code = Status.TIMED_OUT, None
                    reason = f"action {call.name} timed out after {tenant.actions_timeout_s:g}s"
                except httpx.HTTPError as exc:
                    status, code = Status.FAILED, None
                    reason = f"action {call.name}: the back office is unreachable ({type(exc).__name__})"
                else:
                    code = response.status_code
                    try:
                        answer = read_answer(code, response.content)
                    except ValueError as exc:
                        status, reason = Status.FAILED, f"action {call.name}: {exc}"
                    else:
                        if answer.ok:
                            return self._done(span, tenant, call, Status.OK, answer, "", started, attempts, key)
                        return self._done(span, tenant, call, Status.FAILED, answer,
                                          f"action {call.name} failed: {answer.error}", started, attempts, key)
                if not retryable(code):
                    break
            reason += f" ({attempts} attempt{'s' if attempts != 1 else ''})"
            return self._done(span, tenant, call, status, None, reason, started, attempts, key)

    def _done(self, span, tenant, call: ActionCall, status: int, answer, reason: str, started: float,
              attempts: int, key: str) -> CallOutcome:
        latency_ms = int((time.monotonic() - started) * 1000)
        name = Status.Name(status)
        span.set_attribute("action.status", name)
        span.set_attribute("action.attempts", attempts)
        self._calls.add(1, {"tenant.id": tenant.id, "status": name})
        self._latency.record(latency_ms, {"tenant.id": tenant.id})
        log.info("action", extra={"tenant": tenant.id, "action": call.name, "status": name, "attempts": attempts,
                                  "latency_ms": latency_ms, "reason": reason})
        return CallOutcome(status, answer, reason, latency_ms, attempts, key)
