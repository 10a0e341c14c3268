"""A customer who asks for a person gets one: the resolver escalates such a turn whatever the model
would answer (pure; English phrasings for now).

Matched on the customer's latest message: asking to talk or speak to, or be put through to, a person,
human, (live / real / human) agent, representative, operator or manager; "human please"; "real person".
The word "agent" alone is not enough ("your agent told me…"): it needs the asking around it.
"""

from __future__ import annotations

import re

_PERSON = r"(?:a |an |the |some |your )?(?:real |actual |live |human |customer[- ]service |support )?" \
          r"(?:person|human(?: being)?|agent|representative|rep|operator|manager|supervisor|somebody|someone)"
_ASKING = (
    rf"\b(?:talk|speak|chat)(?:ing)? (?:to|with) {_PERSON}\b",
    rf"\b(?:connect|transfer|put) me (?:through |over )?(?:to|with) {_PERSON}\b",
    rf"\b(?:get|want|need|give) me {_PERSON}\b",
    rf"\b(?:i (?:want|need|would like|'d like)|can i (?:get|have)|let me (?:talk|speak) to) {_PERSON}\b",
    r"\bhuman (?:agent|being|please)\b",
    r"\b(?:real|actual|live) (?:person|human|agent)\b",
    r"\b(?:agent|representative|operator|human) please\b",
    r"\bnot (?:a |talk(?:ing)? to a )?(?:bot|robot|machine)\b",
)
_PATTERN = re.compile("|".join(f"(?:{p})" for p in _ASKING), re.IGNORECASE)


def asks_for_a_human(text: str) -> bool:
    """Does this customer message ask for a human?"""
    return bool(_PATTERN.search(" ".join(text.replace("’", "'").split())))


def latest_customer_text(conversation) -> str:
    """The customer's latest message in a conversation of Turn messages ("" if none)."""
    from clonedesk.v1 import common_pb2

    for turn in reversed(list(conversation)):
        if turn.role == common_pb2.CUSTOMER:
            return turn.text
    return ""
