"""The real default base model (SmolLM2-135M-Instruct, imported from the installed wheel): the trainer's
own loop trains a LoRA on it for a few steps, and the adapter then answers held-out turns in the format
the resolver reads. Slow: the import and the model are real."""

from __future__ import annotations

import dataclasses

import pytest

from clonedesk.core.base_model import DEFAULT_BASE_MODEL, ensure_base_model
from clonedesk.core.domain.conversation_format import DECISIONS_BY_NAME, parse_target, well_formed
from clonedesk.core.settings import Settings
from clonedesk.trainer.adapters.lora import LoraTrainingConfig, generate_targets, load_model, train_adapter
from clonedesk.core.sgd import find_sgd_dir
from clonedesk.ingest.adapters.sgd_history import tenant_samples
from clonedesk.core.domain.holdout import is_holdout

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def smollm2(tmp_path_factory) -> str:
    # Named explicitly: the test session defaults to the tiny model (tests/conftest.py).
    return ensure_base_model(Settings(data_dir=tmp_path_factory.mktemp("data"), base_model=DEFAULT_BASE_MODEL))


def test_a_few_lora_steps_on_smollm2_give_replies_that_parse(smollm2, tmp_path):
    from transformers import AutoConfig

    assert AutoConfig.from_pretrained(smollm2).num_hidden_layers == 30
    samples = tenant_samples(find_sgd_dir() / "train_Banks_1.jsonl", "banks-1", limit=30)
    trainable = [s for s in samples if not is_holdout(s.ticket_id, 0.2)][:48]
    held_out = [s for s in samples if is_holdout(s.ticket_id, 0.2)][:6]
    config = dataclasses.replace(LoraTrainingConfig(), max_steps=12, batch_size=4, epochs=1.0,
                                 learning_rate=2e-3, max_length=192)
    result = train_adapter(smollm2, trainable, tmp_path / "adapter", config=config)
    assert result.steps == 12 and result.losses[-1] < result.losses[0]

    model, tokenizer = load_model(smollm2, tmp_path / "adapter")
    texts = generate_targets(model, tokenizer, held_out, max_new_tokens=48)
    parsed = [t for t in texts if well_formed(t)]
    assert len(parsed) >= len(texts) - 1, texts
    for text in parsed:
        turn = parse_target(text)
        assert turn.decision in DECISIONS_BY_NAME.values() and turn.reply, text


def test_the_generation_budgets_fit_the_longest_call_header_of_a_history(smollm2):
    """A header cut off before its `]` is unreadable and escalates: the answer budget of both the holdout
    scoring and the resolver must hold the longest call an agent made (RentalCars_1's run to 70 tokens)."""
    from transformers import AutoTokenizer

    from clonedesk.core.domain.conversation_format import format_target
    from clonedesk.resolver.settings import ResolverSettings
    from clonedesk.trainer.settings import TrainerSettings
    from clonedesk.v1 import common_pb2

    tokenizer = AutoTokenizer.from_pretrained(smollm2)
    samples = tenant_samples(find_sgd_dir() / "train_RentalCars_1.jsonl", "rentalcars-1", limit=200)
    calls = [s for s in samples if s.decision == common_pb2.ACTION and s.action]
    longest = max(len(tokenizer.encode(format_target(s.decision, s.action, ""))) for s in calls)
    assert longest > 64  # the old budget, which cut these headers short
    # Room for the end-of-turn token after the header as well.
    assert TrainerSettings().eval_max_new_tokens > longest
    assert ResolverSettings().max_new_tokens > longest
