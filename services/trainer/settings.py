"""The trainer's own settings, from `CLONEDESK_TRAINER_*` environment variables."""

from __future__ import annotations

from typing import Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from clonedesk.core.domain.conversation_format import DEFAULT_CONTEXT_TURNS
from clonedesk.trainer.adapters.lora import LoraTrainingConfig
from clonedesk.core.domain.holdout import DEFAULT_HOLDOUT_FRACTION
from clonedesk.trainer.domain.schedule import TrainingSchedule
from clonedesk.trainer.domain.promotion import DEFAULT_MARGIN

# The defaults live with what they configure (the schedule and the LoRA recipe); the settings only name them.
_SCHEDULE = TrainingSchedule()
_LORA = LoraTrainingConfig()


class TrainerSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="CLONEDESK_TRAINER_", extra="ignore")

    first_min_samples: int = Field(default=_SCHEDULE.first_min_samples, ge=1, description="Trainable samples before a first adapter.")
    refresh_min_new_samples: int = Field(default=_SCHEDULE.refresh_min_new_samples, ge=1, description="New samples that trigger a refresh.")
    refresh_max_interval_s: float = Field(default=_SCHEDULE.refresh_max_interval_s, gt=0,
                                          description="A new sample waits at most this long for a refresh.")
    max_samples_per_run: int = Field(default=_SCHEDULE.max_samples_per_run, ge=1,
                                     description="Samples one run trains on at most (a flood waits its turn).")
    replay_ratio: float = Field(default=_SCHEDULE.replay_ratio, ge=0, description="Older samples replayed per new one on refresh.")
    retry_after_failure_s: float = Field(default=_SCHEDULE.retry_after_failure_s, ge=0,
                                         description="Pause before a tenant whose run failed is tried again.")
    holdout_fraction: float = Field(default=DEFAULT_HOLDOUT_FRACTION, ge=0, le=0.5,
                                    description="Share of tickets held out (by ticket-id hash), never trained on.")
    promotion_margin: float = Field(default=DEFAULT_MARGIN,
                                    description="How far a refresh may fall below the current score.")
    max_backlog_wait_s: float = Field(default=30.0, ge=0,
                                      description="Start training at the latest this long into a backlog.")
    settle_s: float = Field(default=_SCHEDULE.settle_s, ge=0,
                            description="A due tenant trains once its samples paused this long (an import is"
                                        " trained on whole; 0 = at once).")
    settle_max_s: float = Field(default=_SCHEDULE.settle_max_s, gt=0,
                                description="...but at the latest this long into a stream that never pauses.")
    # 128, not 64: a call's header alone runs to 70 tokens (RentalCars_1: median 64), and a header cut
    # short is unreadable, so an ACTION the model got right scored as an escalation.
    eval_max_new_tokens: int = Field(default=128, ge=8, description="Tokens generated per held-out turn when"
                                                                   " scoring (a call's header and a reply).")
    max_eval_turns: int = Field(default=200, ge=1, description="Held-out turns scored per candidate (the calibration"
                                                             " and the threshold are fitted on them).")
    # The LoRA recipe: defaults for the default base model (SmolLM2-135M-Instruct), measured in
    # bench/train.py (speed against the naive loop, held-out loss after the same samples).
    lora_rank: int = Field(default=_LORA.rank, ge=1, description="LoRA rank r (vLLM must allow it: CLONEDESK_MAX_LORA_RANK).")
    lora_alpha: int = Field(default=_LORA.alpha, ge=1, description="LoRA alpha (scale = alpha / rank).")
    lora_layers: int = Field(default=_LORA.layers_to_train, ge=0, description="LoRA on the top N decoder layers (0 = all); the layers"
                                                          " below then run once per sample, without autograd.")
    learning_rate: float = Field(default=_LORA.learning_rate, gt=0, description="AdamW peak learning rate.")
    # bench/quality.py, Hotels_2, 30 unseen tickets: 400 steps decaying to 0.1 of the peak gave decision
    # accuracy 95.2 % (retrieval 77.4 %) and chrF 32.6 against 85.1 % and 27.0 at 200 constant steps.
    final_lr_fraction: float = Field(default=_LORA.final_lr_fraction, gt=0, le=1,
                                     description="Learning rate at a run's end as a share of the peak (1 = constant).")
    max_grad_norm: float = Field(default=_LORA.max_grad_norm, ge=0, description="Gradient clipping (0 = none).")
    # 3, not 2: only a small history stops short of max_steps. bench/quality.py, RentalCars_1 (74 dialogues:
    # 2 epochs = 174 steps, 3 = 261), 30 unseen tickets: decision accuracy 89.0 % against 83.1 % (retrieval
    # 73.7 %), 92 % of turns answered at 91 % against 49 % at 98 %. Hotels_2, Restaurants_1 and Banks_1 reach
    # the 400-step cap either way.
    epochs: float = Field(default=_LORA.epochs, gt=0, description="Passes over a run's samples (bounded by max_steps).")
    max_steps: int = Field(default=_LORA.max_steps, ge=1, description="Optimizer steps of one run at most.")
    batch_size: int = Field(default=_LORA.batch_size, ge=1, description="Samples per optimizer step.")
    # 384: the resolver's prompt budget, so 16 turns of context fit as they will be served.
    max_length: int = Field(default=_LORA.max_length, ge=16, description="Tokens per sample; older turns are cut first.")
    context_turns: int = Field(default=DEFAULT_CONTEXT_TURNS, ge=0,
                               description="Turns of conversation before the agent's turn in a prompt.")
    target_only_logits: bool = Field(default=_LORA.target_only_logits, description="Project onto the vocabulary only where the"
                                                               " loss is (the agent's turn).")
    cache_frozen_prefix: bool = Field(default=_LORA.cache_frozen_prefix, description="With lora_layers: keep each sample's hidden state"
                                                                " below the lowest LoRA layer for later epochs.")
    prefix_cache_mb: int = Field(default=_LORA.prefix_cache_mb, ge=0, description="Memory the frozen-prefix cache may use.")
    length_bucketing: bool = Field(default=_LORA.length_bucketing, description="Batch samples of similar length (less padding;"
                                                              " measured to cost held-out loss).")
    decision_weight: float = Field(default=_LORA.decision_weight, gt=0,
                                   description="Loss weight of the decision header's tokens (the reply's are 1).")
    action_results: bool = Field(default=_LORA.action_results, description="Teach a call's reply after the call's recorded result"
                                                           " (the resolver carries the call out, then asks again).")
    mixed_precision: Literal["auto", "bf16", "no"] = Field(
        default=_LORA.mixed_precision, description="bf16 autocast: auto = where the CPU or GPU computes bf16 natively.")
    threads: int = Field(default=_LORA.threads, ge=0, description="torch threads while training; 0 = every core available.")
    seed: int = Field(default=_LORA.seed, description="Seed of initialisation and sample order (reproducible adapters).")
    group_id: str = Field(default="clonedesk-trainer", description="Kafka consumer group on training.samples.")

    def schedule(self) -> TrainingSchedule:
        return TrainingSchedule(first_min_samples=self.first_min_samples,
                            refresh_min_new_samples=self.refresh_min_new_samples,
                            refresh_max_interval_s=self.refresh_max_interval_s,
                            max_samples_per_run=self.max_samples_per_run, replay_ratio=self.replay_ratio,
                            retry_after_failure_s=self.retry_after_failure_s, settle_s=self.settle_s,
                            settle_max_s=self.settle_max_s)

    def lora(self) -> LoraTrainingConfig:
        return LoraTrainingConfig(rank=self.lora_rank, alpha=self.lora_alpha, layers_to_train=self.lora_layers,
                                  learning_rate=self.learning_rate, epochs=self.epochs, max_steps=self.max_steps,
                                  batch_size=self.batch_size, max_length=self.max_length,
                                  context_turns=self.context_turns, seed=self.seed,
                                  target_only_logits=self.target_only_logits,
                                  cache_frozen_prefix=self.cache_frozen_prefix, prefix_cache_mb=self.prefix_cache_mb,
                                  length_bucketing=self.length_bucketing, threads=self.threads,
                                  final_lr_fraction=self.final_lr_fraction, max_grad_norm=self.max_grad_norm,
                                  mixed_precision=self.mixed_precision, decision_weight=self.decision_weight,
                                  action_results=self.action_results)
