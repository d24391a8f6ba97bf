"""Redis markers that make the edges idempotent: inbound update ids and outbound reply parts.

Inbound (gateway, poller): a duplicate update may only be dropped if its first copy is durably in
Kafka. So the marker has two phases:

1. ``claim``: ``SET upd:<bot>:<id> pending NX PX <claim_ttl>`` before producing. It fails when the
   id is ``done`` (a duplicate: answer 200) or ``pending`` (a copy is being written right now:
   answer 503 and let Telegram retry, by which time it is ``done`` or the claim has expired).
2. ``commit`` after the broker's ack: ``SET ... done EX <dedupe_ttl>`` (over 24 h, as Telegram
   keeps re-sending for that long); or ``release`` when the produce failed, so a retry may proceed.

A crash between the ack and ``commit`` leaves only the short-lived claim: Telegram's retry
produces the update a second time. That is at-least-once, and downstream the reply's idempotency
key (chat id plus update ids) keeps the user from seeing two answers.

Outbound (sender): ``sent:<idempotency_key>[#part]`` is set after Telegram accepted that part,
and remembered in the process too (see :class:`SentMarks`).
"""

from __future__ import annotations

import asyncio
import enum
from typing import Any

from cachetools import LRUCache
from redis.asyncio import Redis
from redis.exceptions import RedisError

from tgstream.connectors.redis_batch import BatchedScript, RedisBatch

SENT_TTL_S = 26 * 3600
"""Longer than ``telegram_responses``' 24 h retention (connectors/kafka_admin.py): the sender cannot
read a reply again once the topic has dropped it, so an older mark guards nothing. It was 48 h;
at 2,000 msg/s the difference is about 19 GB of Redis (docs/operations.md)."""


class DedupeUnavailableError(Exception):
    """Redis could not be asked; callers decide whether to fail open."""


class Claim(enum.Enum):
    NEW = "new"
    DUPLICATE = "duplicate"
    IN_FLIGHT = "in_flight"


_CLAIM = """
local ok = redis.call('SET', KEYS[1], 'pending', 'NX', 'PX', ARGV[1])
if ok then return 'new' end
return redis.call('GET', KEYS[1]) or 'new'
"""


class UpdateDedupe:
    """Two-phase update-id markers; ``namespace`` isolates bots (and parallel tests).

    Concurrent requests' claims and commits share pipelines (:class:`RedisBatch`).
    """

    def __init__(
        self,
        redis: Redis,
        *,
        namespace: str,
        ttl_s: int,
        claim_ttl_s: float,
        batch: RedisBatch | None = None,
    ) -> None:
        self._batch = batch or RedisBatch(redis)
        self._prefix = f"{namespace}:upd:"
        self._ttl_s = ttl_s
        self._claim_ms = max(int(claim_ttl_s * 1000), 1)
        self._claim = BatchedScript(self._batch, _CLAIM)

    def key(self, update_id: int) -> str:
        return f"{self._prefix}{update_id}"

    async def claim(self, update_id: int) -> Claim:
        try:
            state = await self._claim([self.key(update_id)], [self._claim_ms])
        except RedisError as exc:
            raise DedupeUnavailableError(str(exc)) from exc
        state = state.decode() if isinstance(state, bytes) else state
        if state == "new":
            return Claim.NEW
        return Claim.DUPLICATE if state == "done" else Claim.IN_FLIGHT

    async def commit(self, update_id: int) -> None:
        try:
            await self.commit_soon(update_id)
        except RedisError as exc:
            raise DedupeUnavailableError(str(exc)) from exc

    def commit_soon(self, update_id: int) -> asyncio.Future[Any]:
        """Queue the ``done`` mark without waiting for it (its future raises RedisError on failure).

        Marks run in queue order, so a claim queued after this one sees ``done``. A crash before
        the mark reaches Redis leaves the short claim: a retry then produces the update again,
        which is the same at-least-once as a crash between the ack and :meth:`commit`.
        """
        key = self.key(update_id)
        return self._batch.post(lambda pipe: pipe.set(key, "done", ex=self._ttl_s))

    async def release(self, update_id: int) -> None:
        key = self.key(update_id)
        try:
            await self._batch.run(lambda pipe: pipe.delete(key))
        except RedisError as exc:
            raise DedupeUnavailableError(str(exc)) from exc


class SentMarks:
    """Which parts of which replies Telegram has accepted.

    Redis holds the marks for every replica. A bounded local memory of this process's own recent
    marks answers first and stands in when Redis cannot be asked: the replay of a record this
    process delivered (the dataflow re-emits its last replies after a restart; a rebalance hands a
    partition back to the same member) is then caught without Redis. Across replicas only Redis
    knows, so with Redis down a replica may still resend what another one delivered.
    """

    def __init__(
        self,
        redis: Redis,
        *,
        namespace: str,
        ttl_s: int = SENT_TTL_S,
        remember: int = 100_000,
        batch: RedisBatch | None = None,
    ) -> None:
        self._batch = batch or RedisBatch(redis)
        self._prefix = f"{namespace}:sent:"
        self._ttl_s = ttl_s
        self._recent: LRUCache[str, bool] = LRUCache(maxsize=max(remember, 1))

    def key(self, idempotency_key: str, part: int) -> str:
        suffix = f"#{part}" if part else ""
        return f"{self._prefix}{idempotency_key}{suffix}"

    def sent_here(self, idempotency_key: str, parts: int) -> list[bool]:
        """What this process itself marked recently; no I/O."""
        return [self.key(idempotency_key, i) in self._recent for i in range(parts)]

    async def sent_parts(self, idempotency_key: str, parts: int) -> list[bool]:
        """Raises :class:`DedupeUnavailableError` when Redis had to be asked and could not answer."""
        here = self.sent_here(idempotency_key, parts)
        if all(here):
            return here
        keys = [self.key(idempotency_key, i) for i in range(parts)]
        try:
            found = await self._batch.run(lambda pipe: pipe.mget(keys))
        except RedisError as exc:
            raise DedupeUnavailableError(str(exc)) from exc
        return [mine or value is not None for mine, value in zip(here, found, strict=True)]

    async def mark(self, idempotency_key: str, part: int, message_id: int | None) -> None:
        """Remembered locally at once, then in Redis (which may raise DedupeUnavailableError)."""
        key = self.key(idempotency_key, part)
        self._recent[key] = True
        try:
            await self._batch.run(lambda pipe: pipe.set(key, str(message_id or 0), nx=True, ex=self._ttl_s))
        except RedisError as exc:
            raise DedupeUnavailableError(str(exc)) from exc
