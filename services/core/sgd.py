"""Finds and reads the Schema-Guided Dialogue files (one business per file): the tiny base model's
pre-training text, the demo's tenants, and (through ingest's own core, `ingest/adapters/sgd_history.py`)
the training samples tests and benchmarks need without running ingest."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Iterator, Sequence


_REPO = Path(__file__).resolve().parents[2]


def find_sgd_dir(containing: Sequence[str] = (), *, carried_first: bool = False) -> Path | None:
    """The SGD folder: the shared datasets beside the project, else the subset the project carries
    (`carried_first`: the other way round, for what must run the same on every checkout). With
    `containing`, only a folder holding every one of those files counts."""
    shared = [_REPO.parent / "shared" / "datasets" / "sgd"]
    carried = [_REPO / "data" / "sgd", Path.cwd() / "data" / "sgd"]
    for candidate in (carried + shared if carried_first else shared + carried):
        if not candidate.is_dir():
            continue
        if all((candidate / name).exists() for name in containing) and any(candidate.glob("*.jsonl")):
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
