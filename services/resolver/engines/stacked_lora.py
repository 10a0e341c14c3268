"""Many tenants' LoRA adapters on one base model, applied to a mixed batch in one pass (the Punica / S-LoRA
"gathered" scheme, written in torch).

Every adapted `nn.Linear` of the base keeps each loaded adapter's A and B stacked by slot (`lora_a`:
slots × rank × in, `lora_b`: slots × out × rank, B pre-multiplied by the adapter's scaling); a batch row
gathers its own slot's pair, so the whole batch takes one base forward and one pair of batched matmuls per
layer. peft's `adapter_names=` instead splits the batch into one sub-batch per adapter at every layer,
which is what made 16 tenants four times slower than one.

Slots hold zeros where an adapter has no weights (a module it did not target, a rank below the largest),
so a row only ever reads its own adapter: tenant isolation is the gather, and
tests/resolver/test_stacked_lora.py checks each row against that adapter alone under peft.

Plain LoRA only (what the trainer writes): DoRA, bias training, `modules_to_save`, per-module rank or alpha
patterns and `fan_in_fan_out` are refused with the reason.
"""

from __future__ import annotations

import json
import math
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, Sequence

import torch
from torch import nn

PEFT_PREFIX = "base_model.model."


class UnsupportedAdapter(ValueError):
    pass


@dataclass(frozen=True)
class AdapterWeights:
    """One adapter as the stack needs it: module path → (A: rank × in, B·scaling: out × rank)."""
    rank: int
    pairs: dict[str, tuple[torch.Tensor, torch.Tensor]]


def read_adapter(path: Path) -> AdapterWeights:
    """A peft LoRA adapter directory (`adapter_config.json` + `adapter_model.safetensors`)."""
    path = Path(path)
    config = json.loads((path / "adapter_config.json").read_text())
    refusals = [reason for present, reason in [
        (config.get("peft_type", "LORA") != "LORA", f"peft_type {config.get('peft_type')}"),
        (config.get("use_dora"), "DoRA"),
        (config.get("bias", "none") != "none", "trained biases"),
        (config.get("modules_to_save"), "modules_to_save"),
        (config.get("rank_pattern"), "a per-module rank_pattern"),
        (config.get("alpha_pattern"), "a per-module alpha_pattern"),
        (config.get("fan_in_fan_out"), "fan_in_fan_out"),
    ] if present]
    if refusals:
        raise UnsupportedAdapter(f"{path}: the stacked engine serves plain LoRA only, not {', '.join(refusals)}")
    rank, alpha = int(config["r"]), float(config["lora_alpha"])
    scaling = alpha / math.sqrt(rank) if config.get("use_rslora") else alpha / rank
    tensors = _load_tensors(path)
    pairs: dict[str, tuple[torch.Tensor, torch.Tensor]] = {}
    for key, a in tensors.items():
        if not key.endswith(".lora_A.weight"):
            continue
        module = key[: -len(".lora_A.weight")]
        b = tensors[f"{module}.lora_B.weight"]
        module = module[len(PEFT_PREFIX):] if module.startswith(PEFT_PREFIX) else module
        pairs[module] = (a.float(), b.float() * scaling)
    if not pairs:
        raise UnsupportedAdapter(f"{path}: no LoRA weights found")
    return AdapterWeights(rank, pairs)


def _load_tensors(path: Path) -> dict[str, torch.Tensor]:
    if (path / "adapter_model.safetensors").exists():
        from safetensors.torch import load_file

        return load_file(str(path / "adapter_model.safetensors"))
    return torch.load(path / "adapter_model.bin", map_location="cpu", weights_only=True)


class SlotRouting:
    """Which slot each row of the running batch reads; shared by every stacked layer of one model."""

    def __init__(self):
        self.rows: torch.Tensor | None = None  # slot per row (long), None = the base model alone
        self.single: int | None = None  # every row on one slot: a plain matmul, no gather
        self.batch = 0  # which routed batch: a layer gathers its rows' weights once per batch, not per step


