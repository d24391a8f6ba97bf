"""Per-chat FIFO with bounded concurrency."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

import pytest

from tgstream.edges.sender.scheduler import ChatScheduler

pytestmark = pytest.mark.anyio


@dataclass
class Job:
    chat_id: int
    n: int


async def test_each_chat_in_order_and_concurrency_bounded() -> None:
    handled: dict[int, list[int]] = {}
    running = 0
    peak = 0
    release = asyncio.Event()

    async def handle(job: Job) -> None:
        nonlocal running, peak
        running += 1
        peak = max(peak, running)
        await release.wait()
        handled.setdefault(job.chat_id, []).append(job.n)
        running -= 1

    scheduler: ChatScheduler[Job] = ChatScheduler(handle, max_concurrency=3)
    for n in range(4):
        for chat in range(10):
            scheduler.submit(Job(chat, n))
    assert scheduler.depth == 40
    await asyncio.sleep(0.05)
    assert peak == 3
    release.set()
    assert await scheduler.drain(5)
    assert handled == {chat: [0, 1, 2, 3] for chat in range(10)}
    assert scheduler.depth == 0
    assert scheduler.active_chats == 0


async def test_queued_behind_counts_the_same_chat_only() -> None:
    gate = asyncio.Event()

    async def handle(job: Job) -> None:
        await gate.wait()

    scheduler: ChatScheduler[Job] = ChatScheduler(handle, max_concurrency=10)
    first = Job(1, 0)
    scheduler.submit(first)
    scheduler.submit(Job(1, 1))
    scheduler.submit(Job(2, 0))
    assert scheduler.queued_behind(first) == 1
    gate.set()
    assert await scheduler.drain(5)


async def test_a_failing_handler_does_not_stall_the_chat() -> None:
    seen: list[int] = []

    async def handle(job: Job) -> None:
        seen.append(job.n)
        if job.n == 0:
            raise RuntimeError("boom")

    scheduler: ChatScheduler[Job] = ChatScheduler(handle, max_concurrency=1)
    scheduler.submit(Job(1, 0))
    scheduler.submit(Job(1, 1))
    assert await scheduler.drain(5)
    assert seen == [0, 1]
    assert scheduler.handler_errors == 1
