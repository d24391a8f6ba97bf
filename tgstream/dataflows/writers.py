"""Background writers: off the reply path, batched, bounded, and never able to fail a turn.

A turn only *enqueues* its Redis mirror update and its memory; a task drains each queue in
batches (one Redis pipeline, one embeddings call plus one INSERT per batch). When a backend is
down, batches fail and are counted, and when the queue is full new items are dropped and
counted, so a slow Postgres costs memories, never replies or worker time.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from typing import Generic, TypeVar

import structlog

from tgstream.dataflows import metrics

T = TypeVar("T")

log = structlog.get_logger(__name__)


class BatchWriter(Generic[T]):
    """Collects items in a bounded queue and hands them to ``write`` in batches.

    Lifecycle: :meth:`start` on the event loop, :meth:`put` from coroutines on that loop,
    :meth:`close` to flush what is queued (bounded by a timeout) and stop.
    """

    def __init__(
        self,
        name: str,
        write: Callable[[list[T]], Awaitable[None]],
        *,
        max_queue: int = 10_000,
        max_batch: int = 256,
        max_wait_s: float = 0.05,
    ) -> None:
        self.name = name
        self._write = write
        self._queue: asyncio.Queue[T] = asyncio.Queue(max_queue)
        self._max_batch = max_batch
        self._max_wait_s = max_wait_s
        self._task: asyncio.Task[None] | None = None
        self._taking: list[T] = []

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._drain(), name=f"writer-{self.name}")

    def put(self, item: T) -> None:
        try:
            self._queue.put_nowait(item)
        except asyncio.QueueFull:
            metrics.BACKGROUND_WRITES.labels(self.name, "dropped").inc()

    def pending(self) -> int:
        return self._queue.qsize()

    async def _next_batch(self) -> list[T]:
        """The first item, plus what arrives within ``max_wait_s`` (one timer per batch, not a
        ``wait_for`` task per item), up to ``max_batch``.

        Taken items wait in ``self._taking``, not in a local, so :meth:`close` writes them too.
        """
        self._taking.append(await self._queue.get())
        if self._queue.qsize() + 1 < self._max_batch:
            await asyncio.sleep(self._max_wait_s)
        while len(self._taking) < self._max_batch:
            try:
                self._taking.append(self._queue.get_nowait())
            except asyncio.QueueEmpty:
                break
        batch, self._taking = self._taking, []
        return batch

    async def _drain(self) -> None:
        while True:
            batch = await self._next_batch()
            await self._write_batch(batch)

    async def _write_batch(self, batch: list[T]) -> None:
        try:
            await self._write(batch)
            metrics.BACKGROUND_WRITES.labels(self.name, "ok").inc(len(batch))
        except Exception as exc:
            metrics.BACKGROUND_WRITES.labels(self.name, "failed").inc(len(batch))
            metrics.DEGRADED.labels(self.name).inc()
            log.warning("writer.batch_failed", writer=self.name, items=len(batch), error=repr(exc))

    async def close(self, timeout_s: float = 5.0) -> None:
        """Stop the drain task and write what is still queued, within ``timeout_s``."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        rest, self._taking = self._taking, []
        while not self._queue.empty():
            rest.append(self._queue.get_nowait())
        if rest:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._write_batch(rest), timeout_s)
