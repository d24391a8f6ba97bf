"""MemoryStore against real Postgres + pgvector, with planted embeddings of known similarity."""

from __future__ import annotations

import math
import time
from collections.abc import AsyncIterator

import numpy as np
import pytest

from tgstream.connectors.postgres import Pool, connection
from tgstream.state.memories import MemoryStore, NewMemory, Ranking

pytestmark = [pytest.mark.integration, pytest.mark.anyio]

DIM = 384
DAY = 86400.0
NOW = time.time()


def unit(axis: int) -> np.ndarray:
    v = np.zeros(DIM, dtype=np.float32)
    v[axis] = 1.0
    return v


def similar(relevance: float, axis: int = 0, other: int = 1) -> np.ndarray:
    """A unit vector whose cosine similarity to unit(axis) is exactly ``relevance``."""
    return relevance * unit(axis) + math.sqrt(1 - relevance**2) * unit(other)


@pytest.fixture
async def store(pg_pool: Pool, chat_ids: list[int]) -> AsyncIterator[MemoryStore]:
    yield MemoryStore(pg_pool, ranking=Ranking(half_life_s=7 * DAY))
    async with connection(pg_pool) as conn:
        await conn.execute("DELETE FROM memories WHERE chat_id = ANY(%s)", [chat_ids])


async def test_search_never_returns_another_chats_rows(store: MemoryStore, chat_ids: list[int]) -> None:
    mine, *others = chat_ids[:4]
    await store.add_many([NewMemory(mine, 1, "my cat is called Tom", similar(0.6), created_at=NOW)])
    # other chats hold many closer neighbours, which is what starves a filtered HNSW scan
    await store.add_many(
        [
            NewMemory(chat, 2, f"other {i}", similar(0.99), created_at=NOW)
            for chat in others
            for i in range(30)
        ]
    )
    hits = await store.search(mine, unit(0), k=5, min_score=0.0, now=NOW)
    assert [h.text for h in hits] == ["my cat is called Tom"]
    assert {h.chat_id for h in hits} == {mine}


async def test_ranks_by_relevance_recency_and_importance(store: MemoryStore, chat_ids: list[int]) -> None:
    chat = chat_ids[0]
    planted = {  # text: (relevance, age in days, importance)
        "relevant but old and minor": (0.9, 30.0, 0.1),
        "fairly relevant, fresh, important": (0.7, 0.0, 1.0),
        "relevant, a week old, average": (0.8, 7.0, 0.5),
        "unrelated but fresh and vital": (0.1, 0.0, 1.0),
    }
    await store.add_many(
        [
            NewMemory(chat, 1, text, similar(rel), importance=imp, created_at=NOW - age * DAY)
            for text, (rel, age, imp) in planted.items()
        ]
    )
    min_score = 0.3
    hits = await store.search(chat, unit(0), k=10, min_score=min_score, now=NOW, touch=False)

    expected = {text: store.ranking.score(rel, age * DAY, imp) for text, (rel, age, imp) in planted.items()}
    passing = sorted(
        (t for t, s in expected.items() if s >= min_score), key=expected.__getitem__, reverse=True
    )
    assert [h.text for h in hits] == passing
    assert "unrelated but fresh and vital" not in passing  # recency and importance cannot rescue it
    for hit in hits:
        assert hit.score == pytest.approx(expected[hit.text], abs=1e-4)
        assert hit.relevance == pytest.approx(planted[hit.text][0], abs=1e-4)

    top2 = await store.search(chat, unit(0), k=2, min_score=0.0, now=NOW, touch=False)
    assert [h.text for h in top2] == passing[:2]


async def test_only_the_newest_scan_limit_rows_are_considered(pg_pool: Pool, chat_ids: list[int]) -> None:
    chat = chat_ids[0]
    store = MemoryStore(pg_pool, ranking=Ranking(scan_limit=3))
    try:
        await store.add_many(
            [NewMemory(chat, 1, "oldest, most relevant", similar(0.99), created_at=NOW - 10 * DAY)]
            + [NewMemory(chat, 1, f"newer {i}", similar(0.5), created_at=NOW - i) for i in range(3)]
        )
        hits = await store.search(chat, unit(0), k=5, min_score=0.0, now=NOW, touch=False)
        assert sorted(h.text for h in hits) == ["newer 0", "newer 1", "newer 2"]
    finally:
        await store.forget_chat(chat)


