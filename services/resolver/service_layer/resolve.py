"""The resolver's use case, shared by the gRPC server and direct callers (the bench): validate, find the
tenant and its current adapter, generate, decide, answer."""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import replace
from pathlib import Path

from clonedesk.core.domain.conversation_format import (DEFAULT_CONTEXT_TURNS, after_action_messages, chat_messages,
                                                reply_after_action,
                                                system_prompt)
from clonedesk.core.tenants import TenantStore, UnknownTenant
from clonedesk.resolver.adapters.lora_cache import AdapterCache, NoLiveAdapter
from clonedesk.core.domain.confidence import choose_threshold
from clonedesk.resolver.adapters.back_office import BackOffice
from clonedesk.resolver.domain.actions import Refusal, Status, allowed_names, plan_call
from clonedesk.resolver.domain.decisions import Decided, answer_confidence, decide, escalate
from clonedesk.resolver.domain.human_request import asks_for_a_human, latest_customer_text
from clonedesk.resolver.domain.requests import idempotency_key, resolution_id, validate_request
from clonedesk.resolver.engines.base import Engine, GenerationRequest
from clonedesk.v1 import common_pb2, resolver_pb2
from opentelemetry import metrics, trace

log = logging.getLogger(__name__)
tracer = trace.get_tracer("clonedesk.resolver")

__all__ = ["ResolverService", "Overloaded", "TenantIsolationError", "UnknownTenant", "NoLiveAdapter"]


class Overloaded(RuntimeError):
    """More requests in the resolver than it takes at once (RESOURCE_EXHAUSTED); the caller retries later."""


class TenantIsolationError(RuntimeError):
    """The engine answered with another adapter than the one leased: never sent, always a bug."""


