"""Reads the Schema-Guided Dialogue files (one business per file) as conversation text and as
TrainingSample records.

The product gets its samples from the ingest service over `training.samples`; this reader exists for
the base-model builder's pre-training text and for tests and benchmarks that need a tenant's history
without running ingest; its samples come from ingest's own pure core, so they are the product's.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Iterator

from clonedesk.v1 import training_pb2

_REPO = Path(__file__).resolve().parents[3]


def find_sgd_dir() -> Path | None:
    """The SGD folder: the shared datasets beside the project, else the subset the project carries."""
    for candidate in (_REPO.parent / "shared" / "datasets" / "sgd", _REPO / "data" / "sgd",
                      Path.cwd() / "data" / "sgd"):
        if candidate.is_dir() and any(candidate.glob("*.jsonl")):
            return candidate
    return None


def sgd_files(sgd_dir: Path) -> list[Path]:
    return sorted(Path(sgd_dir).glob("*.jsonl"))


def tenant_of(path: Path) -> str:
    """`train_Banks_1.jsonl` -> `banks-1` (a valid tenant id)."""
    name = path.stem.removeprefix("train_")
    return name.lower().replace("_", "-")


def read_dialogues(path: Path, limit: int | None = None) -> Iterator[dict]:
    with open(path, encoding="utf-8") as handle:
        for count, line in enumerate(handle):
            if limit is not None and count >= limit:
                return
            if line.strip():
                yield json.loads(line)


def dialogue_samples(tenant_id: str, dialogue: dict) -> list[training_pb2.TrainingSample]:
    """One TrainingSample per agent turn, exactly as the product makes them: the dialogue normalised to
    helpdesk events and run through ingest's conversation reducer (same decisions, same PII scrubbing)."""
    from clonedesk.core.topics import TRAINING_SAMPLES
    from clonedesk.ingest.domain.conversation import apply
    from clonedesk.ingest.domain.sgd import normalise_dialogue

    state, samples = None, []
    for event in normalise_dialogue(tenant_id, dialogue):
        state, emits = apply(state, event)
        samples += [emit.message for emit in emits if emit.topic == TRAINING_SAMPLES]
    return samples


def tenant_samples(path: Path, tenant_id: str | None = None,
                   limit: int | None = None) -> list[training_pb2.TrainingSample]:
    """Every agent-turn sample of the first `limit` dialogues of one SGD file."""
    tenant_id = tenant_id or tenant_of(path)
    return [s for d in read_dialogues(path, limit) for s in dialogue_samples(tenant_id, d)]
