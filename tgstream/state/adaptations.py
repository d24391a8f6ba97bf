"""Adapted traits per chat in Redis: ``persona_adaptation:{chat_id}``, JSON, with a TTL.

Written by the adaptation job (``tgstream adapt run``), read by the dataflow when it builds a
prompt. A TTL (30 minutes by default, as in the seed's ``adapt_personality``) because an
adaptation describes the *current* conversation: when a chat goes quiet it lapses, and the
next conversation starts from the persona's base traits until the job has seen enough of it.

The value records which conversation state it was derived from (``source_activity``, the
mirror's ``last_activity``), so the job skips chats that have not spoken since.

Redis down: every method raises :class:`AdaptationsUnavailable`; the dataflow then builds the
prompt without adapted traits, which is the base persona: a degradation, never a failure.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import orjson
import redis.asyncio as aioredis
from redis.exceptions import RedisError

from tgstream.steps.adaptation import AdaptedTraits

KEY_PREFIX = "persona_adaptation:"
DEFAULT_TTL_S = 1800


class AdaptationsUnavailable(Exception):
    """Redis refused or timed out."""


@dataclass(frozen=True, slots=True)
class StoredAdaptation:
    chat_id: int
    traits: AdaptedTraits
    adapted_at: float
    source_activity: float
    persona: str | None = None

    def to_bytes(self) -> bytes:
        return orjson.dumps(
            {
                "chat_id": self.chat_id,
                "traits": self.traits.to_json(),
                "adapted_at": self.adapted_at,
                "source_activity": self.source_activity,
                "persona": self.persona,
            }
        )

    @classmethod
    def from_bytes(cls, raw: bytes | str) -> StoredAdaptation | None:
        """None for a value that is not ours or no longer parses (it then simply lapses)."""
        try:
            data: Any = orjson.loads(raw)
            traits = AdaptedTraits.from_json(data["traits"])
            if traits is None:
                return None
            return cls(
                chat_id=int(data["chat_id"]),
                traits=traits,
                adapted_at=float(data["adapted_at"]),
                source_activity=float(data["source_activity"]),
                persona=data.get("persona"),
            )
        except (orjson.JSONDecodeError, KeyError, TypeError, ValueError):
            return None


class AdaptationStore:
    """Pipelined writes, one MGET for reads; ``prefix`` namespaces keys (tests use a unique one)."""

    def __init__(self, client: aioredis.Redis, *, ttl_s: int = DEFAULT_TTL_S, prefix: str = "") -> None:
        if ttl_s < 1:
            raise ValueError(f"ttl_s must be at least 1 second, got {ttl_s}")
        self._client = client
        self.ttl_s = ttl_s
        self._prefix = prefix

    def key(self, chat_id: int) -> str:
        return f"{self._prefix}{KEY_PREFIX}{chat_id}"

    async def put_many(self, adaptations: Sequence[StoredAdaptation]) -> None:
        if not adaptations:
            return
        pipe: Any = self._client.pipeline(transaction=False)
        for item in adaptations:
            pipe.set(self.key(item.chat_id), item.to_bytes(), ex=self.ttl_s)
        try:
            await pipe.execute()
        except (RedisError, OSError) as exc:
            raise AdaptationsUnavailable(f"redis write failed: {exc}") from exc

    async def get_many(self, chat_ids: Iterable[int]) -> dict[int, StoredAdaptation]:
        """The live adaptations of these chats; chats without one are absent from the result."""
        wanted = list(dict.fromkeys(chat_ids))
        if not wanted:
            return {}
        try:
            values: list[bytes | str | None] = await self._client.mget([self.key(c) for c in wanted])
        except (RedisError, OSError) as exc:
            raise AdaptationsUnavailable(f"redis read failed: {exc}") from exc
        found = {}
        for chat_id, raw in zip(wanted, values, strict=True):
            item = StoredAdaptation.from_bytes(raw) if raw is not None else None
            if item is not None:
                found[chat_id] = item
        return found

    async def customizations_many(self, chat_ids: Iterable[int]) -> dict[int, dict[str, Any]]:
        """The adapted layer for the prompt builder, per chat (see ``schemas.customizations.layered``)."""
        return {
            chat_id: item.traits.as_customizations()
            for chat_id, item in (await self.get_many(chat_ids)).items()
        }

    async def ttl(self, chat_id: int) -> int:
        """Seconds left (-2: no adaptation, -1: no TTL, which never happens for ours)."""
        try:
            return int(await self._client.ttl(self.key(chat_id)))
        except (RedisError, OSError) as exc:
            raise AdaptationsUnavailable(f"redis read failed: {exc}") from exc

    async def clear(self, chat_id: int) -> None:
        """Forget a chat's adaptation (``/reset`` and ``/forget``)."""
        try:
            await self._client.delete(self.key(chat_id))
        except (RedisError, OSError) as exc:
            raise AdaptationsUnavailable(f"redis write failed: {exc}") from exc
