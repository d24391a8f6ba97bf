"""`tgstream forget --user ID` end to end: no trace of the user in Postgres, Redis or Parquet.

The user talks in a private chat (id = user id) and a group shared with a bystander; the
bystander's rows must survive everywhere. The command runs as a real subprocess with its own
PARQUET_DIR; Redis keys are the real unprefixed ones, under random 12-digit ids.
"""

from __future__ import annotations

import asyncio
import os
import random
import sys
import time
import uuid
from pathlib import Path

import pyarrow.dataset as ds
import pytest
from redis.asyncio import Redis

from tgstream.config import Settings
from tgstream.connectors.postgres import Pool, connection
from tgstream.doubles.stub_content import embed
from tgstream.ops.forget import FORGOTTEN_USERS_KEY
from tgstream.schemas.events import ConversationEvent
from tgstream.sinks.parquet import ParquetEventWriter
from tgstream.state.memories import MemoryStore, NewMemory
from tgstream.steps.privacy import hash_id

pytestmark = [pytest.mark.integration, pytest.mark.anyio]


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def _event(chat: int, user: int, salt: bytes, now: float) -> ConversationEvent:
    return ConversationEvent(
        event_id=uuid.uuid4().hex,
        event_type="message_in",
        chat_hash=hash_id(chat, salt),
        user_hash=hash_id(user, salt),
        chat_type="private" if chat == user else "group",
        sent_at=now,
        received_at=now,
        processed_at=now,
        emitted_at=now,
    )


async def _run_forget(user: int, env: dict[str, str]) -> tuple[int, str, str]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "tgstream",
        "forget",
        "--user",
        str(user),
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(proc.communicate(), 120)
    return int(proc.returncode or 0), out.decode(), err.decode()


async def _user_rows(pool: Pool, user: int) -> dict[str, int]:
    counts = {}
    async with connection(pool) as conn:
        for table in ("memories", "facts", "user_personalities"):
            cur = await conn.execute(f"SELECT count(*) FROM {table} WHERE user_id = %s", [user])
            row = await cur.fetchone()
            counts[table] = int(row[0]) if row else -1
    return counts


async def test_forget_user_leaves_no_trace_and_spares_the_bystander(
    settings: Settings, pg_pool: Pool, tmp_path: Path
) -> None:
    user, bystander, group = random.sample(range(10**11, 10**12), 3)
    group = -group
    salt = settings.analytics_salt.get_secret_value().encode()
    now = time.time()
    store = MemoryStore(pg_pool)
    texts = {user: "my sister Ada lives in Oslo", bystander: "I play the cello"}
    await store.add_many(
        [
            NewMemory(chat, who, texts[who], embed(texts[who], store.dim))
            for chat, who in ((user, user), (group, user), (group, bystander))
        ]
    )
    async with connection(pg_pool) as conn:
        for chat, who in ((user, user), (group, user), (group, bystander)):
            await conn.execute(
                "INSERT INTO facts (chat_id, user_id, slot, value, text) "
                "VALUES (%s, %s, 'city', 'Oslo', 'lives in Oslo')",
                [chat, who],
            )
        await conn.execute(
            "INSERT INTO user_personalities (user_id, chat_id, personality_id) "
            "SELECT %s, %s, id FROM personalities WHERE name = 'default'",
            [user, user],
        )
    redis = Redis.from_url(settings.redis_url)
    parquet = tmp_path / "events"
    sink = ParquetEventWriter(parquet, "0", roll_bytes=1 << 20, roll_s=60.0)
    sink.write(
        [
            _event(c, w, salt, now)
            for c, w in ((user, user), (group, user), (group, bystander))
            for _ in range(5)
        ]
    )
    sink.flush()
    try:
        for chat in (user, group):
            await redis.hset(f"conversation:{chat}", mapping={"turns": "[]"})
            await redis.set(f"persona_adaptation:{chat}", "{}")
        await redis.zadd("active_conversations", {str(user): now, str(group): now})

        env = {**os.environ, "PARQUET_DIR": str(parquet)}
        code, out, err = await _run_forget(user, env)
        assert code == 0, err
        assert "2 memories, 2 facts, 1 persona assignments" in out, out
        assert await _user_rows(pg_pool, user) == {"memories": 0, "facts": 0, "user_personalities": 0}
        assert await _user_rows(pg_pool, bystander) == {"memories": 1, "facts": 1, "user_personalities": 0}
        for chat in (user, group):
            assert not await redis.exists(f"conversation:{chat}", f"persona_adaptation:{chat}")
            assert await redis.zscore("active_conversations", str(chat)) is None
        assert await redis.sismember(FORGOTTEN_USERS_KEY, str(user))
        table = ds.dataset(parquet, format="parquet").to_table()
        gone = hash_id(user, salt)
        assert gone not in set(table["user_hash"].to_pylist()) | set(table["chat_hash"].to_pylist())
        assert table.num_rows == 5, "the bystander's events stay"
        assert set(table["user_hash"].to_pylist()) == {hash_id(bystander, salt)}
        # Rerunning is harmless (a partial failure is fixed by running it again).
        code, _, err = await _run_forget(user, env)
        assert code == 0, err
        assert ds.dataset(parquet, format="parquet").to_table().num_rows == 5
    finally:
        async with connection(pg_pool) as conn:
            for table_name in ("memories", "facts", "user_personalities"):
                await conn.execute(
                    f"DELETE FROM {table_name} WHERE user_id = ANY(%s)",
                    [[user, bystander]],
                )
        await redis.srem(FORGOTTEN_USERS_KEY, str(user))
        await redis.aclose()
