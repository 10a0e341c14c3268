"""The call text of the decision header and the tool turn of a call's result."""

from __future__ import annotations

import json

import pytest
from clonedesk.core.domain.action_calls import (ActionAnswer, ActionCall, MalformedCall, format_action_call,
                                         parse_action_call, result_text)
from clonedesk.core.domain.conversation_format import (after_action_messages, format_target, has_action_result,
                                                parse_target, prompt_targets)
from clonedesk.v1 import common_pb2, training_pb2
from hypothesis import given
from hypothesis import strategies as st

KEYS = st.from_regex(r"[a-z_][a-z0-9_]{0,12}", fullmatch=True)


@given(st.from_regex(r"[A-Z][A-Za-z]{0,15}", fullmatch=True), st.dictionaries(KEYS, st.text(max_size=40), max_size=5))
def test_every_call_reads_back_as_it_was_written(name, parameters):
    text = format_action_call(name, parameters)
    assert parse_action_call(text) == ActionCall(name, parameters)
    # and it stays one header: the header's own parser gets the call back whole
    header = format_target(common_pb2.ACTION, text, "Done.")
    assert parse_target(header).action == text and "\n" not in text


@pytest.mark.parametrize("parameters", [
    {"where_to": "Sydney, Australia", "number_of_adults": "1"},
    {"note": 'say "hi" (twice)', "empty": ""},
    {"padded": "  spaces  ", "brackets": "a]b[c", "equals": "x=y"},
])
def test_values_with_commas_quotes_and_spaces_round_trip(parameters):
    assert parse_action_call(format_action_call("Find", parameters)).parameters == parameters


def test_plain_values_stay_bare_and_older_histories_still_read():
    assert format_action_call("ReserveRestaurant", {"city": "San Jose", "time": "7 pm"}) == \
        "ReserveRestaurant(city=San Jose, time=7 pm)"
    # written before values were quoted: the comma inside a value is not a separator
    legacy = parse_action_call("BookHouse(where_to=Sydney, Australia, number_of_adults=1)")
    assert legacy.parameters == {"where_to": "Sydney, Australia", "number_of_adults": "1"}
    assert parse_action_call("CheckBalance()") == ActionCall("CheckBalance", {})


@pytest.mark.parametrize("text", ["", "CheckBalance", "Find(city=Paris", "Find(Paris)", "(city=Paris)",
                                  'Find(city="Paris)', "Find(city=Paris, city=Lyon)", 'Find(city="Paris" x)',
                                  "Find(city=Paris) and more", "1Find(a=b)"])
def test_a_malformed_call_is_refused(text):
    with pytest.raises(MalformedCall):
        parse_action_call(text)


def test_answers_have_the_contracts_shape():
    ok = ActionAnswer.from_json('{"ok": true, "results": [{"hotel": "Savoy"}]}')
    assert ok == ActionAnswer(True, ({"hotel": "Savoy"},))
    assert ActionAnswer.from_json(ok.to_json()) == ok
    failed = ActionAnswer.from_json('{"ok": false, "error": "no rooms"}')
    assert (failed.ok, failed.error) == (False, "no rooms")
    for bad in ['[]', '{"ok": "yes"}', '{"ok": true, "results": {"a": 1}}', '{"ok": true, "results": [1]}', "x"]:
        with pytest.raises(ValueError):
            ActionAnswer.from_json(bad)


def test_the_tool_turn_shows_the_count_and_the_first_results():
    answer = ActionAnswer(True, tuple({"hotel": f"H{i}", "rating": "4.2"} for i in range(5)))
    assert result_text(answer).splitlines() == ["ok: 5 results", "1. hotel=H0, rating=4.2", "2. hotel=H1, rating=4.2"]
    assert result_text(ActionAnswer(True, ())) == "ok: 0 results"
    assert result_text(ActionAnswer(False, error="card declined")) == "failed: card declined"


def _sample(decision, action, reply, result=""):
    return training_pb2.TrainingSample(tenant_id="t", decision=decision, action=action, reply=reply,
                                       action_result=result,
                                       context=[common_pb2.Turn(role=common_pb2.CUSTOMER, text="Book it")])


def test_a_call_with_its_result_teaches_the_header_then_the_reply_after_the_result():
    result = ActionAnswer(True, ({"hotel": "Savoy"},)).to_json()
    messages = [{"role": "user", "content": "Book it"}]
    header_only, after = prompt_targets(messages, common_pb2.ACTION, "Book(day=Friday)", "The Savoy is yours.", result)
    assert header_only.messages == messages and header_only.target == "[decision=ACTION action=Book(day=Friday)]\n"
    assert after.target == "The Savoy is yours." and after.header == ""
    assert after.messages == after_action_messages(messages, common_pb2.ACTION, "Book(day=Friday)",
                                                   ActionAnswer.from_json(result))
    assert [m["role"] for m in after.messages] == ["user", "assistant", "tool"]
    assert after.messages[-1]["content"] == "ok: 1 result\n1. hotel=Savoy"
    assert has_action_result(_sample(common_pb2.ACTION, "Book(day=Friday)", "x", result))


@pytest.mark.parametrize("decision, action, result", [
    (common_pb2.ACTION, "Book(day=Friday)", ""),  # no result recorded (a webhook's history)
    (common_pb2.ACTION, "Book(day=Friday)", json.dumps({"ok": False, "error": "full"})),
    (common_pb2.ACTION, "Book(day=Friday)", "not json"),
    (common_pb2.RESOLVE, "", json.dumps({"ok": True, "results": []})),
])
def test_any_other_turn_teaches_header_and_reply_in_one(decision, action, result):
    (only,) = prompt_targets([{"role": "user", "content": "x"}], decision, action, "Done.", result)
    assert only.target == format_target(decision, action, "Done.")
    assert not has_action_result(_sample(decision, action, "Done.", result))
