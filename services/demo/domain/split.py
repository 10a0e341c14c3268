"""How the demo divides each business's SGD dialogues between history, live tickets and the refresh batch
(pure, seeded: the same seed gives the same split on every machine).

Each tenant gets, from one seeded shuffle of its dialogues:
- `live`: tickets that arrive after go-live and are answered by the resolver;
- `history`: resolved tickets until `history_samples` trainable samples are reached (the first adapter
  trains at exactly that count: the trainer's `first_min_samples`), a few of them sent as signed
  webhooks and the rest bulk-imported;
- `refresh`: more resolved tickets, at least `refresh_samples` trainable samples (the trainer's
  `refresh_min_new_samples`), which arrive while live traffic runs and trigger the adapter refresh.

A sample is one agent turn with something the customer said before it (what the conversation processor
emits for a ticket solved by humans); tickets in the trainer's holdout give no trainable samples, so
they are counted apart. Because every tenant's history stops within one dialogue of the same count, a
single pair of trainer thresholds makes each tenant train once on its history, and refresh only when
its refresh batch arrives.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Callable, Sequence


class NotEnoughDialogues(ValueError):
    """A business has too few dialogues for the sizes asked."""


@dataclass(frozen=True)
class DemoSizes:
    live_tickets: int  # per tenant
    webhook_history: int  # history tickets per tenant sent as signed webhooks (the rest is imported)
    history_samples: int  # trainable samples of each tenant's history
    refresh_samples: int  # trainable samples of each tenant's refresh batch
    live_turns: int  # customer messages of a live ticket at most, its closing message included
    # Live tickets kept back until the tenant's refreshed adapter is live, so traffic meets the swap.
    after_swap_tickets: int = 1


QUICK = DemoSizes(live_tickets=4, webhook_history=2, history_samples=120, refresh_samples=40, live_turns=2)
FULL = DemoSizes(live_tickets=10, webhook_history=6, history_samples=420, refresh_samples=100, live_turns=3,
                 after_swap_tickets=2)


@dataclass
class TenantPlan:
    tenant_id: str
    business: str
    live: list[dict] = field(default_factory=list)
    history_webhooks: list[dict] = field(default_factory=list)
    history_import: list[dict] = field(default_factory=list)
    refresh: list[dict] = field(default_factory=list)
    history_trainable: int = 0
    refresh_trainable: int = 0

    @property
    def history(self) -> list[dict]:
        return self.history_webhooks + self.history_import


def tenant_id_of(business: str) -> str:
    """`Banks_1` -> `banks-1`."""
    return business.lower().replace("_", "-")


def agent_samples(dialogue: dict) -> int:
    """Training samples the processor emits for this dialogue as a human-solved ticket."""
    seen_customer = False
    count = 0
    for turn in dialogue.get("turns") or ():
        if not str(turn.get("utterance", "")).strip():
            continue
        if turn.get("speaker") == "USER":
            seen_customer = True
        elif turn.get("speaker") == "SYSTEM" and seen_customer:
            count += 1
    return count


def customer_turns(dialogue: dict) -> int:
    return sum(1 for t in dialogue.get("turns") or () if t.get("speaker") == "USER" and t.get("utterance"))


def plan_tenant(business: str, dialogues: Sequence[dict], sizes: DemoSizes, seed: int,
                is_holdout: Callable[[str], bool], tenant_id: str | None = None) -> TenantPlan:
    """Split one business's dialogues (see the module docstring); NotEnoughDialogues if they run out."""
    plan = TenantPlan(tenant_id or tenant_id_of(business), business)
    order = sorted(dialogues, key=lambda d: str(d["dialogue_id"]))
    random.Random(f"{seed}:{business}").shuffle(order)
    remaining = list(order)

    # Live tickets need a follow-up to show a conversation: prefer dialogues with two customer turns or more.
    for dialogue in list(remaining):
        if len(plan.live) == sizes.live_tickets:
            break
        if customer_turns(dialogue) >= 2:
            plan.live.append(dialogue)
            remaining.remove(dialogue)
    if len(plan.live) < sizes.live_tickets:
        raise NotEnoughDialogues(f"{business}: fewer than {sizes.live_tickets} dialogues for live tickets")

    history: list[dict] = []
    while plan.history_trainable < sizes.history_samples:
        if not remaining:
            raise NotEnoughDialogues(f"{business}: its dialogues give fewer than {sizes.history_samples}"
                                     " trainable samples of history")
        dialogue = remaining.pop(0)
        history.append(dialogue)
        if not is_holdout(str(dialogue["dialogue_id"])):
            plan.history_trainable += agent_samples(dialogue)
    if not any(is_holdout(str(d["dialogue_id"])) for d in history):
        # The accuracy preview scores held-out tickets: the history needs at least one.
        held_out = next((d for d in remaining if is_holdout(str(d["dialogue_id"]))), None)
        if held_out is None:
            raise NotEnoughDialogues(f"{business}: no dialogue left for the holdout")
        remaining.remove(held_out)
        history.append(held_out)
    # Webhooks carry no decision annotations, so they get trainable tickets; the import the rest.
    for dialogue in history:
        trainable = not is_holdout(str(dialogue["dialogue_id"]))
        if trainable and len(plan.history_webhooks) < sizes.webhook_history:
            plan.history_webhooks.append(dialogue)
        else:
            plan.history_import.append(dialogue)

    while plan.refresh_trainable < sizes.refresh_samples:
        if not remaining:
            raise NotEnoughDialogues(f"{business}: its dialogues give fewer than {sizes.refresh_samples}"
                                     " trainable samples for the refresh")
        dialogue = remaining.pop(0)
        plan.refresh.append(dialogue)
        if not is_holdout(str(dialogue["dialogue_id"])):
            plan.refresh_trainable += agent_samples(dialogue)
    return plan


def trainer_thresholds(plans: Sequence[TenantPlan], sizes: DemoSizes) -> dict[str, int]:
    """The trainer settings that make every tenant train once on its history and once on its refresh.

    History overshoots its target by less than one dialogue; that overshoot counts as new samples at
    the refresh, so it must stay below the refresh threshold.
    """
    for plan in plans:
        overshoot = plan.history_trainable - sizes.history_samples
        if overshoot >= sizes.refresh_samples:
            raise NotEnoughDialogues(f"{plan.business}: history overshoots by {overshoot} samples, more than"
                                     f" the refresh threshold {sizes.refresh_samples}")
    return {"first_min_samples": sizes.history_samples, "refresh_min_new_samples": sizes.refresh_samples}
