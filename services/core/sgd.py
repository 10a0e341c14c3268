"""Finds and reads the Schema-Guided Dialogue files (one business per file): the tiny base model's
pre-training text, the demo's tenants, and (through ingest's own core, `ingest/adapters/sgd_history.py`)
the training samples tests and benchmarks need without running ingest."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Iterator


_REPO = Path(__file__).resolve().parents[2]


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
