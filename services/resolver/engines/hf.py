"""The `hf` engine: transformers on CPU. Every tenant adapter is loaded on one base model under its own
name, and concurrent requests of different tenants run in one batch, each row through its own adapter:
by default in one pass with every adapter's weights stacked by slot (engines/stacked_lora.py), or with
`CLONEDESK_HF_MULTI_LORA=peft` through peft's `adapter_names=` (a sub-batch per adapter at every layer)."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path
from typing import Sequence

from clonedesk.core.constrained_generation import HeaderConstraints, generate_answers
from clonedesk.core.prompt import prompt_token_ids
from clonedesk.resolver.engines.base import AdapterNotLoaded, Generation, GenerationRequest
from clonedesk.resolver.engines.batching import ModelThreadEngine

log = logging.getLogger(__name__)


def render_prompt(tokenizer, messages) -> str:
    """The conversation as the model was trained to read it: the tokenizer's chat template, ending in the
    assistant's (agent's) turn."""
    return tokenizer.apply_chat_template(list(messages), add_generation_prompt=True, tokenize=False)


def left_padded(prompts: Sequence[list[int]], pad_id: int):
    """(input_ids, attention_mask) tensors of token-id prompts, padded on the left: a decoder-only model's
    prompts must end where generation starts."""
    import torch

    length = max(len(p) for p in prompts)
    return (torch.tensor([[pad_id] * (length - len(p)) + p for p in prompts]),
            torch.tensor([[0] * (length - len(p)) + [1] * len(p) for p in prompts]))


class HFEngine(ModelThreadEngine):
    name = "hf"

    def __init__(self, base_model: str, resolver_settings):
        super().__init__(base_model, resolver_settings)
        self.max_new_tokens = resolver_settings.max_new_tokens
        self.max_prompt_tokens = resolver_settings.max_prompt_tokens
        self._tokenizer = None
        self._base = None
        self.multi_lora = resolver_settings.hf_multi_lora
        self._model = None  # peft: the PeftModel, once the first adapter is loaded
        self._stack = None  # stacked: the adapters' slots on the base model
        # Replaced, never mutated: the event loop may read it while the model thread changes it.
        self._loaded: frozenset[str] = frozenset()
        self._constraints: HeaderConstraints | None = None

    def _load_base(self) -> None:
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer

        tokenizer = AutoTokenizer.from_pretrained(self.base_model_path)
        tokenizer.padding_side = "left"  # decoder-only: the prompts end where generation starts
        tokenizer.truncation_side = "left"  # keep the latest turns when a conversation is too long
        if tokenizer.pad_token is None:
            tokenizer.pad_token = tokenizer.eos_token
        model = AutoModelForCausalLM.from_pretrained(self.base_model_path, dtype=torch.float32)
        model.eval()
        self._tokenizer, self._base = tokenizer, model
        if self.multi_lora == "stacked":
            from clonedesk.resolver.engines.stacked_lora import StackedLora

            self._stack = StackedLora(model)
        self._constraints = HeaderConstraints(tokenizer)  # the header tries, one per set of action names
        log.info("base model loaded", extra={"base_model": self.base_model_path})

    async def close(self) -> None:
        await self._batcher.close()
        self._executor.shutdown(wait=True)

    def loaded_adapters(self) -> Sequence[str]:
        return sorted(self._loaded)

    async def load_adapter(self, adapter_name: str, path: Path) -> None:
        await asyncio.get_running_loop().run_in_executor(
            self._executor, self._load_adapter, adapter_name, Path(path)
        )

    def _load_adapter(self, adapter_name: str, path: Path) -> None:
        from peft import PeftModel

        if adapter_name in self._loaded:
            return
        if self._stack is not None:
            from clonedesk.resolver.engines.stacked_lora import read_adapter

            self._stack.load(adapter_name, read_adapter(path))
            self._loaded = self._loaded | {adapter_name}
            log.info("adapter loaded", extra={"adapter": adapter_name, "path": str(path), "multi_lora": "stacked"})
            return
        if self._model is None:
            self._model = PeftModel.from_pretrained(
                self._base, str(path), adapter_name=adapter_name, is_trainable=False
            )
            self._model.eval()
        else:
            self._model.load_adapter(str(path), adapter_name=adapter_name, is_trainable=False)
        self._loaded = self._loaded | {adapter_name}
        self._keep_active_adapter_valid()
        log.info("adapter loaded", extra={"adapter": adapter_name, "path": str(path)})

    async def unload_adapter(self, adapter_name: str) -> None:
        await asyncio.get_running_loop().run_in_executor(self._executor, self._unload_adapter, adapter_name)

    def _unload_adapter(self, adapter_name: str) -> None:
        if adapter_name not in self._loaded:
            return
        self._loaded = self._loaded - {adapter_name}
        if self._stack is not None:
            self._stack.unload(adapter_name)
            log.info("adapter unloaded", extra={"adapter": adapter_name})
            return
        self._keep_active_adapter_valid()  # move "active" off it first, so peft need not (and warn)
        self._model.delete_adapter(adapter_name)
        log.info("adapter unloaded", extra={"adapter": adapter_name})

    def _keep_active_adapter_valid(self) -> None:
        # Rows pick their adapter through `adapter_names`; peft still wants its "active" adapter to be
        # one that exists, and deleting the active one leaves a dangling name behind.
        if self._loaded and self._model.active_adapter not in self._loaded:
            self._model.set_adapter(sorted(self._loaded)[0])

    def _run_batch(self, requests: Sequence[GenerationRequest]) -> list[Generation]:
        missing = [r.adapter_name for r in requests if r.adapter_name not in self._loaded]
        if missing:
            # Checked on the model's own thread, so an unload cannot slip in between check and use.
            raise AdapterNotLoaded(f"adapters not loaded: {sorted(set(missing))}")
        tokenizer = self._tokenizer
        input_ids, attention_mask = left_padded(
            [prompt_token_ids(tokenizer, r.messages, self.max_prompt_tokens) for r in requests], tokenizer.pad_token_id)
        constraints = [self._constraints.get(r.action_names) for r in requests]
        names = [r.adapter_name for r in requests]
        if self._stack is not None:
            with self._stack.routed(names):
                answers = generate_answers(self._base, tokenizer, input_ids, attention_mask, constraints,
                                           max_new_tokens=self.max_new_tokens)
        else:
            answers = generate_answers(self._model, tokenizer, input_ids, attention_mask, constraints,
                                       max_new_tokens=self.max_new_tokens, adapter_names=names)
        return [Generation(r.adapter_name, a.text, a.token_logprobs, a.header_logprob)
                for r, a in zip(requests, answers)]

