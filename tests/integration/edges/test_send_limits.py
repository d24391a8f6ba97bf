"""The Redis token buckets and scoped pauses, with Redis's clock replaced by an explicit one."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from redis.asyncio import Redis

from tgstream.config import Settings
from tgstream.state.send_limits import SendLimits, SendLimitsConfig

pytestmark = [pytest.mark.integration, pytest.mark.anyio]

CHAT, OTHER, GROUP = 111_222_333_444, 111_222_333_445, -1_001_234_567_890


@pytest.fixture
async def redis(settings: Settings) -> AsyncIterator[Redis]:
    client = Redis.from_url(settings.redis_url)
    yield client
    await client.aclose()


def limits(redis: Redis, namespace: str, **config: float) -> SendLimits:
    return SendLimits(redis, SendLimitsConfig(**config), namespace=namespace)


async def test_per_chat_bucket_refills_at_its_rate(redis: Redis, namespace: str) -> None:
    lim = limits(redis, namespace, global_per_s=1000, per_chat_per_s=2)
    t = 1_000_000
    assert await lim.acquire(CHAT, "private", now_ms=t) == 0
    assert await lim.acquire(CHAT, "private", now_ms=t) == 0  # burst = one second's worth = 2
    # Empty now: the next token comes 1 / (2 per s) = 0.5 s later.
    assert await lim.acquire(CHAT, "private", now_ms=t) == pytest.approx(0.5, abs=0.001)
    assert await lim.acquire(CHAT, "private", now_ms=t + 250) == pytest.approx(0.25, abs=0.001)
    assert await lim.acquire(CHAT, "private", now_ms=t + 500) == 0
    assert await lim.acquire(OTHER, "private", now_ms=t + 500) == 0, "another chat has its own bucket"


async def test_a_send_held_by_its_chat_spends_no_global_token(redis: Redis, namespace: str) -> None:
    lim = limits(redis, namespace, global_per_s=1, per_chat_per_s=1)
    t = 5_000_000
    assert await lim.acquire(CHAT, "private", now_ms=t) == 0  # takes the only global token
    assert await lim.acquire(CHAT, "private", now_ms=t + 1000) == 0
    assert await lim.acquire(CHAT, "private", now_ms=t + 1000) > 0  # chat and global both empty
    assert await lim.acquire(OTHER, "private", now_ms=t + 2000) == 0, "the refused send took nothing"


async def test_groups_use_the_per_minute_limit(redis: Redis, namespace: str) -> None:
    lim = limits(redis, namespace, global_per_s=1000, per_group_per_min=20)
    t = 9_000_000
    assert await lim.acquire(GROUP, "supergroup", now_ms=t) == 0
    # 20 per minute is one token per 3 s.
    assert await lim.acquire(GROUP, "supergroup", now_ms=t) == pytest.approx(3.0, abs=0.001)


async def test_low_priority_needs_half_the_global_bucket_and_no_chat_token(
    redis: Redis, namespace: str
) -> None:
    lim = limits(redis, namespace, global_per_s=4, per_chat_per_s=1)
    t = 2_000_000
    assert await lim.acquire(CHAT, "private", low_priority=True, now_ms=t) == 0
    assert await lim.acquire(CHAT, "private", now_ms=t) == 0, "a typing action did not use the chat token"
    # Global now holds 2 of 4 tokens: a typing action needs 2 (half), so one more fits, then none.
    assert await lim.acquire(OTHER, "private", low_priority=True, now_ms=t) == 0
    assert await lim.acquire(OTHER, "private", low_priority=True, now_ms=t) > 0
    assert await lim.acquire(OTHER, "private", now_ms=t) == 0, "replies may still use the reserve"


async def test_pause_holds_only_its_scope(redis: Redis, namespace: str) -> None:
    lim = limits(redis, namespace, global_per_s=1000, per_chat_per_s=1000)
    await lim.pause(f"chat:{CHAT}", 3)
    wait = await lim.acquire(CHAT, "private")
    assert 2.5 < wait <= 3.0
    assert await lim.acquire(OTHER, "private") == 0
    await lim.pause(f"chat:{CHAT}", 1)
    assert await lim.acquire(CHAT, "private") > 2.0, "a shorter pause never shortens a longer one"


async def test_many_chats_flooding_at_once_pause_everything(redis: Redis, namespace: str) -> None:
    lim = limits(redis, namespace, global_per_s=1000, per_chat_per_s=1000, flood_chats=3, flood_window_s=5)
    assert await lim.report_flood(1, "private", 2) == "chat"
    assert await lim.report_flood(-2, "group", 2) == "group"
    assert await lim.acquire(99, "private") == 0
    assert await lim.report_flood(3, "private", 2) == "global"
    assert await lim.acquire(99, "private") > 1.0
