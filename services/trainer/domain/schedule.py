"""When a tenant's adapter is (re)trained, which tenant goes next, and on which samples (pure).

- First adapter once a tenant has `first_min_samples` trainable samples (holdout excluded).
- Then incremental refreshes when `refresh_min_new_samples` new samples arrived, or when any new sample
  waited `refresh_max_interval_s` since the last training.
- Settling: with `settle_s` set, a due tenant waits until none of its samples arrived for `settle_s`
  (a bulk import or a replayed backlog is trained on whole, not on its first half), but no longer than
  `settle_max_s` into a stream of samples that never pauses.
- Fairness: among the tenants due, the one trained least recently goes first (never-trained tenants
  before all others), so a tenant flooding samples is served in turn, not always; and each run takes at
  most `max_samples_per_run` samples, so its runs stay bounded.
- A refresh trains on the new samples plus a replay of older ones (seeded), so the adapter keeps what
  it learned while continuing from the current weights.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Sequence, TypeVar

T = TypeVar("T")

FIRST = "first"
REFRESH_NEW_SAMPLES = "refresh:new-samples"
REFRESH_TIME_LIMIT = "refresh:time-limit"


@dataclass(frozen=True)
class TrainingSchedule:
    """When a tenant trains: the thresholds and waits above (TrainerSettings reads its defaults from here)."""

    first_min_samples: int = 200
    refresh_min_new_samples: int = 100
    refresh_max_interval_s: float = 3600.0
    max_samples_per_run: int = 2000
    replay_ratio: float = 1.0
    retry_after_failure_s: float = 60.0
    settle_s: float = 10.0
    settle_max_s: float = 300.0


@dataclass(frozen=True)
class TenantProgress:
    """What the scheduler knows of a tenant's buffer (counts exclude the holdout)."""

    tenant_id: str
    trainable_samples: int
    trained_samples: int  # how many of them (in arrival order) the last run covered
    has_adapter: bool
    last_trained_at: float | None = None
    retry_at: float | None = None  # after a failed run, not before this
    # When the tenant's newest sample arrived, and when the stream it belongs to began (the first sample
    # after a pause of settle_s or more); None when unknown, e.g. since a restart.
    last_sample_at: float | None = None
    burst_started_at: float | None = None

    @property
    def new_samples(self) -> int:
        return max(0, self.trainable_samples - self.trained_samples)


def settled(progress: TenantProgress, policy: TrainingSchedule, now: float) -> bool:
    """No sample of the tenant for `settle_s`, or a stream of them going on for `settle_max_s`."""
    if policy.settle_s <= 0 or progress.last_sample_at is None:
        return True
    if now - progress.last_sample_at >= policy.settle_s:
        return True
    return progress.burst_started_at is not None and now - progress.burst_started_at >= policy.settle_max_s


def training_due(progress: TenantProgress, policy: TrainingSchedule, now: float) -> str | None:
    """Why this tenant should train now (FIRST / REFRESH_*), or None."""
    if progress.retry_at is not None and now < progress.retry_at:
        return None
    if not settled(progress, policy, now):
        return None
    if not progress.has_adapter:
        return FIRST if progress.trainable_samples >= policy.first_min_samples else None
    if progress.new_samples >= policy.refresh_min_new_samples:
        return REFRESH_NEW_SAMPLES
    since = now - progress.last_trained_at if progress.last_trained_at is not None else float("inf")
    if progress.new_samples > 0 and since >= policy.refresh_max_interval_s:
        return REFRESH_TIME_LIMIT
    return None


def next_due(progresses: Sequence[TenantProgress], policy: TrainingSchedule,
             now: float) -> tuple[TenantProgress, str] | None:
    """The tenant to train next and why: least recently trained first, ties by tenant id."""
    due = [(p, reason) for p in progresses if (reason := training_due(p, policy, now))]
    if not due:
        return None
    return min(due, key=lambda item: (item[0].last_trained_at is not None, item[0].last_trained_at or 0.0,
                                      item[0].tenant_id))


def select_training_samples(trainable: Sequence[T], trained_count: int, policy: TrainingSchedule,
                            is_refresh: bool, seed: int = 0) -> list[T]:
    """The samples of one run, from the tenant's trainable samples in arrival order.

    First run: the most recent `max_samples_per_run`. Refresh: the newest of the new samples, plus up to
    `replay_ratio` times as many older ones drawn with `seed`, within the same cap.
    """
    cap = policy.max_samples_per_run
    if not is_refresh:
        return list(trainable[-cap:])
    new = list(trainable[trained_count:])[-cap:]
    old = list(trainable[:trained_count])
    replay_count = min(len(old), int(len(new) * policy.replay_ratio), cap - len(new))
    replay = random.Random(seed).sample(old, replay_count) if replay_count > 0 else []
    return replay + new
