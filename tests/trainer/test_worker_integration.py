"""The worker on the real broker, without training: poison records go to the dead-letter topic and the
worker keeps storing good samples; offsets are committed once samples are in the buffer."""

from __future__ import annotations

import asyncio
import uuid

import pytest
from click.testing import CliRunner

from clonedesk.cli import main
from clonedesk.core.kafka import encode, make_consumer, make_producer
from clonedesk.core.domain.topics import TRAINING_SAMPLES, dlq, message_key
from clonedesk.trainer.adapters.buffer import SampleBuffer
from clonedesk.trainer.entrypoints.worker import TrainerWorker
from clonedesk.v1 import training_pb2

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]


async def _dead_letters(bootstrap: str, marker: bytes, expected: int, timeout: float = 30) -> list:
    consumer = make_consumer(bootstrap, dlq(TRAINING_SAMPLES), group_id="dlq-" + uuid.uuid4().hex[:8])
    await consumer.start()
    found = []
    try:
        deadline = asyncio.get_running_loop().time() + timeout
        while len(found) < expected and asyncio.get_running_loop().time() < deadline:
            for records in (await consumer.getmany(timeout_ms=300)).values():
                found += [r for r in records if r.key and marker in r.key]
    finally:
        await consumer.stop()
    return found


async def test_poison_samples_are_dead_lettered_and_the_worker_keeps_going(settings, trainer_settings, kafka_bootstrap):
    marker = uuid.uuid4().hex[:8]
    tenant_id = f"acme-{marker}"
    good = [training_pb2.TrainingSample(sample_id=f"{tenant_id}:t{i}:1", tenant_id=tenant_id, ticket_id=f"t{i}",
                                        reply="Done.") for i in range(5)]
    bad_tenant = training_pb2.TrainingSample(sample_id="x", tenant_id="../Evil", ticket_id="t1", reply="x")
    producer = make_producer(kafka_bootstrap)
    await producer.start()
    try:
        await producer.send_and_wait(TRAINING_SAMPLES, b"\xff\xfe not protobuf", key=f"{marker}:garbage".encode())
        await producer.send_and_wait(TRAINING_SAMPLES, encode(bad_tenant), key=f"{marker}:bad-tenant".encode())
        for sample in good + good[:2]:  # redelivered duplicates too
            await producer.send_and_wait(TRAINING_SAMPLES, encode(sample), key=message_key(tenant_id, sample.ticket_id))
    finally:
        await producer.stop()

    config = trainer_settings.model_copy(update={"first_min_samples": 10**6})
    worker = TrainerWorker(settings.model_copy(update={"base_model": "unused/because-nothing-trains"}), config)
    stop = asyncio.Event()
    task = asyncio.create_task(worker.run(stop))
    try:
        letters = await _dead_letters(kafka_bootstrap, marker.encode(), expected=2)
        for _ in range(100):
            if len(worker.buffer.samples(tenant_id)) == len(good):
                break
            await asyncio.sleep(0.2)
    finally:
        stop.set()
        await task
    assert not task.exception()
    reasons = {dict(r.headers)["dlq.reason"].decode() for r in letters}
    assert len(letters) == 2 and any("invalid tenant id" in r for r in reasons) and any("decode" in r for r in reasons)
    stored = SampleBuffer(settings.resolved_data_dir / "trainer", config.holdout_fraction).samples(tenant_id)
    assert sorted(s.sample_id for s in stored) == sorted(s.sample_id for s in good)

    # offsets committed once stored: the group's committed positions cover every record we sent
    from aiokafka import TopicPartition

    committed = make_consumer(kafka_bootstrap, group_id=config.group_id)
    await committed.start()
    try:
        positions = [await committed.committed(TopicPartition(TRAINING_SAMPLES, p)) for p in range(2)]
    finally:
        await committed.stop()
    assert all(p is not None for p in positions) and sum(positions) >= 2 + len(good) + 2


def test_base_model_build_command(tmp_path):
    result = CliRunner().invoke(main, ["base-model", "build", "--out", str(tmp_path / "base"), "--steps", "2"])
    assert result.exit_code == 0, result.output
    assert "base model built" in result.stdout
    assert (tmp_path / "base" / "config.json").exists() and (tmp_path / "base" / "tokenizer.json").exists()


def test_preview_without_an_adapter_is_a_one_line_error(tmp_path, monkeypatch):
    monkeypatch.setenv("CLONEDESK_DATA_DIR", str(tmp_path / "data"))
    result = CliRunner().invoke(main, ["preview", "--tenant", "nobody", "--json"])
    assert result.exit_code == 1
    assert "has no current adapter yet" in result.output and "Traceback" not in result.output


def test_stack_declares_the_trainer_component(settings):
    from clonedesk.core.components import discover_components

    trainer = [c for c in discover_components(settings) if c.name == "trainer"]
    assert len(trainer) == 1 and trainer[0].port is None and trainer[0].argv[-1] == "trainer"
