"""How the demo divides each business's SGD dialogues between history, the refresh batch and live
tickets (pure, seeded: the same seed gives the same split on every machine).

From one seeded shuffle of a business's dialogues (all of them; `--quick` takes the first `dialogues`
of the shuffle), each tenant gets:
- `history`: most of them (`history_share`), resolved tickets that arrive before training, a few as
  signed webhooks and the rest bulk-imported;
- `refresh`: the next `refresh_share`, more resolved tickets, which arrive while live traffic runs and
  trigger the adapter refresh;
- `live`: all the remaining dialogues, as tickets answered by the resolver after go-live. Which ones
  remain is chosen first: dialogues the offline base model was never pre-trained on (and outside the
  holdout), so no live ticket's conversation was ever in any model's training data.

A sample is one agent turn with something the customer said before it (what the conversation processor
emits for a ticket solved by humans); tickets in the trainer's holdout give no trainable samples, so
they are counted apart. Businesses differ in size, so the trainer thresholds are the smallest tenant's
counts, and the trainer settles (CLONEDESK_TRAINER_SETTLE_S) so that a bigger tenant trains on its whole
history, not on the part that crossed the threshold first.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Callable, Sequence


class NotEnoughDialogues(ValueError):
    """A business has too few dialogues for the sizes asked."""


@dataclass(frozen=True)
class DemoSizes:
    dialogues: int | None  # of each business's dialogues the demo uses (None: all of them)
    history_share: float  # of those, resolved history sent before training (most of them: over half)
    refresh_share: float  # the refresh batch; the rest are live tickets
    webhook_history: int  # history tickets per tenant sent as signed webhooks (the rest is imported)
    live_turns: int  # customer messages of a live ticket at most, its closing message included
    # Live tickets kept back until the tenant's refreshed adapter is live, so traffic meets the swap.
    after_swap_tickets: int = 1

    def __post_init__(self):
        if not 0.5 < self.history_share < 1 or not 0 < self.refresh_share < 1 - self.history_share:
            raise ValueError("history_share must be over half, and history plus refresh under the whole")


QUICK = DemoSizes(dialogues=26, history_share=0.62, refresh_share=0.23, webhook_history=2, live_turns=2)
FULL = DemoSizes(dialogues=None, history_share=0.6, refresh_share=0.15, webhook_history=6, live_turns=3,
                 after_swap_tickets=2)


@dataclass
class TenantPlan:
    tenant_id: str
    business: str
    dialogues: int = 0  # how many of the business's dialogues the plan uses
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


def plan_tenant(business: str, dialogues: Sequence[dict], sizes: DemoSizes, seed: int,
                is_holdout: Callable[[str], bool], tenant_id: str | None = None,
                pretrained_on: Callable[[str], bool] = lambda ticket: False) -> TenantPlan:
    """Split one business's dialogues (see the module docstring); NotEnoughDialogues if too few.
    `pretrained_on(ticket)` says whether the base model may have seen the dialogue."""
    plan = TenantPlan(tenant_id or tenant_id_of(business), business)
    order = sorted(dialogues, key=lambda d: str(d["dialogue_id"]))
    random.Random(f"{seed}:{business}").shuffle(order)
    corpus = order[:sizes.dialogues] if sizes.dialogues is not None else order
    plan.dialogues = len(corpus)
    history_count = round(len(corpus) * sizes.history_share)
    refresh_count = round(len(corpus) * sizes.refresh_share)
    live_count = len(corpus) - history_count - refresh_count

    def unseen(dialogue: dict) -> bool:
        ticket = str(dialogue["dialogue_id"])
        return not pretrained_on(ticket) and not is_holdout(ticket)

    fresh = [d for d in corpus if unseen(d)]
    if len(fresh) < live_count:
        raise NotEnoughDialogues(f"{business}: {len(fresh)} dialogues unseen by the base model, fewer than"
                                 f" the {live_count} live tickets")
    plan.live = fresh[:live_count]
    chosen = {id(d) for d in plan.live}
    rest = [d for d in corpus if id(d) not in chosen]
    history = rest[:history_count]
    plan.refresh = rest[history_count:]
    if len(plan.live) < sizes.after_swap_tickets + 2:
        raise NotEnoughDialogues(f"{business}: {len(corpus)} dialogues leave {len(plan.live)} live tickets,"
                                 f" fewer than {sizes.after_swap_tickets + 2}")
    if not any(is_holdout(str(d["dialogue_id"])) for d in history):
        # The accuracy preview scores held-out tickets: the history needs at least one. It trades places
        # with the history's last ticket, so every part keeps its size.
        held_out = next((d for d in plan.refresh if is_holdout(str(d["dialogue_id"]))), None)
        if held_out is None:
            raise NotEnoughDialogues(f"{business}: no held-out dialogue among its {len(corpus)}")
        plan.refresh[plan.refresh.index(held_out)] = history[-1]
        history[-1] = held_out
    plan.history_trainable = trainable_samples(history, is_holdout)
    plan.refresh_trainable = trainable_samples(plan.refresh, is_holdout)
    if not plan.refresh_trainable:
        raise NotEnoughDialogues(f"{business}: its refresh batch gives no trainable sample")
    # Webhooks carry no decision annotations, so they get trainable tickets; the import the rest.
    for dialogue in history:
        trainable = not is_holdout(str(dialogue["dialogue_id"]))
        if trainable and len(plan.history_webhooks) < sizes.webhook_history:
            plan.history_webhooks.append(dialogue)
        else:
            plan.history_import.append(dialogue)
    return plan


def trainable_samples(dialogues: Sequence[dict], is_holdout: Callable[[str], bool]) -> int:
    return sum(agent_samples(d) for d in dialogues if not is_holdout(str(d["dialogue_id"])))


def trainer_thresholds(plans: Sequence[TenantPlan]) -> dict[str, int]:
    """The trainer settings that make every tenant train once on its history and once on its refresh:
    the smallest history and the smallest refresh batch. A settling trainer waits for the rest of a
    bigger tenant's history before its first run, so what counts as new at the refresh is the refresh
    batch (and the few tickets humans solve meanwhile)."""
    return {"first_min_samples": min(p.history_trainable for p in plans),
            "refresh_min_new_samples": min(p.refresh_trainable for p in plans)}
