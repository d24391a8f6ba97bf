"""Memory recall benchmark: planted facts recalled after the context window rolled past them.

    HF_HUB_OFFLINE=1 .venv/bin/python benchmarks/memory_recall/run.py [--users 240] [--scales 100000,1000000]

1. Builds synthetic users (``dataset.py``): facts told early, 30+ turns of small talk (some on
   the same topics), then one question per fact.
2. Embeds every user text with the LOCAL MiniLM embedder (``tgstream.connectors.embeddings_local``)
   and stores each exchange exactly as the dataflow does (``memory_text``, the user text's
   embedding, the heuristic ``importance``) through ``MemoryStore.add_many``, into a separate
   database (``tgstream_bench``) so the shared dev database stays small.
3. Asks every question through ``MemoryStore.search`` (the production ranking: relevance x
   recency x importance) and reports recall@1 and recall@5, plus recall as configured
   (``MEMORY_TOP_K``, ``MEMORY_MIN_SCORE``).
4. For each scale, COPYs filler memories up to that many rows, builds HNSW, and times the
   production per-chat search and the global HNSW nearest-neighbour query (with its recall
   against an exact scan), p50/p99.

Results go to ``benchmarks/memory_recall/results.json`` and the console; the bench database
(about 4 GB at 10^6 rows) is dropped at the end unless ``--keep-database``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
from rich.console import Console
from rich.table import Table

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bulk import build_hnsw, copy_filler, drop_database, prepare_database, progress, table_size
from dataset import SyntheticUser, filler_sentences, make_users

from tgstream.config import load_settings
from tgstream.connectors.embeddings_local import LocalEmbedder
from tgstream.connectors.postgres import Pool, connection, open_pool
from tgstream.dataflows.turn_writers import memory_text
from tgstream.state.memories import MemoryStore, NewMemory
from tgstream.steps.importance import importance

console = Console()
RESULTS = Path(__file__).resolve().parent / "results.json"
TURN_SPACING_S = 20 * 60.0
FIRST_BENCH_CHAT = 900_000_000_000
FIRST_FILLER_CHAT = 800_000_000_000


def pct(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(len(ordered) * q))]


async def embed_all(embedder: LocalEmbedder, texts: list[str]) -> dict[str, np.ndarray]:
    unique = list(dict.fromkeys(texts))
    vectors: dict[str, np.ndarray] = {}
    with progress() as bar:
        task = bar.add_task("MiniLM embeddings (local)", total=len(unique))
        for offset in range(0, len(unique), 256):
            chunk = unique[offset : offset + 256]
            for text, vector in zip(chunk, await embedder.embed(chunk), strict=True):
                vectors[text] = np.asarray(vector, dtype=np.float32)
            bar.advance(task, len(chunk))
    return vectors


async def store_users(
    store: MemoryStore, users: list[SyntheticUser], vectors: dict[str, np.ndarray], now: float
) -> dict[tuple[int, int], int]:
    """Write every exchange as a memory; returns (chat_id, fact index) -> memory id."""
    fact_ids: dict[tuple[int, int], int] = {}
    with progress() as bar:
        task = bar.add_task("store conversations (MemoryStore.add_many)", total=len(users))
        for user in users:
            started_at = now - (len(user.turns) + 1) * TURN_SPACING_S
            rows = [
                NewMemory(
                    chat_id=user.chat_id,
                    user_id=user.chat_id,
                    text=memory_text(turn.user, turn.reply),
                    embedding=vectors[turn.user],
                    importance=importance(turn.user, turn.reply),
                    created_at=started_at + i * TURN_SPACING_S,
                )
                for i, turn in enumerate(user.turns)
            ]
            ids = await store.add_many(rows)
            for turn, memory_id in zip(user.turns, ids, strict=True):
                if turn.fact is not None:
                    fact_ids[(user.chat_id, turn.fact)] = memory_id
            bar.advance(task)
    return fact_ids


async def recall(
    store: MemoryStore,
    users: list[SyntheticUser],
    vectors: dict[str, np.ndarray],
    fact_ids: dict[tuple[int, int], int],
    *,
    now: float,
    k: int,
    min_score: float,
) -> dict[str, Any]:
    hits_at = {1: 0, k: 0}
    total = 0
    misses: list[dict[str, Any]] = []
    latencies: list[float] = []
    for user in users:
        for index, (slot, question) in enumerate(user.facts):
            started = time.perf_counter()
            found = await store.search(
                user.chat_id, vectors[question], k=k, min_score=min_score, now=now, touch=False
            )
            latencies.append((time.perf_counter() - started) * 1000)
            ids = [hit.id for hit in found]
            target = fact_ids[(user.chat_id, index)]
            total += 1
            hits_at[1] += ids[:1] == [target]
            hits_at[k] += target in ids
            if target not in ids and len(misses) < 12:
                misses.append(
                    {"slot": slot, "question": question, "top": found[0].text[:80] if found else None}
                )
    return {
        "queries": total,
        "recall@1": hits_at[1] / total,
        f"recall@{k}": hits_at[k] / total,
        "k": k,
        "min_score": min_score,
        "search_p50_ms": statistics.median(latencies),
        "search_p99_ms": pct(latencies, 0.99),
        "sample_misses": misses,
    }


async def per_chat_latency(
    store: MemoryStore, chats: list[int], vectors: np.ndarray, *, touch: bool
) -> list[float]:
    samples: list[float] = []
    for vector in vectors:
        started = time.perf_counter()
        await store.search(random.choice(chats), vector, k=5, min_score=0.0, touch=touch)
        samples.append((time.perf_counter() - started) * 1000)
    return samples


async def latency(
    pool: Pool,
    bench_url: str,
    chats: list[int],
    bases: np.ndarray,
    queries: int,
    exact_checks: int,
    sigma: float,
) -> dict[str, Any]:
    """Per-chat search (touch off, on, on without synchronous commit) and global HNSW kNN."""
    rng = np.random.default_rng(11)
    vectors = bases[rng.integers(0, len(bases), queries)]
    vectors = vectors + rng.standard_normal(vectors.shape).astype(np.float32) * sigma
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    store = MemoryStore(pool)
    result: dict[str, Any] = {"queries": queries}
    for name, samples in (
        ("search_touch_off", await per_chat_latency(store, chats, vectors, touch=False)),
        ("search_touch_on", await per_chat_latency(store, chats, vectors, touch=True)),
    ):
        result[f"{name}_p50_ms"], result[f"{name}_p99_ms"] = statistics.median(samples), pct(samples, 0.99)
    async with connection(pool) as conn:
        await conn.execute("SELECT 1")  # the same database: ALTER DATABASE applies to new sessions only
        dbname = bench_url.rsplit("/", 1)[1]
        await conn.execute(f"ALTER DATABASE {dbname} SET synchronous_commit = off")
    async_pool = await open_pool(bench_url, max_size=1, statement_timeout_ms=0)
    try:
        samples = await per_chat_latency(MemoryStore(async_pool), chats, vectors, touch=True)
        result["search_touch_on_async_commit_p50_ms"] = statistics.median(samples)
        result["search_touch_on_async_commit_p99_ms"] = pct(samples, 0.99)
    finally:
        await async_pool.close()
        async with connection(pool) as conn:
            await conn.execute(f"ALTER DATABASE {dbname} RESET synchronous_commit")
    ann: list[float] = []
    overlap: list[float] = []
    knn = "SELECT id FROM memories ORDER BY embedding <=> %s LIMIT 5"
    async with connection(pool) as conn:
        for i in range(queries):
            started = time.perf_counter()
            cur = await conn.execute(knn, [vectors[i]])
            approx = [r[0] for r in await cur.fetchall()]
            ann.append((time.perf_counter() - started) * 1000)
            if i < exact_checks:
                async with conn.transaction(force_rollback=True):
                    await conn.execute("SET LOCAL enable_indexscan = off")
                    exact = [r[0] for r in await (await conn.execute(knn, [vectors[i]])).fetchall()]
                overlap.append(len(set(approx) & set(exact)) / 5)
        cur = await conn.execute("EXPLAIN " + knn, [vectors[0]])
        plan = " ".join(str(r[0]) for r in await cur.fetchall())
    result.update(
        {
            "hnsw_knn_p50_ms": statistics.median(ann),
            "hnsw_knn_p99_ms": pct(ann, 0.99),
            "hnsw_recall@5_vs_exact": statistics.mean(overlap) if overlap else None,
            "hnsw_used": "idx_memories_embedding_hnsw" in plan,
        }
    )
    return result


async def threshold_sweep(
    store: MemoryStore,
    users: list[SyntheticUser],
    vectors: dict[str, np.ndarray],
    fact_ids: dict[tuple[int, int], int],
    *,
    now: float,
    k: int,
) -> list[dict[str, float]]:
    """Recall@k as a function of MEMORY_MIN_SCORE, and how many memories an unplanted question gets."""
    rows = []
    for min_score in (0.0, 0.1, 0.15, 0.2, 0.25, 0.3, 0.35):
        found = await recall(store, users, vectors, fact_ids, now=now, k=k, min_score=min_score)
        rows.append({"min_score": min_score, f"recall@{k}": found[f"recall@{k}"]})
    return rows


async def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--users", type=int, default=240)
    parser.add_argument("--facts-per-user", type=int, default=3)
    parser.add_argument("--filler-turns", type=int, default=30)
    parser.add_argument("--scales", default="100000,1000000", help="total rows at which to time searches")
    parser.add_argument("--chat-size", type=int, default=250, help="memories per filler chat")
    parser.add_argument("--queries", type=int, default=1000)
    parser.add_argument(
        "--exact-checks", type=int, default=30, help="HNSW answers compared with an exact scan"
    )
    parser.add_argument("--build-workers", type=int, default=1)
    parser.add_argument("--build-memory", default="3GB")
    parser.add_argument("--max-build-minutes", type=float, default=90.0)
    parser.add_argument("--database", default="tgstream_bench")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument(
        "--filler-bases", type=int, default=3000, help="distinct sentences seeding filler vectors"
    )
    parser.add_argument("--fillfactor", type=int, default=100, help="memories table fillfactor (HOT room)")
    parser.add_argument("--results", type=Path, default=RESULTS)
    parser.add_argument(
        "--keep-database", action="store_true", help="leave tgstream_bench (GBs) for inspection"
    )
    parser.add_argument("--sigma", type=float, default=0.02, help="per-component noise of filler vectors")
    args = parser.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    random.seed(args.seed)

    settings = load_settings()
    admin_url = settings.database_url.rsplit("/", 1)[0] + "/postgres"
    bench_url = settings.database_url.rsplit("/", 1)[0] + "/" + args.database
    prepare_database(admin_url, bench_url, args.database, fillfactor=args.fillfactor)
    pool = await open_pool(bench_url, max_size=3, statement_timeout_ms=0)
    embedder = LocalEmbedder(torch_threads=2)
    results: dict[str, Any] = {
        "users": args.users,
        "facts_per_user": args.facts_per_user,
        "fillfactor": args.fillfactor,
        "scales": {},
    }
    try:
        users = make_users(
            args.users,
            facts_per_user=args.facts_per_user,
            filler_turns=args.filler_turns,
            seed=args.seed,
            first_chat=FIRST_BENCH_CHAT,
        )
        texts = [t.user for u in users for t in u.turns] + [q for u in users for _, q in u.facts]
        filler = filler_sentences(args.filler_bases, seed=args.seed + 1)
        vectors = await embed_all(embedder, texts + filler)
        bases = np.stack([vectors[s] for s in filler])
        store = MemoryStore(pool)
        now = time.time()
        fact_ids = await store_users(store, users, vectors, now)
        turns = sum(len(u.turns) for u in users)
        console.print(f"{args.users} users, {len(fact_ids)} planted facts, {turns} stored exchanges")
        results["recall"] = await recall(store, users, vectors, fact_ids, now=now, k=5, min_score=0.0)
        results["recall_as_configured"] = await recall(
            store,
            users,
            vectors,
            fact_ids,
            now=now,
            k=settings.memory_top_k,
            min_score=settings.memory_min_score,
        )
        results["min_score_sweep"] = await threshold_sweep(
            store, users, vectors, fact_ids, now=now, k=settings.memory_top_k
        )
        console.print_json(data={k: v for k, v in results["recall"].items() if k != "sample_misses"})
        console.print_json(data=results["min_score_sweep"])

        chats_needed = max(int(s) for s in args.scales.split(",")) // args.chat_size + 1
        filler_chats = [FIRST_FILLER_CHAT + i for i in range(chats_needed)]
        rows_now = turns
        for scale in sorted(int(s) for s in args.scales.split(",")):
            async with connection(pool) as conn:
                await conn.execute("DROP INDEX IF EXISTS idx_memories_embedding_hnsw")
            wanted = scale - rows_now
            copy_rate = await copy_filler(
                pool,
                rng=np.random.default_rng(scale),
                bases=bases,
                texts=filler,
                sigma=args.sigma,
                rows=wanted,
                chats=filler_chats[: max(1, scale // args.chat_size)],
                start_index=rows_now,
            )
            rows_now = scale
            build_s = await build_hnsw(
                pool,
                total_rows=scale,
                workers=args.build_workers,
                max_minutes=args.max_build_minutes,
                memory=args.build_memory,
            )
            entry: dict[str, Any] = {
                "copy_rows_per_s": copy_rate,
                "hnsw_build_s": build_s,
                **await table_size(pool),
            }
            if build_s is None:
                entry["note"] = f"HNSW build exceeded {args.max_build_minutes} min and was cancelled"
            else:
                active = filler_chats[: max(1, scale // args.chat_size)] + [u.chat_id for u in users]
                entry.update(
                    await latency(pool, bench_url, active, bases, args.queries, args.exact_checks, args.sigma)
                )
                entry["recall_at_scale"] = {
                    k: v
                    for k, v in (
                        await recall(store, users, vectors, fact_ids, now=now, k=5, min_score=0.0)
                    ).items()
                    if k != "sample_misses"
                }
            results["scales"][str(scale)] = entry
            console.print_json(data=entry)
            args.results.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    finally:
        await embedder.aclose()
        await pool.close()
        if not args.keep_database:
            drop_database(admin_url, args.database)
    args.results.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    table = Table("measure", "value", title="memory recall benchmark")
    table.add_row("recall@1", f"{results['recall']['recall@1']:.3f}")
    table.add_row("recall@5", f"{results['recall']['recall@5']:.3f}")
    configured = results["recall_as_configured"]
    configured_key = f"recall@{configured['k']}"
    table.add_row(
        f"{configured_key} (min_score {configured['min_score']})", f"{configured[configured_key]:.3f}"
    )
    for scale, entry in results["scales"].items():
        if "hnsw_knn_p99_ms" in entry:
            for name in ("search_touch_off", "search_touch_on", "search_touch_on_async_commit"):
                table.add_row(
                    f"{int(scale):,} rows: {name} p50/p99",
                    f"{entry[name + '_p50_ms']:.2f} / {entry[name + '_p99_ms']:.2f} ms",
                )
            table.add_row(
                f"{int(scale):,} rows: HNSW kNN p50/p99",
                f"{entry['hnsw_knn_p50_ms']:.2f} / {entry['hnsw_knn_p99_ms']:.2f} ms",
            )
        table.add_row(
            f"{int(scale):,} rows: HNSW build",
            f"{entry['hnsw_build_s']:.0f} s" if entry["hnsw_build_s"] else "timed out",
        )
    console.print(table)


if __name__ == "__main__":
    asyncio.run(main())
