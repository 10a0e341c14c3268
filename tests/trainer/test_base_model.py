"""The tiny offline base model's builder: a normal HF directory with a chat template the trainer and
resolver share, deterministic for a seed, pre-trained on no holdout ticket. (Which base model the
services use, and the tiny one built once per data dir: tests/core/test_base_model.py.)"""

from __future__ import annotations

import hashlib

import pytest
from transformers import AutoModelForCausalLM, AutoTokenizer

from clonedesk.core.base_model import base_model_identity
from clonedesk.core.tiny_model import build_base_model, default_texts
from clonedesk.core.domain.holdout import ticket_bucket


def _weights_sha(path) -> str:
    return hashlib.sha256((path / "model.safetensors").read_bytes()).hexdigest()


@pytest.fixture(scope="module")
def texts():
    return default_texts(dialogues_per_file=8)


def test_builds_a_loadable_llama_with_chat_template_and_is_deterministic(tmp_path, texts):
    first = build_base_model(tmp_path / "a", texts, seed=3, steps=6, progress=False)
    second = build_base_model(tmp_path / "b", texts, seed=3, steps=6, progress=False)
    other_seed = build_base_model(tmp_path / "c", texts, seed=4, steps=6, progress=False)

    assert _weights_sha(first) == _weights_sha(second)
    assert _weights_sha(first) != _weights_sha(other_seed)
    assert (first / "tokenizer.json").read_bytes() == (second / "tokenizer.json").read_bytes()

    model = AutoModelForCausalLM.from_pretrained(first)
    tokenizer = AutoTokenizer.from_pretrained(first)
    assert type(model).__name__ == "LlamaForCausalLM"
    assert tokenizer.eos_token == "<|end|>" and tokenizer.pad_token == "<|pad|>"
    prompt = tokenizer.apply_chat_template([{"role": "user", "content": "Hi, my card is lost"}],
                                           add_generation_prompt=True, tokenize=False)
    assert prompt == "<|user|>\nHi, my card is lost<|end|>\n<|assistant|>\n"
    ids = tokenizer(prompt, add_special_tokens=False)["input_ids"]
    assert tokenizer.convert_tokens_to_ids("<|assistant|>") in ids
    assert tokenizer.decode(ids, skip_special_tokens=True).strip() == "Hi, my card is lost"
    assert base_model_identity(str(first)).endswith(base_model_identity(str(second)).split("#")[1])


def test_pretraining_text_never_holds_a_holdout_ticket(texts):
    from clonedesk.core.sgd import find_sgd_dir, read_dialogues, sgd_files

    first_file = sgd_files(find_sgd_dir())[0]
    low_bucket = [d for d in read_dialogues(first_file, 40) if ticket_bucket(d["dialogue_id"]) < 0.5]
    assert low_bucket
    corpus = "\n".join(texts)
    for dialogue in low_bucket:
        # the longest utterance of a held-back dialogue is distinctive enough to look for
        utterance = max((t["utterance"] for t in dialogue["turns"]), key=len)
        assert utterance not in corpus

