"""What one training run feeds the model: each sample encoded as prompt + target token ids (labels on
the target only), and the run's batches, grouped by length so that a batch pads little.

The prompt is `core.prompt.prompt_token_ids` of the tenant's system prompt and the latest
`context_turns` turns: the very prompt the resolver sends. The target is
`format_target(decision, action, reply)` then the tokenizer's end-of-turn token, so generation stops
where the agent's turn ends; a call with a recorded result is two targets, the header alone and the
reply after the result's tool turn (core.domain.conversation_format.prompt_targets), as the resolver asks.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass
from typing import Sequence

from clonedesk.core.domain.conversation_format import (DEFAULT_CONTEXT_TURNS, PromptTarget, chat_messages, prompt_targets,
                                                system_prompt)
from clonedesk.core.domain.decision_header import decision_prefix
from clonedesk.core.prompt import prompt_token_ids

IGNORE = -100
# Length bucketing sorts this many batches' worth of shuffled samples by length before cutting them
# into batches: similar lengths in a batch, and still a different mix every epoch.
BUCKET_BATCHES = 16


@dataclass(frozen=True)
class EncodedSample:
    input_ids: list[int]
    labels: list[int]
    header_tokens: int = 0  # the target's first tokens that fix the decision (core.domain.decision_header)


@dataclass
class Batch:
    input_ids: "object"  # torch.LongTensor [batch, length], right-padded
    attention_mask: "object"
    labels: "object"
    sample_indices: tuple[int, ...] = ()  # which encoded samples, in row order (for per-sample caches)
    # Per-position loss weights (the labels' shape), or None for all 1: the decision header may weigh more.
    weights: "object" = None

    @property
    def tokens(self) -> int:
        return int(self.attention_mask.sum())


def sample_messages(sample, context_turns: int = DEFAULT_CONTEXT_TURNS) -> list[dict[str, str]]:
    """The chat messages of the prompt before a sample's agent turn."""
    return chat_messages(sample.context, system_prompt(sample.tenant_id), max_turns=context_turns)


def sample_prompt_targets(sample, context_turns: int = DEFAULT_CONTEXT_TURNS,
                          action_results: bool = True) -> list[PromptTarget]:
    """What a sample teaches (core.domain.conversation_format.prompt_targets): with `action_results`, a call
    whose result the history recorded teaches its header, then the reply after the result."""
    return prompt_targets(sample_messages(sample, context_turns), sample.decision, sample.action, sample.reply,
                          sample.action_result if action_results else "")


def encode_prompt_target(tokenizer, item: PromptTarget, max_length: int) -> EncodedSample:
    """Prompt and target token ids; labels only on the target (at most half the length). A long prompt
    loses its oldest turns; the system prompt stays."""
    target = tokenizer(item.target + tokenizer.eos_token, add_special_tokens=False)["input_ids"][: max_length // 2]
    prompt = prompt_token_ids(tokenizer, item.messages, max_length - len(target))
    header = decision_prefix(item.header) if item.header else ""
    header_tokens = min(len(target), len(tokenizer(header, add_special_tokens=False)["input_ids"])) if header else 0
    return EncodedSample(prompt + target, [IGNORE] * len(prompt) + target, header_tokens)


def encode_sample(tokenizer, sample, max_length: int, context_turns: int = DEFAULT_CONTEXT_TURNS,
                  action_results: bool = True) -> list[EncodedSample]:
    """Every target of one sample, encoded (one, or two for a call with its result)."""
    return [encode_prompt_target(tokenizer, item, max_length)
            for item in sample_prompt_targets(sample, context_turns, action_results)]


def batch_order(lengths: Sequence[int], batch_size: int, steps: int, *, seed: int,
                bucketing: bool = True) -> list[list[int]]:
    """`steps` batches of sample indices: seeded shuffled epochs, each sample once per epoch; with
    `bucketing`, each window of BUCKET_BATCHES batches is sorted by length before it is cut, and the
    batches of a window are shuffled again (so long and short batches alternate)."""
    rng = random.Random(seed)
    size = min(batch_size, len(lengths))
    batches: list[list[int]] = []
    while len(batches) < steps:
        epoch = list(range(len(lengths)))
        rng.shuffle(epoch)
        window = size * BUCKET_BATCHES if bucketing else size
        for start in range(0, len(epoch), window):
            chunk = epoch[start:start + window]
            if bucketing:
                chunk.sort(key=lambda i: lengths[i])
            cut = [chunk[i:i + size] for i in range(0, len(chunk), size)]
            rng.shuffle(cut)
            batches.extend(cut)
    return batches[:steps]


def collate(encoded: Sequence[EncodedSample], indices: Sequence[int], pad_id: int,
            decision_weight: float = 1.0) -> Batch:
    import torch

    chosen = [encoded[i] for i in indices]
    length = max(len(e.input_ids) for e in chosen)
    weights = None
    if decision_weight != 1.0:
        rows = []
        for e in chosen:
            start = next((i for i, label in enumerate(e.labels) if label != IGNORE), len(e.labels))
            row = [1.0] * length
            for position in range(start, min(start + e.header_tokens, len(e.labels))):
                row[position] = decision_weight
            rows.append(row)
        weights = torch.tensor(rows)
    return Batch(
        weights=weights,
        input_ids=torch.tensor([e.input_ids + [pad_id] * (length - len(e.input_ids)) for e in chosen]),
        attention_mask=torch.tensor([[1] * len(e.input_ids) + [0] * (length - len(e.input_ids)) for e in chosen]),
        labels=torch.tensor([e.labels + [IGNORE] * (length - len(e.labels)) for e in chosen]),
        sample_indices=tuple(indices),
    )


def run_steps(sample_count: int, epochs: float, batch_size: int, max_steps: int) -> int:
    return min(max_steps, max(1, math.ceil(epochs * sample_count / batch_size)))


def make_batches(tokenizer, samples: Sequence, config) -> list[Batch]:
    """The batches of one training run (`config`: a LoraTrainingConfig): `epochs` passes, at most
    `max_steps` batches, right-padded."""
    encoded = [e for s in samples
               for e in encode_sample(tokenizer, s, config.max_length, config.context_turns, config.action_results)]
    if not encoded:
        return []
    steps = run_steps(len(encoded), config.epochs, config.batch_size, config.max_steps)
    order = batch_order([len(e.input_ids) for e in encoded], config.batch_size, steps, seed=config.seed,
                        bucketing=config.length_bucketing)
    return [collate(encoded, indices, tokenizer.pad_token_id, config.decision_weight) for indices in order]
