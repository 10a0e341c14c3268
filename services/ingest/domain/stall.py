"""When is a running stream worker stalled (pure; no I/O)?

Two rules, the first a cure for a known cause, the second a last resort for any other:

- **Dropped fetches.** Right after a rebalance faust can take records from the Kafka client and drop them
  before they reach the agent (its stream skips a message fetched while flow control or the generation
  was changing, without seeking back), so the client's position is past the group's committed offset
  with nothing in processing, and those records wait until the next restart (seen in
  tests/ingest/test_restart_integration.py, which restarts the worker again and again). Seen twice in a row
  with no progress in between, the worker seeks back to the committed offsets and reads them again
  (every consumer downstream is idempotent, so a record read twice is harmless). A record dropped just
  before one the agent did process is caught the same way: the commit stops at the first record not
  finished (domain/finished.py), so the group stays before it.
- **No progress.** Records are waiting for the worker's group (its backlog) and it has processed none of
  them for `stall_after_s`: the cure is the supervisor's, a fresh process. Recovery and rebalances are not
  stalls: the caller resets the watch while the worker is not ready.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class StallWatch:
    stall_after_s: float
    _waiting_since: float | None = None
    _processed_then: int = 0

    def reset(self) -> None:
        self._waiting_since = None

    def observe(self, now: float, backlog: int, processed: int) -> bool:
        """One look at the worker: `backlog` records wait on its inputs, `processed` counts every record
        it has handled so far. True once it has had work and made no progress for `stall_after_s`."""
        if backlog <= 0 or self._waiting_since is None or processed != self._processed_then:
            self._waiting_since = now if backlog > 0 else None
            self._processed_then = processed
            return False
        return self.stall_after_s > 0 and now - self._waiting_since >= self.stall_after_s


def fetched_past_commit(positions: dict[str, int], waiting: dict[str, tuple[int, int]],
                        in_processing: int) -> set[str]:
    """The partitions whose records the client handed over (its position is past the group's committed
    offset) while none is being processed: records taken and dropped. `waiting` maps a partition with a
    backlog to (committed, end)."""
    if in_processing:
        return set()
    return {tp for tp, (committed, _end) in waiting.items() if positions.get(tp, committed) > committed}


@dataclass
class DroppedFetchWatch:
    """Two looks in a row that find the same partitions fetched past their commit, with nothing processed
    in between, call for a seek back to the committed offsets."""
    _suspects: set[str] = field(default_factory=set)
    _processed_then: int = -1

    def reset(self) -> None:
        self._suspects = set()

    def observe(self, dropped: set[str], processed: int) -> set[str]:
        """The partitions to seek back now (empty: none)."""
        confirmed = dropped & self._suspects if processed == self._processed_then else set()
        self._suspects = set() if confirmed else set(dropped)
        self._processed_then = processed
        return confirmed
