"""Persona resolution for a batch of 500 chats: one Postgres round trip, then the in-process cache.

    .venv/bin/python benchmarks/persona_resolve.py [--chats 500] [--rounds 50]

Half the chats (random 12-digit ids) get an assignment to a seeded persona with
customizations; the other half fall back to ``default``. Times ``PersonaStore.resolve_many``
(cold, every call goes to Postgres) and ``CachedPersonas.resolve_many`` (warm, all hits). The
benchmark's assignments are deleted at the end.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import statistics
import time

from tgstream.config import load_settings
from tgstream.connectors.postgres import connection, open_pool
from tgstream.state.persona_cache import CachedPersonas
from tgstream.state.personas import PersonaStore


def summary(samples_ms: list[float]) -> str:
    ordered = sorted(samples_ms)
    p99 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]
    return f"p50 {statistics.median(ordered):8.3f} ms   p99 {p99:8.3f} ms   (n={len(ordered)})"


async def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--chats", type=int, default=500)
    parser.add_argument("--rounds", type=int, default=50)
    args = parser.parse_args()

    pool = await open_pool(load_settings().database_url, max_size=2)
    chats = random.sample(range(10**11, 10**12), args.chats)
    store = PersonaStore(pool)
    try:
        names = [p.name for p in await store.list_personas()]
        for chat in chats[: len(chats) // 2]:
            await store.assign(chat, chat, random.choice(names), {"nickname": f"n{chat % 97}"})

        cold = []
        for _ in range(args.rounds):
            started = time.perf_counter()
            resolved = await store.resolve_many(chats)
            cold.append((time.perf_counter() - started) * 1000)
        if len(resolved) != len(chats):
            raise RuntimeError(f"resolved {len(resolved)} of {len(chats)} chats")
        print(f"PersonaStore.resolve_many({args.chats} chats), Postgres: {summary(cold)}")

        cache = CachedPersonas(store, ttl_s=3600, max_chats=args.chats * 2)
        await cache.resolve_many(chats)
        warm = []
        for _ in range(args.rounds):
            started = time.perf_counter()
            await cache.resolve_many(chats)
            warm.append((time.perf_counter() - started) * 1000)
        print(f"CachedPersonas.resolve_many({args.chats} chats), all hits: {summary(warm)}")
    finally:
        async with connection(pool) as conn:
            await conn.execute("DELETE FROM user_personalities WHERE chat_id = ANY(%s)", [chats])
        await pool.close()


if __name__ == "__main__":
    asyncio.run(main())
