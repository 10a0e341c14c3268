"""One live ticket, played through the real stack: the customer writes (signed webhooks through the
gateway), the resolver answers (seen on `resolutions`), the reply lands in the helpdesk simulator and
comes back as the helpdesk's comment webhook, and the customer reacts (see domain/reactions.py): to a
right answer as the dialogue goes on, to a wrong one by repeating themselves or asking for a person
(domain/judge.py)."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timezone

from clonedesk.demo.adapters.helpdesk import SimulatorBackOffice, SimulatorReplies, WebhookSender
from clonedesk.demo.adapters.resolutions import ResolutionWatcher
from clonedesk.demo.domain import zendesk_events as zd
from clonedesk.demo.domain.judge import Move, Verdict, course_of, judge, judge_rng, rating, react
from clonedesk.demo.domain.reactions import LiveScript, Reaction
from clonedesk.core.domain.confirmation import is_confirmation
from clonedesk.core.domain.ids import reply_id
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
    verdicts: list[Verdict] = field(default_factory=list)  # how the customer judged each AI answer
    push_backs: int = 0  # AI answers the customer judged wrong
    gave_up: bool = False  # the customer asked for a human after a wrong answer


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
    # Seed of the customer's judgement of the AI's answers (demo/domain/judge.py); None: not judged.
    judge_seed: int | None = None

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

    async def _answer(self, result: TicketResult, webhook: zd.Webhook, index: int, sequence: str):
        """Send the customer's message and wait for the AI's answer: the resolution when it was posted and
        echoed back by the helpdesk, None when the AI handed the ticket over (a human then has it)."""
        tenant, ticket = self.tenant_id, self.script.ticket_id
        await self._send(webhook)
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
            await self._human_takes_over(result, index, sequence)
            return None
        posted = await self.simulator.wait_for(tenant, ticket, reply_id(resolution.resolution_id),
                                               self.resolve_timeout_s)
        # Zendesk reports the comment our API user posted like any other: its webhook comes back.
        await self._send(zd.comment_added(tenant, ticket, f"ai-{resolution.resolution_id}",
                                          posted["body"], zd.AI_AUTHOR_ID, True, _now()))
        result.replies += 1
        return resolution

    def _comment(self, key: str, body: str) -> zd.Webhook:
        return zd.comment_added(self.tenant_id, self.script.ticket_id, key, body, self.script.requester_id,
                                False, _now())

    async def _judged(self, result: TicketResult, resolution, index: int, message: str) -> bool:
        """The customer takes the AI's answer to message `index` (judge.py): True when the dialogue goes on;
        False when they gave up on the AI and a human has the ticket. A wrong answer gets one repeat."""
        expected = self.script.answer_to(index)
        if expected is None or self.judge_seed is None:
            return True
        rng = judge_rng(self.judge_seed, self.tenant_id, self.script.ticket_id, index)
        repeated = False
        while True:
            reaction = react(judge(resolution.decision, resolution.action, resolution.reply, expected), message,
                             repeated, rng)
            result.verdicts.append(reaction.verdict)
            if reaction.move is Move.GO_ON:
                result.reactions[Reaction.ANSWER_RIGHT] += 1
                return True
            result.push_backs += 1
            if reaction.move is Move.ASK_FOR_HUMAN:
                result.reactions[Reaction.FED_UP] += 1
                result.gave_up = True
                answer = await self._answer(result, self._comment(f"customer-{index}-fed-up", reaction.message),
                                            index, f"fed-up-{index}")
                if answer is not None:  # the AI answered a request for a person: they insist, a human takes it
                    await self._human_takes_over(result, index, f"insisted-{index}")
                return False
            result.reactions[Reaction.REPEATS] += 1
            repeated = True
            resolution = await self._answer(result, self._comment(f"customer-{index}-again", reaction.message),
                                            index, f"again-{index}")
            if resolution is None:
                return False

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
                webhook = self._comment(f"customer-{index}", message)
            if index > 0 and is_confirmation(message):
                # "No thanks, that's all": the processor records a confirmation and asks for no answer.
                await self._send(webhook)
                result.reactions[Reaction.CLOSING_CONFIRMS if index == last else Reaction.FOLLOW_UP] += 1
                if index == last:
                    break
                continue
            if index > 0 and index == script.fate.asks_for_human_at:
                result.reactions[Reaction.ASKS_FOR_HUMAN] += 1
            elif index > 0:
                result.reactions[Reaction.CLOSING_OTHER if index == last else Reaction.FOLLOW_UP] += 1
            resolution = await self._answer(result, webhook, index, f"escalated-{index}")
            if resolution is None:
                return await self._rated_after_human(result)
            if not await self._judged(result, resolution, index, message):
                return await self._rated_after_human(result)
            if script.fate.takeover_after == result.replies and index < last:
                result.reactions[Reaction.TAKEOVER] += 1
                await self._human_takes_over(result, index + 1, "takeover")
                return result
        await self._send(zd.status_changed(tenant, ticket, "solved", "open", "solved", _now()))
        result.reactions[Reaction.SOLVE] += 1
        if script.fate.csat is not None:
            await self._send(zd.satisfaction_rated(tenant, ticket, self._rating(result), _now()))
            result.reactions[Reaction.CSAT] += 1
        if script.fate.reopen:
            await self._send(zd.status_changed(tenant, ticket, "reopened", "solved", "open", _now()))
            result.reactions[Reaction.REOPEN] += 1
        return result

    def _rating(self, result: TicketResult) -> int:
        """The recorded fate's rating when the answers are not judged; else one that follows the course."""
        if self.judge_seed is None or not self.script.answers:
            return self.script.fate.csat
        rng = judge_rng(self.judge_seed, self.tenant_id, self.script.ticket_id, -1)
        return rating(course_of(result.push_backs, result.gave_up or result.human_took_over), rng)

    async def _rated_after_human(self, result: TicketResult) -> TicketResult:
        """A ticket the customer gave up on the AI for is rated (when its fate rates) after the human's solve."""
        if result.gave_up and self.script.fate.csat is not None:
            await self._send(zd.satisfaction_rated(self.tenant_id, self.script.ticket_id, self._rating(result),
                                                   _now()))
            result.reactions[Reaction.CSAT] += 1
        return result
