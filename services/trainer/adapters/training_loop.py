"""The LoRA training loop, made for a CPU (the same code runs on a GPU).

Where a naive `model(input_ids, labels=labels).loss` loop spends its time on a 135 M model, and what this
loop does instead (each a LoraTrainingConfig setting; bench/train.py measures them against that loop):

- **The vocabulary projection at the target positions only** (`target_only_logits`). Only the agent's
  turn carries loss, a third of a sample's tokens or less; projecting every prompt token onto a 49 k
  vocabulary (forward and backward) is work thrown away.
- **A frozen prefix** (`layers_to_train` in the config puts LoRA on the top layers only). Below the
  lowest LoRA layer nothing is trained, so those layers run without autograd, once per sample: their
  output, the hidden state entering the lowest trained layer, is kept per sample
  (`cache_frozen_prefix`, up to `prefix_cache_mb`) and later epochs start from it.
- **Batches grouped by length** (training_batches) rather than padded to the longest of a random mix.
- **bf16 autocast** (`mixed_precision`) where the hardware does bf16 matrix products natively (AVX-512
  BF16 or AMX on a CPU, any recent GPU): the products run in bf16, the LoRA weights, their gradients
  and the optimizer stay float32.

The split into prefix and trained layers swaps the decoder's layer list for the duration of a call, so
each model's own forward (masks, rotary embeddings) still does the work; `FrozenPrefix.check` compares it
with an unsplit forward once and falls back to the unsplit forward for a model where they differ.
"""

from __future__ import annotations

import logging
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Sequence

from clonedesk.trainer.adapters.training_batches import IGNORE, Batch

log = logging.getLogger(__name__)


def _decoder_parts(model):
    """(decoder, lm_head) of a peft-wrapped or plain HF causal LM with a `layers` list."""
    base = model.get_base_model() if hasattr(model, "get_base_model") else model
    decoder = base.get_decoder()
    if not hasattr(decoder, "layers") or not hasattr(decoder, "norm"):
        return None, base.get_output_embeddings()
    return decoder, base.get_output_embeddings()


def lowest_trained_layer(decoder) -> int:
    """Index of the lowest decoder layer with a trainable weight (the number of layers if none)."""
    for index, layer in enumerate(decoder.layers):
        if any(p.requires_grad for p in layer.parameters()):
            return index
    return len(decoder.layers)


@contextmanager
def _only_layers(decoder, start: int, stop: int, *, final_norm: bool):
    import torch

    layers, norm = decoder.layers, decoder.norm
    decoder.layers = torch.nn.ModuleList(list(layers)[start:stop])
    if not final_norm:
        decoder.norm = torch.nn.Identity()
    try:
        yield
    finally:
        decoder.layers, decoder.norm = layers, norm


@dataclass
class FrozenPrefix:
    """The untrained bottom of the network: run once per sample without autograd, its output kept."""

    decoder: object
    lowest: int
    cache_bytes_limit: int
    cache: dict[int, object] = field(default_factory=dict)
    cache_bytes: int = 0
    enabled: bool = True

    def hidden(self, input_ids, attention_mask, sample_indices: Sequence[int]):
        """Hidden states entering layer `lowest`, [batch, length, hidden], right-padded with zeros."""
        import torch

        lengths = attention_mask.sum(dim=1).tolist()
        if sample_indices and all(i in self.cache for i in sample_indices):
            rows = [self.cache[i] for i in sample_indices]
            out = rows[0].new_zeros((len(rows), input_ids.shape[1], rows[0].shape[-1]))
            for row, (cached, length) in enumerate(zip(rows, lengths)):
                out[row, :length] = cached
            return out
        with torch.no_grad(), _only_layers(self.decoder, 0, self.lowest, final_norm=False):
            out = self.decoder(input_ids=input_ids, attention_mask=attention_mask, use_cache=False).last_hidden_state
        for row, (index, length) in enumerate(zip(sample_indices, lengths)):
            size = out[row, :length].numel() * out.element_size()
            if index not in self.cache and self.cache_bytes + size <= self.cache_bytes_limit:
                self.cache[index] = out[row, :length].clone()
                self.cache_bytes += size
        return out

    def upper(self, hidden, attention_mask):
        """The trained layers and the final norm, from the prefix's hidden states (with autograd)."""
        with _only_layers(self.decoder, self.lowest, len(self.decoder.layers), final_norm=True):
            return self.decoder(inputs_embeds=hidden, attention_mask=attention_mask, use_cache=False).last_hidden_state

    def check(self, device) -> bool:
        """Does prefix + upper give the unsplit forward's hidden states on this model? (A model that
        rescales `inputs_embeds` inside its forward would not.)"""
        import torch

        ids = torch.arange(3, 19, device=device).reshape(2, 8) % 50 + 3
        mask = torch.ones_like(ids)
        mask[1, 6:] = 0
        with torch.no_grad():
            whole = self.decoder(input_ids=ids, attention_mask=mask, use_cache=False).last_hidden_state
            split = self.upper(self.hidden(ids, mask, ()), mask)
        same = bool(torch.allclose(whole[0], split[0], atol=1e-4, rtol=1e-3))
        if not same:
            log.warning("frozen-prefix split differs from the model's own forward on this model; not used")
        return same


