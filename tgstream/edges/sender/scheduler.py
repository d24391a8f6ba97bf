"""Per-chat FIFO queues with bounded total concurrency.

Each chat with work has one worker task that handles its jobs strictly in arrival order, so a
chat's replies reach Telegram in the order the dataflow emitted them; different chats proceed in
parallel, at most ``max_concurrency`` at a time. A chat's queue and task disappear when it runs
dry, so the number of per-chat structures is bounded by the chats with pending work (itself
bounded by the consumer's backpressure limit).
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Awaitable, Callable
from typing import Generic, Protocol, TypeVar

import structlog

log = structlog.get_logger(__name__)


class ChatJob(Protocol):
    @property
    def chat_id(self) -> int: ...


JobT = TypeVar("JobT", bound=ChatJob)


class ChatScheduler(Generic[JobT]):
    """Lifecycle: :meth:`submit` while running; :meth:`drain` waits for queued work to finish;
    :meth:`cancel` abandons it (its offsets stay uncommitted, so it is redelivered later).

    ``handler`` must not raise: a job it cannot handle is the handler's to dead-letter. If it
    raises anyway, the error is logged and the job is dropped from the queue so the chat is not
    stuck; its offset is never finished, so the partition stops committing until a restart
    redelivers it, which is loud in the metrics instead of silently losing the record.
    """

    def __init__(self, handler: Callable[[JobT], Awaitable[None]], *, max_concurrency: int) -> None:
        self._handler = handler
        self._slots = asyncio.Semaphore(max_concurrency)
        self._queues: dict[int, deque[JobT]] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self.depth = 0
        self.handler_errors = 0

    def submit(self, job: JobT) -> None:
        queue = self._queues.get(job.chat_id)
        if queue is None:
            queue = self._queues[job.chat_id] = deque()
            task = asyncio.create_task(self._run_chat(job.chat_id, queue), name=f"sender-chat-{job.chat_id}")
            self._tasks.add(task)
            task.add_done_callback(self._task_done)
        queue.append(job)
        self.depth += 1

    def queued_behind(self, job: JobT) -> int:
        """How many jobs of the same chat wait behind ``job`` (used to drop stale typing actions)."""
        queue = self._queues.get(job.chat_id)
        return len(queue) - 1 if queue else 0

    @property
    def active_chats(self) -> int:
        return len(self._queues)

    async def _run_chat(self, chat_id: int, queue: deque[JobT]) -> None:
        try:
            while queue:
                job = queue[0]
                async with self._slots:
                    try:
                        await self._handler(job)
                    except asyncio.CancelledError:
                        raise
                    except Exception:
                        self.handler_errors += 1
                        log.exception("sender handler failed", chat_id=chat_id)
                queue.popleft()
                self.depth -= 1
        finally:
            self._queues.pop(chat_id, None)

    def _task_done(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("sender chat task died", task=task.get_name(), error=repr(task.exception()))

    async def drain(self, timeout_s: float) -> bool:
        """Wait for every queued job; False if some were still running at the deadline."""
        if not self._tasks:
            return True
        _, pending = await asyncio.wait(set(self._tasks), timeout=timeout_s)
        return not pending

    async def cancel(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
        self._queues.clear()
        self.depth = 0
