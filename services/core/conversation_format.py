"""How a conversation and an agent's turn are written as model text: the one format the trainer teaches
and the resolver parses (pure; no I/O).

The target an adapter learns is a short structured header, then the reply:

    [decision=ACTION action=ReserveRestaurant(city=San Jose, time=7 pm)]
    Your table is booked for 7 pm.

so the resolver can act on the decision and the evaluation can score it. `escalate` is a decision.

Every prompt starts with the tenant's short system prompt (`system_prompt`), the same in training and
serving; it also keeps an instruct model's own default persona ("You are SmolLM…") out of the prompt.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from clonedesk.v1 import common_pb2

ROLE_NAMES = {common_pb2.CUSTOMER: "customer", common_pb2.AGENT: "agent", common_pb2.AI: "agent",
              common_pb2.SYSTEM: "system"}
DECISION_NAMES = {v: k for k, v in common_pb2.Decision.items() if v != common_pb2.DECISION_UNSPECIFIED}
DECISIONS_BY_NAME = {k: v for v, k in DECISION_NAMES.items()}

_HEADER = re.compile(r"^\s*\[decision=(?P<decision>[A-Z_]+)(?: action=(?P<action>[^\]\n]*))?\]\s*\n?", re.DOTALL)


@dataclass(frozen=True)
class AgentTurn:
    decision: int  # common_pb2.Decision value
    action: str
    reply: str


# Turns of conversation before the agent's turn that the model reads, in training and serving alike.
DEFAULT_CONTEXT_TURNS = 8


def system_prompt(tenant_id: str) -> str:
    """The system prompt of a tenant's model: who is speaking and the shape of the answer."""
    return (f"You are a support agent of {tenant_id}. Answer with [decision=RESOLVE|ASK|ACTION|ESCALATE"
            " action=Call(...)], then the reply to the customer.")


def chat_messages(conversation, system_prompt: str | None = None,
                  max_turns: int | None = None) -> list[dict[str, str]]:
    """The conversation (Turn messages, or (role, text) pairs) as chat-template messages, the latest
    `max_turns` of them if given, after the system prompt if given.

    Customer turns are the `user`; agent and AI turns the `assistant`, so the adapter speaks as the agent.
    """
    turns = []
    for turn in conversation:
        role, text = (turn.role, turn.text) if hasattr(turn, "role") else turn
        if role == common_pb2.SYSTEM:
            continue
        turns.append({"role": "user" if role == common_pb2.CUSTOMER else "assistant", "content": text})
    if max_turns is not None:
        turns = turns[-max_turns:] if max_turns > 0 else []
    return ([{"role": "system", "content": system_prompt}] if system_prompt else []) + turns


def format_target(decision: int, action: str, reply: str) -> str:
    name = DECISION_NAMES.get(decision, "RESOLVE")
    header = f"[decision={name}" + (f" action={action.strip()}" if action and action.strip() else "") + "]"
    return f"{header}\n{reply.strip()}"


def well_formed(text: str) -> bool:
    """Did the model write a header we can read (a known decision)? Otherwise parse_target escalates."""
    match = _HEADER.match(text)
    return bool(match) and match.group("decision") in DECISIONS_BY_NAME


def parse_target(text: str) -> AgentTurn:
    """Read back what a model generated. A missing or unknown header means ESCALATE: an answer we cannot
    interpret must reach a human, never the customer."""
    match = _HEADER.match(text)
    if not match or match.group("decision") not in DECISIONS_BY_NAME:
        return AgentTurn(common_pb2.ESCALATE, "", text.strip())
    return AgentTurn(DECISIONS_BY_NAME[match.group("decision")], (match.group("action") or "").strip(),
                     text[match.end():].strip())
