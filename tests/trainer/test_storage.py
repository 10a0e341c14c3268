"""The sample buffer, the adapter registry and the retrieval baseline, on a real disk."""

from __future__ import annotations

import os

import pytest

from clonedesk.core.adapters import current_version
from clonedesk.trainer.adapters.buffer import ProgressStore, SampleBuffer, TrainerProgressRecord
from clonedesk.trainer.adapters.version_registry import AdapterRegistry
from clonedesk.trainer.adapters.retrieval import RetrievalBaseline
from clonedesk.ingest.adapters.sgd_history import tenant_samples
from clonedesk.core.domain.holdout import is_holdout
from clonedesk.v1 import common_pb2, training_pb2


def _sample(tenant, ticket, turn, reply="hello"):
    sample = training_pb2.TrainingSample(sample_id=f"{tenant}:{ticket}:{turn}", tenant_id=tenant, ticket_id=ticket,
                                         reply=reply, decision=common_pb2.RESOLVE, turn_index=turn)
    sample.context.add(role=common_pb2.CUSTOMER, text="hi")
    return sample


def test_buffer_is_durable_idempotent_and_split_by_holdout(tmp_path):
    buffer = SampleBuffer(tmp_path, holdout_fraction=0.3)
    samples = [_sample("acme", f"t{i}", 1) for i in range(50)]
    assert buffer.append(samples[:30]) == 30
    assert buffer.append(samples) == 20  # redelivered ones dropped by sample_id
    reopened = SampleBuffer(tmp_path, holdout_fraction=0.3)
    assert [s.sample_id for s in reopened.samples("acme")] == [s.sample_id for s in samples]
    trainable, holdout = reopened.split("acme")
    assert {s.ticket_id for s in holdout} == {s.ticket_id for s in samples if is_holdout(s.ticket_id, 0.3)}
    assert reopened.counts("acme").trainable == len(trainable) and reopened.counts("acme").holdout == len(holdout)
    assert reopened.append(samples) == 0
    assert reopened.tenants() == ["acme"]


def test_buffer_cuts_a_torn_record_left_by_a_crash(tmp_path):
    buffer = SampleBuffer(tmp_path)
    buffer.append([_sample("acme", "t1", 1), _sample("acme", "t2", 1)])
    path = tmp_path / "buffers" / "acme.samples"
    whole = path.stat().st_size
    with open(path, "ab") as handle:
        handle.write(b"\x00\x00\x01\x00partial")  # a length prefix and half a record
    reader = SampleBuffer(tmp_path, read_only=True)  # e.g. the preview, beside a worker mid-write
    assert [s.ticket_id for s in reader.samples("acme")] == ["t1", "t2"]
    assert path.stat().st_size > whole
    with pytest.raises(PermissionError):
        reader.append([_sample("acme", "t9", 1)])
    reopened = SampleBuffer(tmp_path)
    assert [s.ticket_id for s in reopened.samples("acme")] == ["t1", "t2"]
    assert path.stat().st_size == whole
    assert reopened.append([_sample("acme", "t3", 1)]) == 1
    assert len(SampleBuffer(tmp_path).samples("acme")) == 3


def test_progress_store_round_trip(tmp_path):
    store = ProgressStore(tmp_path)
    assert store.get("acme") == TrainerProgressRecord()
    store.save("acme", TrainerProgressRecord(trained_samples=12, last_trained_at=5.0, runs=2, published_version=1))
    assert ProgressStore(tmp_path).get("acme").trained_samples == 12
    assert not [p for p in (tmp_path / "state").iterdir() if ".tmp" in p.name]


def test_registry_versions_are_staged_then_renamed_and_current_moves_only_on_promote(tmp_path):
    registry = AdapterRegistry(tmp_path)
    staging = registry.new_staging("acme")
    (staging / "adapter_model.safetensors").write_bytes(b"weights")
    assert registry.versions("acme") == []  # a staged version is invisible
    assert registry.commit("acme", staging, {"status": "promoted"}) == 1
    assert not staging.exists() and registry.meta("acme", 1)["version"] == 1
    assert registry.current("acme") is None
    registry.promote("acme", 1)
    assert current_version(tmp_path, "acme") == 1
    second = registry.new_staging("acme")
    assert registry.commit("acme", second, {"status": "rejected", "reason": "worse"}) == 2
    assert registry.current("acme") == 1 and registry.meta("acme", 2)["status"] == "rejected"
    registry.new_staging("acme")
    assert registry.discard_staging() == 1
    assert registry.versions("acme") == [1, 2]
    assert os.readlink(registry.tenant_dir("acme") / "current") == "v1"
    path = registry.write_preview("acme", 1, {"tenant_id": "acme"})
    assert path.name == "preview.json" and path.parent == registry.path("acme", 1)


def test_retrieval_baseline_answers_with_the_most_similar_turn(sgd_dir):
    samples = tenant_samples(sgd_dir / "train_Banks_1.jsonl", "bank", limit=30)
    baseline = RetrievalBaseline(samples)
    from collections import Counter

    from clonedesk.trainer.adapters.retrieval import query_text

    queries = Counter(query_text(s.context) for s in samples)
    unique = [s for s in samples if queries[query_text(s.context)] == 1][:15]
    assert len(unique) == 15
    for sample in unique:  # a moment from history finds itself
        answer = baseline.answer(sample.context)
        assert (answer.reply, answer.decision, answer.action) == (sample.reply, sample.decision, sample.action)
    probe = [(common_pb2.CUSTOMER, "I'd like to transfer money to my savings account")]
    assert RetrievalBaseline([]).answer(probe).decision == common_pb2.ESCALATE
    assert "transfer" in " ".join(s.reply for s in samples).lower()
    assert baseline.answer(probe).reply in {s.reply for s in samples}
