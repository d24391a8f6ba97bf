"""ConversationMirror against the real Redis: hash, TTL, active ZSET, prune, clear, Redis down."""

from __future__ import annotations

import socket
import time
import uuid
from collections.abc import AsyncIterator

import pytest
import redis.asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

from tgstream.config import Settings
from tgstream.state.conversation_mirror import ConversationMirror, ConversationSnapshot, MirrorUnavailable

pytestmark = [pytest.mark.integration, pytest.mark.anyio]

TTL = 120


@pytest.fixture
async def redis_client(settings: Settings) -> AsyncIterator[aioredis.Redis]:
    client = aioredis.Redis.from_url(settings.redis_url, socket_timeout=5)
    yield client
    await client.aclose()


@pytest.fixture
async def mirror(redis_client: aioredis.Redis) -> AsyncIterator[ConversationMirror]:
    prefix = f"test-{uuid.uuid4().hex[:10]}:"
    yield ConversationMirror(redis_client, ttl_s=TTL, prefix=prefix)
    keys = [k async for k in redis_client.scan_iter(match=f"{prefix}*")]
    if keys:
        await redis_client.delete(*keys)


def snapshot(chat_id: int, at: float, turns: int = 1) -> ConversationSnapshot:
    window = [{"user": f"hi {i}", "assistant": f"hello {i}", "at": at - i} for i in range(turns)]
    return ConversationSnapshot(chat_id, window, last_activity=at, turns=turns, personality_id="p-1")


async def test_write_many_mirrors_hash_ttl_and_active_set(
    mirror: ConversationMirror, redis_client: aioredis.Redis
) -> None:
    now = time.time()
    chats = [10**11 + i for i in range(50)]
    await mirror.write_many([snapshot(c, now - i, turns=3) for i, c in enumerate(chats)], now=now)

    stored = await mirror.read(chats[0])
    assert stored is not None
    assert stored["chat_id"] == chats[0]
    assert stored["turns"] == 3
    assert stored["personality_id"] == "p-1"
    assert stored["last_activity"] == pytest.approx(now)
    assert stored["context_window"] == [
        {"user": f"hi {i}", "assistant": f"hello {i}", "at": now - i} for i in range(3)
    ]
    ttl = await redis_client.ttl(mirror.key(chats[-1]))
    assert 0 < ttl <= TTL
    assert await mirror.active(since=now - 9.5) == chats[:10]  # newest first


async def test_a_later_snapshot_replaces_the_earlier_one(mirror: ConversationMirror) -> None:
    now = time.time()
    await mirror.write_many([snapshot(1, now - 5, turns=2)])
    await mirror.write_many([snapshot(1, now - 1, turns=1), snapshot(1, now, turns=4)])
    stored = await mirror.read(1)
    assert stored is not None
    assert (stored["turns"], len(stored["context_window"])) == (4, 4)


async def test_prune_and_clear(mirror: ConversationMirror) -> None:
    now = time.time()
    await mirror.write_many([snapshot(1, now - 3600), snapshot(2, now - 60), snapshot(3, now)])
    assert await mirror.prune_active(older_than=now - 600) == 1
    assert await mirror.active(since=0) == [3, 2]
    await mirror.clear(3)
    assert await mirror.read(3) is None
    assert await mirror.active(since=0) == [2]


async def test_redis_down_raises_the_typed_error() -> None:
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    client = aioredis.Redis(
        host="127.0.0.1", port=port, socket_connect_timeout=1, retry=Retry(NoBackoff(), 0)
    )
    mirror = ConversationMirror(client, ttl_s=TTL)
    try:
        with pytest.raises(MirrorUnavailable):
            await mirror.write_many([snapshot(1, time.time())])
        with pytest.raises(MirrorUnavailable):
            await mirror.read(1)
        with pytest.raises(MirrorUnavailable):
            await mirror.prune_active(older_than=0)
    finally:
        await client.aclose()
