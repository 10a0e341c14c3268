"""The human-request rule: a customer asking for a person is always escalated."""

from __future__ import annotations

import pytest

from clonedesk.resolver.domain.human_request import asks_for_a_human, latest_customer_text
from clonedesk.v1 import common_pb2


@pytest.mark.parametrize("text", [
    "Can I talk to a person?", "talk to a person", "human agent please", "HUMAN PLEASE",
    "I want to speak with a real person now", "Please connect me to a representative.",
    "put me through to a manager", "I'd like to speak to someone from customer service",
    "Let me talk to an actual human", "agent please", "I need a live agent", "Can I have a human?",
    "I’d like to talk to a human being", "you are not a bot are you? get me a human",
    "Transfer me to an operator",
])
def test_requests_for_a_human_are_recognised(text):
    assert asks_for_a_human(text)


@pytest.mark.parametrize("text", [
    "I'd like to book a table for 2 people", "The agent at the desk told me it was fine",
    "How many persons can the room hold?", "Find me a house in Paris for one person",
    "Is the humane society near the hotel?", "I want to transfer money to my savings account",
    "Who is the manager of that restaurant?", "Thanks, that's all",
])
def test_ordinary_messages_are_not_requests_for_a_human(text):
    assert not asks_for_a_human(text)


def test_the_latest_customer_message_is_the_one_read():
    turns = [common_pb2.Turn(role=common_pb2.CUSTOMER, text="talk to a person"),
             common_pb2.Turn(role=common_pb2.AGENT, text="Sure, one moment"),
             common_pb2.Turn(role=common_pb2.CUSTOMER, text="actually never mind, book it")]
    assert latest_customer_text(turns) == "actually never mind, book it"
    assert latest_customer_text([]) == ""


def test_a_request_for_a_human_escalates_whatever_the_model_said():
    from clonedesk.resolver.domain.decisions import HUMAN_REQUESTED, decide

    sure = decide("[decision=RESOLVE]\nAll done!", 0.99, 0.5, human_requested=True)
    assert sure.escalated and sure.decision == common_pb2.ESCALATE and sure.reply == ""
    assert sure.reason == HUMAN_REQUESTED
    assert not decide("[decision=RESOLVE]\nAll done!", 0.99, 0.5).escalated