def batch_loss(model, batch: Batch, *, prefix: FrozenPrefix | None, target_only_logits: bool, device):
    """Mean cross-entropy over the batch's target tokens (the labels that are not IGNORE), as HF's own
    causal-LM loss computes it."""
    import torch.nn.functional as F

    input_ids = batch.input_ids.to(device)
    attention_mask = batch.attention_mask.to(device)
    labels = batch.labels.to(device)
    decoder, lm_head = _decoder_parts(model)
    if prefix is not None and prefix.enabled:
        hidden = prefix.upper(prefix.hidden(input_ids, attention_mask, batch.sample_indices), attention_mask)
    elif decoder is not None:
        hidden = decoder(input_ids=input_ids, attention_mask=attention_mask, use_cache=False).last_hidden_state
    else:  # a model we cannot split: its own loss
        return model(input_ids=input_ids, attention_mask=attention_mask, labels=labels).loss
    hidden, targets = hidden[:, :-1], labels[:, 1:]
    weights = batch.weights[:, 1:].to(device) if batch.weights is not None else None
    at = targets != IGNORE
    if target_only_logits:
        logits = lm_head(hidden[at])
        if weights is None:
            return F.cross_entropy(logits.float(), targets[at])
        # The decision header weighs more: a weighted mean over the target tokens.
        losses = F.cross_entropy(logits.float(), targets[at], reduction="none")
        return (losses * weights[at]).sum() / weights[at].sum()
    logits = lm_head(hidden)
    if weights is None:
        return F.cross_entropy(logits.float().reshape(-1, logits.shape[-1]), targets.reshape(-1),
                               ignore_index=IGNORE)
    losses = F.cross_entropy(logits.float()[at], targets[at], reduction="none")
    return (losses * weights[at]).sum() / weights[at].sum()


def bf16_supported(device) -> bool:
    import torch

    if device.type == "cuda":
        return torch.cuda.is_bf16_supported()
    if device.type == "cpu":
        try:
            return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
        except (AttributeError, RuntimeError):
            return False
    return False


def use_bf16(mixed_precision: str, device) -> bool:
    """`bf16` always, `no` never, `auto` where the device computes in bf16 natively (emulated bf16 is
    slower than float32)."""
    if mixed_precision == "auto":
        return bf16_supported(device)
    return mixed_precision == "bf16"


def train_on_batches(model, batches: Sequence[Batch], config, *, progress: bool = False,
                     description: str = "training adapter") -> tuple[int, list[float]]:
    """AdamW on the trainable (LoRA) weights over prepared batches: a short warmup, then a linear decay
    to `final_lr_fraction` of the peak (1 = constant), gradients clipped to `max_grad_norm` (0 = not). Returns (tokens seen, losses)."""
    import torch

    from clonedesk.core.progress import progress_bar

    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=config.learning_rate, weight_decay=0.0)
    total = max(1, len(batches))
    warmup = max(1, total // 10)
    floor = config.final_lr_fraction
    schedule = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda step: min(1.0, (step + 1) / warmup) * (1 - (1 - floor) * step / total))
    device = next(model.parameters()).device
    decoder, _ = _decoder_parts(model)
    prefix = None
    if decoder is not None and config.frozen_prefix:
        lowest = lowest_trained_layer(decoder)
        prefix = FrozenPrefix(decoder, lowest, config.prefix_cache_mb << 20 if config.cache_frozen_prefix else 0)
        prefix.enabled = lowest > 0 and prefix.check(device)
    autocast = torch.autocast(device_type=device.type, dtype=torch.bfloat16,
                              enabled=use_bf16(config.mixed_precision, device))
    model.train()
    tokens = 0
    losses: list[float] = []
    bar = progress_bar(batches, description=description, unit="step", enabled=progress)
    for batch in bar:
        with autocast:
            loss = batch_loss(model, batch, prefix=prefix, target_only_logits=config.target_only_logits,
                              device=device)
        loss.backward()
        if config.max_grad_norm > 0:
            torch.nn.utils.clip_grad_norm_(params, config.max_grad_norm)
        optimizer.step()
        schedule.step()
        optimizer.zero_grad(set_to_none=True)
        tokens += batch.tokens
        losses.append(loss.item())
        bar.set_postfix(loss=f"{losses[-1]:.3f}", refresh=False)
    model.eval()
    return tokens, losses
