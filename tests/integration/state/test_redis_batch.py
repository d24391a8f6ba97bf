"""RedisBatch against the real Redis: concurrent callers share round trips, errors stay their own."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator

import pytest
from redis.asyncio import Redis
from redis.exceptions import ResponseError

from tgstream.config import Settings
from tgstream.connectors.redis_batch import BatchedScript, RedisBatch
from tgstream.connectors.redis_client import async_redis

pytestmark = [pytest.mark.integration, pytest.mark.anyio]

_INCR_BY_ARG = "return redis.call('INCRBY', KEYS[1], ARGV[1])"


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
async def client(settings: Settings) -> AsyncIterator[tuple[Redis, str]]:
    redis = async_redis(settings.redis_url)
    namespace = f"test-batch-{uuid.uuid4().hex}"
    try:
        yield redis, namespace
    finally:
        keys = [key async for key in redis.scan_iter(f"{namespace}*", count=1000)]
        if keys:
            await redis.delete(*keys)
        await redis.aclose()


async def test_concurrent_commands_share_round_trips_and_each_gets_its_own_result(
    client: tuple[Redis, str],
) -> None:
    redis, ns = client
    batch = RedisBatch(redis, max_batch=50)

    await asyncio.gather(*(batch.run(lambda p, n=n: p.set(f"{ns}:{n}", n)) for n in range(200)))
    values = await asyncio.gather(*(batch.run(lambda p, n=n: p.get(f"{ns}:{n}")) for n in range(200)))

    assert values == [str(n).encode() for n in range(200)]
    assert batch.commands == 400
    assert batch.round_trips <= 10, f"{batch.round_trips} round trips for 400 concurrent commands"


async def test_a_lone_command_is_sent_at_once(client: tuple[Redis, str]) -> None:
    redis, ns = client
    batch = RedisBatch(redis)
    assert await batch.run(lambda p: p.set(f"{ns}:one", "1")) is True
    assert await batch.run(lambda p: p.get(f"{ns}:one")) == b"1"
    assert batch.round_trips == 2


async def test_a_failing_command_fails_only_its_caller(client: tuple[Redis, str]) -> None:
    redis, ns = client
    batch = RedisBatch(redis)
    await redis.set(f"{ns}:text", "not a number")

    results = await asyncio.gather(
        batch.run(lambda p: p.incr(f"{ns}:text")),
        batch.run(lambda p: p.incr(f"{ns}:counter")),
        return_exceptions=True,
    )

    assert isinstance(results[0], ResponseError)
    assert results[1] == 1
    assert batch.round_trips == 1


async def test_a_script_redis_forgot_is_run_again_with_its_source(client: tuple[Redis, str]) -> None:
    redis, ns = client
    script = BatchedScript(RedisBatch(redis), _INCR_BY_ARG)
    await redis.script_flush()

    assert await script([f"{ns}:n"], [5]) == 5
    assert await redis.script_exists(script.sha) == [True]
    assert await asyncio.gather(*(script([f"{ns}:n"], [1]) for _ in range(10))) == list(range(6, 16))


async def test_a_broken_connection_fails_every_command_of_the_pipeline(settings: Settings) -> None:
    redis = async_redis("redis://127.0.0.1:1/0", socket_timeout_s=0.2, pool_timeout_s=0.2)
    batch = RedisBatch(redis)
    try:
        results = await asyncio.gather(
            batch.run(lambda p: p.get("a")), batch.run(lambda p: p.get("b")), return_exceptions=True
        )
    finally:
        await redis.aclose()
    assert all(isinstance(result, Exception) for result in results), results


async def test_a_posted_command_is_seen_by_every_command_queued_after_it(settings: Settings) -> None:
    """The gateway answers Telegram before its ``done`` mark is written; the next claim must still see it."""
    from tgstream.state.dedupe import Claim, UpdateDedupe

    redis = async_redis(settings.redis_url)
    dedupe = UpdateDedupe(redis, namespace=f"test-batch-{uuid.uuid4().hex}", ttl_s=60, claim_ttl_s=5)
    try:
        for update_id in range(50):
            assert await dedupe.claim(update_id) is Claim.NEW
            dedupe.commit_soon(update_id)  # not awaited, as in the gateway
            assert await dedupe.claim(update_id) is Claim.DUPLICATE
    finally:
        await redis.delete(*[dedupe.key(i) for i in range(50)])
        await redis.aclose()
