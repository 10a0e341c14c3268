"""One live ticket, played through the real stack: the customer writes (signed webhooks through the
gateway), the resolver answers (seen on `resolutions`), the reply lands in the helpdesk simulator and
comes back as the helpdesk's comment webhook, and the customer reacts (see domain/reactions.py)."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timezone

from clonedesk.demo.adapters.helpdesk import SimulatorBackOffice, SimulatorReplies, WebhookSender
from clonedesk.demo.adapters.resolutions import ResolutionWatcher
from clonedesk.demo.domain import zendesk_events as zd
from clonedesk.demo.domain.reactions import LiveScript, Reaction
from clonedesk.ingest.domain.confirmation import is_confirmation
from clonedesk.resolver.domain.outbound import reply_id
from clonedesk.v1 import common_pb2, resolver_pb2

HUMAN_AGENT_ID = "agent-7"


@dataclass
class TicketResult:
    tenant_id: str
    ticket_id: str
    replies: int = 0
    ai_escalated: bool = False
    escalation_reason: str = ""  # the resolver's, when it escalated
    human_took_over: bool = False
    adapters: list[str] = field(default_factory=list)
    reactions: Counter = field(default_factory=Counter)
    actions: Counter = field(default_factory=Counter)  # the resolver's back-office calls by outcome
    action_replies: list[str] = field(default_factory=list)  # "call -> reply" of the calls carried out


def _now() -> datetime:
    return datetime.now(timezone.utc)


@dataclass
class LiveTicket:
    tenant_id: str
    secret: str
    script: LiveScript
    sender: WebhookSender
    simulator: SimulatorReplies
    watcher: ResolutionWatcher
    resolve_timeout_s: float
    back_office: SimulatorBackOffice | None = None
    recorded_calls: list[dict] = field(default_factory=list)  # what the dialogue's agent called, with results

    async def _send(self, webhook: zd.Webhook) -> None:
        await self.sender.send(self.tenant_id, self.secret, webhook)

    async def _human_takes_over(self, result: TicketResult, message_index: int, sequence: str) -> None:
        """A human agent takes the ticket: assigned to them, their reply (the dialogue's), solved."""
        ticket = self.script.ticket_id
        await self._send(zd.agent_assigned(self.tenant_id, ticket, sequence, HUMAN_AGENT_ID, _now()))
        words = self.script.agent_turn(message_index)
        await self._send(zd.comment_added(self.tenant_id, ticket, f"agent-{sequence}", words, HUMAN_AGENT_ID,
                                          True, _now()))
        await self._send(zd.status_changed(self.tenant_id, ticket, f"solved-{sequence}", "open", "solved",
                                           _now()))
        result.human_took_over = True

    async def play(self) -> TicketResult:
        script, tenant, ticket = self.script, self.tenant_id, self.script.ticket_id
        result = TicketResult(tenant, ticket)
        if self.back_office is not None:
            await self.back_office.expect_ticket(tenant, ticket, ticket, self.recorded_calls)
        last = len(script.customer_messages) - 1
        for index, message in enumerate(script.customer_messages):
            if index == 0:
                webhook = zd.ticket_created(tenant, ticket, message, script.requester_id, script.category,
                                            _now())
                result.reactions[Reaction.FIRST_MESSAGE] += 1
            else:
                webhook = zd.comment_added(tenant, ticket, f"customer-{index}", message, script.requester_id,
                                           False, _now())
            await self._send(webhook)
            if index > 0 and is_confirmation(message):
                # "No thanks, that's all": the processor records a confirmation and asks for no answer.
                result.reactions[Reaction.CLOSING_CONFIRMS if index == last else Reaction.FOLLOW_UP] += 1
                if index == last:
                    break
                continue
            if index > 0 and index == script.fate.asks_for_human_at:
                result.reactions[Reaction.ASKS_FOR_HUMAN] += 1
            elif index > 0:
                result.reactions[Reaction.CLOSING_OTHER if index == last else Reaction.FOLLOW_UP] += 1
            resolution = await self.watcher.wait_for(webhook.event_id, self.resolve_timeout_s,
                                                     f"{tenant} ticket {ticket} message {index + 1}")
            result.adapters.append(resolution.adapter_version)
            if resolution.HasField("action_run") and resolution.action_run.status:
                result.actions[resolver_pb2.ActionRun.Status.Name(resolution.action_run.status).lower()] += 1
                if resolution.reply:
                    result.action_replies.append(f"{resolution.action_run.call} -> {resolution.reply}")
            if resolution.decision == common_pb2.ESCALATE or not resolution.reply:
                result.ai_escalated = True
                result.escalation_reason = resolution.escalation_reason or "no reply"
                result.reactions[Reaction.AGENT_AFTER_ESCALATION] += 1
                await self._human_takes_over(result, index, f"escalated-{index}")
                return result
            posted = await self.simulator.wait_for(tenant, ticket, reply_id(resolution.resolution_id),
                                                   self.resolve_timeout_s)
            # Zendesk reports the comment our API user posted like any other: its webhook comes back.
            await self._send(zd.comment_added(tenant, ticket, f"ai-{resolution.resolution_id}",
                                              posted["body"], zd.AI_AUTHOR_ID, True, _now()))
            result.replies += 1
            if script.fate.takeover_after == result.replies and index < last:
                result.reactions[Reaction.TAKEOVER] += 1
                await self._human_takes_over(result, index + 1, "takeover")
                return result
        await self._send(zd.status_changed(tenant, ticket, "solved", "open", "solved", _now()))
        result.reactions[Reaction.SOLVE] += 1
        if script.fate.csat is not None:
            await self._send(zd.satisfaction_rated(tenant, ticket, script.fate.csat, _now()))
            result.reactions[Reaction.CSAT] += 1
        if script.fate.reopen:
            await self._send(zd.status_changed(tenant, ticket, "reopened", "solved", "open", _now()))
            result.reactions[Reaction.REOPEN] += 1
        return result
