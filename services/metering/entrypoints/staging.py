"""The sink's staging of polls: each poll's records framed as they are read (adapters/wire.py) and handed
to ClickHouse on a connection of their own (store.reopen), beside the write of the batch before;
the polls staged since the last hand-over go in one insert. A write then waits for its polls' verdicts.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from clonedesk.core.domain.topics import RESOLUTIONS
from clonedesk.metering.adapters.store import MeteringStore, StagedBatch
from clonedesk.metering.adapters.wire import Framer, new_stager

log = logging.getLogger(__name__)


@dataclass
class StagedPoll:
    """A poll's records framed for staging: `records[i]` is number `first + i`; what a write needs of them
    counted as they were framed. `verdict` resolves to the rejected numbers (-> why) once ClickHouse
    judged them, or raises StagingFailed where it could not decode them."""

    records: list
    first: int
    resolutions: bytes = b""
    outcomes: bytes = b""
    outcome_count: int = 0
    traced: list = field(default_factory=list)  # the numbers of the records that carry headers
    verdict: asyncio.Future | None = None

    @property
    def last(self) -> int:
        return self.first + len(self.records) - 1

    def record(self, seq: int):
        return self.records[seq - self.first]


class PollStager:
    def __init__(self, store: MeteringStore):
        self.stager = new_stager()  # this sink process's id on its staged rows
        self._framer = Framer(self.stager)
        self._next_seq = 0  # records are numbered as they are read
        self._store = store
        self._staging: MeteringStore | None = None
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="metering-stage")
        self._waiting: list[StagedPoll] = []
        self._wake = asyncio.Event()
        self._task: asyncio.Task | None = None

    async def start(self) -> None:
        self._staging = await asyncio.get_running_loop().run_in_executor(self._executor, self._store.reopen)
        self._task = asyncio.create_task(self._hand_over(), name="metering-stage")

    def frame(self, records: list) -> StagedPoll:
        """Frame and queue a poll's records (each with a value: the sink parks those without)."""
        poll = StagedPoll([], self._next_seq, verdict=asyncio.get_running_loop().create_future())
        add, framed, traced = self._framer.add, poll.records, poll.traced
        resolutions, outcomes = [], []
        seq = poll.first
        for record in records:
            if record.topic == RESOLUTIONS:
                add(resolutions, record.value, seq)
            else:
                add(outcomes, record.value, seq)
                poll.outcome_count += 1
            framed.append(record)
            if record.headers:
                traced.append(seq)
            seq += 1
        self._next_seq = seq
        poll.resolutions, poll.outcomes = b"".join(resolutions), b"".join(outcomes)
        if framed:
            self._waiting.append(poll)
            self._wake.set()
        else:
            poll.verdict.set_result({})
        return poll

    async def _hand_over(self) -> None:
        """Stage what has been queued, all of it at once, until cancelled."""
        loop = asyncio.get_running_loop()
        while True:
            await self._wake.wait()
            self._wake.clear()
            polls, self._waiting = self._waiting, []
            if not polls:
                continue
            batch = StagedBatch(self.stager, polls[0].first, polls[-1].last,
                                b"".join(poll.resolutions for poll in polls), b"".join(poll.outcomes for poll in polls))
            try:
                rejected = await loop.run_in_executor(self._executor, self._staging.stage_records, batch)
            except asyncio.CancelledError:
                for poll in polls:
                    poll.verdict.cancel()
                raise
            except Exception as exc:  # noqa: BLE001 - each waiting write gets it (StagingFailed: decode in Python)
                for poll in polls:
                    poll.verdict.set_exception(exc)
                continue
            for poll in polls:
                poll.verdict.set_result({seq: why for seq, why in rejected.items() if poll.first <= seq <= poll.last})

    async def close(self) -> None:
        """Stop staging; delete what this process staged and never wrote (a failed write's polls)."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        for poll in self._waiting:
            poll.verdict.cancel()
        loop = asyncio.get_running_loop()
        if self._staging is not None:
            try:
                await loop.run_in_executor(self._executor, self._staging.drop_stager, self.stager)
            except Exception:  # noqa: BLE001 - the store is gone, and its scratch with it
                log.debug("could not clear this sink's staged records", exc_info=True)
            if self._staging is not self._store:
                await loop.run_in_executor(self._executor, self._staging.close)
        self._executor.shutdown(wait=True)
