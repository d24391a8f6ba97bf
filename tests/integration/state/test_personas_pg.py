"""PersonaStore against real Postgres: fallback to default, assignment, customizations, batching."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import pytest
from psycopg.types.json import Jsonb

from tgstream.connectors.postgres import Pool, connection
from tgstream.state.persona_cache import CachedPersonas
from tgstream.state.personas import DEFAULT_PERSONA, PersonaNotFound, PersonaStore

pytestmark = [pytest.mark.integration, pytest.mark.anyio]


@pytest.fixture
async def persona_names(pg_pool: Pool, chat_ids: list[int]) -> AsyncIterator[list[str]]:
    """Two personas with unique names; they and the test chats' assignments are removed after."""
    names = [f"test-{uuid.uuid4().hex[:8]}-{i}" for i in range(2)]
    async with connection(pg_pool) as conn:
        for i, name in enumerate(names):
            await conn.execute(
                "INSERT INTO personalities (name, system_prompt, personality_traits, conversation_style)"
                " VALUES (%s, %s, %s, %s)",
                [name, f"You are persona {i}.", Jsonb({"humor": i / 2}), Jsonb({"length": "short"})],
            )
    yield names
    async with connection(pg_pool) as conn:
        await conn.execute("DELETE FROM user_personalities WHERE chat_id = ANY(%s)", [chat_ids])
        await conn.execute("DELETE FROM personalities WHERE name = ANY(%s)", [names])


async def test_unassigned_chats_get_the_seeded_default(pg_pool: Pool, chat_ids: list[int]) -> None:
    store = PersonaStore(pg_pool)
    resolved = await store.resolve_many(chat_ids[:3])
    assert set(resolved) == set(chat_ids[:3])
    for chat_id, assignment in resolved.items():
        assert assignment.chat_id == chat_id
        assert assignment.persona.name == DEFAULT_PERSONA
        assert assignment.assigned_by is None
        assert dict(assignment.customizations) == {}
    assert len({id(a.persona) for a in resolved.values()}) == 1  # one Persona object per row


async def test_assignment_and_customizations_resolve_per_chat(
    pg_pool: Pool, chat_ids: list[int], persona_names: list[str]
) -> None:
    store = PersonaStore(pg_pool)
    first, second = persona_names
    chat_a, chat_b, chat_c = chat_ids[:3]

    await store.assign(chat_a, chat_a, first, {"nickname": "Sunny"})
    await store.assign(chat_b, 42, second.upper())  # names match case-insensitively
    resolved = await store.resolve_many([chat_a, chat_b, chat_c])

    assert resolved[chat_a].persona.name == first
    assert resolved[chat_a].persona.traits == {"humor": 0.0}
    assert dict(resolved[chat_a].customizations) == {"nickname": "Sunny"}
    assert resolved[chat_a].assigned_by == chat_a
    assert (resolved[chat_b].persona.name, resolved[chat_b].assigned_by) == (second, 42)
    assert resolved[chat_c].persona.name == DEFAULT_PERSONA

    # switching keeps the customizations unless new ones are given
    switched = await store.assign(chat_a, chat_a, second)
    assert (switched.persona.name, dict(switched.customizations)) == (second, {"nickname": "Sunny"})
    # in a group the latest assignment by anyone wins
    await store.assign(chat_b, 43, first, {})
    assert (await store.resolve(chat_b)).persona.name == first


async def test_lookups_by_name_id_and_catalogue(pg_pool: Pool, persona_names: list[str]) -> None:
    store = PersonaStore(pg_pool)
    persona = await store.get_by_name(persona_names[0])
    assert (await store.get_by_id(persona.id)) == persona
    names = [p.name for p in await store.list_personas()]
    assert set(persona_names) <= set(names)
    assert DEFAULT_PERSONA in names
    assert names == sorted(names)
    with pytest.raises(PersonaNotFound):
        await store.get_by_name("no-such-persona-" + uuid.uuid4().hex)
    with pytest.raises(PersonaNotFound):
        await store.assign(1, 1, "no-such-persona-" + uuid.uuid4().hex)


async def test_cache_reads_through_and_assign_is_visible_at_once(
    pg_pool: Pool, chat_ids: list[int], persona_names: list[str]
) -> None:
    cache = CachedPersonas(PersonaStore(pg_pool), ttl_s=60)
    chat = chat_ids[0]
    assert (await cache.resolve(chat)).persona.name == DEFAULT_PERSONA
    await cache.assign(chat, chat, persona_names[1])
    assert (await cache.resolve(chat)).persona.name == persona_names[1]
