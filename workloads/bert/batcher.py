"""Dynamic batching: requests from concurrent clients are grouped up to a max batch size or a max wait.

A bounded queue protects the process: when ``max_queue`` pairs are already waiting, a new request
is refused at once with :class:`OverloadedError` (the server answers 503 + Retry-After) instead of
piling up until memory runs out. The model runs in one worker thread, so the event loop keeps
accepting and parsing requests while a batch computes.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import time
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Generic, TypeVar

T = TypeVar("T")
R = TypeVar("R")


class OverloadedError(Exception):
    """The queue is full; retry after ``retry_after_s`` seconds."""

    def __init__(self, retry_after_s: int, queued: int) -> None:
        super().__init__(f"{queued} pairs are queued (the limit); retry in {retry_after_s} s")
        self.retry_after_s = retry_after_s


@dataclass
class _Waiting(Generic[T, R]):
    items: Sequence[T]
    future: asyncio.Future[list[R]]
    enqueued: float = field(default_factory=time.perf_counter)


@dataclass
class BatchStats:
    """Counters the server exports: batches run, pairs per batch, last batch time."""

    batches: int = 0
    items: int = 0
    last_batch_s: float = 0.0
    sizes: list[int] = field(default_factory=list)


class DynamicBatcher(Generic[T, R]):
    """Group submitted items into batches for ``fn`` (items in, one result per item out, in order)."""

    def __init__(
        self,
        fn: Callable[[list[T]], list[R]],
        *,
        max_batch_size: int = 32,
        max_wait_ms: float = 5.0,
        max_queue: int = 256,
        on_batch: Callable[[int, float], None] | None = None,
    ) -> None:
        if max_batch_size < 1 or max_queue < max_batch_size or max_wait_ms < 0:
            raise ValueError(
                f"max_batch_size={max_batch_size}, max_queue={max_queue}, max_wait_ms={max_wait_ms}: "
                "need max_batch_size >= 1, max_queue >= max_batch_size and max_wait_ms >= 0"
            )
        self.fn = fn
        self.max_batch_size = max_batch_size
        self.max_wait_s = max_wait_ms / 1000
        self.max_queue = max_queue
        self.on_batch = on_batch
        self.stats = BatchStats()
        self._queue: deque[_Waiting[T, R]] = deque()
        self._queued_items = 0
        self._wake: asyncio.Event | None = None
        self._task: asyncio.Task[None] | None = None
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="bert-batch")

    @property
    def queued(self) -> int:
        """Items waiting (not yet in a running batch)."""
        return self._queued_items

    async def start(self) -> None:
        """Start the batching loop on the running event loop."""
        self._wake = asyncio.Event()
        self._task = asyncio.create_task(self._loop(), name="bert-batcher")

    async def stop(self) -> None:
        """Stop the loop; waiting requests fail with CancelledError."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        for waiting in self._queue:
            waiting.future.cancel()
        self._queue.clear()
        self._pool.shutdown(wait=True)

    def retry_after_s(self) -> int:
        """Estimate when the queue will have drained: queued batches x the last batch time (at least 1 s)."""
        batches = math.ceil(self._queued_items / self.max_batch_size)
        return max(1, math.ceil(batches * max(self.stats.last_batch_s, 0.01)))

    async def submit(self, items: Sequence[T]) -> list[R]:
        """Queue items and wait for their results (raise OverloadedError when the queue is full)."""
        if self._wake is None:
            raise RuntimeError("DynamicBatcher.start() was not called")
        if len(items) > self.max_batch_size:
            raise ValueError(f"{len(items)} items are more than max_batch_size={self.max_batch_size}")
        if self._queued_items + len(items) > self.max_queue:
            raise OverloadedError(self.retry_after_s(), self._queued_items)
        future: asyncio.Future[list[R]] = asyncio.get_running_loop().create_future()
        self._queue.append(_Waiting(items, future))
        self._queued_items += len(items)
        self._wake.set()
        return await future

    def _take(self) -> list[_Waiting[T, R]]:
        taken: list[_Waiting[T, R]] = []
        size = 0
        while self._queue and size + len(self._queue[0].items) <= self.max_batch_size:
            waiting = self._queue.popleft()
            self._queued_items -= len(waiting.items)
            if waiting.future.cancelled():  # the client went away
                continue
            taken.append(waiting)
            size += len(waiting.items)
        return taken

    def _queued_fill(self) -> int:
        return min(self._queued_items, self.max_batch_size)

    async def _loop(self) -> None:
        assert self._wake is not None
        loop = asyncio.get_running_loop()
        while True:
            while not self._queue:
                self._wake.clear()
                await self._wake.wait()
            # Wait for more requests until the batch is full or the oldest one has waited max_wait.
            deadline = self._queue[0].enqueued + self.max_wait_s
            while self._queued_fill() < self.max_batch_size:
                remaining = deadline - time.perf_counter()
                if remaining <= 0:
                    break
                self._wake.clear()
                try:
                    await asyncio.wait_for(self._wake.wait(), timeout=remaining)
                except TimeoutError:
                    break
            taken = self._take()
            if not taken:
                continue
            flat = [item for waiting in taken for item in waiting.items]
            started = time.perf_counter()
            try:
                results = await loop.run_in_executor(self._pool, self.fn, flat)
            except Exception as err:  # the model failed: every request of the batch gets the error
                for waiting in taken:
                    if not waiting.future.done():
                        waiting.future.set_exception(err)
                continue
            elapsed = time.perf_counter() - started
            self.stats.batches += 1
            self.stats.items += len(flat)
            self.stats.last_batch_s = elapsed
            if self.on_batch is not None:
                self.on_batch(len(flat), elapsed)
            start = 0
            for waiting in taken:
                end = start + len(waiting.items)
                if not waiting.future.done():
                    waiting.future.set_result(results[start:end])
                start = end
