"""Each tenant's training samples on disk, so a restart loses nothing.

One append-only file per tenant, `<data>/trainer/buffers/<tenant>.samples`: length-prefixed
TrainingSample records (4-byte big-endian length, then the protobuf). `append` returns only after the
touched files are fsynced: the worker commits a Kafka offset only after that. A record torn by a crash
is cut off when the buffer is opened. Idempotent on `sample_id`.

Beside it, `<data>/trainer/state/<tenant>.json` keeps the scheduler's progress (how many samples the
last run covered, when), replaced atomically.
"""

from __future__ import annotations

import json
import os
import struct
import threading
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Iterable

from clonedesk.core.files import fsync_path, write_atomically
from clonedesk.core.domain.holdout import DEFAULT_HOLDOUT_FRACTION, is_holdout
from clonedesk.v1 import training_pb2

_LENGTH = struct.Struct(">I")


def _read_records(path: Path) -> tuple[list[bytes], int]:
    """The whole records of a buffer file and the byte offset where they end."""
    records: list[bytes] = []
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return records, 0
    offset = 0
    while offset + _LENGTH.size <= len(data):
        (length,) = _LENGTH.unpack_from(data, offset)
        end = offset + _LENGTH.size + length
        if end > len(data):
            break
        records.append(data[offset + _LENGTH.size:end])
        offset = end
    return records, offset


@dataclass
class TenantCounts:
    trainable: int = 0
    holdout: int = 0


class SampleBuffer:
    def __init__(self, root: Path, holdout_fraction: float = DEFAULT_HOLDOUT_FRACTION, *, read_only: bool = False):
        """`read_only`: for readers beside the running worker (the preview); they never cut a record
        that may be one the worker is writing."""
        self.root = Path(root)
        self.read_only = read_only
        self.holdout_fraction = holdout_fraction
        self.buffers_dir = self.root / "buffers"
        if not read_only:
            self.buffers_dir.mkdir(parents=True, exist_ok=True)
        self._ids: dict[str, set[str]] = {}
        self._counts: dict[str, TenantCounts] = {}
        self._lock = threading.Lock()  # appends (event loop) and reads (training thread) of one file
        self._load()

    def _path(self, tenant_id: str) -> Path:
        return self.buffers_dir / f"{tenant_id}.samples"

    def _load(self) -> None:
        for path in sorted(self.buffers_dir.glob("*.samples")):
            tenant_id = path.name.removesuffix(".samples")
            records, good_end = _read_records(path)
            if not self.read_only and good_end != path.stat().st_size:  # torn by a crash: cut it off
                with open(path, "r+b") as handle:
                    handle.truncate(good_end)
                    os.fsync(handle.fileno())
            ids, counts = set(), TenantCounts()
            for payload in records:
                sample = training_pb2.TrainingSample.FromString(payload)
                ids.add(sample.sample_id)
                self._count(counts, sample)
            self._ids[tenant_id], self._counts[tenant_id] = ids, counts

    def _count(self, counts: TenantCounts, sample: training_pb2.TrainingSample) -> None:
        if is_holdout(sample.ticket_id, self.holdout_fraction):
            counts.holdout += 1
        else:
            counts.trainable += 1

    def append(self, samples: Iterable[training_pb2.TrainingSample]) -> int:
        """Store the samples not seen before; durable (fsynced) when this returns. Returns how many
        were new."""
        if self.read_only:
            raise PermissionError("this sample buffer was opened read-only")
        by_tenant: dict[str, list[training_pb2.TrainingSample]] = {}
        with self._lock:
            for sample in samples:
                ids = self._ids.setdefault(sample.tenant_id, set())
                if sample.sample_id in ids:
                    continue
                ids.add(sample.sample_id)
                by_tenant.setdefault(sample.tenant_id, []).append(sample)
            for tenant_id, new in by_tenant.items():
                path = self._path(tenant_id)
                created = not path.exists()
                with open(path, "ab") as handle:
                    for sample in new:
                        payload = sample.SerializeToString(deterministic=True)
                        handle.write(_LENGTH.pack(len(payload)) + payload)
                    handle.flush()
                    os.fsync(handle.fileno())
                if created:
                    fsync_path(self.buffers_dir)
                counts = self._counts.setdefault(tenant_id, TenantCounts())
                for sample in new:
                    self._count(counts, sample)
        return sum(len(v) for v in by_tenant.values())

    def tenants(self) -> list[str]:
        with self._lock:
            return sorted(t for t, ids in self._ids.items() if ids)

    def counts(self, tenant_id: str) -> TenantCounts:
        with self._lock:
            counts = self._counts.get(tenant_id, TenantCounts())
            return TenantCounts(counts.trainable, counts.holdout)

    def samples(self, tenant_id: str) -> list[training_pb2.TrainingSample]:
        """Every sample of the tenant, in arrival order."""
        with self._lock:
            records, _ = _read_records(self._path(tenant_id))
        return [training_pb2.TrainingSample.FromString(r) for r in records]

    def split(self, tenant_id: str) -> tuple[list[training_pb2.TrainingSample], list[training_pb2.TrainingSample]]:
        """(trainable, holdout) samples of the tenant, in arrival order."""
        trainable, holdout = [], []
        for sample in self.samples(tenant_id):
            (holdout if is_holdout(sample.ticket_id, self.holdout_fraction) else trainable).append(sample)
        return trainable, holdout


@dataclass
class TrainerProgressRecord:
    trained_samples: int = 0
    last_trained_at: float | None = None
    retry_at: float | None = None
    runs: int = 0
    published_version: int | None = None  # the last version announced on adapters.published


class ProgressStore:
    """Per-tenant scheduler progress as small JSON files, each replaced atomically."""

    def __init__(self, root: Path):
        self.dir = Path(root) / "state"
        self.dir.mkdir(parents=True, exist_ok=True)

    def get(self, tenant_id: str) -> TrainerProgressRecord:
        try:
            return TrainerProgressRecord(**json.loads((self.dir / f"{tenant_id}.json").read_text()))
        except FileNotFoundError:
            return TrainerProgressRecord()

    def save(self, tenant_id: str, record: TrainerProgressRecord) -> None:
        write_atomically(self.dir / f"{tenant_id}.json", json.dumps(asdict(record)))
