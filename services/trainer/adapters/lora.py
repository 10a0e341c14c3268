"""LoRA adapters with peft: training (first or continued), loading and generation.

What an adapter learns, for each agent turn: the prompt is the conversation before the turn through the
base model's chat template (`core.conversation_format.chat_messages`, `add_generation_prompt=True`);
the target is `format_target(decision, action, reply)` followed by the eos token. The loss is on the
target tokens only (the prompt's labels are -100), so the adapter learns the agent's decision and reply,
not the customer's words. The resolver does the same: build the prompt the same way, generate until eos,
and read the answer with `parse_target`:

    model, tokenizer = load_model(base_model, adapter_dir)
    text = generate_targets(model, tokenizer, [conversation_turns])[0]
    turn = parse_target(text)          # decision, action, reply

`train_adapter(base, samples, out_dir, init_adapter=previous_version_dir)` continues from a previous
version's weights (an incremental refresh); without `init_adapter` it starts a fresh LoRA.
Samples are TrainingSample messages or anything with `context`, `decision`, `action`, `reply`.
"""

from __future__ import annotations

import hashlib
import json
import math
import random
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Sequence

from clonedesk.core.conversation_format import chat_messages, format_target

IGNORE = -100


@dataclass(frozen=True)
class LoraTrainingConfig:
    rank: int = 32
    alpha: int = 64
    dropout: float = 0.0
    target_modules: tuple[str, ...] = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj",
                                       "down_proj")
    learning_rate: float = 1e-2
    epochs: float = 3.0
    max_steps: int = 200
    batch_size: int = 8
    max_length: int = 192
    seed: int = 0

    def to_dict(self) -> dict:
        return {**asdict(self), "target_modules": list(self.target_modules)}


@dataclass(frozen=True)
class EncodedSample:
    input_ids: list[int]
    labels: list[int]


@dataclass
class Batch:
    input_ids: "object"  # torch.LongTensor [batch, length]
    attention_mask: "object"
    labels: "object"

    @property
    def tokens(self) -> int:
        return int(self.attention_mask.sum())


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


def prompt_text(tokenizer, context) -> str:
    """The prompt for the agent's next turn after `context` (Turn messages or (role, text) pairs)."""
    return tokenizer.apply_chat_template(chat_messages(context), add_generation_prompt=True, tokenize=False)


def encode_sample(tokenizer, sample, max_length: int) -> EncodedSample:
    """Prompt and target token ids; labels only on the target. A long prompt loses its oldest tokens."""
    prompt = tokenizer(prompt_text(tokenizer, sample.context), add_special_tokens=False)["input_ids"]
    target_text = format_target(sample.decision, sample.action, sample.reply) + tokenizer.eos_token
    target = tokenizer(target_text, add_special_tokens=False)["input_ids"][: max_length // 2]
    prompt = prompt[-(max_length - len(target)):]
    return EncodedSample(prompt + target, [IGNORE] * len(prompt) + target)


def make_batches(tokenizer, samples: Sequence, config: LoraTrainingConfig) -> list[Batch]:
    """The batches of one training run: `epochs` shuffled passes (seeded), right-padded, at most
    `max_steps` of them."""
    import torch

    encoded = [encode_sample(tokenizer, s, config.max_length) for s in samples]
    if not encoded:
        return []
    steps = min(config.max_steps, max(1, math.ceil(config.epochs * len(encoded) / config.batch_size)))
    order_rng = random.Random(config.seed)
    order: list[int] = []
    batches = []
    for _ in range(steps):
        chosen = []
        while len(chosen) < min(config.batch_size, len(encoded)):
            if not order:
                order = list(range(len(encoded)))
                order_rng.shuffle(order)
            chosen.append(encoded[order.pop()])
        length = max(len(e.input_ids) for e in chosen)
        pad = tokenizer.pad_token_id
        batches.append(Batch(
            input_ids=torch.tensor([e.input_ids + [pad] * (length - len(e.input_ids)) for e in chosen]),
            attention_mask=torch.tensor([[1] * len(e.input_ids) + [0] * (length - len(e.input_ids))
                                         for e in chosen]),
            labels=torch.tensor([e.labels + [IGNORE] * (length - len(e.labels)) for e in chosen]),
        ))
    return batches


def training_device() -> str:
    """Where training and evaluation run: the GPU when the trainer's node has one (production trainers
    run on GPU nodes), else the CPU. `CLONEDESK_TRAINER_DEVICE` overrides it (e.g. `cpu`, `cuda:1`)."""
    import os

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


def train_on_batches(model, batches: Sequence[Batch], config: LoraTrainingConfig, *,
                     progress: bool = False, description: str = "training adapter") -> tuple[int, list[float]]:
    """Our training loop over prepared batches: AdamW on the trainable (LoRA) weights, warmup then
    linear decay, gradient clipping. Returns (tokens seen, losses)."""
    import torch
    from tqdm import tqdm

    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=config.learning_rate, weight_decay=0.0)
    total = max(1, len(batches))
    warmup = max(1, total // 10)
    schedule = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda step: min(1.0, (step + 1) / warmup) * max(0.05, 1 - step / total))
    model.train()
    tokens = 0
    losses: list[float] = []
    bar = tqdm(batches, desc=description, unit="step", disable=not progress, mininterval=1.0)
    device = next(model.parameters()).device
    for batch in bar:
        loss = model(input_ids=batch.input_ids.to(device), attention_mask=batch.attention_mask.to(device),
                     labels=batch.labels.to(device)).loss
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        optimizer.step()
        schedule.step()
        optimizer.zero_grad(set_to_none=True)
        tokens += batch.tokens
        losses.append(loss.item())
        bar.set_postfix(loss=f"{losses[-1]:.3f}", refresh=False)
    model.eval()
    return tokens, losses


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
    torch.manual_seed(config.seed)
    model, tokenizer = load_base(base_model)
    if init_adapter is not None:
        model = PeftModel.from_pretrained(model, str(init_adapter), is_trainable=True)
    else:
        model = get_peft_model(model, LoraConfig(
            r=config.rank, lora_alpha=config.alpha, lora_dropout=config.dropout,
            target_modules=list(config.target_modules), task_type="CAUSAL_LM"))
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
        "initial_weights_sha256": initial_digest}, indent=2))
    return result


def generate_targets(model, tokenizer, contexts: Sequence, *, max_new_tokens: int = 96,
                     max_prompt_tokens: int = 256, batch_size: int = 8) -> list[str]:
    """Greedy generation of the agent's next turn after each context (left-padded batches); the raw
    text, for `parse_target`."""
    import torch

    outputs: list[str] = []
    pad = tokenizer.pad_token_id
    for start in range(0, len(contexts), batch_size):
        prompts = [tokenizer(prompt_text(tokenizer, c), add_special_tokens=False)["input_ids"][-max_prompt_tokens:]
                   for c in contexts[start:start + batch_size]]
        length = max(len(p) for p in prompts)
        input_ids = torch.tensor([[pad] * (length - len(p)) + p for p in prompts])
        attention = torch.tensor([[0] * (length - len(p)) + [1] * len(p) for p in prompts])
        device = next(model.parameters()).device
        input_ids, attention = input_ids.to(device), attention.to(device)
        with torch.no_grad():
            generated = model.generate(input_ids=input_ids, attention_mask=attention, max_new_tokens=max_new_tokens,
                                       do_sample=False, eos_token_id=tokenizer.eos_token_id, pad_token_id=pad)
        for row in generated[:, length:]:
            outputs.append(tokenizer.decode(row, skip_special_tokens=True))
    return outputs