class ResolverService:
    def __init__(self, engine: Engine, data_dir: Path, capacity: int, max_pending: int,
                 context_turns: int = DEFAULT_CONTEXT_TURNS, back_office: BackOffice | None = None, *,
                 tenants: TenantStore | None = None, adapters: AdapterCache | None = None):
        # resolver/bootstrap.py hands in the real back office client, tenant store and LoRA cache; they
        # are built here only when a test leaves them out.
        self.engine = engine
        self.back_office = back_office or BackOffice()
        self.context_turns = context_turns
        self.tenants = tenants or TenantStore(Path(data_dir))
        self.adapters = adapters or AdapterCache(engine, Path(data_dir), capacity)
        self.max_pending = max_pending
        self.in_flight = 0
        self.abandoned = 0  # requests given up past their deadline or cancelled by the caller
        meter = metrics.get_meter("clonedesk.resolver")
        self._resolved = meter.create_counter("resolver.resolutions", description="answered requests")
        self._latency = meter.create_histogram("resolver.latency_ms", unit="ms")
        self._abandoned = meter.create_counter(
            "resolver.abandoned", description="requests given up past their deadline or cancelled"
        )
        meter.create_observable_gauge("resolver.adapter.version", callbacks=[self._observe_versions],
                                      description="the adapter version each tenant is served with")

    def _abandon(self, tenant_id: str, ticket_id: str, stage: str, started: float, why: str) -> None:
        self.abandoned += 1
        self._abandoned.add(1, {"tenant.id": tenant_id, "stage": stage})
        log.warning(
            "request abandoned",
            extra={
                "tenant": tenant_id,
                "ticket": ticket_id,
                "stage": stage,
                "reason": why,
                "elapsed_ms": int((time.monotonic() - started) * 1000),
            },
        )

    def _observe_versions(self, _options):
        for tenant_id, version in self.adapters.current_versions().items():
            yield metrics.Observation(version, {"tenant.id": tenant_id})

    async def _generate(self, lease, request, messages, action_names):
        generation = await self.engine.generate(GenerationRequest(lease.name, messages, action_names))
        if generation.adapter_name != lease.name or lease.tenant_id != request.tenant_id:
            raise TenantIsolationError(
                f"request of {request.tenant_id} leased {lease.name} but got {generation.adapter_name}"
            )
        return generation

    async def _carry_out(self, tenant, request, lease, messages, decided: Decided,
                         rid: str) -> tuple[Decided, resolver_pb2.ActionRun]:
        """Carry out the call an ACTION answer names, then let the adapter write the reply from its result;
        anything short of an ok result escalates, so no reply announces what did not happen."""
        plan = plan_call(decided.action, actions_url=tenant.actions_url, actions_secret=tenant.actions_secret,
                         allowed=allowed_names(tenant.actions_allow, lease.action_names))
        if isinstance(plan, Refusal):
            return escalate(decided, plan.reason), resolver_pb2.ActionRun(call=decided.action, status=plan.status)
        outcome = await self.back_office.call(tenant, request.ticket_id, rid, plan)
        run = resolver_pb2.ActionRun(call=plan.text(), status=outcome.status,
                                     answer=outcome.answer.to_json() if outcome.answer else "",
                                     latency_ms=outcome.latency_ms, attempts=outcome.attempts,
                                     idempotency_key=outcome.idempotency_key)
        if outcome.status != Status.OK:
            return escalate(decided, outcome.reason), run
        if not lease.answers_from_results:
            return decided, run  # an adapter of a history without results wrote its reply with the header
        second = await self._generate(
            lease, request, after_action_messages(messages, common_pb2.ACTION, plan.text(), outcome.answer), None)
        reply = reply_after_action(second.text)
        if not reply:
            return escalate(decided, f"action {plan.name} done, but the reply after it was empty"), run
        return replace(decided, action=plan.text(), reply=reply), run

    def messages(self, tenant_id: str, conversation, context_turns: int | None = None) -> list[dict[str, str]]:
        """The prompt's messages, as the trainer built them for this tenant's adapter: its system prompt and
        as many turns as the adapter was trained on (the resolver's setting when not recorded)."""
        return chat_messages(conversation, system_prompt(tenant_id),
                             max_turns=context_turns if context_turns is not None else self.context_turns)

    async def resolve(
        self, request: resolver_pb2.ResolveRequest, timeout: float | None = None
    ) -> resolver_pb2.ResolveResponse:
        """Raises InvalidRequest, UnknownTenant, NoLiveAdapter, Overloaded, or TimeoutError once `timeout`
        seconds have passed: the deadline covers all of it, adapter lease and load included."""
        validate_request(request)
        tenant = self.tenants.get(request.tenant_id)
        rid = resolution_id(tenant.id, idempotency_key(request))
        if self.in_flight >= self.max_pending:
            raise Overloaded(f"{self.in_flight} requests in progress; retry later")
        self.in_flight += 1
        started = time.monotonic()
        stage = "lease"
        deadline = asyncio.timeout(timeout)
        try:
            with tracer.start_as_current_span(
                "resolver.resolve", attributes={"tenant.id": tenant.id, "ticket.id": request.ticket_id}
            ) as span:
                async with deadline:
                    async with self.adapters.lease(tenant.id) as lease:
                        span.set_attribute("adapter", lease.name)
                        stage = "generate"
                        messages = self.messages(tenant.id, request.conversation, lease.context_turns)
                        generation = await self._generate(lease, request, messages, lease.action_names)
                        threshold = choose_threshold(tenant.escalation_threshold, tenant.target_accuracy,
                                                     lease.calibration)
                        decided = decide(
                            generation.text,
                            answer_confidence(generation.header_logprob, generation.token_logprobs,
                                              lease.calibration),
                            threshold,
                            human_requested=asks_for_a_human(latest_customer_text(request.conversation)),
                            reply_follows_action=lease.answers_from_results,
                        )
                        run = None
                        if decided.decision == common_pb2.ACTION and not decided.escalated:
                            stage = "action"
                            decided, run = await self._carry_out(tenant, request, lease, messages, decided, rid)
                span.set_attribute("decision", decided.decision)
                span.set_attribute("confidence", decided.confidence)
        except TimeoutError:
            if not deadline.expired():
                raise  # not ours: the engine's own
            self._abandon(tenant.id, request.ticket_id, stage, started, "deadline passed")
            raise TimeoutError(f"deadline of {timeout:.3f}s passed during {stage}") from None
        except asyncio.CancelledError:
            # gRPC cancels the handler when the client goes away or the deadline passes first.
            self._abandon(tenant.id, request.ticket_id, stage, started, "cancelled by the caller")
            raise
        finally:
            self.in_flight -= 1
        latency_ms = int((time.monotonic() - started) * 1000)
        self._resolved.add(1, {"tenant.id": tenant.id, "escalated": decided.escalated})
        self._latency.record(latency_ms, {"tenant.id": tenant.id})
        log.info(
            "resolved",
            extra={
                "tenant": tenant.id,
                "ticket": request.ticket_id,
                "adapter": lease.name,
                "decision": decided.decision,
                "confidence": round(decided.confidence, 3),
                "threshold": round(threshold, 3),
                "escalation_reason": decided.reason,
                "action_status": resolver_pb2.ActionRun.Status.Name(run.status) if run else "",
                "latency_ms": latency_ms,
            },
        )
        return resolver_pb2.ResolveResponse(
            resolution_id=rid,
            tenant_id=tenant.id,
            ticket_id=request.ticket_id,
            reply=decided.reply,
            decision=decided.decision,
            action=decided.action,
            confidence=decided.confidence,
            adapter_version=lease.name,
            latency_ms=latency_ms,
            escalation_reason=decided.reason,
            escalation_threshold=threshold,
            action_run=run,
        )
