"""The resolver's own settings (env prefix CLONEDESK_), beside the shared core `Settings`."""

from __future__ import annotations

from typing import Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from clonedesk.core.domain.conversation_format import DEFAULT_CONTEXT_TURNS


class ResolverSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="CLONEDESK_", extra="ignore")

    max_loras: int = Field(
        default=8, ge=1, description="Adapters resident at once (vLLM: per batch, on GPU)."
    )
    max_cpu_loras: int = Field(default=32, ge=1, description="vLLM: adapters kept in CPU memory.")
    # Above the trainer's default rank (32); vLLM accepts only some values (8, 16, 32, 64, 128, ...).
    max_lora_rank: int = Field(default=64, ge=1, description="vLLM: the largest LoRA rank it must serve.")
    hf_multi_lora: Literal["stacked", "peft"] = Field(
        default="stacked", description="hf engine: a mixed batch in one pass over stacked adapters, or peft's"
                                       " sub-batch per adapter (for comparison).")
    max_batch_size: int = Field(default=8, ge=1, description="Requests generated together in one batch.")
    batch_wait_ms: float = Field(default=5.0, ge=0, description="How long a batch waits for company.")
    # As the trainer's eval_max_new_tokens: a call's header alone runs to 70 tokens.
    max_new_tokens: int = Field(default=128, ge=1, description="Tokens generated per answer at most.")
    max_prompt_tokens: int = Field(default=384, ge=16, description="Older turns are cut beyond this.")
    context_turns: int = Field(default=DEFAULT_CONTEXT_TURNS, ge=0,
                               description="Turns of conversation in a prompt (as the trainer's context_turns).")
    max_pending: int = Field(
        default=64, ge=1, description="Requests in the resolver before RESOURCE_EXHAUSTED."
    )
    resolver_address: str | None = Field(
        default=None,
        description="host:port of the resolver the bridge calls; unset = 127.0.0.1:<resolver_port>.",
    )
    resolve_timeout_s: float = Field(
        default=30.0, gt=0, description="Deadline of the bridge's Resolve calls."
    )
    outbound_max_attempts: int = Field(
        default=5, ge=1, description="Posts of one reply before it is dead-lettered."
    )
    outbound_backoff_s: float = Field(
        default=0.5, ge=0, description="First retry delay; doubles per attempt."
    )
    outbound_backoff_max_s: float = Field(default=10.0, ge=0, description="Longest retry delay.")
    outbound_timeout_s: float = Field(default=10.0, gt=0, description="One HTTP post to a helpdesk.")
    registry_check_s: float = Field(
        default=30.0, gt=0, description="How often the served adapters are compared with the registry's current."
    )
    vllm_memory_utilization: float | None = Field(
        default=None,
        gt=0,
        le=1,
        description="vLLM's gpu_memory_utilization (on the CPU build: the share of RAM it reserves).",
    )
    vllm_python: str | None = Field(
        default=None, description="Interpreter of the separate vLLM environment that runs the resolver."
    )
