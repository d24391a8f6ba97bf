"""A per-process TTL cache in front of :class:`~tgstream.state.personas.PersonaStore`.

Why in-process and not Redis as the first tier:

- The dataflow is keyed by ``chat_id``, so ``/persona`` for a chat runs on the very worker
  that enriches that chat. Invalidating this process's entry on :meth:`CachedPersonas.assign`
  therefore gives the user read-your-writes with no shared cache at all.
- A hit costs a dict lookup (about a microsecond); a Redis hit costs a network round trip,
  the same order as the indexed Postgres query it would save. Redis would add a second
  copy to keep coherent and a second service whose outage must be handled.
- Personas are few and change rarely; an edit made elsewhere (an admin updating a prompt)
  reaches every process within ``ttl_s``, which is the staleness we accept.

When Postgres fails, an expired entry is served as ``degraded`` (a persona a minute old is
better than none), and a chat never seen gets the built-in fallback persona, also marked
``degraded``; both are counted. The cache is bounded (LRU past ``max_chats``), and the
clock is injected so tests move time instead of sleeping.

Attention: one instance per event loop; methods are coroutines meant for the dataflow's
background loop. :meth:`CachedPersonas.peek` is the only synchronous call (a cache read for
Bytewax operator code).
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, replace
from typing import Any

from prometheus_client import Counter

from tgstream.connectors.postgres import DatabaseError
from tgstream.state.personas import BUILTIN_DEFAULT, Persona, PersonaAssignment, PersonaStore

LOOKUPS = Counter("tgstream_persona_cache_lookups_total", "Persona lookups by cache outcome", ["outcome"])


@dataclass(slots=True)
class _Entry:
    value: PersonaAssignment
    expires_at: float
    written: int


class CachedPersonas:
    """Read-through persona cache; see the module docstring for the why."""

    def __init__(
        self,
        store: PersonaStore,
        *,
        ttl_s: float = 30.0,
        max_chats: int = 20_000,
        clock: Callable[[], float] = time.monotonic,
        fallback: Persona | None = BUILTIN_DEFAULT,
    ) -> None:
        if ttl_s <= 0 or max_chats < 1:
            msg = f"ttl_s must be > 0 and max_chats >= 1, got {ttl_s} and {max_chats}"
            raise ValueError(msg)
        self._store = store
        self._ttl_s = ttl_s
        self._max = max_chats
        self._clock = clock
        self._fallback = fallback
        self._chats: OrderedDict[int, _Entry] = OrderedDict()
        self._writes = 0
        self._catalogue: tuple[float, list[Persona]] | None = None

    def __len__(self) -> int:
        return len(self._chats)

    def peek(self, chat_id: int) -> PersonaAssignment | None:
        """The cached, unexpired assignment, or None; never touches Postgres."""
        entry = self._chats.get(chat_id)
        if entry is None or entry.expires_at <= self._clock():
            return None
        return entry.value

    async def resolve(self, chat_id: int) -> PersonaAssignment:
        return (await self.resolve_many([chat_id]))[chat_id]

    async def resolve_many(self, chat_ids: Iterable[int]) -> dict[int, PersonaAssignment]:
        """Hits from memory, every miss in one store round trip; degraded values if Postgres fails.

        Raises :class:`~tgstream.state.personas.PersonaNotFound` if the default persona is
        missing (a deployment error, not an outage), and ``DatabaseError`` only when Postgres
        fails and there is neither a stale entry nor a fallback persona.
        """
        now = self._clock()
        found: dict[int, PersonaAssignment] = {}
        misses = []
        for chat_id in dict.fromkeys(chat_ids):
            entry = self._chats.get(chat_id)
            if entry is not None and entry.expires_at > now:
                self._chats.move_to_end(chat_id)
                found[chat_id] = entry.value
            else:
                misses.append(chat_id)
        LOOKUPS.labels("hit").inc(len(found))
        if not misses:
            return found
        LOOKUPS.labels("miss").inc(len(misses))
        started = self._writes
        try:
            fresh = await self._store.resolve_many(misses)
        except DatabaseError as exc:
            found.update(self._degraded(misses, exc))
            return found
        now = self._clock()
        for chat_id, value in fresh.items():
            current = self._chats.get(chat_id)
            if current is not None and current.written > started:
                found[chat_id] = current.value  # an assign() landed while we were querying
            else:
                self._put(chat_id, value, now)
                found[chat_id] = value
        return found

    async def assign(
        self,
        chat_id: int,
        user_id: int,
        persona_name: str,
        customizations: Mapping[str, Any] | None = None,
    ) -> PersonaAssignment:
        """Write through to Postgres and cache the result, so the next turn uses it at once."""
        value = await self._store.assign(chat_id, user_id, persona_name, customizations)
        self._put(chat_id, value, self._clock())
        return value

    async def list_personas(self) -> list[Persona]:
        """The catalogue for ``/persona``, cached for ``ttl_s`` like everything else."""
        now = self._clock()
        if self._catalogue is not None and self._catalogue[0] > now:
            return list(self._catalogue[1])
        personas = await self._store.list_personas()
        self._catalogue = (now + self._ttl_s, personas)
        return list(personas)

    def invalidate(self, chat_id: int | None = None) -> None:
        """Forget one chat, or everything (chats and the catalogue) when ``chat_id`` is None."""
        self._writes += 1
        if chat_id is None:
            self._chats.clear()
            self._catalogue = None
        else:
            self._chats.pop(chat_id, None)

    def _put(self, chat_id: int, value: PersonaAssignment, now: float) -> None:
        self._writes += 1
        self._chats[chat_id] = _Entry(value, now + self._ttl_s, self._writes)
        self._chats.move_to_end(chat_id)
        while len(self._chats) > self._max:
            self._chats.popitem(last=False)

    def _degraded(self, chat_ids: list[int], cause: DatabaseError) -> dict[int, PersonaAssignment]:
        served = {}
        for chat_id in chat_ids:
            entry = self._chats.get(chat_id)
            if entry is not None:
                served[chat_id] = replace(entry.value, degraded=True)
                LOOKUPS.labels("stale").inc()
            elif self._fallback is not None:
                served[chat_id] = PersonaAssignment(chat_id=chat_id, persona=self._fallback, degraded=True)
                LOOKUPS.labels("fallback").inc()
            else:
                msg = f"persona of chat {chat_id} unavailable and no fallback configured: {cause}"
                raise DatabaseError(msg) from cause
        return served
