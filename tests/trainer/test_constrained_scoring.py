"""Constrained header decoding on a real model (the offline base model): every answer starts with one of
the headers there are, its probability is a real probability, and the headers are tokenized as the
trainer tokenized them inside whole targets."""

from __future__ import annotations

import math

from clonedesk.core.constrained_generation import header_constraint
from clonedesk.core.domain.conversation_format import DECISIONS_BY_NAME, format_target, parse_target
from clonedesk.core.domain.decision_header import action_call_name, history_action_names
from clonedesk.trainer.adapters.lora import generate_samples, generate_targets, load_model
from clonedesk.v1 import common_pb2


def test_headers_are_token_prefixes_of_whole_targets(base_model_dir):
    """The trie is built from headers tokenized alone: that must be how the trainer tokenized them
    inside whole targets, or constrained decoding would force token sequences never trained on."""
    _, tokenizer = load_model(str(base_model_dir), None)
    constraint = header_constraint(tokenizer, ["FindHotel", "ReserveHotel"])
    assert constraint is not None
    encode = lambda text: tokenizer(text, add_special_tokens=False)["input_ids"]  # noqa: E731
    for decision, action in ((common_pb2.RESOLVE, ""), (common_pb2.ASK, ""), (common_pb2.ESCALATE, ""),
                             (common_pb2.ACTION, "FindHotel(city=Paris)"),
                             (common_pb2.ESCALATE, "ReserveHotel(hotel=Ibis)")):
        target = encode(format_target(decision, action, "Sure, here it is.") + tokenizer.eos_token)
        assert constraint.header_length(target) > 0, (decision, action)


def test_constrained_answers_always_have_a_valid_header(base_model_dir, sgd_dir):
    from clonedesk.ingest.adapters.sgd_history import tenant_samples

    samples = tenant_samples(sgd_dir / "train_Hotels_2.jsonl", "hotels-2", limit=6)[:16]
    names = history_action_names(tenant_samples(sgd_dir / "train_Hotels_2.jsonl", "hotels-2", limit=40))
    assert names
    model, tokenizer = load_model(str(base_model_dir), None)  # untrained: it would not write headers alone
    free = [parse_target(t) for t in generate_targets(model, tokenizer, samples, max_new_tokens=24)]
    constrained = generate_samples(model, tokenizer, samples, max_new_tokens=24, action_names=names)
    for answer in constrained:
        assert answer.header_logprob is not None and answer.header_logprob <= 0.0
        assert 0.0 < math.exp(answer.header_logprob) <= 1.0
        header = answer.text.lstrip()
        assert header.startswith("[decision="), answer.text
        turn = parse_target(answer.text)
        assert turn.decision in DECISIONS_BY_NAME.values()
        if header.startswith("[decision=ACTION"):
            assert action_call_name(turn.action) in names
    # The constraint is what makes the difference on a model that never learnt the format.
    readable_free = sum(1 for t in free if t.reply != "" and t.decision != common_pb2.ESCALATE)
    assert sum(1 for a in constrained if a.text.lstrip().startswith("[decision=")) == len(samples) >= readable_free


def test_scoring_writes_a_calls_reply_after_its_recorded_result(zoo):
    """An adapter trained on results is scored as the resolver serves it: header first, then, where it
    called what the agent called, the reply after the recorded result (the zoo's omega adapter names
    the hotel of the result it read)."""
    from clonedesk.core.adapters import answers_from_results
    from clonedesk.trainer.adapters.evaluation import score_model
    from clonedesk.v1 import training_pb2
    from tests.resolver.conftest import ACTION_CALL, ACTION_TENANT, CUSTOMER_LINES, action_result, conversation, hotel_reply

    adapter = zoo.adapters[(ACTION_TENANT, 1)]
    assert answers_from_results(adapter)
    samples = [training_pb2.TrainingSample(sample_id=f"s{i}", tenant_id=ACTION_TENANT, ticket_id=f"t{i}",
                                           context=conversation(CUSTOMER_LINES[i]), decision=common_pb2.ACTION,
                                           action=ACTION_CALL, reply=hotel_reply(hotel),
                                           action_result=action_result(hotel))
               for i, hotel in enumerate(["Savoy", "Ritz", "Ritz", "Savoy"])]
    turns = score_model(str(zoo.base_model), adapter, samples, max_new_tokens=24)
    assert [(t.predicted_decision, t.predicted_action) for t in turns] == [(common_pb2.ACTION, ACTION_CALL)] * 4
    assert [t.predicted_reply for t in turns] == [s.reply for s in samples]
    # without a recorded result there is nothing to write the reply from: the header alone is scored
    bare = score_model(str(zoo.base_model), adapter, [training_pb2.TrainingSample(
        sample_id="b", tenant_id=ACTION_TENANT, ticket_id="b", context=conversation(CUSTOMER_LINES[0]),
        decision=common_pb2.ACTION, action=ACTION_CALL, reply="x")], max_new_tokens=24)
    assert bare[0].predicted_reply == ""
