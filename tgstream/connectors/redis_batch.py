"""Redis commands from many concurrent tasks, sent together: one pipeline round trip for many callers.

The gateway asks Redis twice per update and the sender three times per reply, each from its own
task. One command per round trip means one pooled-connection checkout, one ``send`` and one
``recv`` per command, and under load the profile of both processes was led by socket writes.
:class:`RedisBatch` queues single commands and sends whatever is queued as one pipeline:

* a command queued while no pipeline is in flight leaves on the next loop iteration, together
  with every other command queued in that iteration, so at low load nothing waits;
* commands queued while a pipeline is in flight leave together as soon as it returns, so under
  load the batches grow by themselves, up to ``max_batch``.

It is not a transaction: each command succeeds or fails on its own, and a command's error is
raised to its own caller only. A connection error fails every command of that pipeline.

Scripts go through :class:`BatchedScript`, not redis-py's ``Script`` objects: a pipeline holding
those asks ``SCRIPT EXISTS`` in an extra round trip on every ``execute``.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Callable, Sequence
from typing import Any

from redis.asyncio import Redis
from redis.asyncio.client import Pipeline
from redis.exceptions import NoScriptError

QueueOne = Callable[[Pipeline], object]
"""Adds exactly one command to the pipeline it is given."""


class RedisBatch:
    """Lifecycle: create on the event loop that will use it; nothing to close (the client owns the pool)."""

    def __init__(self, redis: Redis, *, max_batch: int = 512) -> None:
        if max_batch < 1:
            raise ValueError(f"max_batch must be at least 1, not {max_batch}")
        self._redis = redis
        self._max_batch = max_batch
        self._queue: list[tuple[QueueOne, asyncio.Future[Any]]] = []
        self._flushing = False
        self._tasks: set[asyncio.Task[None]] = set()
        self.round_trips = 0
        self.commands = 0

    async def run(self, queue_one: QueueOne) -> Any:
        """The result of the one command ``queue_one`` adds; raises what Redis or the connection raised."""
        return await self.post(queue_one)

    def post(self, queue_one: QueueOne) -> asyncio.Future[Any]:
        """Queue the command now and return its future, for a caller that need not wait for it.

        Commands run in the order they were queued, so a command posted before a later caller's
        command is seen by it (a gateway's commit before the next request's claim).
        """
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Any] = loop.create_future()
        self._queue.append((queue_one, future))
        if not self._flushing:
            self._flushing = True
            loop.call_soon(self._start)
        return future

    def _start(self) -> None:
        task = asyncio.get_running_loop().create_task(self._flush(), name="redis-batch")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _flush(self) -> None:
        try:
            while self._queue:
                batch, self._queue = self._queue[: self._max_batch], self._queue[self._max_batch :]
                await self._send(batch)
        finally:
            self._flushing = False

    async def _send(self, batch: Sequence[tuple[QueueOne, asyncio.Future[Any]]]) -> None:
        self.round_trips += 1
        self.commands += len(batch)
        try:
            async with self._redis.pipeline(transaction=False) as pipe:
                for queue_one, _ in batch:
                    queue_one(pipe)
                results = await pipe.execute(raise_on_error=False)
        except Exception as exc:
            for _, future in batch:
                if not future.done():
                    future.set_exception(exc)
            return
        for (_, future), result in zip(batch, results, strict=True):
            if future.done():
                continue
            if isinstance(result, Exception):
                future.set_exception(result)
            else:
                future.set_result(result)


class BatchedScript:
    """A Lua script run through a :class:`RedisBatch`: ``EVALSHA``, and ``EVAL`` once if Redis lost it."""

    def __init__(self, batch: RedisBatch, source: str) -> None:
        self._batch = batch
        self._source = source
        self.sha = hashlib.sha1(source.encode(), usedforsecurity=False).hexdigest()

    async def __call__(self, keys: Sequence[str], args: Sequence[str | int | float]) -> Any:
        try:
            return await self._batch.run(lambda pipe: pipe.evalsha(self.sha, len(keys), *keys, *args))
        except NoScriptError:
            # Redis restarted or flushed its script cache; EVAL runs it and caches it again.
            return await self._batch.run(lambda pipe: pipe.eval(self._source, len(keys), *keys, *args))
