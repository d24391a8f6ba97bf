"""A burst of concurrent Redis calls larger than the pool waits for connections instead of failing.

redis-py's default pool raised "Too many connections" past 100 concurrent commands, which made the
sender's sent-mark check fail open and deliver replayed replies twice.
"""

from __future__ import annotations

import asyncio
import uuid

import pytest

from tgstream.config import Settings
from tgstream.connectors.redis_client import async_redis
from tgstream.state.dedupe import SentMarks

pytestmark = [pytest.mark.integration, pytest.mark.anyio]


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


async def test_burst_over_the_pool_size_all_succeed(settings: Settings) -> None:
    client = async_redis(settings.redis_url, max_connections=4)
    namespace = f"test-pool-{uuid.uuid4().hex}"
    writer = SentMarks(client, namespace=namespace)
    try:
        await asyncio.gather(*(writer.mark(f"chat:{n}", 0, n) for n in range(300)))
        # A second process (no local memory of these marks) sees every one through Redis.
        reader = SentMarks(client, namespace=namespace)
        seen = await asyncio.gather(*(reader.sent_parts(f"chat:{n}", 1) for n in range(300)))
        assert seen == [[True]] * 300
        assert await reader.sent_parts("chat:never", 1) == [False]
    finally:
        keys = [key async for key in client.scan_iter(f"{namespace}*", count=1000)]
        if keys:
            await client.delete(*keys)
        await client.aclose()
