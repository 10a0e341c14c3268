"""Which tickets are held out for evaluation: chosen by a hash of the ticket id, so the choice is the
same on every machine, every restart and every version, and a held-out ticket is never trained on."""

from __future__ import annotations

import hashlib

DEFAULT_HOLDOUT_FRACTION = 0.10


def ticket_bucket(ticket_id: str) -> float:
    """A stable number in [0, 1) for a ticket id (the first 8 bytes of its SHA-256)."""
    digest = hashlib.sha256(ticket_id.encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def is_holdout(ticket_id: str, fraction: float = DEFAULT_HOLDOUT_FRACTION) -> bool:
    """True for the tickets of the holdout: the lowest `fraction` of buckets.

    The base-model builder pre-trains only on tickets in the upper half of the buckets, so any holdout
    fraction up to 0.5 never overlaps what the base model saw either.
    """
    if not 0.0 <= fraction <= 1.0:
        raise ValueError(f"holdout fraction must be within [0, 1], not {fraction}")
    return ticket_bucket(ticket_id) < fraction


PRETRAINING_FROM_BUCKET = 0.5


def may_be_pretrained_on(ticket_id: str) -> bool:
    """True for tickets whose text the offline base-model builder may pre-train on (the upper half of
    the buckets): never a holdout ticket, and never a ticket the demo plays live."""
    return ticket_bucket(ticket_id) >= PRETRAINING_FROM_BUCKET
