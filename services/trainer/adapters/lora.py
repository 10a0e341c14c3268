"""LoRA adapters with peft: training (first or continued), loading and generation.

What an adapter learns, for each agent turn: the prompt is the tenant's system prompt and the latest
turns before the agent's turn, through the base model's own chat template (training_batches); the target
is `format_target(decision, action, reply)` then the end-of-turn token. The loss is on the target tokens
only, so the adapter learns the agent's decision and reply, not the customer's words. The resolver builds
the same prompt (`core.prompt.prompt_token_ids`), generates until end of turn and reads the answer with
`parse_target`:

    model, tokenizer = load_model(base_model, adapter_dir)
    text = generate_targets(model, tokenizer, [sample])[0]
    turn = parse_target(text)          # decision, action, reply

`train_adapter(base, samples, out_dir, init_adapter=previous_version_dir)` continues from a previous
version's weights (an incremental refresh); without `init_adapter` it starts a fresh LoRA on the top
`layers_to_train` layers. The loop itself is training_loop (why it is fast on a CPU is said there).
Samples are TrainingSample messages or anything with `tenant_id`, `context`, `decision`, `action`, `reply`.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Sequence

from clonedesk.core.adapters import answers_from_results, trained_action_names
from clonedesk.core.domain.conversation_format import DEFAULT_CONTEXT_TURNS, has_action_result
from clonedesk.core.domain.decision_header import history_action_names
from clonedesk.core.prompt import prompt_token_ids
from clonedesk.trainer.adapters.training_batches import (IGNORE, Batch, EncodedSample, encode_sample,  # noqa: F401
                                                         make_batches, sample_messages)
from clonedesk.trainer.adapters.training_loop import train_on_batches  # noqa: F401 - the loop's public home

ALL_LINEAR = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")


@dataclass(frozen=True)
class LoraTrainingConfig:
    """One run's recipe. The defaults are measured on SmolLM2-135M-Instruct in bench/train.py: LoRA on
    every layer, the loss's vocabulary projection at the target positions only and bf16 products gave
    3.5x the naive loop's tokens/s at a held-out loss no worse; LoRA on the top layers only (with the
    frozen prefix cached) and length bucketing are faster still and cost held-out loss, so they are
    settings, off by default. A constant rate after warmup beat a linear decay on short runs; on a run of
    two epochs (400 steps) a decay to 0.1 of the peak gave 10 points more decision accuracy on unseen tickets
    than 200 constant steps (bench/quality.py, Hotels_2)."""

    rank: int = 16
    alpha: int = 32
    dropout: float = 0.0
    target_modules: tuple[str, ...] = ALL_LINEAR
    layers_to_train: int = 0  # LoRA on the top N decoder layers (0 = all): the rest is a frozen prefix
    learning_rate: float = 1e-3
    final_lr_fraction: float = 0.1  # the learning rate at a run's end, as a share of the peak (1 = constant)
    max_grad_norm: float = 1.0  # gradient clipping (0 = none)
    epochs: float = 3.0  # as TrainerSettings.epochs (measured there)
    max_steps: int = 400
    batch_size: int = 8
    max_length: int = 384
    context_turns: int = DEFAULT_CONTEXT_TURNS
    seed: int = 0
    target_only_logits: bool = True
    frozen_prefix: bool = True
    cache_frozen_prefix: bool = True
    prefix_cache_mb: int = 2048
    length_bucketing: bool = False
    # Loss weight of the decision header's tokens against the reply's 1. bench/quality.py, Hotels_2, 30
    # unseen tickets: 3 gave decision accuracy 85.1 % against 83.5 % at 1, the same reply chrF (27.0 / 26.8)
    # and more turns answered at >= 90 % accuracy (87 % of them at threshold 0.8, against 76 % at 0.7).
    decision_weight: float = 3.0
    # A call whose result the history recorded teaches its header, then the reply after the result (the
    # resolver carries the call out and asks again); off: header and reply in one, as without results.
    action_results: bool = True
    mixed_precision: str = "auto"  # bf16 autocast: "auto" (where the hardware has it), "bf16", "no"
    threads: int = 0  # torch threads while training; 0 = the cores this process may use

    def to_dict(self) -> dict:
        return {**asdict(self), "target_modules": list(self.target_modules)}


@dataclass
class TrainingResult:
    steps: int
    samples: int
    tokens: int
    target_tokens: int
    final_loss: float
    seconds: float
    initial_weights_sha256: str
    losses: list[float] = field(default_factory=list)

    @property
    def tokens_per_second(self) -> float:
        return self.tokens / self.seconds if self.seconds > 0 else 0.0


def available_cores() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


def set_threads(threads: int) -> int:
    """torch's intra-op threads: `threads`, or every core this process may use (0). More threads than
    cores make torch several times slower, not faster."""
    import torch

    count = threads if threads > 0 else available_cores()
    if torch.get_num_threads() != count:
        torch.set_num_threads(count)
    return count


def lora_layers(model_config, layers_to_train: int) -> list[int] | None:
    """Indices of the top `layers_to_train` decoder layers (None = every layer)."""
    total = getattr(model_config, "num_hidden_layers", None)
    if not layers_to_train or total is None or layers_to_train >= total:
        return None
    return list(range(total - layers_to_train, total))


def training_device() -> str:
    """Where training and evaluation run: the GPU when the trainer's node has one (production trainers
    run on GPU nodes), else the CPU. `CLONEDESK_TRAINER_DEVICE` overrides it (e.g. `cpu`, `cuda:1`)."""
    import torch

    return os.environ.get("CLONEDESK_TRAINER_DEVICE") or ("cuda" if torch.cuda.is_available() else "cpu")


def load_base(base_model: str):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(base_model)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    model = AutoModelForCausalLM.from_pretrained(base_model).to(training_device())
    return model, tokenizer


def load_model(base_model: str, adapter_dir: Path | None = None, *, trainable: bool = False):
    """(model, tokenizer): the base model, with the adapter at `adapter_dir` applied if given."""
    from peft import PeftModel

    model, tokenizer = load_base(base_model)
    if adapter_dir is not None:
        model = PeftModel.from_pretrained(model, str(adapter_dir), is_trainable=trainable)
    if not trainable:
        model.eval()
    return model, tokenizer


def adapter_weights_digest(model) -> str:
    """SHA-256 of a peft model's adapter weights (names and values): which weights a run started from."""
    from peft import get_peft_model_state_dict

    digest = hashlib.sha256()
    for name, tensor in sorted(get_peft_model_state_dict(model).items()):
        digest.update(name.encode())
        digest.update(tensor.detach().float().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()


def train_adapter(base_model: str, samples: Sequence, out_dir: Path, *,
                  config: LoraTrainingConfig = LoraTrainingConfig(), init_adapter: Path | None = None,
                  progress: bool = False) -> TrainingResult:
    """Train a LoRA adapter on `samples` and save the peft files into `out_dir`.

    With `init_adapter` (a saved adapter folder, e.g. the current version) training continues from its
    weights; otherwise a fresh LoRA (B = 0, so it starts as the base model). Also writes
    `training_config.json`. Deterministic for a fixed config seed and sample order.
    """
    import torch
    from peft import LoraConfig, PeftModel, get_peft_model

    started = time.monotonic()
    set_threads(config.threads)
    torch.manual_seed(config.seed)
    model, tokenizer = load_base(base_model)
    if init_adapter is not None:
        model = PeftModel.from_pretrained(model, str(init_adapter), is_trainable=True)
    else:
        model = get_peft_model(model, LoraConfig(
            r=config.rank, lora_alpha=config.alpha, lora_dropout=config.dropout,
            target_modules=list(config.target_modules), task_type="CAUSAL_LM",
            layers_to_transform=lora_layers(model.config, config.layers_to_train)))
    initial_digest = adapter_weights_digest(model)
    batches = make_batches(tokenizer, samples, config)
    target_tokens = sum(int((b.labels != IGNORE).sum()) for b in batches)
    tokens, losses = train_on_batches(model, batches, config, progress=progress)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(str(out_dir))
    result = TrainingResult(
        steps=len(batches), samples=len(samples), tokens=tokens, target_tokens=target_tokens,
        final_loss=round(sum(losses[-5:]) / max(1, len(losses[-5:])), 4) if losses else float("nan"),
        seconds=round(time.monotonic() - started, 2), initial_weights_sha256=initial_digest, losses=losses)
    (out_dir / "training_config.json").write_text(json.dumps({
        **config.to_dict(), "init_adapter": str(init_adapter) if init_adapter else None,
        "steps": result.steps, "samples": result.samples, "tokens": result.tokens,
        "target_tokens": result.target_tokens, "final_loss": result.final_loss,
        "initial_weights_sha256": initial_digest,
        # The calls this adapter may write (constrained decoding): those of its history, and its parent's.
        "action_names": sorted(set(history_action_names(samples))
                               | set(trained_action_names(init_adapter) if init_adapter else ())),
        # Whether it writes a call's reply from the call's result (a second generation after a tool turn).
        "answers_from_results": (config.action_results and any(has_action_result(s) for s in samples))
        or bool(init_adapter and answers_from_results(init_adapter))}, indent=2))
    return result


def generate_targets(model, tokenizer, samples: Sequence, *, max_new_tokens: int = 96,
                     max_prompt_tokens: int = 384, batch_size: int = 8,
                     context_turns: int = DEFAULT_CONTEXT_TURNS) -> list[str]:
    """Greedy, unconstrained generation of the agent's next turn for each sample: the raw text."""
    return [a.text for a in generate_samples(model, tokenizer, samples, max_new_tokens=max_new_tokens,
                                             max_prompt_tokens=max_prompt_tokens, batch_size=batch_size,
                                             context_turns=context_turns, action_names=None)]


def generate_samples(model, tokenizer, samples: Sequence, *, max_new_tokens: int = 96,
                     max_prompt_tokens: int = 384, batch_size: int = 8,
                     context_turns: int = DEFAULT_CONTEXT_TURNS,
                     action_names: Sequence[str] | None = None) -> list:
    """The agent's next turn for each sample (its tenant's prompt, left-padded batches of similar
    length), greedy until the end-of-turn token; with `action_names`, the header is constrained to the
    four decisions and those calls (core.constrained_generation). GeneratedAnswer per sample."""
    from clonedesk.core.constrained_generation import header_constraint

    constraint = header_constraint(tokenizer, action_names) if action_names is not None else None
    return generate_for_messages(model, tokenizer, [sample_messages(s, context_turns) for s in samples],
                                 max_new_tokens=max_new_tokens, max_prompt_tokens=max_prompt_tokens,
                                 batch_size=batch_size, constraint=constraint)


def generate_for_messages(model, tokenizer, prompts_messages: Sequence, *, max_new_tokens: int = 96,
                          max_prompt_tokens: int = 384, batch_size: int = 8, constraint=None) -> list:
    """Greedy answers to chat-message prompts (left-padded batches of similar length); `constraint`
    (a HeaderConstraint or None) applies to every row. GeneratedAnswer per prompt."""
    import torch

    from clonedesk.core.constrained_generation import generate_answers

    prompts = [prompt_token_ids(tokenizer, messages, max_prompt_tokens) for messages in prompts_messages]
    order = sorted(range(len(prompts)), key=lambda i: len(prompts[i]))
    outputs: list = [None] * len(prompts)
    pad = tokenizer.pad_token_id
    device = next(model.parameters()).device
    for start in range(0, len(order), batch_size):
        rows = order[start:start + batch_size]
        length = max(len(prompts[i]) for i in rows)
        input_ids = torch.tensor([[pad] * (length - len(prompts[i])) + prompts[i] for i in rows], device=device)
        attention = torch.tensor([[0] * (length - len(prompts[i])) + [1] * len(prompts[i]) for i in rows],
                                 device=device)
        answers = generate_answers(model, tokenizer, input_ids, attention, [constraint] * len(rows),
                                   max_new_tokens=max_new_tokens)
        for i, answer in zip(rows, answers):
            outputs[i] = answer
    return outputs
