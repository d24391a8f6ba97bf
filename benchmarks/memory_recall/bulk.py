"""Bulk filler for the latency part: a separate database, binary COPY, HNSW build with progress.

Filler memories are cheap perturbations of real MiniLM embeddings of small-talk sentences
(``base + N(0, sigma)``, renormalised), so the vectors cluster like real chat text instead of
being uniformly random (on which HNSW behaves unlike production). They are spread over filler
chats in round-robin order, so each chat's rows are scattered over the table as they would be
when many chats talk at once.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import numpy as np
import psycopg
from psycopg import sql
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

from tgstream.connectors.postgres import DatabaseError, Pool, connection
from tgstream.state.migrate import migrate

HNSW_INDEX = "idx_memories_embedding_hnsw"
COPY_SQL = (
    "COPY memories (chat_id, user_id, text, embedding, importance, kind, created_at) "
    "FROM STDIN WITH (FORMAT BINARY)"
)


def progress() -> Progress:
    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        TextColumn("{task.completed:,.0f}/{task.total:,.0f}"),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
    )


def prepare_database(admin_url: str, bench_url: str, dbname: str, *, fillfactor: int = 100) -> None:
    """Create the bench database if needed, apply our migrations, and empty its memories.

    ``fillfactor`` < 100 leaves room on each page for HOT updates of the usage columns.
    """
    with psycopg.connect(admin_url, autocommit=True) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [dbname]).fetchone()
        if not exists:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(dbname)))
    migrate(bench_url)
    with psycopg.connect(bench_url, autocommit=True) as conn:
        conn.execute("TRUNCATE memories RESTART IDENTITY")
        conn.execute(f"DROP INDEX IF EXISTS {HNSW_INDEX}")
        conn.execute(f"ALTER TABLE memories SET (fillfactor = {int(fillfactor)})")


def drop_database(admin_url: str, dbname: str) -> None:
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(dbname)))


def filler_vectors(
    rng: np.random.Generator, bases: np.ndarray, count: int, sigma: float
) -> tuple[np.ndarray, np.ndarray]:
    picks = rng.integers(0, len(bases), count)
    vectors = bases[picks] + rng.standard_normal((count, bases.shape[1])).astype(np.float32) * sigma
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    return vectors.astype(np.float32), picks


async def copy_filler(
    pool: Pool,
    *,
    rng: np.random.Generator,
    bases: np.ndarray,
    texts: list[str],
    rows: int,
    chats: list[int],
    start_index: int,
    sigma: float = 0.05,
    batch: int = 20_000,
) -> float:
    """Append ``rows`` filler memories with one binary COPY per batch; returns rows/s."""
    now = time.time()
    started = time.perf_counter()
    with progress() as bar:
        task = bar.add_task(f"COPY {rows:,} filler memories", total=rows)
        for offset in range(0, rows, batch):
            count = min(batch, rows - offset)
            vectors, picks = filler_vectors(rng, bases, count, sigma)
            importance = rng.random(count).astype(np.float32) * 0.6
            ages = rng.random(count) * 60 * 86400
            async with connection(pool) as conn:
                cur = conn.cursor()
                async with cur.copy(COPY_SQL) as copy:
                    copy.set_types(["int8", "int8", "text", "vector", "float4", "text", "timestamptz"])
                    for i in range(count):
                        n = start_index + offset + i
                        chat = chats[n % len(chats)]
                        created = _timestamp(now - float(ages[i]))
                        row: tuple[Any, ...] = (
                            chat,
                            chat,
                            texts[picks[i]],
                            vectors[i],
                            float(importance[i]),
                            "turn",
                            created,
                        )
                        await copy.write_row(row)
            bar.advance(task, count)
    return rows / (time.perf_counter() - started)


def _timestamp(unix: float) -> Any:
    from datetime import UTC, datetime

    return datetime.fromtimestamp(unix, tz=UTC)


async def build_hnsw(
    pool: Pool, *, total_rows: int, workers: int, max_minutes: float, memory: str
) -> float | None:
    """Build the HNSW index as migration 002 defines it; seconds taken, or None if over ``max_minutes``."""
    started = time.perf_counter()
    done = asyncio.Event()

    async def watch() -> None:
        with progress() as bar:
            task = bar.add_task(f"HNSW build ({workers} parallel workers)", total=total_rows)
            while not done.is_set():
                async with connection(pool) as conn:
                    cur = await conn.execute(
                        "SELECT phase, tuples_done, tuples_total FROM pg_stat_progress_create_index"
                        " WHERE datname = current_database()"
                    )
                    row = await cur.fetchone()
                if row is not None:
                    phase, tuples_done, _total = row
                    bar.update(task, completed=tuples_done or 0, description=f"HNSW build: {phase}")
                try:
                    await asyncio.wait_for(done.wait(), timeout=2.0)
                except TimeoutError:
                    continue

    watcher = asyncio.create_task(watch())
    try:
        async with connection(pool) as conn:
            await conn.execute(f"SET maintenance_work_mem = '{memory}'")
            await conn.execute(f"SET max_parallel_maintenance_workers = {int(workers)}")
            await conn.execute(f"SET statement_timeout = {int(max_minutes * 60_000)}")
            try:
                await conn.execute(
                    f"CREATE INDEX {HNSW_INDEX} ON memories USING hnsw (embedding vector_cosine_ops)"
                )
            except DatabaseError as exc:
                if "statement timeout" in str(exc):
                    return None
                raise
            await conn.execute("SET statement_timeout = 0")
            await conn.execute("ANALYZE memories")
    finally:
        done.set()
        await watcher
    return time.perf_counter() - started


async def table_size(pool: Pool) -> dict[str, str]:
    async with connection(pool) as conn:
        cur = await conn.execute(
            "SELECT pg_size_pretty(pg_table_size('memories')),"
            " pg_size_pretty(coalesce(pg_relation_size(to_regclass(%s)), 0)),"
            " (SELECT count(*) FROM memories)",
            [HNSW_INDEX],
        )
        row = await cur.fetchone()
    assert row is not None
    return {"table": str(row[0]), "hnsw_index": str(row[1]), "rows": str(row[2])}
