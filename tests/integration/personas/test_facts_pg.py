"""FactStore against the real Postgres: upsert on contradiction, refresh on repetition, per-chat reads."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from tgstream.connectors.postgres import Pool, connection
from tgstream.state.facts import FactStore, NewFact
from tgstream.steps.facts import extract_facts

pytestmark = [pytest.mark.integration, pytest.mark.anyio]


@pytest.fixture
async def store(pool: Pool, chat_ids: list[int]) -> AsyncIterator[FactStore]:
    yield FactStore(pool)
    async with connection(pool) as conn:
        await conn.execute("DELETE FROM facts WHERE chat_id = ANY(%s)", [chat_ids])


def said(chat_id: int, text: str, user_id: int | None = None) -> list[NewFact]:
    return [NewFact(chat_id, user_id or chat_id, fact) for fact in extract_facts(text)]


async def test_a_contradicting_fact_replaces_the_older_one_and_keeps_it_as_previous(
    store: FactStore, chat_ids: list[int]
) -> None:
    chat = chat_ids[0]
    await store.upsert_many(said(chat, "I live in Lyon. I love sushi."))
    await store.upsert_many(said(chat, "I just moved to Berlin! Also I hate sushi now."))

    stored = {f.slot: f for f in await store.list_chat(chat)}

    assert set(stored) == {"location", "likes:sushi"}
    assert stored["location"].text == "User lives in Berlin."
    assert stored["location"].previous_text == "User lives in Lyon."
    assert stored["location"].revisions == 2
    assert stored["likes:sushi"].value == "dislikes"


async def test_repeating_a_fact_refreshes_without_a_revision(store: FactStore, chat_ids: list[int]) -> None:
    chat = chat_ids[0]
    await store.upsert_many(said(chat, "I'm a nurse"))
    await store.upsert_many(said(chat, "I work as a nurse"))

    (fact,) = await store.list_chat(chat)

    assert (fact.revisions, fact.previous_text) == (1, None)
    assert fact.confidence == pytest.approx(max(f.confidence for f in extract_facts("I work as a nurse") +
                                                extract_facts("I'm a nurse")))  # fmt: skip


async def test_duplicates_in_one_batch_keep_the_last(store: FactStore, chat_ids: list[int]) -> None:
    chat = chat_ids[0]
    written = await store.upsert_many(said(chat, "I live in Lyon") + said(chat, "I live in Porto"))

    (fact,) = await store.list_chat(chat)

    assert written == 1
    assert fact.text == "User lives in Porto."


async def test_users_in_a_group_keep_their_own_facts(store: FactStore, chat_ids: list[int]) -> None:
    group = -chat_ids[0]
    await store.upsert_many(
        said(group, "My name is Ana", user_id=1) + said(group, "My name is Bo", user_id=2)
    )

    names = sorted(f.value for f in await store.list_chat(group))

    assert names == ["Ana", "Bo"]
    await store.forget_chat(group)


async def test_for_chats_returns_newest_first_per_chat_and_forget_deletes(
    store: FactStore, chat_ids: list[int]
) -> None:
    first, second, empty = chat_ids[:3]
    await store.upsert_many(said(first, "I live in Lyon"))
    await store.upsert_many(said(first, "I'm vegan"))
    await store.upsert_many(said(second, "My dog Rex is 2"))

    found = await store.for_chats([first, second, empty], limit=5)
    limited = await store.for_chats([first], limit=1)

    assert found == {
        first: ["User is vegan.", "User lives in Lyon."],
        second: ["User's dog is called Rex."],
        empty: [],
    }
    assert limited == {first: ["User is vegan."]}
    assert await store.forget_chat(first) == 2
    assert (await store.for_chats([first]))[first] == []
