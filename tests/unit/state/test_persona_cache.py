"""CachedPersonas: TTL, LRU bound, write-through assign and degraded reads, with an injected clock."""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Mapping
from typing import Any

import pytest

from tgstream.connectors.postgres import DatabaseError, DatabaseUnavailable
from tgstream.state.persona_cache import CachedPersonas
from tgstream.state.personas import BUILTIN_DEFAULT, Persona, PersonaAssignment, PersonaStore

pytestmark = pytest.mark.anyio

LUNA = Persona(id="1", name="luna", system_prompt="You are Luna.")
REX = Persona(id="2", name="rex", system_prompt="You are Rex.")


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


class TableStore(PersonaStore):
    """An in-memory stand-in for the Postgres tables: it counts calls and can be made to fail."""

    def __init__(self) -> None:
        self.assigned: dict[int, Persona] = {}
        self.calls: list[list[int]] = []
        self.down = False
        self.on_query: asyncio.Event | None = None
        self.release: asyncio.Event | None = None

    async def resolve_many(self, chat_ids: Iterable[int]) -> dict[int, PersonaAssignment]:
        chats = list(chat_ids)
        self.calls.append(chats)
        if self.down:
            raise DatabaseUnavailable("connection refused")
        snapshot = {c: self.assigned.get(c, LUNA) for c in chats}
        if self.on_query is not None and self.release is not None:
            self.on_query.set()
            await self.release.wait()
        return {c: PersonaAssignment(chat_id=c, persona=p) for c, p in snapshot.items()}

    async def assign(
        self, chat_id: int, user_id: int, persona_name: str, customizations: Mapping[str, Any] | None = None
    ) -> PersonaAssignment:
        persona = {"luna": LUNA, "rex": REX}[persona_name]
        self.assigned[chat_id] = persona
        return PersonaAssignment(chat_id=chat_id, persona=persona, assigned_by=user_id)

    async def list_personas(self) -> list[Persona]:
        self.calls.append([])
        return [LUNA, REX]


def cache(store: TableStore, clock: Clock, **kw: Any) -> CachedPersonas:
    return CachedPersonas(store, ttl_s=30.0, clock=clock, **kw)


async def test_misses_are_batched_and_hits_stay_in_memory_until_the_ttl() -> None:
    store, clock = TableStore(), Clock()
    personas = cache(store, clock)

    first = await personas.resolve_many([1, 2, 3, 2])
    assert set(first) == {1, 2, 3}
    assert store.calls == [[1, 2, 3]]

    clock.now += 29.9
    await personas.resolve_many([1, 2, 3])
    assert store.calls == [[1, 2, 3]]  # all hits

    clock.now += 0.1
    await personas.resolve_many([1, 4])
    assert store.calls == [[1, 2, 3], [1, 4]]


async def test_assign_is_visible_at_once_and_peek_never_queries() -> None:
    store, clock = TableStore(), Clock()
    personas = cache(store, clock)
    assert (await personas.resolve(7)).persona == LUNA

    await personas.assign(7, user_id=70, persona_name="rex")
    peeked = personas.peek(7)
    assert peeked is not None
    assert peeked.persona == REX
    assert (await personas.resolve(7)).persona == REX
    assert len(store.calls) == 1
    clock.now += 30
    assert personas.peek(7) is None


async def test_a_lookup_racing_an_assign_does_not_overwrite_it() -> None:
    store, clock = TableStore(), Clock()
    personas = cache(store, clock)
    on_query, release = asyncio.Event(), asyncio.Event()
    store.on_query, store.release = on_query, release

    lookup = asyncio.create_task(personas.resolve(9))
    await asyncio.wait_for(on_query.wait(), timeout=5)  # it read "luna" and is still in flight
    await personas.assign(9, user_id=90, persona_name="rex")
    release.set()

    assert (await asyncio.wait_for(lookup, timeout=5)).persona == REX
    cached = personas.peek(9)
    assert cached is not None
    assert cached.persona == REX


async def test_bounded_by_max_chats_least_recently_used_first() -> None:
    store, clock = TableStore(), Clock()
    personas = cache(store, clock, max_chats=2)
    await personas.resolve_many([1, 2])
    await personas.resolve(1)  # 1 is now the most recent
    await personas.resolve(3)
    assert len(personas) == 2
    assert personas.peek(2) is None
    assert personas.peek(1) is not None


async def test_postgres_down_serves_stale_then_fallback_marked_degraded() -> None:
    store, clock = TableStore(), Clock()
    personas = cache(store, clock)
    await personas.assign(1, user_id=1, persona_name="rex")
    clock.now += 60
    store.down = True

    served = await personas.resolve_many([1, 2])
    assert (served[1].persona, served[1].degraded) == (REX, True)
    assert (served[2].persona, served[2].degraded) == (BUILTIN_DEFAULT, True)

    strict = cache(store, clock, fallback=None)
    with pytest.raises(DatabaseError, match="no fallback"):
        await strict.resolve(5)


async def test_catalogue_is_cached_and_invalidate_clears_everything() -> None:
    store, clock = TableStore(), Clock()
    personas = cache(store, clock)
    assert [p.name for p in await personas.list_personas()] == ["luna", "rex"]
    await personas.list_personas()
    assert store.calls == [[]]
    await personas.resolve(1)
    personas.invalidate()
    assert personas.peek(1) is None
    await personas.list_personas()
    assert store.calls == [[], [1], []]
