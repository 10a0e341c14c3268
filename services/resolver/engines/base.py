"""The one interface every engine offers the resolver: load / unload a named adapter, generate with it."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol, Sequence

from clonedesk.resolver.domain.lora_adapters import lora_rank


@dataclass(frozen=True)
class GenerationRequest:
    adapter_name: str  # `tenant@vN`: the adapter this request must be generated with, and no other
    messages: Sequence[dict[str, str]]  # chat-template messages (core.domain.conversation_format.chat_messages)
    # The calls the decision header may name (core.domain.decision_header); None: the header is not constrained.
    action_names: tuple[str, ...] | None = None


@dataclass(frozen=True)
class Generation:
    adapter_name: str  # the adapter that produced `text`; the service checks it is the one it asked for
    text: str
    token_logprobs: tuple[float, ...]  # log-probability of each generated token, for the confidence
    # The log-probability of the decision header, renormalised over the headers there are; None when the
    # engine did not constrain it (the resolver then falls back on the sequence's confidence).
    header_logprob: float | None = None


class AdapterNotLoaded(LookupError):
    pass


def read_lora_rank(adapter_dir: Path) -> int:
    """The LoRA rank of the peft adapter in `adapter_dir`, from its adapter_config.json."""
    config_path = Path(adapter_dir) / "adapter_config.json"
    try:
        config = json.loads(config_path.read_text())
    except (OSError, ValueError) as exc:
        raise ValueError(f"cannot read the LoRA rank from {config_path}: {exc}") from exc
    return lora_rank(config)


class Engine(Protocol):
    name: str

    async def start(self) -> None:
        """Load the base model; returns when the engine can take adapters and requests."""

    async def close(self) -> None: ...

    async def load_adapter(self, adapter_name: str, path: Path) -> None:
        """Make the adapter at `path` usable under `adapter_name`. Names are never reused for other
        weights: a new version is a new name."""

    async def unload_adapter(self, adapter_name: str) -> None: ...

    def loaded_adapters(self) -> Sequence[str]: ...

    async def generate(self, request: GenerationRequest) -> Generation:
        """Greedy-decode a reply; concurrent calls (of any tenants) may be batched together."""
