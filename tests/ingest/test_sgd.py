import json

import pytest

from clonedesk.ingest.domain.events import Kind, WrongShape
from clonedesk.ingest.domain.pii import scrub
from clonedesk.core.domain.sgd import decide
from clonedesk.ingest.domain.sgd import normalise_dialogue
from clonedesk.v1 import common_pb2


def frame(*acts, call=None):
    result = {"actions": [{"act": a, "slot": "", "values": []} for a in acts], "service": "Banks_1"}
    if call:
        result["service_call"] = call
    return result


@pytest.mark.parametrize("frames,decision,action", [
    ([frame("OFFER", call={"method": "CheckBalance", "parameters": {"account_type": "checking"}})],
     common_pb2.ACTION, "CheckBalance(account_type=checking)"),
    ([frame("NOTIFY_FAILURE", call={"method": "TransferMoney", "parameters": {"amount": "10", "to": "Amir"}})],
     common_pb2.ESCALATE, "TransferMoney(amount=10, to=Amir)"),
    ([frame("NOTIFY_SUCCESS", call={"method": "TransferMoney", "parameters": {"amount": "10"}})],
     common_pb2.ACTION, "TransferMoney(amount=10)"),
    ([frame("NOTIFY_FAILURE")], common_pb2.ESCALATE, ""),
    ([frame("REQUEST")], common_pb2.ASK, ""),
    ([frame("CONFIRM", "CONFIRM")], common_pb2.ASK, ""),
    ([frame("OFFER_INTENT")], common_pb2.ASK, ""),
    ([frame("OFFER", "REQUEST")], common_pb2.ASK, ""),
    ([frame("INFORM")], common_pb2.RESOLVE, ""),
    ([frame("NOTIFY_SUCCESS")], common_pb2.RESOLVE, ""),
    ([frame("REQ_MORE")], common_pb2.RESOLVE, ""),
    ([frame("GOODBYE")], common_pb2.RESOLVE, ""),
])
def test_decision_rules(frames, decision, action):
    assert decide(frames) == (decision, action)


def test_a_real_dialogue_becomes_a_solved_ticket(sgd_dir):
    dialogue = json.loads((sgd_dir / "train_Banks_1.jsonl").open().readline())
    events = normalise_dialogue("bank", dialogue)
    turns = dialogue["turns"]
    assert events[0].kind == Kind.TICKET_CREATED and events[-1].kind == Kind.STATUS_CHANGED
    assert events[-1].status == common_pb2.SOLVED
    messages = events[1:-1]
    assert [m.body for m in messages] == [t["utterance"] for t in turns]
    assert [m.author_role for m in messages] == [
        common_pb2.CUSTOMER if t["speaker"] == "USER" else common_pb2.AGENT for t in turns]
    assert all(m.decision == 0 for m in messages if m.author_role == common_pb2.CUSTOMER)
    assert all(m.decision != 0 for m in messages if m.author_role == common_pb2.AGENT)
    times = [e.occurred_at.ToNanoseconds() for e in events]
    assert times == sorted(times) and len(set(times)) == len(times)
    assert all(e.ticket_id == dialogue["dialogue_id"] and e.tenant_id == "bank" for e in events)


def test_reimport_gives_identical_events_and_other_tenants_other_ids(sgd_dir):
    dialogue = json.loads((sgd_dir / "train_Banks_1.jsonl").open().readline())
    first, again = normalise_dialogue("bank", dialogue), normalise_dialogue("bank", dialogue)
    assert [e.SerializeToString(deterministic=True) for e in first] == [
        e.SerializeToString(deterministic=True) for e in again]
    assert len({e.event_id for e in first}) == len(first)
    assert not {e.event_id for e in first} & {e.event_id for e in normalise_dialogue("other", dialogue)}


@pytest.mark.parametrize("bad", [{}, {"dialogue_id": "1", "turns": []},
                                 {"dialogue_id": "1", "turns": [{"speaker": "BOT", "utterance": "x"}]}, []])
def test_wrong_shapes_are_reported(bad):
    with pytest.raises(WrongShape):
        normalise_dialogue("bank", bad)


def test_real_histories_give_every_decision_and_escalate_exactly_at_failures(sgd_dir):
    decisions = set()
    failures = 0
    for path in sorted(sgd_dir.glob("train_*.jsonl")):
        for line in path.read_text().splitlines()[:300]:
            dialogue = json.loads(line)
            events = normalise_dialogue("t", dialogue)[1:-1]
            for turn, event in zip(dialogue["turns"], events):
                if turn["speaker"] != "SYSTEM":
                    continue
                decisions.add(event.decision)
                failed = any(a["act"] == "NOTIFY_FAILURE" for f in turn["frames"] for a in f["actions"])
                failures += failed
                assert (event.decision == common_pb2.ESCALATE) == failed
    assert decisions == {common_pb2.RESOLVE, common_pb2.ASK, common_pb2.ACTION, common_pb2.ESCALATE}
    assert failures > 0


def test_a_calls_recorded_results_travel_with_its_turn_into_the_training_sample(sgd_dir):
    from clonedesk.core.domain.action_calls import ActionAnswer, parse_action_call
    from clonedesk.ingest.domain.sgd import dialogue_samples

    dialogue = json.loads((sgd_dir / "train_Hotels_2.jsonl").open().readline())
    events = normalise_dialogue("hotels", dialogue)[1:-1]
    calls = [(turn, event) for turn, event in zip(dialogue["turns"], events) if event.decision == common_pb2.ACTION]
    assert calls
    for turn, event in calls:
        (frame_with_call,) = [f for f in turn["frames"] if f.get("service_call")]
        answer = ActionAnswer.from_json(event.action_result)
        assert answer.ok and list(answer.results) == frame_with_call["service_results"]
        call = parse_action_call(event.action)
        assert (call.name, call.parameters) == (frame_with_call["service_call"]["method"],
                                                frame_with_call["service_call"]["parameters"])
    assert all(not e.action_result for e in events if e.decision != common_pb2.ACTION)
    samples = [s for s in dialogue_samples("hotels", dialogue) if s.decision == common_pb2.ACTION]
    assert len(samples) == len(calls)
    # the sample's copy is PII-scrubbed as its reply is
    result = ActionAnswer.from_json(samples[0].action_result).results[0]
    recorded = calls[0][0]["frames"][0]["service_results"][0]
    assert result == {key: scrub(value) for key, value in recorded.items()}


def test_results_are_scrubbed_value_by_value_and_stay_json():
    from clonedesk.ingest.domain.conversation import scrub_action_result

    text = json.dumps({"ok": True, "results": [{"email": "ann@example.com", "n": 2, "tags": ["call 415-555-0100"]}]})
    cleaned = json.loads(scrub_action_result(text))
    assert cleaned["results"][0]["email"] == scrub("ann@example.com") != "ann@example.com"
    assert cleaned["results"][0]["n"] == 2 and "555-0100" not in cleaned["results"][0]["tags"][0]
    assert scrub_action_result("not json") == "" and scrub_action_result("") == ""


def test_values_with_commas_are_quoted_so_the_call_reads_back():
    from clonedesk.core.domain.action_calls import parse_action_call

    _, action = decide([frame("OFFER", call={"method": "FindHouse", "parameters": {"where_to": "Sydney, Australia"}})])
    assert action == 'FindHouse(where_to="Sydney, Australia")'
    assert parse_action_call(action).parameters == {"where_to": "Sydney, Australia"}
