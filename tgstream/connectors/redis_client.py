"""The asyncio Redis client every tgstream process opens: a bounded pool that makes callers wait.

redis-py 8's default pool holds at most 100 connections and raises ``Too many connections`` at
once for the 101st concurrent command. In the sender, 256 deliveries in flight after a dataflow
restart hit that limit; its sent-mark check failed open and 42-74 of 1,200 replies reached
Telegram twice in the dataflow-SIGKILL fault test. A :class:`BlockingConnectionPool` queues such
callers for up to ``pool_timeout_s`` instead, so a burst costs latency, not correctness. Redis is
single-threaded, so a few dozen connections per process already saturate it.
"""

from __future__ import annotations

from redis.asyncio import BlockingConnectionPool, Redis


def async_redis(
    url: str,
    *,
    max_connections: int = 64,
    socket_timeout_s: float = 2.0,
    pool_timeout_s: float = 5.0,
) -> Redis:
    """A client for ``url``; ``aclose()`` closes its pool too."""
    if max_connections < 1:
        raise ValueError(f"max_connections must be at least 1, not {max_connections}")
    pool = BlockingConnectionPool.from_url(
        url,
        max_connections=max_connections,
        timeout=pool_timeout_s,
        socket_timeout=socket_timeout_s,
        socket_connect_timeout=socket_timeout_s,
    )
    return Redis.from_pool(pool)
