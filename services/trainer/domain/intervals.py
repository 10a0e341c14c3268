"""Bootstrap 95 % intervals on holdout figures (pure).

Turns of one ticket are not independent (a model that misreads a ticket misreads several of its turns),
so the resampling unit is the ticket: each replicate draws as many tickets as the holdout has, with
replacement, and recomputes the figure on their turns. Seeded: the same holdout gives the same interval.
"""

from __future__ import annotations

import random
from collections import defaultdict
from typing import Callable, Sequence, TypeVar

T = TypeVar("T")
DEFAULT_REPLICATES = 200


def by_ticket(turns: Sequence[T], ticket_of: Callable[[T], str]) -> list[list[T]]:
    groups: dict[str, list[T]] = defaultdict(list)
    for turn in turns:
        groups[ticket_of(turn)].append(turn)
    return [groups[key] for key in sorted(groups)]


def bootstrap_interval(turns: Sequence[T], statistic: Callable[[list[list[T]]], float | None], *,
                       ticket_of: Callable[[T], str], replicates: int = DEFAULT_REPLICATES,
                       seed: int = 0, level: float = 0.95) -> tuple[float, float] | None:
    """The (low, high) percentile interval of `statistic` over ticket-resampled holdouts (it is given
    the drawn tickets, each a list of its turns; a ticket drawn twice is there twice); None when the
    statistic is undefined in most replicates (or there are no turns)."""
    tickets = by_ticket(turns, ticket_of)
    if not tickets:
        return None
    rng = random.Random(seed)
    values = []
    for _ in range(replicates):
        sample = [tickets[rng.randrange(len(tickets))] for _ in tickets]
        value = statistic(sample)
        if value is not None:
            values.append(float(value))
    if len(values) < replicates / 2:
        return None
    values.sort()
    tail = (1.0 - level) / 2
    low = values[int(tail * (len(values) - 1))]
    high = values[int(round((1.0 - tail) * (len(values) - 1)))]
    return (low, high)
