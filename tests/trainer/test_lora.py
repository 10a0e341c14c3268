"""What an adapter is trained on: the prompt is the tenant's system prompt and the latest turns through
the chat template, the loss falls only on the agent's decision header and reply (then eos); and the fast
loop computes the very loss of the model's own forward."""

from __future__ import annotations

import dataclasses

import pytest
import torch
from transformers import AutoTokenizer

from clonedesk.core.domain.conversation_format import format_target, parse_target, system_prompt
from clonedesk.core.prompt import prompt_token_ids
from clonedesk.core.tiny_model import build_base_model, default_texts
from clonedesk.trainer.adapters.lora import LoraTrainingConfig, load_base, lora_layers
from clonedesk.trainer.adapters.training_batches import (IGNORE, batch_order, encode_sample, make_batches,
                                                         sample_messages)
from clonedesk.trainer.adapters.training_loop import FrozenPrefix, batch_loss, lowest_trained_layer, train_on_batches
from clonedesk.v1 import common_pb2, training_pb2


@pytest.fixture(scope="module")
def base_dir(tmp_path_factory):
    return build_base_model(tmp_path_factory.mktemp("tiny") / "base", default_texts(dialogues_per_file=3),
                            steps=1, progress=False, layers=4)


@pytest.fixture(scope="module")
def tokenizer(base_dir):
    return AutoTokenizer.from_pretrained(base_dir)


def _sample(turns=3, tenant="acme"):
    sample = training_pb2.TrainingSample(sample_id="t:1:5", tenant_id=tenant, ticket_id="1", reply="Booked for 7 pm.",
                                         decision=common_pb2.ACTION, action="ReserveRestaurant(time=7 pm)")
    for i in range(turns):
        sample.context.add(role=common_pb2.CUSTOMER, text=f"I want a table, message {i}")
        sample.context.add(role=common_pb2.AGENT, text="Which time?")
    sample.context.add(role=common_pb2.CUSTOMER, text="7 pm please")
    return sample


def test_loss_only_on_the_decision_header_and_reply(tokenizer):
    sample = _sample()
    (encoded,) = encode_sample(tokenizer, sample, max_length=512)
    target_ids = [t for t in encoded.labels if t != IGNORE]
    prompt_ids = encoded.input_ids[: len(encoded.input_ids) - len(target_ids)]
    assert encoded.labels[: len(prompt_ids)] == [IGNORE] * len(prompt_ids)
    prompt = tokenizer.decode(prompt_ids)
    assert prompt.startswith(f"<|system|>\n{system_prompt('acme')}<|end|>\n<|user|>\n")
    assert prompt.endswith("7 pm please<|end|>\n<|assistant|>\n")
    target = tokenizer.decode(target_ids)
    assert target == format_target(sample.decision, sample.action, sample.reply) + tokenizer.eos_token
    turn = parse_target(tokenizer.decode(target_ids, skip_special_tokens=True))
    assert (turn.decision, turn.action, turn.reply) == (common_pb2.ACTION, sample.action, sample.reply)


def test_a_call_with_its_result_is_two_targets_the_header_then_the_reply_after_the_tool_turn(tokenizer):
    from clonedesk.core.domain.action_calls import ActionAnswer

    sample = _sample()
    sample.action_result = ActionAnswer(True, ({"restaurant": "Rustic House"},)).to_json()
    header, after = encode_sample(tokenizer, sample, max_length=512)
    header_target = tokenizer.decode([t for t in header.labels if t != IGNORE])
    assert header_target == format_target(sample.decision, sample.action, "") + tokenizer.eos_token
    assert header.header_tokens > 0 and after.header_tokens == 0
    prompt = tokenizer.decode([t for t, label in zip(after.input_ids, after.labels) if label == IGNORE])
    assert prompt.endswith("7 pm please<|end|>\n<|assistant|>\n[decision=ACTION action=ReserveRestaurant(time=7 pm)]\n"
                           "<|end|>\n<|tool|>\nok: 1 result\n1. restaurant=Rustic House<|end|>\n<|assistant|>\n")
    assert tokenizer.decode([t for t in after.labels if t != IGNORE]) == "Booked for 7 pm." + tokenizer.eos_token
    # the setting off: as a history without results, header and reply in one
    (single,) = encode_sample(tokenizer, sample, max_length=512, action_results=False)
    assert tokenizer.decode([t for t in single.labels if t != IGNORE]) == \
        format_target(sample.decision, sample.action, sample.reply) + tokenizer.eos_token


