"""An asyncio event loop on a background thread, so I/O never runs on a Bytewax worker thread.

Bytewax calls our operator logic on its worker thread and expects every call to return quickly.
All network work (LLM, Postgres, Redis, embeddings) is therefore submitted to this loop and its
results are collected later by polling a :class:`concurrent.futures.Future`.

One loop serves the whole process. With ``-w N`` threads per process they share it: the loop
thread only waits on sockets, and one loop multiplexes thousands of connections more cheaply
than N loops would (all threads share one GIL anyway, which is why we scale with processes).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import threading
import time
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, TypeVar

import structlog

from tgstream.connectors import event_loops

T = TypeVar("T")

log = structlog.get_logger(__name__)


class LoopClosedError(RuntimeError):
    """Work was submitted to a loop that is not running."""


class BackgroundLoop:
    """Owns one event loop running in one daemon thread, from :meth:`start` to :meth:`stop`.

    Lifecycle: ``created -> running -> stopped``; :meth:`submit` is refused outside ``running``,
    so a late call after shutdown fails loudly instead of silently never completing.
    """

    def __init__(self, name: str = "tgstream-io") -> None:
        self._name = name
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()
        self._stopped = False
        self._last_beat = time.monotonic()
        self._heartbeat_task: asyncio.Task[None] | None = None

    @property
    def running(self) -> bool:
        return self._loop is not None and not self._stopped and self._loop.is_running()

    @property
    def loop(self) -> asyncio.AbstractEventLoop:
        if self._loop is None or self._stopped:
            raise LoopClosedError(f"event loop {self._name!r} is not running")
        return self._loop

    def start(self) -> BackgroundLoop:
        """Start the thread and wait until the loop accepts work; calling it twice is a no-op."""
        if self._thread is not None:
            return self
        self._thread = threading.Thread(target=self._run, name=self._name, daemon=True)
        self._thread.start()
        if not self._ready.wait(timeout=10):
            raise LoopClosedError(f"event loop {self._name!r} did not start within 10 s")
        return self

    def _run(self) -> None:
        loop = event_loops.new_loop()
        asyncio.set_event_loop(loop)
        self._loop = loop
        loop.call_soon(self._ready.set)
        self._heartbeat_task = loop.create_task(self._heartbeat(), name=f"{self._name}-heartbeat")
        try:
            loop.run_forever()
        finally:
            pending = [t for t in asyncio.all_tasks(loop) if not t.done()]
            for task in pending:
                task.cancel()
            if pending:
                loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
            loop.run_until_complete(loop.shutdown_asyncgens())
            loop.close()

    async def _heartbeat(self) -> None:
        while True:
            self._last_beat = time.monotonic()
            await asyncio.sleep(0.5)

    def lag_s(self) -> float:
        """Seconds since the loop last ran its heartbeat; large values mean a blocked loop."""
        return max(0.0, time.monotonic() - self._last_beat - 0.5)

    def submit(self, coro: Coroutine[Any, Any, T]) -> concurrent.futures.Future[T]:
        """Schedule ``coro`` on the loop from any thread; the future is safe to poll from Bytewax."""
        try:
            loop = self.loop
        except LoopClosedError:
            coro.close()
            raise
        return asyncio.run_coroutine_threadsafe(coro, loop)

    def call(self, fn: Callable[[], Awaitable[T]], timeout: float) -> T:
        """Run ``fn()`` on the loop and block for its result; for start-up and shutdown only."""

        async def runner() -> T:
            return await fn()

        return self.submit(runner()).result(timeout=timeout)

    def stop(self, timeout: float = 10.0) -> None:
        """Stop the loop after cancelling its tasks; idempotent."""
        if self._loop is None or self._stopped:
            return
        self._stopped = True
        self._loop.call_soon_threadsafe(self._loop.stop)
        if self._thread is not None:
            self._thread.join(timeout=timeout)
            if self._thread.is_alive():
                log.warning("event_loop.stop_timeout", loop=self._name, timeout_s=timeout)
