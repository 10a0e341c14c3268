"""Which offsets may the stream worker commit (pure; no I/O)?

faust can let a record go by without the agent ever finishing it, and still commit past it:

- its stream *acknowledges* a record it skips (taken while flow control is suspended, at a shutdown or a
  rebalance, or from an older generation), so that its lag does not grow;
- its fetcher can drop a record (flow suspended while handing it over) yet move its read offset on, and
  its commit rule takes the group's committed offset for the last record *processed*, so one missing
  record right after the committed offset is committed over once the next one is acked.

Either way the next commit moves the group past a record nothing processed: a ticket lost without a trace
(tests/ingest/test_restart_integration.py lost the webhook sent just before a SIGTERM). So a commit never
goes past the first record the agent did not finish, counting from the group's committed offset: a
record let go by stays uncommitted, and is read again, by the next process or at once by the stall
watch's seek back (the client is then past the group's commit with nothing in processing).

Holes in an input partition's offsets (a transactional producer's markers) would read as records let go
by: the inputs are written without transactions (the gateway, the resolver bridge).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Hashable, Mapping


@dataclass
class FinishedOffsets:
    """Per partition, the offsets of the records the agent finished, from the group's committed offset on."""
    _done: dict[Hashable, set[int]] = field(default_factory=dict)

    def finish(self, partition: Hashable, offset: int) -> None:
        self._done.setdefault(partition, set()).add(offset)

    def reach(self, partition: Hashable, committed: int | None) -> int | None:
        """The offset of the first record not finished from `committed` on (from the first finished
        record where the group has committed nothing yet); None when there is nothing to go on."""
        done = self._done.get(partition, set())
        if committed is not None:
            done.difference_update([offset for offset in done if offset < committed])  # committed already
        start = committed if committed is not None else min(done, default=None)
        if start is None:
            return None
        while start in done:
            start += 1
        return start

    def cap(self, wanted: Mapping[Hashable, int],
            committed: Mapping[Hashable, int | None]) -> tuple[dict[Hashable, int], dict[Hashable, int]]:
        """The commits to make of those `wanted`, and the partitions held back (partition → the offset
        wanted): never past the first record not finished, and only where that moves the group on."""
        commits, held_back = {}, {}
        for partition, offset in wanted.items():
            before = committed.get(partition)
            reach = self.reach(partition, before)
            allowed = None if reach is None else min(offset, reach)
            if allowed is None or allowed < offset:
                held_back[partition] = offset
            if allowed is not None and (before is None or allowed > before):
                commits[partition] = allowed
        return commits, held_back
