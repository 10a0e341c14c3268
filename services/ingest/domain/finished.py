"""Which offsets may the stream worker commit (pure; no I/O)?

faust acknowledges a record it *skips* as if it had been processed: a record the agent's stream takes
while flow control is suspended (a shutdown or a rebalance under way) or from an older generation is
dropped and acked, so that its lag does not grow, and the next commit (the shutdown's own, for one) moves
the group past it. Nothing downstream ever sees it: a ticket lost without a trace
(tests/ingest/test_restart_integration.py caught it on a SIGTERM with a webhook in flight).

So a commit never goes past what the worker itself finished: for each partition, the offset after the
last record the agent saw through (applied, found a duplicate, or dead-lettered). A skipped record then
stays uncommitted and is read again: by the next process, or at once by the stall watch's seek back.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Hashable, Mapping


@dataclass
class FinishedOffsets:
    """Per partition, the offset after the last record the agent finished. Records of one partition are
    processed in order, so everything below it was finished too, or skipped before this process took the
    partition (and then committed by nobody)."""
    _next: dict[Hashable, int] = field(default_factory=dict)

    def finish(self, partition: Hashable, offset: int) -> None:
        self._next[partition] = max(self._next.get(partition, 0), offset + 1)

    def cap(self, wanted: Mapping[Hashable, int],
            committed: Mapping[Hashable, int | None]) -> tuple[dict[Hashable, int], dict[Hashable, int]]:
        """The commits to make of those `wanted`, and the partitions held back (partition → the offset
        wanted): never past the finished offset, and only where that still moves the group forward."""
        commits, held_back = {}, {}
        for partition, offset in wanted.items():
            allowed = min(offset, self._next.get(partition, 0))
            if allowed < offset:
                held_back[partition] = offset
            before = committed.get(partition)
            if allowed > 0 and (before is None or allowed > before):
                commits[partition] = allowed
        return commits, held_back
