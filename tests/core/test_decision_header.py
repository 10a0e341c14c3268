"""The constrained decision header (core.domain.decision_header), on a real tokenizer and on a toy one."""

from types import SimpleNamespace

from clonedesk.core.domain.conversation_format import format_target
from clonedesk.core.domain.decision_header import (HeaderConstraint, decision_prefix, header_logprob, header_texts,
                                            history_action_names)
from clonedesk.v1 import common_pb2


def test_header_texts_are_the_four_decisions_and_the_tenants_calls():
    texts = header_texts(["FindHotel", "ReserveHotel"])
    assert "[decision=RESOLVE]" in texts and "[decision=ASK]" in texts and "[decision=ESCALATE]" in texts
    assert "[decision=ACTION action=FindHotel(" in texts and "[decision=ACTION action=ReserveHotel(" in texts
    assert not any("ACTION]" in t for t in texts)  # an ACTION always names a call


def test_history_action_names_are_the_calls_agents_made():
    samples = [SimpleNamespace(decision=common_pb2.ACTION, action="FindHotel(city=Paris, stars=4)"),
               SimpleNamespace(decision=common_pb2.ESCALATE, action="ReserveHotel(hotel=X)"),
               SimpleNamespace(decision=common_pb2.RESOLVE, action=""),
               SimpleNamespace(decision=common_pb2.ACTION, action="FindHotel(city=Rome)")]
    assert history_action_names(samples) == ["FindHotel", "ReserveHotel"]


def test_decision_prefix_stops_where_the_decision_is_fixed():
    assert decision_prefix(format_target(common_pb2.ASK, "", "")) == "[decision=ASK]"
    assert decision_prefix(format_target(common_pb2.ACTION, "FindHotel(city=Paris)", "")) == \
        "[decision=ACTION action=FindHotel("


def _char_encode(text):
    return [ord(c) for c in text]


def test_the_trie_allows_only_valid_headers_and_frees_the_rest():
    constraint = HeaderConstraint.for_tokenizer(_char_encode, ["Find", "Fetch"])
    assert constraint.allowed([]) == [ord("[")]
    prefix = _char_encode("[decision=")
    assert sorted(constraint.allowed(prefix)) == sorted({ord("R"), ord("A"), ord("E")})
    action = _char_encode("[decision=ACTION action=F")
    assert sorted(constraint.allowed(action)) == [ord("e"), ord("i")]
    whole = _char_encode("[decision=ACTION action=Find(")
    assert constraint.allowed(whole) is None  # parameters and reply are free
    assert constraint.allowed(whole + _char_encode("city=X)]\nok")) is None
    assert constraint.header_length(whole + _char_encode("city=X)]")) == len(whole)
    assert constraint.header_length(_char_encode("[decision=ASK]\nWhich city?")) == len("[decision=ASK]")
    assert constraint.header_length(_char_encode("hello")) == 0


def test_header_logprob_sums_the_header_tokens():
    assert abs(header_logprob([-0.1, -0.2, -3.0], 2) + 0.3) < 1e-9
    assert header_logprob([-0.1], 0) is None
    assert header_logprob([-0.1], 3) is None
