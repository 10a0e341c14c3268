"""Where a tenant's adapter versions live, and how their names are spelled (`tenant@vN`).

The trainer writes the registry; everything else reads it through these helpers (a version's meta and
preview documents, the current version) and goes live through `go_live`.
Layout: `<data>/adapters/<tenant>/v<N>/` (immutable) and `<data>/adapters/<tenant>/current`, a symlink
to the current version's folder, swapped with an atomic rename.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path

from clonedesk.core.tenants import TenantStore

_VERSION_DIR = re.compile(r"^v(\d+)$")


def adapter_name(tenant_id: str, version: int) -> str:
    return f"{tenant_id}@v{version}"


def parse_adapter_name(name: str) -> tuple[str, int]:
    tenant_id, _, version = name.rpartition("@v")
    if not tenant_id or not version.isdigit():
        raise ValueError(f"not an adapter name: {name!r}")
    return tenant_id, int(version)


def registry_root(data_dir: Path) -> Path:
    return Path(data_dir) / "adapters"


def tenant_adapters_dir(data_dir: Path, tenant_id: str) -> Path:
    return registry_root(data_dir) / tenant_id


def version_dir(data_dir: Path, tenant_id: str, version: int) -> Path:
    return tenant_adapters_dir(data_dir, tenant_id) / f"v{version}"


def current_version(data_dir: Path, tenant_id: str) -> int | None:
    link = tenant_adapters_dir(data_dir, tenant_id) / "current"
    try:
        target = os.readlink(link)
    except (FileNotFoundError, OSError):
        return None
    match = _VERSION_DIR.match(Path(target).name)
    return int(match.group(1)) if match else None


def set_current_version(data_dir: Path, tenant_id: str, version: int) -> None:
    """Point `current` at v<version> atomically: readers see the old or the new version, never neither."""
    root = tenant_adapters_dir(data_dir, tenant_id)
    if not version_dir(data_dir, tenant_id, version).is_dir():
        raise FileNotFoundError(f"no adapter {adapter_name(tenant_id, version)} at {root}")
    tmp = root / f".current.{os.getpid()}"
    if tmp.is_symlink():
        tmp.unlink()
    os.symlink(f"v{version}", tmp)
    os.replace(tmp, root / "current")


def trained_context_turns(adapter_dir) -> int | None:
    """The turns of context an adapter was trained on (its training_config.json), so that serving and
    scoring show it the prompts it learned from; None when not recorded."""
    try:
        value = json.loads((Path(adapter_dir) / "training_config.json").read_text()).get("context_turns")
    except (OSError, ValueError):
        return None
    return int(value) if isinstance(value, int) else None


def _training_config(adapter_dir) -> dict:
    try:
        data = json.loads((Path(adapter_dir) / "training_config.json").read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def trained_action_names(adapter_dir) -> list[str] | None:
    """The action names an adapter was trained on (what its constrained header may call); None when
    not recorded (an adapter of an older version: decoded unconstrained)."""
    names = _training_config(adapter_dir).get("action_names")
    return [str(n) for n in names] if isinstance(names, list) else None


def answers_from_results(adapter_dir) -> bool:
    """Whether the adapter learned to write a call's reply after the call's result (training_config.json
    `answers_from_results`): the resolver then carries the call out and asks it again with the result."""
    return _training_config(adapter_dir).get("answers_from_results") is True


CALIBRATION_FILE = "calibration.json"


def adapter_calibration(adapter_dir) -> dict | None:
    """The calibration the trainer fitted on the tenant's holdout for this adapter (calibration.json:
    slope, bias, the answer curve and the threshold for each target accuracy), or None."""
    try:
        data = json.loads((Path(adapter_dir) / CALIBRATION_FILE).read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def version_history(data_dir: Path, tenant_id: str) -> list[dict]:
    """Every adapter version of a tenant, oldest first, as its meta.json (and preview.json, once a
    preview was made) record it: when, why, its status and its holdout scores. Unreadable ones are left out."""
    root = tenant_adapters_dir(data_dir, tenant_id)
    current = current_version(data_dir, tenant_id)
    rows = []
    for folder in root.iterdir() if root.is_dir() else ():
        match = _VERSION_DIR.match(folder.name)
        if not match:
            continue
        try:
            meta = json.loads((folder / "meta.json").read_text())
        except (OSError, ValueError):
            continue
        metrics = meta.get("metrics") if isinstance(meta.get("metrics"), dict) else {}
        try:
            preview = json.loads((folder / "preview.json").read_text()).get("adapter") or {}
        except (OSError, ValueError, AttributeError):
            preview = {}
        version = int(match.group(1))
        rows.append({"version": version, "name": adapter_name(tenant_id, version), "current": version == current,
                     "created_at": meta.get("created_at"), "status": meta.get("status", ""),
                     "trigger": meta.get("trigger", ""), "samples": meta.get("sample_count"),
                     "decision_accuracy": metrics.get("decision_accuracy"), "reply_chrf": metrics.get("reply_chrf"),
                     "answered_share": metrics.get("answered_share"),
                     "preview_decision_accuracy": preview.get("decision_accuracy")})
    return sorted(rows, key=lambda row: row["version"])


# -- the read side every service and the demo use: a version's documents, and going live ---------------

META_FILE = "meta.json"
PREVIEW_FILE = "preview.json"


def _document(path: Path) -> dict | None:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


@dataclass(frozen=True)
class VersionRecord:
    """A version as its meta.json records it (the trainer writes it once; it never changes after)."""

    tenant_id: str
    version: int
    status: str  # "promoted", "rejected", ...
    reason: str  # why it was rejected, where it was
    created_at: float | None
    trigger: str  # what started its training run ("first", "refresh:new-samples", ...)
    sample_count: int | None
    base_model: str
    metrics: dict = field(default_factory=dict)  # its holdout scores
    training_config: dict = field(default_factory=dict)  # the LoRA recipe it was trained with
    training: dict = field(default_factory=dict)  # what the run took: steps, tokens, seconds

    @property
    def name(self) -> str:
        return adapter_name(self.tenant_id, self.version)

    @property
    def rejected(self) -> bool:
        return self.status == "rejected"

    @classmethod
    def from_meta(cls, tenant_id: str, version: int, meta: dict) -> "VersionRecord":
        def mapping(key: str) -> dict:
            return meta.get(key) if isinstance(meta.get(key), dict) else {}

        count = meta.get("sample_count")
        return cls(tenant_id, version, str(meta.get("status", "")), str(meta.get("reason") or ""),
                   meta.get("created_at"), str(meta.get("trigger", "")),
                   int(count) if isinstance(count, (int, float)) else None, str(meta.get("base_model", "")),
                   mapping("metrics"), mapping("training_config"), mapping("training"))


def version_meta(data_dir: Path, tenant_id: str, version: int) -> VersionRecord | None:
    """The version's meta.json (how it was trained, its holdout scores, its status), None if unreadable."""
    meta = _document(version_dir(data_dir, tenant_id, version) / META_FILE)
    return VersionRecord.from_meta(tenant_id, version, meta) if meta is not None else None


