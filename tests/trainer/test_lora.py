"""What an adapter is trained on: the prompt is the chat template of the conversation, and the loss
falls only on the agent's decision header and reply (then eos)."""

from __future__ import annotations

import pytest
from transformers import AutoTokenizer

from clonedesk.core.conversation_format import format_target, parse_target
from clonedesk.trainer.adapters.base_model import build_base_model, default_texts
from clonedesk.trainer.adapters.lora import IGNORE, LoraTrainingConfig, encode_sample, make_batches, prompt_text
from clonedesk.v1 import common_pb2, training_pb2


@pytest.fixture(scope="module")
def tokenizer(tmp_path_factory):
    path = build_base_model(tmp_path_factory.mktemp("tiny") / "base", default_texts(dialogues_per_file=3),
                            steps=1, progress=False)
    return AutoTokenizer.from_pretrained(path)


def _sample(turns=3):
    sample = training_pb2.TrainingSample(sample_id="t:1:5", tenant_id="t", ticket_id="1", reply="Booked for 7 pm.",
                                         decision=common_pb2.ACTION, action="ReserveRestaurant(time=7 pm)")
    for i in range(turns):
        sample.context.add(role=common_pb2.CUSTOMER, text=f"I want a table, message {i}")
        sample.context.add(role=common_pb2.AGENT, text="Which time?")
    sample.context.add(role=common_pb2.CUSTOMER, text="7 pm please")
    return sample


def test_loss_only_on_the_decision_header_and_reply(tokenizer):
    sample = _sample()
    encoded = encode_sample(tokenizer, sample, max_length=512)
    target_ids = [t for t in encoded.labels if t != IGNORE]
    prompt_ids = encoded.input_ids[: len(encoded.input_ids) - len(target_ids)]
    assert encoded.labels[: len(prompt_ids)] == [IGNORE] * len(prompt_ids)
    assert tokenizer.decode(prompt_ids) == prompt_text(tokenizer, sample.context)
    assert prompt_text(tokenizer, sample.context).endswith("7 pm please<|end|>\n<|assistant|>\n")
    target = tokenizer.decode(target_ids)
    assert target == format_target(sample.decision, sample.action, sample.reply) + tokenizer.eos_token
    turn = parse_target(tokenizer.decode(target_ids, skip_special_tokens=True))
    assert (turn.decision, turn.action, turn.reply) == (common_pb2.ACTION, sample.action, sample.reply)


def test_long_conversations_keep_their_latest_turns_and_whole_target(tokenizer):
    sample = _sample(turns=40)
    encoded = encode_sample(tokenizer, sample, max_length=96)
    assert len(encoded.input_ids) <= 96
    assert "7 pm please" in tokenizer.decode(encoded.input_ids)
    target_ids = [t for t in encoded.labels if t != IGNORE]
    assert tokenizer.decode(target_ids).endswith("Booked for 7 pm." + tokenizer.eos_token)


def test_batches_pad_without_loss_and_cover_the_samples(tokenizer):
    samples = [_sample(turns=n) for n in (1, 2, 5)]
    config = LoraTrainingConfig(batch_size=2, epochs=2, max_length=128)
    batches = make_batches(tokenizer, samples, config)
    assert len(batches) == 3  # ceil(2 epochs * 3 samples / 2)
    for batch in batches:
        padding = batch.attention_mask == 0
        assert (batch.labels[padding] == IGNORE).all()
        assert (batch.input_ids[padding] == tokenizer.pad_token_id).all()
    assert sum(b.tokens for b in batches) == sum(int(b.attention_mask.sum()) for b in batches) > 0
    again = make_batches(tokenizer, samples, config)
    assert all((a.input_ids == b.input_ids).all() for a, b in zip(batches, again))
