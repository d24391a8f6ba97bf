"""Memory search latency with 10^5 memories across 1000 chats, in a scratch schema.

    .venv/bin/python benchmarks/memory_search.py [--rows 100000] [--chats 1000] [--queries 500] [--hnsw]

Loads random unit vectors through ``MemoryStore.add_many`` into ``bench_<pid>.memories`` (same
columns as the live table, btree on (chat_id, created_at)), then times ``search`` (one chat per
call, usage bump on) and ``search_many`` batches. ``--hnsw`` also builds the HNSW index and
measures the alternative we rejected, ``WHERE chat_id = c ORDER BY embedding <=> q LIMIT k``,
counting how often it returns fewer than k rows although the chat has more. The scratch
schema is dropped at the end, whatever happens.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import statistics
import time

import numpy as np

from tgstream.config import load_settings
from tgstream.connectors.postgres import Pool, connection, open_pool
from tgstream.state.memories import MemoryStore, NewMemory

DIM = 384
K = 4


def unit_vectors(rng: np.random.Generator, n: int) -> np.ndarray:
    vectors = rng.standard_normal((n, DIM)).astype(np.float32)
    normalised: np.ndarray = vectors / np.linalg.norm(vectors, axis=1, keepdims=True)
    return normalised


def percentiles(samples_ms: list[float]) -> str:
    ordered = sorted(samples_ms)
    p99 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]
    return f"p50 {statistics.median(ordered):7.2f} ms   p99 {p99:7.2f} ms   (n={len(ordered)})"


async def load(store: MemoryStore, rng: np.random.Generator, rows: int, chats: list[int]) -> None:
    now = time.time()
    batch = 1000
    started = time.perf_counter()
    for offset in range(0, rows, batch):
        count = min(batch, rows - offset)
        vectors = unit_vectors(rng, count)
        await store.add_many(
            [
                NewMemory(
                    chat_id=chats[(offset + i) % len(chats)],
                    user_id=1,
                    text=f"memory {offset + i}",
                    embedding=vectors[i],
                    importance=float(rng.random()),
                    created_at=now - float(rng.random()) * 30 * 86400,
                )
                for i in range(count)
            ]
        )
    elapsed = time.perf_counter() - started
    print(f"add_many: {rows} rows in {elapsed:.1f} s = {rows / elapsed:,.0f} rows/s (batches of {batch})")


async def time_search(store: MemoryStore, rng: np.random.Generator, chats: list[int], queries: int) -> None:
    for touch in (True, False):
        samples = []
        vectors = unit_vectors(rng, queries)
        for i in range(queries):
            started = time.perf_counter()
            await store.search(random.choice(chats), vectors[i], k=K, min_score=0.0, touch=touch)
            samples.append((time.perf_counter() - started) * 1000)
        print(f"search (1 chat, touch={touch!s:5}): {percentiles(samples)}")

    for batch in (32, 128):
        samples = []
        for _ in range(max(5, queries // batch)):
            pairs = [(random.choice(chats), v) for v in unit_vectors(rng, batch)]
            started = time.perf_counter()
            await store.search_many(pairs, k=K, min_score=0.0)
            samples.append((time.perf_counter() - started) * 1000)
        per_query = statistics.median(samples) / batch
        print(f"search_many (batch {batch:3d}):   {percentiles(samples)}   = {per_query:.2f} ms/query")


async def compare_hnsw(pool: Pool, rng: np.random.Generator, chats: list[int], queries: int) -> None:
    started = time.perf_counter()
    async with connection(pool) as conn:
        await conn.execute("SET maintenance_work_mem = '512MB'")
        await conn.execute("SET statement_timeout = 0")
        await conn.execute("CREATE INDEX ON memories USING hnsw (embedding vector_cosine_ops)")
        await conn.execute("ANALYZE memories")
    print(f"HNSW build: {time.perf_counter() - started:.1f} s")
    sql = (
        "SELECT id FROM memories WHERE chat_id = %s AND deleted_at IS NULL ORDER BY embedding <=> %s LIMIT %s"
    )
    for forced in (False, True):
        short, samples = 0, []
        async with connection(pool) as conn, conn.transaction(force_rollback=True):
            if forced:  # what the planner does once a chat is not selective enough for the btree
                await conn.execute("DROP INDEX memories_chat_id_created_at_idx")
            cur = await conn.execute("EXPLAIN " + sql, [chats[0], unit_vectors(rng, 1)[0], K])
            plan = [str(r[0]).strip() for r in await cur.fetchall()]
            for v in unit_vectors(rng, queries):
                started = time.perf_counter()
                cur = await conn.execute(sql, [random.choice(chats), v, K])
                found = len(await cur.fetchall())
                samples.append((time.perf_counter() - started) * 1000)
                short += found < K
        scan = next((line.split("(")[0].strip("-> ") for line in plan if "Scan" in line), "?")
        print(f"ORDER BY distance, WHERE chat_id via {scan}: {percentiles(samples)}")
        print(f"    returned fewer than {K} rows in {short}/{queries} queries (every chat has more)")


async def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--chats", type=int, default=1000)
    parser.add_argument("--queries", type=int, default=500)
    parser.add_argument("--hnsw", action="store_true", help="also build HNSW and time the filtered ANN query")
    args = parser.parse_args()

    settings = load_settings()
    schema = f"bench_{os.getpid()}"
    admin = await open_pool(settings.database_url, max_size=1)
    async with connection(admin) as conn:
        await conn.execute(f"CREATE SCHEMA {schema}")
        await conn.execute(
            f"CREATE TABLE {schema}.memories (id bigserial PRIMARY KEY, chat_id bigint NOT NULL,"
            " user_id bigint, text text NOT NULL, embedding vector(384),"
            " importance real NOT NULL DEFAULT 0.5, use_count int NOT NULL DEFAULT 0,"
            " kind text NOT NULL DEFAULT 'turn', created_at timestamptz NOT NULL DEFAULT now(),"
            " last_used_at timestamptz, deleted_at timestamptz)"
        )
        await conn.execute(f"CREATE INDEX ON {schema}.memories (chat_id, created_at)")
    pool = await open_pool(
        settings.database_url, max_size=2, search_path=f"{schema},public", statement_timeout_ms=0
    )
    try:
        rng = np.random.default_rng(7)
        random.seed(7)
        chats = random.sample(range(10**11, 10**12), args.chats)
        store = MemoryStore(pool)
        print(f"{args.rows} memories over {args.chats} chats ({args.rows // args.chats} per chat), k={K}")
        await load(store, rng, args.rows, chats)
        async with connection(pool) as conn:
            await conn.execute("ANALYZE memories")
        await time_search(store, rng, chats, args.queries)
        if args.hnsw:
            await compare_hnsw(pool, rng, chats, args.queries)
    finally:
        await pool.close()
        async with connection(admin) as conn:
            await conn.execute(f"DROP SCHEMA {schema} CASCADE")
        await admin.close()


if __name__ == "__main__":
    asyncio.run(main())
