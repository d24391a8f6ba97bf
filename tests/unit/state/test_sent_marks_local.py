"""The sender's sent marks without Redis: what this process marked itself is still known.

The client points at a port nothing listens on, so every Redis call fails as it would in an outage.
"""

from __future__ import annotations

import socket

import pytest

from tgstream.connectors.redis_client import async_redis
from tgstream.state.dedupe import DedupeUnavailableError, SentMarks

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def dead_redis_url() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return f"redis://127.0.0.1:{sock.getsockname()[1]}/0"


async def test_own_marks_survive_a_redis_outage(dead_redis_url: str) -> None:
    client = async_redis(dead_redis_url, socket_timeout_s=0.2, pool_timeout_s=0.2)
    marks = SentMarks(client, namespace="t")
    try:
        with pytest.raises(DedupeUnavailableError):
            await marks.mark("chat:abc", 0, 17)
        assert marks.sent_here("chat:abc", 2) == [True, False]
        # Fully known here: answered without asking Redis at all.
        assert await marks.sent_parts("chat:abc", 1) == [True]
        with pytest.raises(DedupeUnavailableError):
            await marks.sent_parts("chat:abc", 2)
        assert marks.sent_here("other", 1) == [False]
    finally:
        await client.aclose()


async def test_local_memory_is_bounded(dead_redis_url: str) -> None:
    client = async_redis(dead_redis_url, socket_timeout_s=0.2, pool_timeout_s=0.2)
    marks = SentMarks(client, namespace="t", remember=3)
    try:
        for n in range(5):
            with pytest.raises(DedupeUnavailableError):
                await marks.mark(f"k{n}", 0, n)
        assert [marks.sent_here(f"k{n}", 1)[0] for n in range(5)] == [False, False, True, True, True]
    finally:
        await client.aclose()


def test_pool_size_must_be_positive() -> None:
    with pytest.raises(ValueError, match="max_connections"):
        async_redis("redis://127.0.0.1:1/0", max_connections=0)
