"""The conversation reducer: (state, input) → (state, messages to emit). Pure; the faust worker keeps the
state in a Table keyed `tenant:ticket` and sends what this returns.

Inputs are `HelpdeskEvent`s (topic helpdesk.events) and `Resolution`s (topic resolutions: the AI answered
or escalated this ticket). The reducer is idempotent on their ids, and tolerant of out-of-order arrival:
turns are kept ordered by when they happened, and a status change older than the one we hold is history,
not news.

Emits:
- `TrainingSample` per human-agent turn, once the ticket is solved by humans only (no AI turn and no AI
  resolution). Each turn's sample is emitted once (tracked by the turn's event id), so a redelivered or
  repeated solve never doubles it, and turns added before a later re-solve still get theirs. A sample
  carries the context known when it is emitted: a turn that arrives only after the solve gets its own
  sample, but samples already sent are not re-sent.
- `ResolveRequest` for a new public customer message on an open ticket of a live tenant, unless a human
  has taken the ticket over or the message confirms the AI's answer. History imports never trigger one.
- `ResolutionOutcome` for tickets the AI answered: customer confirmed / replied, human took over (a human
  public reply or an assignment to a human), solved, reopened, CSAT.

Decision of a human agent's turn, when the source does not say (webhooks): the ticket handed to someone
else right after it → ESCALATE; a question (not the last turn) → ASK; otherwise RESOLVE. Imports (SGD)
carry the annotated decision and action; see domain/sgd.py.
"""

from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass, field

from google.protobuf.message import Message

from clonedesk.core.domain import topics
from clonedesk.core.domain.topics import message_key
from clonedesk.core.domain.confirmation import is_confirmation
from clonedesk.core.domain.ids import sample_id
from clonedesk.ingest.domain.pii import scrub
from clonedesk.v1 import common_pb2, events_pb2, outcomes_pb2, resolver_pb2, training_pb2

Kind = events_pb2.HelpdeskEvent.Kind
Outcome = outcomes_pb2.ResolutionOutcome.Kind
SOLVED_STATES = (common_pb2.SOLVED, common_pb2.CLOSED)
PUBLIC_ROLES = (common_pb2.CUSTOMER, common_pb2.AGENT, common_pb2.AI)


@dataclass(frozen=True)
class Emit:
    topic: str
    key: bytes
    message: Message


@dataclass
class TurnRecord:
    event_id: str
    role: int
    text: str
    at: float
    seq: int
    internal: bool = False
    decision: int = 0
    action: str = ""
    author_id: str = ""
    from_created: bool = False
    action_result: str = ""  # the back office's answer to `action`, where the source recorded it  # the ticket's description, until the same first comment arrives


@dataclass
class AiResolution:
    resolution_id: str
    reply: str
    at: float
    human_took_over: bool = False


@dataclass
class Conversation:
    tenant_id: str
    ticket_id: str
    turns: list[TurnRecord] = field(default_factory=list)
    seen: list[str] = field(default_factory=list)
    status: int = common_pb2.TICKET_STATUS_UNSPECIFIED
    status_at: float = -1.0
    category: str = ""
    subject: str = ""
    source: int = common_pb2.SOURCE_UNSPECIFIED
    assignee_id: str = ""
    csat: int = 0
    escalations: int = 0
    resolution: AiResolution | None = None
    sampled_turns: list[str] = field(default_factory=list)
    arrivals: int = 0
    assignments: list[list] = field(default_factory=list)  # [at, assignee_id], in arrival order

    # -- storage --------------------------------------------------------------------------------------
    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> "Conversation":
        data = dict(data)
        data["turns"] = [TurnRecord(**t) for t in data.get("turns", [])]
        if data.get("resolution"):
            data["resolution"] = AiResolution(**data["resolution"])
        return cls(**data)

    # -- views ----------------------------------------------------------------------------------------
    @property
    def key(self) -> bytes:
        return message_key(self.tenant_id, self.ticket_id)

    def public_turns(self) -> list[TurnRecord]:
        ordered = sorted(self.turns, key=lambda t: (t.at, t.seq))
        return [t for t in ordered if not t.internal and t.role in PUBLIC_ROLES and t.text.strip()]

    @property
    def ai_involved(self) -> bool:
        return self.resolution is not None or any(t.role == common_pb2.AI for t in self.turns)

    @property
    def solved(self) -> bool:
        return self.status in SOLVED_STATES


@dataclass(frozen=True)
class Context:
    """What the reducer needs to know from outside: whether the tenant is live right now."""

    live: bool = False


