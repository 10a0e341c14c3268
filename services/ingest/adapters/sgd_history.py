"""A tenant's history from an SGD file as the training samples ingest would emit for it: for tests and
benchmarks that need one without running the stack (the product gets them over `training.samples`)."""

from __future__ import annotations

from pathlib import Path

from clonedesk.core.sgd import read_dialogues, tenant_of
from clonedesk.ingest.domain.sgd import dialogue_samples
from clonedesk.v1 import training_pb2


def tenant_samples(path: Path, tenant_id: str | None = None,
                   limit: int | None = None) -> list[training_pb2.TrainingSample]:
    """Every agent-turn sample of the first `limit` dialogues of one SGD file."""
    tenant_id = tenant_id or tenant_of(path)
    return [s for d in read_dialogues(path, limit) for s in dialogue_samples(tenant_id, d)]
