"""The event loop every long-running tgstream process runs on: uvloop.

The gateway and the sender spent 42-44 % of their busy CPU samples in asyncio's own Python code
(the selector loop, transports, handles) under load; uvloop implements the same loop on libuv in
C, with the same API, so aiohttp, redis-py, psycopg and the openai client run on it unchanged.
``TGSTREAM_EVENT_LOOP=asyncio`` goes back to the standard loop (to rule uvloop out when
debugging).
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Coroutine
from typing import Any, TypeVar

import uvloop

T = TypeVar("T")
ENV = "TGSTREAM_EVENT_LOOP"


def _wanted() -> str:
    choice = os.environ.get(ENV, "uvloop").strip().lower() or "uvloop"
    if choice not in ("uvloop", "asyncio"):
        raise ValueError(f"{ENV} must be uvloop or asyncio, not {choice!r}")
    return choice


def new_loop() -> asyncio.AbstractEventLoop:
    """A fresh loop of the configured kind, for a thread that runs its own (see BackgroundLoop)."""
    return uvloop.new_event_loop() if _wanted() == "uvloop" else asyncio.new_event_loop()


def run(main: Coroutine[Any, Any, T]) -> T:
    """``asyncio.run(main)`` on the configured loop."""
    with asyncio.Runner(loop_factory=new_loop) as runner:
        return runner.run(main)
