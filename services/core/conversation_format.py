"""How a conversation and an agent's turn are written as model text: the one format the trainer teaches
and the resolver parses (pure; no I/O).

The target an adapter learns is a short structured header, then the reply:

    [decision=ACTION action=ReserveRestaurant(city=San Jose, time=7 pm)]
    Your table is booked for 7 pm.

so the resolver can act on the decision and the evaluation can score it. `escalate` is a decision.
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


def chat_messages(conversation, system_prompt: str | None = None) -> list[dict[str, str]]:
    """The conversation (Turn messages, or (role, text) pairs) as chat-template messages.

    Customer turns are the `user`; agent and AI turns the `assistant`, so the adapter speaks as the agent.
    """
    messages = [{"role": "system", "content": system_prompt}] if system_prompt else []
    for turn in conversation:
        role, text = (turn.role, turn.text) if hasattr(turn, "role") else turn
        if role == common_pb2.SYSTEM:
            continue
        messages.append({"role": "user" if role == common_pb2.CUSTOMER else "assistant", "content": text})
    return messages


def format_target(decision: int, action: str, reply: str) -> str:
    name = DECISION_NAMES.get(decision, "RESOLVE")
    header = f"[decision={name}" + (f" action={action.strip()}" if action and action.strip() else "") + "]"
    return f"{header}\n{reply.strip()}"


def parse_target(text: str) -> AgentTurn:
    """Read back what a model generated. A missing or unknown header means ESCALATE: an answer we cannot
    interpret must reach a human, never the customer."""
    match = _HEADER.match(text)
    if not match or match.group("decision") not in DECISIONS_BY_NAME:
        return AgentTurn(common_pb2.ESCALATE, "", text.strip())
    return AgentTurn(DECISIONS_BY_NAME[match.group("decision")], (match.group("action") or "").strip(),
                     text[match.end():].strip())