def version_preview(data_dir: Path, tenant_id: str, version: int) -> dict | None:
    """The version's accuracy preview (preview.json), None before a preview was made."""
    return _document(version_dir(data_dir, tenant_id, version) / PREVIEW_FILE)


def rejection_reason(data_dir: Path, tenant_id: str, version: int) -> str | None:
    """Why the trainer rejected this version (it never became current), None if it did not."""
    record = version_meta(data_dir, tenant_id, version)
    if record is None or not record.rejected:
        return None
    return record.reason or "rejected"


class NotReadyToGoLive(Exception):
    """A tenant without a current adapter, or without its accuracy preview, cannot go live."""


def go_live(data_dir: Path, tenant_id: str) -> int:
    """Mark the tenant live on its current adapter; return that version. Only a tenant whose current
    adapter has a preview may go live: the operator has seen what it will do on unseen tickets."""
    store = TenantStore(data_dir)
    record = store.get(tenant_id)
    version = current_version(data_dir, record.id)
    if version is None:
        raise NotReadyToGoLive(f"tenant {record.id} has no trained adapter yet: import history and let the"
                               " trainer run")
    if not (version_dir(data_dir, record.id, version) / PREVIEW_FILE).exists():
        raise NotReadyToGoLive(f"tenant {record.id} has no accuracy preview for {adapter_name(record.id, version)}:"
                               f" run `clonedesk preview --tenant {record.id}` first")
    record.live = True
    store.save(record)
    return version
