"""The trainer's own settings, from `CLONEDESK_TRAINER_*` environment variables."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from clonedesk.trainer.adapters.lora import LoraTrainingConfig
from clonedesk.trainer.domain.holdout import DEFAULT_HOLDOUT_FRACTION
from clonedesk.trainer.domain.policy import BufferPolicy
from clonedesk.trainer.domain.promotion import DEFAULT_MARGIN


class TrainerSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="CLONEDESK_TRAINER_", extra="ignore")

    first_min_samples: int = Field(default=200, ge=1, description="Trainable samples before a first adapter.")
    refresh_min_new_samples: int = Field(default=100, ge=1, description="New samples that trigger a refresh.")
    refresh_max_interval_s: float = Field(default=3600.0, gt=0,
                                          description="A new sample waits at most this long for a refresh.")
    max_samples_per_run: int = Field(default=2000, ge=1,
                                     description="Samples one run trains on at most (a flood waits its turn).")
    replay_ratio: float = Field(default=1.0, ge=0, description="Older samples replayed per new one on refresh.")
    retry_after_failure_s: float = Field(default=60.0, ge=0,
                                         description="Pause before a tenant whose run failed is tried again.")
    holdout_fraction: float = Field(default=DEFAULT_HOLDOUT_FRACTION, ge=0, le=0.5,
                                    description="Share of tickets held out (by ticket-id hash), never trained on.")
    promotion_margin: float = Field(default=DEFAULT_MARGIN,
                                    description="How far a refresh may fall below the current score.")
    max_backlog_wait_s: float = Field(default=30.0, ge=0,
                                      description="Start training at the latest this long into a backlog.")
    settle_s: float = Field(default=10.0, ge=0,
                            description="A due tenant trains once its samples paused this long (an import is"
                                        " trained on whole; 0 = at once).")
    settle_max_s: float = Field(default=300.0, gt=0,
                                description="...but at the latest this long into a stream that never pauses.")
    max_eval_turns: int = Field(default=64, ge=1, description="Held-out turns scored per candidate.")
    lora_rank: int = Field(default=32, ge=1, description="LoRA rank r (vLLM must allow it: CLONEDESK_MAX_LORA_RANK).")
    lora_alpha: int = Field(default=64, ge=1, description="LoRA alpha (scale = alpha / rank).")
    learning_rate: float = Field(default=1e-2, gt=0, description="AdamW peak learning rate.")
    epochs: float = Field(default=3.0, gt=0, description="Passes over a run's samples (bounded by max_steps).")
    max_steps: int = Field(default=200, ge=1, description="Optimizer steps of one run at most.")
    batch_size: int = Field(default=8, ge=1, description="Samples per optimizer step.")
    max_length: int = Field(default=192, ge=16, description="Tokens per sample; older context is cut first.")
    seed: int = Field(default=0, description="Seed of initialisation and sample order (reproducible adapters).")
    group_id: str = Field(default="clonedesk-trainer", description="Kafka consumer group on training.samples.")

    def policy(self) -> BufferPolicy:
        return BufferPolicy(first_min_samples=self.first_min_samples,
                            refresh_min_new_samples=self.refresh_min_new_samples,
                            refresh_max_interval_s=self.refresh_max_interval_s,
                            max_samples_per_run=self.max_samples_per_run, replay_ratio=self.replay_ratio,
                            retry_after_failure_s=self.retry_after_failure_s, settle_s=self.settle_s,
                            settle_max_s=self.settle_max_s)

    def lora(self) -> LoraTrainingConfig:
        return LoraTrainingConfig(rank=self.lora_rank, alpha=self.lora_alpha, learning_rate=self.learning_rate,
                                  epochs=self.epochs, max_steps=self.max_steps, batch_size=self.batch_size,
                                  max_length=self.max_length, seed=self.seed)
