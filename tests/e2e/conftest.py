"""Shared by the end-to-end tests: the offline base model the demo's stack runs on."""

from __future__ import annotations

import hashlib
import inspect
from pathlib import Path

import pytest

from tests.conftest import REPO


@pytest.fixture(scope="session")
def demo_base_model(request, tmp_path_factory) -> Path:
    """The offline base model, built from the project's SGD subset; kept in pytest's cache between runs
    (keyed by the builder's source and its texts), since building it is the slowest part of a run."""
    from clonedesk.core.base_model import IDENTITY_FILE
    from clonedesk.core import tiny_model
    from clonedesk.core.tiny_model import build_base_model, render_conversation
    from clonedesk.core.sgd import read_dialogues
    from clonedesk.core.domain.holdout import may_be_pretrained_on

    texts = []
    for business in ("Banks_1", "RentalCars_1", "Hotels_1"):
        for dialogue in read_dialogues(REPO / "data" / "sgd" / f"train_{business}.jsonl"):
            if may_be_pretrained_on(dialogue["dialogue_id"]):  # never a holdout or live ticket
                texts.append(render_conversation([("user" if t["speaker"] == "USER" else "assistant",
                                                   t["utterance"]) for t in dialogue["turns"]]))
    source = inspect.getsource(tiny_model).encode() + "\x00".join(texts).encode()
    key = hashlib.sha256(source).hexdigest()[:16]
    cache = getattr(request.config, "cache", None)
    root = Path(cache.mkdir("clonedesk-demo-base-model")) if cache else tmp_path_factory.mktemp("base")
    target = root / key
    if not (target / IDENTITY_FILE).exists():
        build_base_model(target, texts, seed=0, progress=False)
    return target
