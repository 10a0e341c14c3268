"""Micro-batching: concurrent requests wait a few milliseconds for company, then run as one batch on the
engine's single worker thread (where model calls and adapter loads are serialised)."""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
from typing import Callable, Generic, Sequence, TypeVar

log = logging.getLogger(__name__)

In = TypeVar("In")
Out = TypeVar("Out")


class MicroBatcher(Generic[In, Out]):
    def __init__(
        self,
        run_batch: Callable[[Sequence[In]], Sequence[Out]],
        executor: concurrent.futures.Executor,
        max_batch: int,
        wait_s: float,
    ):
        self._run_batch = run_batch
        self._executor = executor
        self._max_batch = max_batch
        self._wait_s = wait_s
        self._queue: asyncio.Queue[tuple[In, asyncio.Future]] = asyncio.Queue()
        self._task: asyncio.Task | None = None
        self.batches_run = 0
        self.largest_batch = 0

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._loop(), name="micro-batcher")

    async def close(self) -> None:
        if self._task:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass
            self._task = None

    async def submit(self, item: In) -> Out:
        self.start()
        future = asyncio.get_running_loop().create_future()
        await self._queue.put((item, future))
        return await future

    async def _collect(self) -> list[tuple[In, asyncio.Future]]:
        batch = [await self._queue.get()]
        deadline = asyncio.get_running_loop().time() + self._wait_s
        while len(batch) < self._max_batch:
            remaining = deadline - asyncio.get_running_loop().time()
            if remaining <= 0 and self._queue.empty():
                break
            try:
                batch.append(
                    await asyncio.wait_for(self._queue.get(), max(remaining, 0))
                    if remaining > 0
                    else self._queue.get_nowait()
                )
            except (asyncio.TimeoutError, asyncio.QueueEmpty):
                break
        # A caller that gave up (deadline, cancel) needs no generation.
        return [(item, fut) for item, fut in batch if not fut.done()]

    async def _loop(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            batch = await self._collect()
            if not batch:
                continue
            self.batches_run += 1
            self.largest_batch = max(self.largest_batch, len(batch))
            try:
                results = await loop.run_in_executor(self._executor, self._run_batch, [i for i, _ in batch])
            except Exception as exc:  # noqa: BLE001 - the batch's callers get the error, the loop lives on
                log.exception("batch failed")
                for _, fut in batch:
                    if not fut.done():
                        fut.set_exception(exc)
                continue
            for (_, fut), result in zip(batch, results):
                if not fut.done():
                    fut.set_result(result)


class ModelThreadEngine:
    """What the engines share: one thread owns the model (generation, adapter loads and unloads never
    overlap), and concurrent requests reach it through a MicroBatcher. Subclasses load the base model in
    `_load_base` and generate one batch in `_run_batch`, both on that thread."""

    name = "engine"

    def __init__(self, base_model: str, resolver_settings):
        self.base_model_path = str(base_model)
        self._executor = concurrent.futures.ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"{self.name}-engine")
        self._batcher = MicroBatcher(self._run_batch, self._executor, resolver_settings.max_batch_size,
                                     resolver_settings.batch_wait_ms / 1000)

    @property
    def batches_run(self) -> int:
        return self._batcher.batches_run

    @property
    def largest_batch(self) -> int:
        return self._batcher.largest_batch

    async def start(self) -> None:
        await asyncio.get_running_loop().run_in_executor(self._executor, self._load_base)
        self._batcher.start()

    async def generate(self, request):
        return await self._batcher.submit(request)

    def _load_base(self) -> None:
        raise NotImplementedError

    def _run_batch(self, requests):
        raise NotImplementedError
