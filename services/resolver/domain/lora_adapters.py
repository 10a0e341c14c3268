"""Which adapter versions a resolver should hold (pure): which publications apply, which paths a
publication may name, which LoRA ranks an engine can serve, and LRU eviction."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import PurePath
from typing import Mapping

RANK_SETTING = "CLONEDESK_MAX_LORA_RANK"


class AdapterRankTooHigh(ValueError):
    """The adapter's LoRA rank is above what the engine was started to serve."""


class BadPublication(ValueError):
    """An `adapters.published` record that must never be applied (dead-lettered)."""


@dataclass
class ResidentAdapter:
    name: str  # tenant@vN
    tenant_id: str
    version: int
    in_flight: int = 0
    last_used: float = 0.0
    context_turns: int | None = None  # as the adapter was trained (its training_config.json), if recorded
    action_names: tuple[str, ...] | None = None  # the calls its header may write (None: unconstrained)
    calibration: dict | None = None  # its calibration.json, fitted on the tenant's holdout
    answers_from_results: bool = False  # writes a call's reply after the call's result


def publication_applies(
    known_version: int | None, published_version: int, registry_current: int | None
) -> bool:
    """A publication replaces the tenant's version only when the registry's `current` points at it now.

    The registry is the authority, the topic only says "look again": the resolver replays the whole topic
    on every start, so "newer than what we serve" would re-apply a version an operator has since rolled
    back. A rollback itself applies (current points at the older version); replays change nothing."""
    if registry_current is None or published_version != registry_current:
        return False
    return published_version != known_version


def publication_path_inside(resolved_path: PurePath, resolved_tenant_dir: PurePath) -> bool:
    """Whether a publication's adapter path (symlinks already resolved) lies inside the tenant's own
    registry folder, so a bad record cannot have another tenant's weights loaded under this tenant's name."""
    return resolved_path != resolved_tenant_dir and resolved_path.is_relative_to(resolved_tenant_dir)


def lora_rank(adapter_config: Mapping) -> int:
    """The rank of a peft LoRA adapter (`r` in its adapter_config.json; per-module `rank_pattern` may
    raise it for some modules, and the engine must fit the largest)."""
    ranks = [adapter_config.get("r")]
    ranks.extend((adapter_config.get("rank_pattern") or {}).values())
    ranks = [r for r in ranks if isinstance(r, int) and not isinstance(r, bool)]
    if not ranks:
        raise ValueError("adapter_config.json has no LoRA rank `r`")
    return max(ranks)


def check_lora_rank(adapter_name: str, rank: int, max_rank: int | None) -> None:
    """Refuse an adapter the engine cannot serve, saying which setting to raise (None: no limit)."""
    if max_rank is not None and rank > max_rank:
        raise AdapterRankTooHigh(
            f"adapter {adapter_name} has LoRA rank {rank}, above the engine's limit of {max_rank}:"
            f" set {RANK_SETTING} to at least {rank} (a rank the engine supports, e.g. 64) and restart"
            " the resolver"
        )


def eviction_candidates(
    resident: list[ResidentAdapter], current: dict[str, int], capacity: int, keep: str | None = None
) -> list[str]:
    """Names to unload so that at most `capacity` stay resident: idle superseded versions first, then
    idle current versions, least recently used first. Adapters with requests in flight are never chosen
    (so `keep`, the one about to be used, is not either); if not enough are idle, fewer are returned."""
    excess = len(resident) - capacity
    if excess <= 0:
        return []
    idle = [a for a in resident if a.in_flight == 0 and a.name != keep]
    idle.sort(key=lambda a: (current.get(a.tenant_id) == a.version, a.last_used))
    return [a.name for a in idle[:excess]]