async def test_returned_rows_are_marked_used(store: MemoryStore, pg_pool: Pool, chat_ids: list[int]) -> None:
    chat = chat_ids[0]
    ids = await store.add_many(
        [
            NewMemory(chat, 1, "hit", similar(0.9), created_at=NOW - DAY),
            NewMemory(chat, 1, "miss", similar(0.05), created_at=NOW - DAY),
        ]
    )
    used_at = NOW + 5
    await store.search(chat, unit(0), k=5, min_score=0.3, now=used_at)
    await store.search(chat, unit(0), k=5, min_score=0.3, now=used_at)
    await store.search(chat, unit(0), k=5, min_score=0.3, now=used_at, touch=False)
    async with connection(pg_pool) as conn:
        cur = await conn.execute(
            "SELECT id, use_count, extract(epoch FROM last_used_at) FROM memories"
            " WHERE id = ANY(%s) ORDER BY id",
            [ids],
        )
        rows = await cur.fetchall()
    assert rows[0][:2] == (ids[0], 2)
    assert float(rows[0][2]) == pytest.approx(used_at, abs=1e-3)
    assert rows[1] == (ids[1], 0, None)


async def test_usage_can_be_recorded_later_in_one_batch(
    store: MemoryStore, pg_pool: Pool, chat_ids: list[int]
) -> None:
    chat = chat_ids[0]
    first, second = await store.add_many(
        [NewMemory(chat, 1, "a", unit(0), created_at=NOW), NewMemory(chat, 1, "b", unit(1), created_at=NOW)]
    )
    hits = await store.search(chat, unit(0), k=1, min_score=0.5, now=NOW, touch=False)
    assert [h.id for h in hits] == [first]
    updated = await store.record_usage([(first, NOW + 10), (first, NOW + 5), (second, NOW + 1), (-1, NOW)])
    assert updated == 2
    async with connection(pg_pool) as conn:
        cur = await conn.execute(
            "SELECT use_count, extract(epoch FROM last_used_at)::float8 FROM memories"
            " WHERE id = ANY(%s) ORDER BY id",
            [[first, second]],
        )
        (uses_first, at_first), (uses_second, at_second) = await cur.fetchall()
    assert (uses_first, uses_second) == (2, 1)
    assert at_first == pytest.approx(NOW + 10, abs=1e-3)
    assert at_second == pytest.approx(NOW + 1, abs=1e-3)


async def test_search_many_answers_each_query_from_its_own_chat(
    store: MemoryStore, chat_ids: list[int]
) -> None:
    a, b, empty = chat_ids[:3]
    await store.add_many(
        [
            NewMemory(a, 1, "a-x", similar(0.9, axis=0, other=2), created_at=NOW),
            NewMemory(a, 1, "a-y", similar(0.9, axis=3, other=2), created_at=NOW),
            NewMemory(b, 2, "b-x", similar(0.9, axis=0, other=2), created_at=NOW),
        ]
    )
    results = await store.search_many(
        [(a, unit(0)), (b, unit(0)), (empty, unit(0)), (a, unit(3))], k=1, min_score=0.3, now=NOW
    )
    assert [[h.text for h in hits] for hits in results] == [["a-x"], ["b-x"], [], ["a-y"]]


async def test_forget_chat_and_forget_user_hard_delete(store: MemoryStore, chat_ids: list[int]) -> None:
    a, b = chat_ids[:2]
    user = chat_ids[2]
    await store.add_many(
        [
            NewMemory(a, user, "a by user", unit(0)),
            NewMemory(a, 7, "a by someone else", unit(0)),
            NewMemory(b, user, "b by user", unit(0)),
        ]
    )
    assert await store.forget_user(user) == 2
    assert (await store.count(a), await store.count(b)) == (1, 0)
    assert await store.forget_chat(a) == 1
    assert await store.search(a, unit(0), k=5, min_score=0.0) == []


async def test_soft_deleted_rows_are_never_returned(
    store: MemoryStore, pg_pool: Pool, chat_ids: list[int]
) -> None:
    chat = chat_ids[0]
    (gone, kept) = await store.add_many(
        [NewMemory(chat, 1, "gone", unit(0)), NewMemory(chat, 1, "kept", unit(0))]
    )
    async with connection(pg_pool) as conn:
        await conn.execute("UPDATE memories SET deleted_at = now() WHERE id = %s", [gone])
    assert [h.id for h in await store.search(chat, unit(0), k=5, min_score=0.0)] == [kept]


async def test_bad_rows_are_rejected_before_anything_is_written(
    store: MemoryStore, chat_ids: list[int]
) -> None:
    chat = chat_ids[0]
    with pytest.raises(ValueError, match="shape"):
        await store.add_many([NewMemory(chat, 1, "ok", unit(0)), NewMemory(chat, 1, "short", [1.0, 2.0])])
    with pytest.raises(ValueError, match="importance"):
        await store.add_many([NewMemory(chat, 1, "x", unit(0), importance=1.5)])
    with pytest.raises(ValueError, match="all zeros"):
        await store.add_many([NewMemory(chat, 1, "x", np.zeros(DIM))])
    assert await store.count(chat) == 0
