"""Which adapter version serves each tenant, with hot swaps that never cut a request short.

Each request leases its tenant's current version for as long as it runs; a publication loads the new
version under its own name first, then makes it current, so new requests use it while leased ones finish
on theirs; a superseded version is unloaded once its last lease ends. Only the version the registry's
`current` points at is ever made current, and only from inside the tenant's own registry folder. At most
`capacity` adapters stay resident (LRU among idle ones); an evicted current version is reloaded on its
next request.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import AsyncIterator

from clonedesk.core.adapters import (
    adapter_calibration,
    answers_from_results,
    adapter_name,
    current_version,
    tenant_adapters_dir,
    trained_action_names,
    trained_context_turns,
    version_dir,
)
from clonedesk.core.base_model import adapter_base_identity, base_model_identity, same_base_model
from clonedesk.resolver.domain.lora_adapters import (
    AdapterRankTooHigh,
    BadPublication,
    ResidentAdapter,
    eviction_candidates,
    publication_applies,
    publication_path_inside,
)
from clonedesk.resolver.engines.base import Engine

log = logging.getLogger(__name__)


class NoLiveAdapter(LookupError):
    """The tenant has no current adapter yet (FAILED_PRECONDITION)."""


@dataclass(frozen=True)
class Lease:
    tenant_id: str
    version: int
    name: str
    context_turns: int | None = None  # the turns of context the adapter was trained on, if recorded
    action_names: tuple[str, ...] | None = None  # the calls its decision header may write
    calibration: dict | None = None  # its calibration record (core.domain.confidence), None if it has none
    answers_from_results: bool = False  # it writes a call's reply after the call's result (core.adapters)


@dataclass(frozen=True)
class _Current:
    version: int
    path: Path


class AdapterCache:
    def __init__(self, engine: Engine, data_dir: Path, capacity: int):
        self.engine = engine
        self.data_dir = Path(data_dir)
        self.capacity = capacity
        self._current: dict[str, _Current] = {}
        self._resident: dict[str, ResidentAdapter] = {}
        self._loading: dict[str, asyncio.Task] = {}
        self._tenant_locks: dict[str, asyncio.Lock] = {}
        self.loads = 0
        self.unloads = 0
        self._base_identity: str | None = None  # the engine's base model, digested on the first load

    # -- what is served ------------------------------------------------------------------------------

    def current_name(self, tenant_id: str) -> str | None:
        entry = self._current.get(tenant_id)
        return adapter_name(tenant_id, entry.version) if entry else None

    def current_versions(self) -> dict[str, int]:
        return {tenant_id: entry.version for tenant_id, entry in self._current.items()}

    def resident(self) -> list[str]:
        return sorted(self._resident)

    def _registry_current(self, tenant_id: str) -> _Current | None:
        version = current_version(self.data_dir, tenant_id)
        if version is None:
            return None
        return _Current(version, version_dir(self.data_dir, tenant_id, version))

    def _lock(self, tenant_id: str) -> asyncio.Lock:
        return self._tenant_locks.setdefault(tenant_id, asyncio.Lock())

    # -- leases --------------------------------------------------------------------------------------

    @contextlib.asynccontextmanager
    async def lease(self, tenant_id: str) -> AsyncIterator[Lease]:
        """The tenant's current version, resident and pinned until the block ends."""
        entry = self._current.get(tenant_id)
        if entry is None:
            async with self._lock(tenant_id):
                entry = self._current.get(tenant_id) or self._registry_current(tenant_id)
                if entry is None:
                    raise NoLiveAdapter(f"tenant {tenant_id!r} has no live adapter yet")
                self._current.setdefault(tenant_id, entry)
                entry = self._current[tenant_id]
        name = adapter_name(tenant_id, entry.version)
        resident = await self._pin(name, tenant_id, entry.version, entry.path)
        try:
            yield Lease(tenant_id, entry.version, name, resident.context_turns, resident.action_names,
                        resident.calibration, resident.answers_from_results)
        finally:
            resident.in_flight -= 1
            resident.last_used = time.monotonic()
            if resident.in_flight == 0 and self._is_superseded(resident):
                await self._unload(name)

    async def _pin(self, name: str, tenant_id: str, version: int, path: Path) -> ResidentAdapter:
        while True:
            resident = self._resident.get(name)
            if resident is not None:
                # No await between the check and the increment: an eviction cannot slip in between.
                resident.in_flight += 1
                resident.last_used = time.monotonic()
                return resident
            await self._ensure_loaded(name, tenant_id, version, path)

    async def _ensure_loaded(self, name: str, tenant_id: str, version: int, path: Path) -> None:
        if name in self._resident:
            return
        task = self._loading.get(name)
        if task is None:
            task = asyncio.get_running_loop().create_task(self._load(name, tenant_id, version, path))
            self._loading[name] = task
        await asyncio.shield(task)

    async def _check_base_model(self, name: str, path: Path) -> None:
        """An adapter trained on another base model would load (same shapes) and answer nonsense: refuse
        it. Versions without a recorded identity (copied by hand) are served as before."""
        trained_on = adapter_base_identity(path)
        base_path = getattr(self.engine, "base_model_path", None)
        if trained_on is None or base_path is None:
            return
        if self._base_identity is None:
            self._base_identity = await asyncio.to_thread(base_model_identity, base_path)
        if not same_base_model(trained_on, self._base_identity):
            raise NoLiveAdapter(f"adapter {name} was trained on {trained_on}, not on the base model served here"
                                f" ({self._base_identity}); retrain it on this base model")

    async def _load(self, name: str, tenant_id: str, version: int, path: Path) -> None:
        try:
            if not Path(path).is_dir():
                raise NoLiveAdapter(f"adapter {name} is not at {path}")
            await self._check_base_model(name, Path(path))
            try:
                await self.engine.load_adapter(name, Path(path))
            except AdapterRankTooHigh as exc:  # the tenant cannot be served until an operator acts
                raise NoLiveAdapter(str(exc)) from exc
            self.loads += 1
            names = trained_action_names(Path(path))
            self._resident[name] = ResidentAdapter(name, tenant_id, version, 0, time.monotonic(),
                                                   context_turns=trained_context_turns(Path(path)),
                                                   action_names=tuple(names) if names is not None else None,
                                                   calibration=adapter_calibration(Path(path)),
                                                   answers_from_results=answers_from_results(Path(path)))
        finally:
            self._loading.pop(name, None)
        await self._evict(keep=name)

    async def _evict(self, keep: str) -> None:
        current = {t: c.version for t, c in self._current.items()}
        for victim in eviction_candidates(list(self._resident.values()), current, self.capacity, keep=keep):
            await self._unload(victim)

    def _is_superseded(self, resident: ResidentAdapter) -> bool:
        entry = self._current.get(resident.tenant_id)
        return entry is None or entry.version != resident.version

    async def _unload(self, name: str) -> None:
        resident = self._resident.get(name)
        if resident is None or resident.in_flight > 0:
            return
        del self._resident[name]  # before the await: no new lease can pin it from here on
        await self.engine.unload_adapter(name)
        self.unloads += 1

    # -- publications --------------------------------------------------------------------------------

    def publication_target(self, tenant_id: str, version: int, path: str | Path | None) -> Path:
        """The folder to load a publication from: its `path` once resolved (symlinks included), which must
        lie inside the tenant's own registry folder; no path means the registry's folder of that version.
        Raises BadPublication."""
        if not path:
            return version_dir(self.data_dir, tenant_id, version)
        tenant_dir = tenant_adapters_dir(self.data_dir, tenant_id).resolve()
        resolved = Path(path).resolve()
        if not publication_path_inside(resolved, tenant_dir):
            raise BadPublication(
                f"publication of {adapter_name(tenant_id, version)} names {path} (resolved: {resolved}),"
                f" which is not inside the tenant's adapter registry {tenant_dir}"
            )
        return resolved

    async def follow_registry(self) -> list[str]:
        """Catch up with `current` moved without an announcement (by hand, or an announcement lost):
        each tenant served at another version than its registry's is swapped to the registry's. Returns
        the names swapped to."""
        swapped = []
        for tenant_id, serving in self.current_versions().items():
            registry = current_version(self.data_dir, tenant_id)
            if registry is not None and registry != serving:
                if await self.publish(tenant_id, registry):
                    swapped.append(adapter_name(tenant_id, registry))
        return swapped

    async def publish(self, tenant_id: str, version: int, path: str | Path | None = None) -> bool:
        """Make `tenant@v<version>` the version new requests use, once it is loaded, if the registry's
        `current` points at it. Returns whether the publication changed anything (replays of old
        publications, and publications the registry has since moved away from, do not). Raises
        BadPublication for a path outside the tenant's registry."""
        target = self.publication_target(tenant_id, version, path)
        name = adapter_name(tenant_id, version)
        async with self._lock(tenant_id):
            known = self._current.get(tenant_id) or self._registry_current(tenant_id)
            registry = current_version(self.data_dir, tenant_id)
            serving = known.version if known else None
            if not publication_applies(serving, version, registry):
                if known is not None:
                    self._current.setdefault(tenant_id, known)
                log.info(
                    "publication not applied",
                    extra={"adapter": name, "serving": serving, "registry_current": registry},
                )
                return False
            await self._ensure_loaded(name, tenant_id, version, target)
            if current_version(self.data_dir, tenant_id) != version:
                # The registry moved on while we loaded (a rollback or a newer promotion): its own
                # publication will follow; this one must not undo it.
                loaded = self._resident.get(name)
                if loaded is not None and loaded.in_flight == 0 and self._is_superseded(loaded):
                    await self._unload(name)
                log.info("publication overtaken by the registry while loading", extra={"adapter": name})
                return False
            previous = self._current.get(tenant_id)
            self._current[tenant_id] = _Current(version, target)
            log.info(
                "adapter swapped in",
                extra={
                    "tenant": tenant_id,
                    "adapter": name,
                    "previous": previous.version if previous else None,
                },
            )
            if previous is not None and previous.version != version:
                old = self._resident.get(adapter_name(tenant_id, previous.version))
                if old is not None and old.in_flight == 0:
                    await self._unload(old.name)
            return True
