"""Fixtures shared by the integration suites, against the real services of `tgstream dev up`."""

from __future__ import annotations

import random
from collections.abc import AsyncIterator

import pytest
import redis

from tgstream.config import Settings
from tgstream.connectors.postgres import Pool, open_pool


@pytest.fixture
async def pg_pool(settings: Settings) -> AsyncIterator[Pool]:
    """A small pool; an unreachable Postgres fails the test with DatabaseUnavailable."""
    pool = await open_pool(settings.database_url, min_size=1, max_size=4, timeout_s=10)
    try:
        yield pool
    finally:
        await pool.close()


@pytest.fixture
def chat_ids() -> list[int]:
    """Random 12-digit chat ids, so parallel runs and leftovers never collide."""
    return random.sample(range(10**11, 10**12), 8)


@pytest.fixture(scope="session", autouse=True)
def _services_are_up(settings: Settings) -> None:
    """Fail loudly (never skip) when Redis or Kafka are not running."""
    client = redis.Redis.from_url(settings.redis_url, socket_connect_timeout=2)
    try:
        client.ping()
    except redis.RedisError as exc:
        pytest.fail(f"Redis at {settings.redis_url} is unreachable ({exc}); run `tgstream dev up`")
    finally:
        client.close()
    from confluent_kafka.admin import AdminClient

    try:
        AdminClient({"bootstrap.servers": settings.kafka_bootstrap_servers}).list_topics(timeout=10)
    except Exception as exc:
        pytest.fail(
            f"Kafka at {settings.kafka_bootstrap_servers} is unreachable ({exc}); run `tgstream dev up`"
        )
