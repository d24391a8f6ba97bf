"""Background dependency probes for /readyz, so a readiness check never waits on a slow broker."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable

import structlog

log = structlog.get_logger(__name__)

Check = Callable[[], Awaitable[bool]]


class Readiness:
    """Runs each check every ``interval_s``; a check counts as up if it passed within ``stale_s``.

    Lifecycle: :meth:`start` runs the first round before returning (so /readyz is meaningful at
    once) and then keeps a named task probing; :meth:`stop` cancels it.
    """

    def __init__(self, checks: dict[str, Check], *, interval_s: float = 5.0, stale_s: float = 15.0) -> None:
        self._checks = checks
        self._interval_s = interval_s
        self._stale_s = stale_s
        self._last_ok: dict[str, float] = {}
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        await self._round()
        self._task = asyncio.create_task(self._loop(), name="readiness-probes")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    def snapshot(self) -> dict[str, object]:
        now = time.monotonic()
        return {name: now - self._last_ok.get(name, -1e9) <= self._stale_s for name in self._checks}

    async def _loop(self) -> None:
        while True:
            await asyncio.sleep(self._interval_s)
            await self._round()

    async def _round(self) -> None:
        names = list(self._checks)
        results = await asyncio.gather(*(self._checks[n]() for n in names), return_exceptions=True)
        for name, result in zip(names, results, strict=True):
            if result is True:
                self._last_ok[name] = time.monotonic()
            elif isinstance(result, BaseException):
                log.warning("readiness probe failed", check=name, error=repr(result))
