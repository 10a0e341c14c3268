"""How long the demo waits for work that arrives in steps (the trainer builds one tenant's adapter after
another): the limit runs from the last step, so a slow machine that keeps delivering is waited for, and
one that stalled is given up on as soon as it would have been before."""

from __future__ import annotations

import time
from typing import Callable


class StallDeadline:
    def __init__(self, limit_s: float, clock: Callable[[], float] = time.monotonic):
        self.limit_s = limit_s
        self._clock = clock
        self._since = clock()

    def progressed(self) -> None:
        """A step arrived: the limit runs again from now."""
        self._since = self._clock()

    def expired(self) -> bool:
        return self._clock() - self._since > self.limit_s
