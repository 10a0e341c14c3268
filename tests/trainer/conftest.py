"""Trainer test fixtures: one small base model per session, SGD tenants as TrainingSample records, and
helpers to put samples on the real broker."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest

from clonedesk.core.kafka import encode, make_producer
from clonedesk.core.settings import Settings
from clonedesk.core.domain.topics import TRAINING_SAMPLES, message_key
from clonedesk.core.tiny_model import build_base_model, default_texts
from clonedesk.ingest.adapters.sgd_history import tenant_samples
from clonedesk.core.tiny_model import TINY_MODEL_RECIPE
from clonedesk.trainer.settings import TrainerSettings


@pytest.fixture(scope="session")
def base_model_dir(tmp_path_factory) -> Path:
    """The offline base model, built once for the session (the builder's own default corpus)."""
    return build_base_model(tmp_path_factory.mktemp("base") / "model", default_texts(), seed=0, progress=False)


@pytest.fixture
def trainer_settings() -> TrainerSettings:
    """Small, quick runs: a first adapter from 150 samples, 20% holdout; samples settle for 2 s (they are
    produced before the worker starts). The recipe is the tiny model's (TINY_MODEL_RECIPE): a
    2-layer model learns at a higher rate than the real one."""
    return TrainerSettings(first_min_samples=150, refresh_min_new_samples=60, refresh_max_interval_s=3600,
                           holdout_fraction=0.2, max_eval_turns=40, max_steps=110, settle_s=2.0,
                           group_id="trainer-" + uuid.uuid4().hex[:8], **TINY_MODEL_RECIPE)


@pytest.fixture
def trained_settings(settings, base_model_dir, monkeypatch) -> Settings:
    monkeypatch.setenv("CLONEDESK_BASE_MODEL", str(base_model_dir))
    return settings.model_copy(update={"base_model": str(base_model_dir)})


def sgd_tenant(sgd_dir: Path, business: str, dialogues: int, prefix: str | None = None):
    """(tenant id, samples) of one SGD business under a fresh tenant id."""
    tenant_id = f"{prefix or business.lower().replace('_', '-')}-{uuid.uuid4().hex[:6]}"
    return tenant_id, tenant_samples(sgd_dir / f"train_{business}.jsonl", tenant_id, limit=dialogues)


async def produce_samples(bootstrap: str, samples) -> None:
    producer = make_producer(bootstrap)
    await producer.start()
    try:
        for sample in samples:
            await producer.send(TRAINING_SAMPLES, encode(sample), key=message_key(sample.tenant_id, sample.ticket_id))
        await producer.flush()
    finally:
        await producer.stop()