def test_context_turns_bound_the_prompt(tokenizer):
    sample = _sample(turns=10)
    three = tokenizer.decode(encode_sample(tokenizer, sample, max_length=512, context_turns=3)[0].input_ids)
    assert "message 9" in three and "message 8" not in three and system_prompt("acme") in three
    assert [m["role"] for m in sample_messages(sample, 3)] == ["system", "user", "assistant", "user"]


def test_long_conversations_keep_the_system_prompt_their_latest_turns_and_whole_target(tokenizer):
    sample = _sample(turns=40)
    (encoded,) = encode_sample(tokenizer, sample, max_length=200, context_turns=80)
    assert len(encoded.input_ids) <= 200
    text = tokenizer.decode(encoded.input_ids)
    assert system_prompt("acme") in text and "7 pm please" in text and "message 0" not in text
    target_ids = [t for t in encoded.labels if t != IGNORE]
    assert tokenizer.decode(target_ids).endswith("Booked for 7 pm." + tokenizer.eos_token)


def test_a_single_turn_longer_than_the_budget_keeps_its_end_and_the_system_prompt(tokenizer):
    messages = [{"role": "system", "content": "be brief"}, {"role": "user", "content": "word " * 300 + "THE END"}]
    ids = prompt_token_ids(tokenizer, messages, 60)
    assert len(ids) == 60
    text = tokenizer.decode(ids)
    assert text.startswith("<|system|>\nbe brief<|end|>\n") and text.endswith("THE END<|end|>\n<|assistant|>\n")


def test_batches_pad_without_loss_cover_the_samples_and_group_by_length(tokenizer):
    samples = [_sample(turns=n) for n in (1, 2, 5)]
    config = LoraTrainingConfig(batch_size=2, epochs=2, max_length=256)
    batches = make_batches(tokenizer, samples, config)
    assert len(batches) == 3  # ceil(2 epochs * 3 samples / 2)
    for batch in batches:
        padding = batch.attention_mask == 0
        assert (batch.labels[padding] == IGNORE).all()
        assert (batch.input_ids[padding] == tokenizer.pad_token_id).all()
        assert len(batch.sample_indices) == batch.input_ids.shape[0]
    again = make_batches(tokenizer, samples, config)
    assert all((a.input_ids == b.input_ids).all() for a, b in zip(batches, again))

    lengths = [10 * (i % 7) + i for i in range(64)]
    bucketed = batch_order(lengths, 8, 8, seed=1, bucketing=True)
    mixed = batch_order(lengths, 8, 8, seed=1, bucketing=False)
    assert sorted(i for b in bucketed for i in b) == list(range(64)) == sorted(i for b in mixed for i in b)

    def padding(order):
        return sum(max(lengths[i] for i in b) * len(b) - sum(lengths[i] for i in b) for b in order)
    assert padding(bucketed) < padding(mixed) / 2


def _peft(base_dir, layers_to_train):
    from peft import LoraConfig, get_peft_model

    torch.manual_seed(0)
    model, tokenizer = load_base(str(base_dir))
    model = get_peft_model(model, LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj", "down_proj"],
                                             task_type="CAUSAL_LM",
                                             layers_to_transform=lora_layers(model.config, layers_to_train)))
    # LoRA's B starts at zero; give it weights so the adapter changes the forward under test.
    for name, param in model.named_parameters():
        if "lora_B" in name:
            param.data.normal_(0, 0.05)
    return model, tokenizer


