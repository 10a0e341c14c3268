"""Where a base model is written: into a staging folder beside its place, then swapped in whole, with
`clonedesk-base.json` saying what it is (shared by the GGUF import and the tiny model's builder)."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

IDENTITY_FILE = "clonedesk-base.json"
TINY = "tiny"  # CLONEDESK_BASE_MODEL's name for the tiny offline test model (core/tiny_model.py)


def staging_dir(out_dir: Path, doing: str) -> Path:
    """An empty folder beside `out_dir` to write a model into before `swap_into_place`."""
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    staging = out_dir.parent / f".{out_dir.name}.{doing}-{os.getpid()}"
    shutil.rmtree(staging, ignore_errors=True)
    return staging


def swap_into_place(staging: Path, out_dir: Path) -> None:
    """Replace `out_dir` by the fully written `staging` beside it: a reader never finds half a model."""
    if out_dir.exists():
        shutil.rmtree(out_dir)
    os.replace(staging, out_dir)
