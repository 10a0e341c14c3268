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

from clonedesk.core.domain.action_calls import ActionAnswer, result_text
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
# 16, not 8: what an agent does can hinge on what it did 10–12 turns earlier (SGD's bank agent offers a
# transfer once per dialogue); bench/quality.py, Banks_1: +11.8 points over retrieval against +9.5 at 8.
DEFAULT_CONTEXT_TURNS = 16


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


# The role of the turn that shows a back-office call's result to the model (core.domain.action_calls.result_text).
TOOL_ROLE = "tool"


def after_action_messages(messages: list[dict[str, str]], decision: int, action: str,
                          answer: ActionAnswer) -> list[dict[str, str]]:
    """The prompt of the reply written after a call was carried out: the prompt of the turn, the model's
    own header, then the result as a tool turn. The resolver sends exactly this; the trainer teaches it."""
    return list(messages) + [{"role": "assistant", "content": format_target(decision, action, "")},
                             {"role": TOOL_ROLE, "content": result_text(answer)}]


def reply_after_action(generated: str) -> str:
    """The reply the model wrote after a call's result; a header it wrote anyway is not for the customer."""
    text = generated.strip()
    return parse_target(text).reply if text.startswith("[decision=") else text


@dataclass(frozen=True)
class PromptTarget:
    """One thing a model learns: after `messages`, write `target`; its first `header` characters fix
    the decision ("" for a reply after a tool turn)."""

    messages: list[dict[str, str]]
    target: str
    header: str


def prompt_targets(messages: list[dict[str, str]], decision: int, action: str, reply: str,
                   action_result: str = "") -> list[PromptTarget]:
    """What an agent's turn teaches. A call with a recorded ok result teaches two things: the header
    alone (the resolver then carries the call out) and, after the result, the reply; any other turn the
    header and its reply in one."""
    header = format_target(decision, action, "")
    answer = _ok_answer(action_result) if decision == common_pb2.ACTION and action else None
    if answer is None:
        return [PromptTarget(list(messages), format_target(decision, action, reply), header)]
    return [PromptTarget(list(messages), header, header),
            PromptTarget(after_action_messages(messages, decision, action, answer), reply.strip(), "")]


def has_action_result(sample) -> bool:
    """Does a TrainingSample record an ok result of its call (so it teaches the reply after it)?"""
    return sample.decision == common_pb2.ACTION and bool(sample.action) and _ok_answer(sample.action_result) is not None


def _ok_answer(action_result: str) -> ActionAnswer | None:
    if not action_result:
        return None
    try:
        answer = ActionAnswer.from_json(action_result)
    except ValueError:
        return None
    return answer if answer.ok else None


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
