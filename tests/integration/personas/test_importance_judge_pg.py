"""The importance judge against the real Postgres (an isolated schema), the stub and a scripted model."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable

import numpy as np
import pytest

from tgstream.config import Settings
from tgstream.connectors.llm import LlmClient
from tgstream.connectors.postgres import Pool, connection, open_pool
from tgstream.jobs.importance import ImportanceJudge
from tgstream.state.memories import MemoryStore, NewMemory
from tgstream.state.memory_admin import MemoryAdmin
from tgstream.steps.importance_judge import blend

pytestmark = [pytest.mark.integration, pytest.mark.anyio]

TEXTS = ["my grandpa passed away today", "lol", "I started a new job at the bakery"]


@pytest.fixture
async def scratch_pool(settings: Settings, pool: Pool) -> AsyncIterator[Pool]:
    """A pool whose ``memories`` is an empty copy of the live table, so no other test's rows leak in."""
    schema = f"test_judge_{uuid.uuid4().hex[:10]}"
    async with connection(pool) as conn:
        await conn.execute(f"CREATE SCHEMA {schema}")
        await conn.execute(f"CREATE TABLE {schema}.memories (LIKE public.memories INCLUDING DEFAULTS)")
    scratch = await open_pool(settings.database_url, max_size=2, search_path=f"{schema},public")
    try:
        yield scratch
    finally:
        await scratch.close()
        async with connection(pool) as conn:
            await conn.execute(f"DROP SCHEMA {schema} CASCADE")


async def seed(pool: Pool, chat_id: int) -> list[int]:
    rng = np.random.default_rng(1)
    vectors = rng.standard_normal((len(TEXTS), 384)).astype(np.float32)
    rows = [NewMemory(chat_id, chat_id, text, vectors[i], importance=0.2) for i, text in enumerate(TEXTS)]
    return await MemoryStore(pool).add_many(rows)


async def importance_by_id(pool: Pool) -> dict[int, tuple[float, bool]]:
    async with connection(pool) as conn:
        cur = await conn.execute("SELECT id, importance::float8, judged_at IS NOT NULL FROM memories")
        return {int(i): (float(imp), bool(judged)) for i, imp, judged in await cur.fetchall()}


def client(settings: Settings, url: str) -> LlmClient:
    return LlmClient(
        base_url=url, api_key=settings.openai_api_key, model=settings.llm_model, timeout_s=10,
        max_retries=0, max_tokens=128, temperature=0.0,
    )  # fmt: skip


async def test_usable_scores_are_blended_and_rows_marked_judged(
    settings: Settings, scratch_pool: Pool, chat_ids: list[int], scripted_llm: Callable[[str], str]
) -> None:
    ids = await seed(scratch_pool, chat_ids[0])
    llm = client(settings, scripted_llm('{"scores": [10, 0, 6]}'))
    try:
        report = await ImportanceJudge(admin=MemoryAdmin(scratch_pool), llm=llm, batch_size=5).run_once()
        again = await ImportanceJudge(admin=MemoryAdmin(scratch_pool), llm=llm).run_once()
    finally:
        await llm.aclose()

    stored = await importance_by_id(scratch_pool)
    # unjudged() hands out newest first: the batch order is the reverse of insertion
    expected = dict(zip(reversed(ids), (blend(0.2, s) for s in (1.0, 0.0, 0.6)), strict=True))
    assert (report.judged, again.judged) == (3, 0)
    assert {i: round(v[0], 3) for i, v in stored.items()} == pytest.approx(expected)
    assert all(judged for _, judged in stored.values())


async def test_the_stubs_echo_is_unusable_so_scores_stay_and_rows_are_not_retried(
    settings: Settings, scratch_pool: Pool, chat_ids: list[int]
) -> None:
    await seed(scratch_pool, chat_ids[0])
    llm = client(settings, settings.llm_stub_url)
    try:
        judge = ImportanceJudge(admin=MemoryAdmin(scratch_pool), llm=llm, batch_size=2)
        report = await judge.run_once()
        again = await judge.run_once()
    finally:
        await llm.aclose()

    stored = await importance_by_id(scratch_pool)
    assert (report.judged, report.unusable, again.unusable) == (0, 3, 0)
    assert all(imp == pytest.approx(0.2) and judged for imp, judged in stored.values())