def test_the_fast_loss_is_the_models_own_loss(base_dir):
    model, tokenizer = _peft(base_dir, layers_to_train=2)
    decoder = model.get_base_model().get_decoder()
    assert lowest_trained_layer(decoder) == 2
    config = LoraTrainingConfig(batch_size=3, max_length=160, decision_weight=1.0)
    batch = make_batches(tokenizer, [_sample(turns=n) for n in (1, 3, 6)], config)[0]
    assert batch.weights is None
    with torch.no_grad():
        reference = model(input_ids=batch.input_ids, attention_mask=batch.attention_mask, labels=batch.labels).loss
        prefix = FrozenPrefix(decoder, 2, cache_bytes_limit=1 << 30)
        assert prefix.check(torch.device("cpu"))
        for kwargs in (dict(prefix=None, target_only_logits=False), dict(prefix=None, target_only_logits=True),
                       dict(prefix=prefix, target_only_logits=True)):
            loss = batch_loss(model, batch, device=torch.device("cpu"), **kwargs)
            assert torch.allclose(loss, reference, atol=1e-5), kwargs
        # The second time from the cache: the same loss again.
        assert set(prefix.cache) == set(batch.sample_indices)
        cached = batch_loss(model, batch, prefix=prefix, target_only_logits=True, device=torch.device("cpu"))
        assert torch.allclose(cached, reference, atol=1e-5)


def test_the_decision_header_weighs_more_in_the_loss(base_dir):
    """decision_weight: the header's tokens (up to the call's parenthesis) count that many times in a
    weighted mean over the target tokens; the reply's count once."""
    import torch.nn.functional as F

    from clonedesk.core.domain.conversation_format import format_target
    from clonedesk.core.domain.decision_header import decision_prefix

    model, tokenizer = _peft(base_dir, layers_to_train=0)
    samples = [_sample(turns=n) for n in (1, 3)]
    plain = make_batches(tokenizer, samples, LoraTrainingConfig(batch_size=2, max_length=160, decision_weight=1.0))[0]
    weighted = make_batches(tokenizer, samples, LoraTrainingConfig(batch_size=2, max_length=160, decision_weight=3.0))[0]
    assert (weighted.input_ids == plain.input_ids).all()
    for row, index in enumerate(weighted.sample_indices):
        sample = samples[index]
        header = decision_prefix(format_target(sample.decision, sample.action, ""))
        header_tokens = len(tokenizer(header, add_special_tokens=False)["input_ids"])
        heavy = (weighted.weights[row] == 3.0).nonzero().flatten().tolist()
        start = (weighted.labels[row] != IGNORE).nonzero().flatten()[0].item()
        assert heavy == list(range(start, start + header_tokens))
    with torch.no_grad():
        logits = model(input_ids=weighted.input_ids, attention_mask=weighted.attention_mask).logits[:, :-1]
        targets, weights = weighted.labels[:, 1:], weighted.weights[:, 1:]
        at = targets != IGNORE
        per_token = F.cross_entropy(logits[at].float(), targets[at], reduction="none")
        expected = (per_token * weights[at]).sum() / weights[at].sum()
        loss = batch_loss(model, weighted, prefix=None, target_only_logits=True, device=torch.device("cpu"))
        unweighted = batch_loss(model, plain, prefix=None, target_only_logits=True, device=torch.device("cpu"))
    assert torch.allclose(loss, expected, atol=1e-5)
    assert not torch.allclose(loss, unweighted, atol=1e-4)


def test_the_loop_trains_only_the_top_layers_and_learns(base_dir):
    model, tokenizer = _peft(base_dir, layers_to_train=2)
    frozen = {n: p.detach().clone() for n, p in model.named_parameters() if "lora_" in n}
    samples = [_sample(turns=n) for n in (1, 2, 3, 4)]
    config = dataclasses.replace(LoraTrainingConfig(), batch_size=4, epochs=40, max_length=200, learning_rate=3e-2)
    batches = make_batches(tokenizer, samples, config)
    _, losses = train_on_batches(model, batches, config)
    assert losses[-1] < losses[0] - 0.5
    changed = {n for n, p in model.named_parameters() if "lora_" in n and not torch.equal(p, frozen[n])}
    assert changed and all(".layers.2." in n or ".layers.3." in n for n in changed)
