"""A read-only copy, in Redis, of each chat's context window, for other processes and operators.

The dataflow's keyed state owns the conversation (it is what Bytewax recovers); this mirror
only publishes it: ``conversation:{chat_id}`` is a HASH with ``last_activity``,
``personality_id``, ``turns`` (exchanges so far), ``context_window`` (JSON) and
``updated_at``, expiring ``ttl_s`` after the last write, and ``active_conversations`` is a
ZSET of chat ids scored by last activity. A whole batch of chats is written in one pipelined
round trip.

Redis down: every method raises :class:`MirrorUnavailable` (never a redis-py exception), which
the caller counts and moves on from. Nothing is lost that matters: the next write of a chat
replaces its whole hash, so the mirror heals itself once Redis is back. Because the pipeline
is not a transaction, a failure midway can leave some chats of a batch updated and others
not; each chat's hash is still written with a single HSET, so no hash is ever half-written.
Give the client short timeouts and few retries (the mirror is best-effort): with redis-py's
default retry policy a refused connection takes seconds to surface.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson
import redis.asyncio as aioredis
from redis.exceptions import RedisError

ACTIVE_KEY = "active_conversations"
USER_CHATS_PREFIX = "user_chats:"
"""``user_chats:{user_id}``: a SET of the chats whose mirrored window holds that user's turns,
expiring with the mirror; ``tgstream forget --user`` reads it to find group chats that have no
Postgres rows of the user."""


class MirrorUnavailable(Exception):
    """Redis refused or timed out; the dataflow keeps going and counts it."""


@dataclass(frozen=True, slots=True)
class ConversationSnapshot:
    """What is mirrored for one chat.

    ``context_window`` holds anything orjson can encode (dicts, dataclasses such as the
    dataflow's turns); ``extra`` adds flat fields to the hash.
    """

    chat_id: int
    context_window: Sequence[Any]
    last_activity: float
    turns: int = 0
    personality_id: str | None = None
    extra: dict[str, str | int | float] = field(default_factory=dict)
    members: tuple[int, ...] = ()
    """Users whose turns are in ``context_window``; indexed under ``user_chats:{user_id}``."""


class ConversationMirror:
    """Writes and reads the mirror; ``prefix`` namespaces every key (tests use a unique one)."""

    def __init__(self, client: aioredis.Redis, *, ttl_s: int, prefix: str = "") -> None:
        if ttl_s < 1:
            msg = f"ttl_s must be at least 1 second, got {ttl_s}"
            raise ValueError(msg)
        self._client = client
        self._ttl_s = ttl_s
        self._prefix = prefix
        self.active_key = f"{prefix}{ACTIVE_KEY}"

    def key(self, chat_id: int) -> str:
        return f"{self._prefix}conversation:{chat_id}"

    async def write_many(
        self, snapshots: Sequence[ConversationSnapshot], *, now: float | None = None
    ) -> None:
        """Mirror a batch of chats in one round trip (the last snapshot of a chat wins)."""
        if not snapshots:
            return
        updated_at = time.time() if now is None else now
        pipe: Any = self._client.pipeline(transaction=False)
        for snap in {s.chat_id: s for s in snapshots}.values():
            fields: dict[str, str | int | float] = {
                "chat_id": snap.chat_id,
                "last_activity": snap.last_activity,
                "turns": snap.turns,
                "personality_id": snap.personality_id or "",
                "context_window": orjson.dumps(list(snap.context_window)).decode(),
                "updated_at": updated_at,
                **snap.extra,
            }
            key = self.key(snap.chat_id)
            pipe.hset(key, mapping=fields)
            pipe.expire(key, self._ttl_s)
            pipe.zadd(self.active_key, {str(snap.chat_id): snap.last_activity})
            for user_id in snap.members:
                pipe.sadd(self.user_chats_key(user_id), str(snap.chat_id))
                pipe.expire(self.user_chats_key(user_id), self._ttl_s)
        await self._run(pipe)

    def user_chats_key(self, user_id: int) -> str:
        return f"{self._prefix}{USER_CHATS_PREFIX}{user_id}"

    async def read(self, chat_id: int) -> dict[str, Any] | None:
        """The mirrored hash with ``context_window`` decoded, or None if absent or expired."""
        try:
            raw: dict[bytes | str, bytes | str] = await self._client.hgetall(self.key(chat_id))
        except (RedisError, OSError) as exc:
            raise MirrorUnavailable(f"redis read failed: {exc}") from exc
        if not raw:
            return None
        fields = {_text(k): _text(v) for k, v in raw.items()}
        decoded: dict[str, Any] = dict(fields)
        decoded["context_window"] = orjson.loads(fields.get("context_window", "[]"))
        for name in ("chat_id", "turns"):
            if name in fields:
                decoded[name] = int(fields[name])
        for name in ("last_activity", "updated_at"):
            if name in fields:
                decoded[name] = float(fields[name])
        return decoded

    async def active(self, *, since: float) -> list[int]:
        """Chats active at or after ``since`` (Unix seconds), most recent first."""
        try:
            members = await self._client.zrevrangebyscore(self.active_key, "+inf", since)
        except (RedisError, OSError) as exc:
            raise MirrorUnavailable(f"redis read failed: {exc}") from exc
        return [int(_text(m)) for m in members if isinstance(m, bytes | str)]

    async def prune_active(self, *, older_than: float) -> int:
        """Drop chats idle since before ``older_than`` from the ZSET; returns how many."""
        try:
            removed: int = await self._client.zremrangebyscore(self.active_key, "-inf", f"({older_than}")
        except (RedisError, OSError) as exc:
            raise MirrorUnavailable(f"redis prune failed: {exc}") from exc
        return removed

    async def clear(self, chat_id: int) -> None:
        """Forget one chat (``/reset``): its hash and its place in the ZSET."""
        pipe: Any = self._client.pipeline(transaction=False)
        pipe.delete(self.key(chat_id))
        pipe.zrem(self.active_key, str(chat_id))
        await self._run(pipe)

    async def _run(self, pipe: Any) -> None:
        try:
            await pipe.execute()
        except (RedisError, OSError) as exc:
            raise MirrorUnavailable(f"redis mirror write failed: {exc}") from exc


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value
