"""When is a running stream worker stalled (pure; no I/O)?

A restarted faust worker has been seen, rarely, to log "Worker ready" and then leave records waiting
(tests/ingest/test_restart_integration.py restarts it again and again); the cause is not known. Whatever
it is, the cure is the supervisor's: a fresh process. The rule: records
are waiting for the worker's group (its backlog) and it has processed none of them for `stall_after_s`.
Recovery and rebalances are not stalls: the caller resets the watch while the worker is not ready.
"""

from __future__ import annotations

from dataclasses import dataclass


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
