"""Stacked multi-LoRA (engines/stacked_lora.py): a mixed batch in one pass, each row exactly what its own
adapter alone gives under peft."""

from __future__ import annotations

import copy
import json

import pytest
import torch
from peft import LoraConfig, PeftModel, get_peft_model
from transformers import LlamaConfig, LlamaForCausalLM

from clonedesk.resolver.engines.stacked_lora import StackedLora, UnsupportedAdapter, read_adapter

# Different ranks, targets and layers, so rows differ in every way the stack has to pad over.
ADAPTERS = {
    "alpha": dict(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj"]),
    "beta": dict(r=8, lora_alpha=32, target_modules=["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj",
                                                      "up_proj", "down_proj"]),
    "gamma": dict(r=2, lora_alpha=2, target_modules=["down_proj"], layers_to_transform=[1], use_rslora=True),
}


def tiny_llama() -> LlamaForCausalLM:
    torch.manual_seed(0)
    config = LlamaConfig(vocab_size=97, hidden_size=32, intermediate_size=48, num_hidden_layers=2,
                         num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=64)
    return LlamaForCausalLM(config).eval()


@pytest.fixture(scope="module")
def adapters(tmp_path_factory):
    root = tmp_path_factory.mktemp("stacked")
    base = tiny_llama()
    paths = {}
    for seed, (name, options) in enumerate(ADAPTERS.items()):
        torch.manual_seed(seed + 1)
        # init_lora_weights=False: random A and B, so every adapter really changes the output.
        model = get_peft_model(copy.deepcopy(base), LoraConfig(init_lora_weights=False, **options))
        model.save_pretrained(str(root / name))
        paths[name] = root / name
    return base, paths


def alone(base, path, input_ids) -> torch.Tensor:
    model = PeftModel.from_pretrained(copy.deepcopy(base), str(path)).eval()
    with torch.inference_mode():
        return model(input_ids=input_ids).logits


def test_each_row_of_a_mixed_batch_equals_its_adapter_alone(adapters):
    base, paths = adapters
    stack = StackedLora(copy.deepcopy(base), initial_slots=2)  # three adapters: the stack must grow once
    for name, path in paths.items():
        stack.load(name, read_adapter(path))
    torch.manual_seed(7)
    input_ids = torch.randint(0, 97, (5, 9))
    names = ["beta", "alpha", "gamma", "beta", "alpha"]
    with torch.inference_mode(), stack.routed(names):
        mixed = stack.model(input_ids=input_ids).logits
    for row, name in enumerate(names):
        expected = alone(base, paths[name], input_ids[row:row + 1])[0]
        assert torch.allclose(mixed[row], expected, atol=1e-5), name
        base_only = base(input_ids=input_ids[row:row + 1]).logits[0]
        assert not torch.allclose(mixed[row], base_only, atol=1e-3)  # the adapter did change it


def test_one_tenant_batch_and_no_routing(adapters):
    base, paths = adapters
    stack = StackedLora(copy.deepcopy(base))
    stack.load("alpha", read_adapter(paths["alpha"]))
    input_ids = torch.randint(0, 97, (3, 6))
    with torch.inference_mode():
        with stack.routed(["alpha"] * 3):
            single = stack.model(input_ids=input_ids).logits
        plain = stack.model(input_ids=input_ids).logits  # outside `routed`: the base model alone
    assert torch.allclose(single, alone(base, paths["alpha"], input_ids), atol=1e-5)
    assert torch.allclose(plain, base(input_ids=input_ids).logits, atol=1e-6)


def test_an_unloaded_adapter_leaves_nothing_behind_in_its_slot(adapters):
    base, paths = adapters
    stack = StackedLora(copy.deepcopy(base))
    stack.load("beta", read_adapter(paths["beta"]))
    stack.load("alpha", read_adapter(paths["alpha"]))
    stack.unload("beta")
    stack.load("gamma", read_adapter(paths["gamma"]))  # takes beta's slot: none of beta's weights may remain
    assert stack.loaded() == ["alpha", "gamma"]
    input_ids = torch.randint(0, 97, (2, 7))
    with torch.inference_mode(), stack.routed(["gamma", "alpha"]):
        mixed = stack.model(input_ids=input_ids).logits
    assert torch.allclose(mixed[0], alone(base, paths["gamma"], input_ids[:1])[0], atol=1e-5)
    assert torch.allclose(mixed[1], alone(base, paths["alpha"], input_ids[1:])[0], atol=1e-5)
    with pytest.raises(KeyError), stack.routed(["beta"]):
        pass


def test_what_is_not_plain_lora_is_refused_with_the_reason(adapters, tmp_path):
    _, paths = adapters
    target = tmp_path / "dora"
    target.mkdir()
    for item in paths["alpha"].iterdir():
        (target / item.name).write_bytes(item.read_bytes())
    config = json.loads((target / "adapter_config.json").read_text())
    config["use_dora"] = True
    (target / "adapter_config.json").write_text(json.dumps(config))
    with pytest.raises(UnsupportedAdapter, match="DoRA"):
        read_adapter(target)


def test_an_adapter_of_another_base_model_is_refused_before_anything_is_written(adapters):
    base, paths = adapters
    stack = StackedLora(copy.deepcopy(base))
    weights = read_adapter(paths["beta"])
    module = next(iter(weights.pairs))
    a, b = weights.pairs[module]
    wrong = type(weights)(weights.rank, {**weights.pairs, module: (torch.zeros(a.shape[0], a.shape[1] + 1), b)})
    with pytest.raises(UnsupportedAdapter, match="another base model"):
        stack.load("beta", wrong)
    assert stack.loaded() == []
    stack.load("beta", weights)  # the stack is untouched by the refusal
    assert stack.loaded() == ["beta"]