def _seconds(stamp) -> float:
    return stamp.seconds + stamp.nanos / 1e9 if stamp.seconds or stamp.nanos else 0.0


def _same_text(a: str, b: str) -> bool:
    return re.sub(r"\s+", " ", a).strip().lower() == re.sub(r"\s+", " ", b).strip().lower()


def scrubbed_turns(turns: list[TurnRecord]) -> list[common_pb2.Turn]:
    return [common_pb2.Turn(role=t.role, text=scrub(t.text)) for t in turns]


def infer_decision(turn: TurnRecord, is_last_agent_turn: bool, handed_over: bool = False) -> int:
    """The decision of a human agent's turn. The source's own annotation wins; otherwise: handing the
    ticket to someone else right after the turn → ESCALATE; a question → ASK; else RESOLVE."""
    if turn.decision:
        return turn.decision
    if handed_over:
        return common_pb2.ESCALATE
    if not is_last_agent_turn and "?" in turn.text:
        return common_pb2.ASK
    return common_pb2.RESOLVE


def _handed_over(state: Conversation, turn: TurnRecord, next_turn: TurnRecord | None) -> bool:
    """Was the ticket assigned to someone other than this turn's author after it, before the next turn?"""
    until = next_turn.at if next_turn is not None else float("inf")
    return any(turn.at <= at < until and assignee and assignee != turn.author_id
               for at, assignee in state.assignments)


def apply(state: Conversation | None, message: Message, context: Context = Context()
          ) -> tuple[Conversation, list[Emit]]:
    """Fold one input into the conversation; return the new state and what to emit."""
    if isinstance(message, events_pb2.HelpdeskEvent):
        state = state or Conversation(message.tenant_id, message.ticket_id)
        return _apply_event(state, message, context)
    if isinstance(message, resolver_pb2.Resolution):
        state = state or Conversation(message.tenant_id, message.ticket_id)
        return _apply_resolution(state, message)
    raise TypeError(f"cannot apply a {type(message).__name__}")


def _apply_resolution(state: Conversation, resolution) -> tuple[Conversation, list[Emit]]:
    marker = "resolution:" + resolution.resolution_id
    if marker in state.seen:
        return state, []
    state.seen.append(marker)
    if resolution.decision == common_pb2.ESCALATE:
        state.escalations += 1
        return state, []
    state.resolution = AiResolution(resolution.resolution_id, resolution.reply, _seconds(resolution.created_at))
    for turn in state.turns:  # its reply may have come back from the helpdesk before the resolution did
        if turn.role == common_pb2.AGENT and resolution.reply and _same_text(turn.text, resolution.reply):
            turn.role = common_pb2.AI
    return state, []


def _apply_event(state: Conversation, event, context: Context) -> tuple[Conversation, list[Emit]]:
    if event.event_id in state.seen:
        return state, []
    state.seen.append(event.event_id)
    state.arrivals += 1
    state.category = state.category or event.category
    state.subject = state.subject or event.subject
    state.source = state.source or event.source
    at = _seconds(event.occurred_at) or max([t.at for t in state.turns] + [state.status_at, 0.0])
    emits: list[Emit] = []
    resolution = state.resolution

    def outcome(kind: int, csat: int = 0) -> None:
        emits.append(Emit(topics.RESOLUTION_OUTCOMES, state.key, outcomes_pb2.ResolutionOutcome(
            event_id=event.event_id, resolution_id=resolution.resolution_id, tenant_id=state.tenant_id,
            ticket_id=state.ticket_id, kind=kind, csat_score=csat, occurred_at=event.occurred_at,
            category=state.category)))

    def took_over() -> None:
        state.escalations += 1
        if resolution is not None and not resolution.human_took_over:
            resolution.human_took_over = True
            outcome(Outcome.HUMAN_TOOK_OVER)

    new_customer_turn = False
    if event.kind == Kind.TICKET_CREATED:
        if state.status_at < 0:
            state.status, state.status_at = event.status or common_pb2.NEW, at
        duplicate = any(t.role == common_pb2.CUSTOMER and _same_text(t.text, event.body) for t in state.turns)
        if event.body.strip() and not duplicate:
            state.turns.append(TurnRecord(event.event_id, common_pb2.CUSTOMER, event.body, at, state.arrivals,
                                          author_id=event.author_id, from_created=True))
            new_customer_turn = True
    elif event.kind == Kind.MESSAGE:
        role = event.author_role
        if (role == common_pb2.AGENT and resolution is not None and resolution.reply
                and _same_text(event.body, resolution.reply)):
            role = common_pb2.AI  # our own reply, posted back through the tenant's helpdesk user
        replaced = False
        if role == common_pb2.CUSTOMER:
            kept = [t for t in state.turns if not (t.from_created and _same_text(t.text, event.body))]
            replaced = len(kept) != len(state.turns)
            state.turns = kept
        state.turns.append(TurnRecord(event.event_id, role, event.body, at, state.arrivals, event.internal,
                                      event.decision, event.action, event.author_id,
                                      action_result=event.action_result))
        if not event.internal:
            if role == common_pb2.CUSTOMER and not replaced:
                confirmed = resolution is not None and is_confirmation(event.body)
                new_customer_turn = not confirmed  # "thanks, that worked" needs no new answer
                if resolution is not None:
                    outcome(Outcome.CUSTOMER_CONFIRMED if confirmed else Outcome.CUSTOMER_REPLIED)
            elif role == common_pb2.AGENT and resolution is not None:
                took_over()
    elif event.kind == Kind.STATUS_CHANGED:
        if at >= state.status_at:
            previous = state.status
            state.status, state.status_at = event.status, at
            if resolution is not None:
                if event.status in SOLVED_STATES and previous not in SOLVED_STATES:
                    outcome(Outcome.SOLVED)
                elif previous in SOLVED_STATES and event.status not in SOLVED_STATES:
                    outcome(Outcome.REOPENED)
    elif event.kind == Kind.ASSIGNED:
        state.assignee_id = event.assignee_id
        state.assignments.append([at, event.assignee_id])
        if event.assignee_id and resolution is not None:
            took_over()
    elif event.kind == Kind.CSAT:
        state.csat = event.csat_score
        if resolution is not None:
            outcome(Outcome.CSAT, event.csat_score)

    if new_customer_turn:
        emits.extend(_resolve_request(state, event, context))
    if state.solved and not state.ai_involved:
        emits.extend(_training_samples(state))
    return state, emits


