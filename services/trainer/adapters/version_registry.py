"""The adapter registry on disk: `<data>/adapters/<tenant>/v<N>/` (immutable once there) and the
`current` symlink (core.adapters).

A version is written into a hidden staging folder first (peft files, training_config.json, meta.json
with the sample count, base model identity, metrics and status), fsynced, then renamed to v<N> in one
step, so no reader ever sees a half-written adapter. `current` moves only on promotion
(core.adapters.set_current_version). A rejected version stays, its meta.json saying why. The one file
added later is `preview.json`, the accuracy preview of that version.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import uuid
from pathlib import Path

from clonedesk.core.adapters import current_version, registry_root, set_current_version, tenant_adapters_dir, version_dir
from clonedesk.core.files import fsync_path, write_atomically

PROMOTED = "promoted"
REJECTED = "rejected"
META_FILE = "meta.json"
PREVIEW_FILE = "preview.json"
_VERSION = re.compile(r"^v(\d+)$")


def _fsync_tree(root: Path) -> None:
    for path in sorted(root.rglob("*")):
        if path.is_file():
            with open(path, "rb") as handle:
                os.fsync(handle.fileno())
    fsync_path(root)


def _write_json_atomically(path: Path, value: dict) -> None:
    write_atomically(path, json.dumps(value, indent=2, sort_keys=True))


class AdapterRegistry:
    def __init__(self, data_dir: Path):
        self.data_dir = Path(data_dir)

    def tenant_dir(self, tenant_id: str) -> Path:
        return tenant_adapters_dir(self.data_dir, tenant_id)

    def versions(self, tenant_id: str) -> list[int]:
        root = self.tenant_dir(tenant_id)
        if not root.is_dir():
            return []
        return sorted(int(m.group(1)) for p in root.iterdir() if (m := _VERSION.match(p.name)) and p.is_dir())

    def current(self, tenant_id: str) -> int | None:
        return current_version(self.data_dir, tenant_id)

    def path(self, tenant_id: str, version: int) -> Path:
        return version_dir(self.data_dir, tenant_id, version)

    def meta(self, tenant_id: str, version: int) -> dict:
        return json.loads((self.path(tenant_id, version) / META_FILE).read_text())

    def new_staging(self, tenant_id: str) -> Path:
        staging = self.tenant_dir(tenant_id) / f".staging-{uuid.uuid4().hex[:12]}"
        staging.mkdir(parents=True)
        return staging

    def discard_staging(self, tenant_id: str | None = None) -> int:
        """Remove staging folders a crashed run left behind (of one tenant, or all); how many."""
        roots = [self.tenant_dir(tenant_id)] if tenant_id else list(registry_root(self.data_dir).glob("*"))
        removed = 0
        for root in roots:
            for staging in root.glob(".staging-*") if root.is_dir() else ():
                shutil.rmtree(staging, ignore_errors=True)
                removed += 1
        return removed

    def commit(self, tenant_id: str, staging: Path, meta: dict) -> int:
        """Make a staged adapter version v<N> (the next number) with its meta.json; return N."""
        version = max(self.versions(tenant_id), default=0) + 1
        meta = {**meta, "tenant_id": tenant_id, "version": version}
        _write_json_atomically(staging / META_FILE, meta)
        _fsync_tree(staging)
        target = self.path(tenant_id, version)
        if target.exists():
            raise FileExistsError(f"adapter version {target} exists already")
        os.rename(staging, target)
        fsync_path(target.parent)
        return version

    def promote(self, tenant_id: str, version: int) -> None:
        set_current_version(self.data_dir, tenant_id, version)
        fsync_path(self.tenant_dir(tenant_id))

    def write_preview(self, tenant_id: str, version: int, report: dict) -> Path:
        path = self.path(tenant_id, version) / PREVIEW_FILE
        _write_json_atomically(path, report)
        return path
