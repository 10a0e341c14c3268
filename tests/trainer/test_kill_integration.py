"""Killing the trainer (SIGKILL) in the middle of a training run and starting it again loses no
sample: offsets are committed only after the buffer fsynced, the half-written run leaves nothing
visible, and the restarted worker trains on everything."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import uuid

import pytest

from clonedesk.trainer.adapters.buffer import ProgressStore, SampleBuffer
from clonedesk.trainer.adapters.version_registry import META_FILE, AdapterRegistry
from clonedesk.core.domain.holdout import is_holdout

from ..conftest import wait_until
from .conftest import produce_samples, sgd_tenant

pytestmark = [pytest.mark.integration, pytest.mark.slow, pytest.mark.timeout(300)]


def _start(env, log_path):
    return subprocess.Popen([sys.executable, "-m", "clonedesk", "trainer"], env=env, stdin=subprocess.DEVNULL,
                            stdout=subprocess.DEVNULL, stderr=open(log_path, "ab"))


def test_kill_mid_training_and_restart_loses_no_sample(trained_settings, sgd_dir, kafka_bootstrap, tmp_path):
    tenant_id, samples = sgd_tenant(sgd_dir, "Hotels_1", 30)
    tickets = list(dict.fromkeys(s.ticket_id for s in samples))
    parts = [[s for s in samples if s.ticket_id in set(chunk)]
             for chunk in (tickets[:16], tickets[16:22], tickets[22:])]
    env = {**os.environ, **trained_settings.child_env(),
           "CLONEDESK_TRAINER_GROUP_ID": "trainer-" + uuid.uuid4().hex[:8],
           "CLONEDESK_TRAINER_FIRST_MIN_SAMPLES": "60", "CLONEDESK_TRAINER_REFRESH_MIN_NEW_SAMPLES": "1",
           "CLONEDESK_TRAINER_HOLDOUT_FRACTION": "0.2", "CLONEDESK_TRAINER_MAX_STEPS": "60",
           "CLONEDESK_TRAINER_MAX_EVAL_TURNS": "16"}
    log_path = tmp_path / "trainer.log"
    data_dir = trained_settings.resolved_data_dir
    registry = AdapterRegistry(data_dir)

    asyncio.run(produce_samples(kafka_bootstrap, parts[0]))
    # the first process gets a long run, so the kill surely lands in the middle of it
    first = _start({**env, "CLONEDESK_TRAINER_MAX_STEPS": "5000"}, log_path)
    try:
        wait_until(lambda: b"training started" in log_path.read_bytes() or first.poll() is not None,
                   timeout=120, message="a training run")
        assert first.poll() is None, log_path.read_text()[-3000:]
        asyncio.run(produce_samples(kafka_bootstrap, parts[1]))  # arrives while the run is going
        # the consumer does not stall behind training: the new samples are stored meanwhile
        part_ids = {s.sample_id for s in parts[1]}
        wait_until(lambda: part_ids <= {s.sample_id for s in SampleBuffer(
            data_dir / "trainer", 0.2, read_only=True).samples(tenant_id)}, timeout=60,
            message="samples stored during training")
        assert first.poll() is None and b"adapter promoted" not in log_path.read_bytes()
        first.send_signal(signal.SIGKILL)
        first.wait(timeout=10)
    finally:
        if first.poll() is None:
            first.kill()
    assert registry.current(tenant_id) is None  # the killed run published nothing half-done

    asyncio.run(produce_samples(kafka_bootstrap, parts[2]))  # arrives while the trainer is down
    trainable = [s for s in samples if not is_holdout(s.ticket_id, 0.2)]
    second = _start(env, log_path)
    try:
        progress = ProgressStore(data_dir / "trainer")
        wait_until(lambda: registry.current(tenant_id) is not None
                   and progress.get(tenant_id).trained_samples == len(trainable)
                   and progress.get(tenant_id).published_version == registry.current(tenant_id),
                   timeout=200, interval=1.0, message="an adapter trained on every sample")
        second.send_signal(signal.SIGTERM)
        assert second.wait(timeout=90) == 0
    finally:
        if second.poll() is None:
            second.kill()

    buffer = SampleBuffer(data_dir / "trainer", 0.2)
    assert sorted(s.sample_id for s in buffer.samples(tenant_id)) == sorted(s.sample_id for s in samples)
    latest = registry.meta(tenant_id, registry.current(tenant_id))
    assert latest["trainable_samples_seen"] == len(trainable)
    for version in registry.versions(tenant_id):
        assert (registry.path(tenant_id, version) / META_FILE).exists()
    assert not list(registry.tenant_dir(tenant_id).glob(".staging-*"))