def _resolve_request(state: Conversation, event, context: Context) -> list[Emit]:
    if not context.live or event.source == common_pb2.IMPORT or state.solved:
        return []
    if state.resolution is not None and state.resolution.human_took_over:
        return []
    turns = state.public_turns()
    if not turns or turns[-1].event_id != event.event_id:
        return []  # a late-arriving old message: the conversation has moved on
    request = resolver_pb2.ResolveRequest(tenant_id=state.tenant_id, ticket_id=state.ticket_id,
                                          conversation=scrubbed_turns(turns), request_id=event.event_id,
                                          category=state.category, source=event.source)
    request.requested_at.CopyFrom(event.occurred_at)
    return [Emit(topics.TICKETS_TO_RESOLVE, state.key, request)]


def scrub_action_result(text: str) -> str:
    """A recorded back-office answer with every string in it PII-scrubbed, as the reply after it is; an
    answer that is not JSON is dropped (the sample then teaches header and reply in one)."""
    if not text:
        return ""
    try:
        answer = json.loads(text)
    except ValueError:
        return ""

    def clean(value):
        if isinstance(value, str):
            return scrub(value)
        if isinstance(value, list):
            return [clean(v) for v in value]
        if isinstance(value, dict):
            return {k: clean(v) for k, v in value.items()}
        return value

    return json.dumps(clean(answer), ensure_ascii=False, sort_keys=True)


def _training_samples(state: Conversation) -> list[Emit]:
    turns = state.public_turns()
    agent_positions = [i for i, t in enumerate(turns) if t.role == common_pb2.AGENT]
    emits = []
    for index in agent_positions:
        turn = turns[index]
        if turn.event_id in state.sampled_turns:
            continue
        context = turns[:index]
        if not any(t.role == common_pb2.CUSTOMER for t in context):
            continue  # an agent writing first has nothing to answer
        state.sampled_turns.append(turn.event_id)
        sample = training_pb2.TrainingSample(
            sample_id=sample_id(state.tenant_id, state.ticket_id, 0, turn.event_id), tenant_id=state.tenant_id,
            ticket_id=state.ticket_id, context=scrubbed_turns(context), reply=scrub(turn.text),
            decision=infer_decision(turn, index == agent_positions[-1],
                                    _handed_over(state, turn, turns[index + 1] if index + 1 < len(turns) else None)),
            action=scrub(turn.action), action_result=scrub_action_result(turn.action_result),
            category=state.category, turn_index=index)
        if turn.at:
            sample.occurred_at.FromNanoseconds(int(turn.at * 1e9))
        emits.append(Emit(topics.TRAINING_SAMPLES, state.key, sample))
    return emits