class StackedLoraLinear(nn.Module):
    """A base `nn.Linear` plus, per slot, one adapter's low-rank delta."""

    def __init__(self, base: nn.Linear, routing: SlotRouting, slots: int, rank: int):
        super().__init__()
        self.base, self.routing = base, routing
        weight = base.weight
        self.register_buffer("lora_a", weight.new_zeros(slots, rank, base.in_features), persistent=False)
        self.register_buffer("lora_b", weight.new_zeros(slots, base.out_features, rank), persistent=False)
        self._gathered: tuple[int, torch.Tensor, torch.Tensor] | None = None  # (batch, A rows, B rows)

    def resize(self, slots: int, rank: int) -> None:
        """Grow (never shrink) the stack, keeping what every slot holds."""
        old_slots, old_rank = self.lora_a.shape[0], self.lora_a.shape[1]
        slots, rank = max(slots, old_slots), max(rank, old_rank)
        if (slots, rank) == (old_slots, old_rank):
            return
        a = self.lora_a.new_zeros(slots, rank, self.base.in_features)
        b = self.lora_b.new_zeros(slots, self.base.out_features, rank)
        a[:old_slots, :old_rank] = self.lora_a
        b[:old_slots, :, :old_rank] = self.lora_b
        self.lora_a, self.lora_b = a, b

    def put(self, slot: int, a: torch.Tensor | None, b: torch.Tensor | None) -> None:
        """Slot `slot` takes (A, B·scaling), or zeros where the adapter has no weights for this layer."""
        self.lora_a[slot].zero_()
        self.lora_b[slot].zero_()
        if a is not None:
            rank = a.shape[0]
            self.lora_a[slot, :rank] = a.to(self.lora_a.dtype)
            self.lora_b[slot, :, :rank] = b.to(self.lora_b.dtype)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.base(x)
        routing = self.routing
        if routing.rows is None:
            return out
        if routing.single is not None:
            return out + (x @ self.lora_a[routing.single].T) @ self.lora_b[routing.single].T
        if self._gathered is None or self._gathered[0] != routing.batch:
            # Transposed once here, so each generation step is two plain bmm's.
            self._gathered = (routing.batch,
                              self.lora_a.index_select(0, routing.rows).transpose(1, 2).contiguous(),  # batch × in × rank
                              self.lora_b.index_select(0, routing.rows).transpose(1, 2).contiguous())  # batch × rank × out
        _, a, b = self._gathered
        flat = x.reshape(x.shape[0], -1, x.shape[-1])  # batch × tokens × in
        delta = torch.bmm(torch.bmm(flat, a), b)
        return out + delta.reshape(out.shape)


class StackedLora:
    """The adapters of one base model, by name, in slots; `routed(names)` points a batch's rows at them."""

    def __init__(self, model: nn.Module, initial_slots: int = 4):
        self.model = model
        self.routing = SlotRouting()
        self._slots = initial_slots
        self._rank = 1
        self._layers: dict[str, StackedLoraLinear] = {}
        self._slot_of: dict[str, int] = {}
        self._free: list[int] = list(range(initial_slots))

    def loaded(self) -> list[str]:
        return sorted(self._slot_of)

    def load(self, name: str, weights: AdapterWeights) -> None:
        if name in self._slot_of:
            return
        for module, (a, b) in weights.pairs.items():  # all checked before anything is written
            linear = self._linear(module)
            if a.shape[1] != linear.in_features or b.shape[0] != linear.out_features:
                raise UnsupportedAdapter(f"{name}: {module} is {linear.in_features}→{linear.out_features} here,"
                                         f" the adapter's {a.shape[1]}→{b.shape[0]}: made for another base model")
        for module in weights.pairs:
            if module not in self._layers:
                self._wrap(module)
        if not self._free:
            self._grow(slots=self._slots * 2)
        if weights.rank > self._rank:
            self._grow(rank=weights.rank)
        slot = self._free.pop(0)
        for module, layer in self._layers.items():
            a, b = weights.pairs.get(module, (None, None))
            layer.put(slot, a, b)
        self._slot_of[name] = slot

    def unload(self, name: str) -> None:
        slot = self._slot_of.pop(name, None)
        if slot is None:
            return
        for layer in self._layers.values():
            layer.put(slot, None, None)  # a freed slot reads as no adapter until it is reused
        self._free.append(slot)
        self._free.sort()

    @contextmanager
    def routed(self, names: Sequence[str]) -> Iterator[None]:
        """Within the block, batch row i goes through adapter names[i]."""
        slots = [self._slot_of[name] for name in names]  # KeyError: not loaded
        self.routing.single = slots[0] if len(set(slots)) == 1 else None
        self.routing.rows = torch.tensor(slots, dtype=torch.long)
        self.routing.batch += 1
        try:
            yield
        finally:
            self.routing.rows, self.routing.single = None, None
            for layer in self._layers.values():
                layer._gathered = None  # drop the batch's copies

    def _linear(self, module: str) -> nn.Linear:
        if module in self._layers:
            return self._layers[module].base
        try:
            found = self.model.get_submodule(module)
        except AttributeError:
            raise UnsupportedAdapter(f"the base model has no {module}: made for another base model") from None
        if not isinstance(found, nn.Linear):
            raise UnsupportedAdapter(f"{module} is a {type(found).__name__}, not a Linear layer")
        return found

    def _wrap(self, module: str) -> None:
        parent_name, _, child = module.rpartition(".")
        parent = self.model.get_submodule(parent_name) if parent_name else self.model
        base = self._linear(module)
        layer = StackedLoraLinear(base, self.routing, self._slots, self._rank)
        setattr(parent, child, layer)
        self._layers[module] = layer

    def _grow(self, slots: int | None = None, rank: int | None = None) -> None:
        new_slots, new_rank = slots or self._slots, rank or self._rank
        for layer in self._layers.values():
            layer.resize(new_slots, new_rank)
        self._free += list(range(self._slots, new_slots))
        self._slots, self._rank = new_slots, new_rank
