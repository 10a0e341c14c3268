"""The adapter registry's read side in the shared package: a version's documents, typed, and going live."""

from __future__ import annotations

import json

import pytest

from clonedesk.core.adapters import (NotReadyToGoLive, go_live, rejection_reason, set_current_version,
                                     version_dir, version_meta, version_preview)
from clonedesk.core.tenants import TenantStore


def _version(root, tenant, version, meta, preview=None):
    folder = version_dir(root, tenant, version)
    folder.mkdir(parents=True)
    (folder / "meta.json").write_text(json.dumps(meta))
    if preview is not None:
        (folder / "preview.json").write_text(json.dumps(preview))


def test_a_versions_meta_reads_as_a_record(tmp_path):
    _version(tmp_path, "acme", 1, {"status": "promoted", "trigger": "first", "sample_count": 240,
                                   "metrics": {"decision_accuracy": 0.9}, "training": {"steps": 120},
                                   "training_config": {"rank": 16}, "base_model": "tiny"})
    _version(tmp_path, "acme", 2, {"status": "rejected", "reason": "scored 0.70 under v1's 0.90"})
    first = version_meta(tmp_path, "acme", 1)
    assert (first.name, first.sample_count, first.metrics["decision_accuracy"], first.training["steps"],
            first.training_config["rank"], first.rejected) == ("acme@v1", 240, 0.9, 120, 16, False)
    assert rejection_reason(tmp_path, "acme", 2) == "scored 0.70 under v1's 0.90"
    assert rejection_reason(tmp_path, "acme", 1) is None and version_meta(tmp_path, "acme", 3) is None
    (version_dir(tmp_path, "acme", 2) / "meta.json").write_text("{torn")
    assert version_meta(tmp_path, "acme", 2) is None  # unreadable: as if absent


def test_going_live_needs_a_current_adapter_and_its_preview(tmp_path):
    store = TenantStore(tmp_path)
    store.add("acme")
    with pytest.raises(NotReadyToGoLive, match="no trained adapter"):
        go_live(tmp_path, "acme")
    _version(tmp_path, "acme", 1, {"status": "promoted"})
    set_current_version(tmp_path, "acme", 1)
    with pytest.raises(NotReadyToGoLive, match="no accuracy preview"):
        go_live(tmp_path, "acme")
    assert not store.get("acme").live and version_preview(tmp_path, "acme", 1) is None
    (version_dir(tmp_path, "acme", 1) / "preview.json").write_text(json.dumps({"adapter_version": "acme@v1"}))
    assert go_live(tmp_path, "acme") == 1
    assert store.get("acme").live and version_preview(tmp_path, "acme", 1)["adapter_version"] == "acme@v1"
