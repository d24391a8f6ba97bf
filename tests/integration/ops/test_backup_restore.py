"""Back up, wipe, restore: personas, memories, conversation state and Bytewax recovery come back.

Real Postgres and Redis from `tgstream dev up`, shared with other tests, so this test only ever
deletes what it planted: the source is the shared database (planted rows for random 12-digit chat
ids) and a Redis logical database of its own; the restore goes into a fresh database
``tgstream_restore_<hex>`` (dropped afterwards) and another Redis logical database. The state is
written and read back through the real stores (PersonaStore, MemoryStore, ConversationMirror),
and the restored Bytewax recovery partitions resume a real flow where it stopped.
"""

from __future__ import annotations

import asyncio
import io
import random
import shutil
import tarfile
import time
import uuid
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import bytewax.operators as op
import numpy as np
import psycopg
import pytest
import redis
import redis.asyncio as aioredis
from bytewax.dataflow import Dataflow
from bytewax.recovery import RecoveryConfig, init_db_dir
from bytewax.testing import TestingSink, TestingSource, run_main
from psycopg import sql
from typer.testing import CliRunner

from tgstream.cli.main import app
from tgstream.config import Settings
from tgstream.connectors.postgres import open_pool
from tgstream.state.conversation_mirror import ConversationMirror, ConversationSnapshot
from tgstream.state.memories import MemoryStore, NewMemory
from tgstream.state.migrate import migrate
from tgstream.state.personas import PersonaStore

pytestmark = pytest.mark.integration

SOURCE_REDIS_DB = 11
TARGET_REDIS_DB = 12
DIM = 384


def _with_path(url: str, path: str) -> str:
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, path, parts.query, parts.fragment))


@pytest.fixture
def target_database(settings: Settings) -> Iterator[str]:
    """A fresh, empty database for the restore, so the shared one is never clobbered."""
    name = f"tgstream_restore_{uuid.uuid4().hex[:10]}"
    admin = _with_path(settings.database_url, "/postgres")
    with psycopg.connect(admin, autocommit=True, connect_timeout=10) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    try:
        yield _with_path(settings.database_url, f"/{name}")
    finally:
        with psycopg.connect(admin, autocommit=True, connect_timeout=10) as conn:
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


class Planted:
    """Everything this test wrote, so exactly that can be checked and removed."""

    def __init__(self) -> None:
        self.persona = f"ops-backup-{uuid.uuid4().hex[:8]}"
        self.chats = random.sample(range(10**11, 10**12), 3)
        self.users = {chat: chat % 10**9 + 7 for chat in self.chats}
        rng = np.random.default_rng(self.chats[0])
        self.embeddings = {chat: rng.standard_normal(DIM).astype(np.float32) for chat in self.chats}
        self.memory_text = {chat: f"user {chat} keeps bees called Tilly and Moss" for chat in self.chats}
        now = time.time()
        self.snapshots = [
            ConversationSnapshot(
                chat,
                [{"user": f"hi from {chat}", "assistant": "hello, how are the bees?", "at": now - 5}],
                last_activity=now - i,
                turns=4 + i,
                personality_id=self.persona,
            )
            for i, chat in enumerate(self.chats)
        ]


async def _plant_postgres(database_url: str, planted: Planted) -> None:
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute(
            "INSERT INTO personalities (name, description, system_prompt) VALUES (%s, %s, %s)",
            (planted.persona, "backup test persona", f"You are {planted.persona}."),
        )
    pool = await open_pool(database_url, min_size=1, max_size=2)
    try:
        personas = PersonaStore(pool)
        for chat in planted.chats:
            await personas.assign(chat, planted.users[chat], planted.persona, {"nickname": f"n{chat}"})
        await MemoryStore(pool).add_many(
            [
                NewMemory(chat, planted.users[chat], planted.memory_text[chat], planted.embeddings[chat], 0.9)
                for chat in planted.chats
            ]
        )
    finally:
        await pool.close()


def _wipe_postgres(database_url: str, planted: Planted) -> None:
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute("DELETE FROM memories WHERE chat_id = ANY(%s)", (planted.chats,))
        conn.execute("DELETE FROM user_personalities WHERE chat_id = ANY(%s)", (planted.chats,))
        conn.execute("DELETE FROM personalities WHERE name = %s", (planted.persona,))


async def _mirror(redis_url: str, work: Any) -> Any:
    client = aioredis.Redis.from_url(redis_url, socket_timeout=5)
    try:
        return await work(ConversationMirror(client, ttl_s=3600))
    finally:
        await client.aclose()


def _wipe_redis(redis_url: str, planted: Planted) -> None:
    client = redis.Redis.from_url(redis_url)
    try:
        client.delete(*[f"conversation:{chat}" for chat in planted.chats])
        client.zrem("active_conversations", *planted.chats)
    finally:
        client.close()


def _counting_flow(items: list[str], out: list[tuple[str, int]]) -> Dataflow:
    """Counts per key; the count lives in Bytewax state, so only recovery can continue it."""
    flow = Dataflow("ops_backup_probe")
    keyed = op.key_on("key", op.input("inp", flow, TestingSource(items)), lambda item: item)

    def count(state: int | None, _item: str) -> tuple[int, int]:
        total = (state or 0) + 1
        return total, total

    op.output("out", op.stateful_map("count", keyed, count), TestingSink(out))
    return flow


def _tamper(archive: Path, destination: Path) -> None:
    """Flip one byte of the Postgres dump inside an otherwise identical archive."""
    with tarfile.open(archive, "r:gz") as old, tarfile.open(destination, "w:gz") as new:
        for member in old.getmembers():
            data = old.extractfile(member).read()  # type: ignore[union-attr]
            if member.name == "postgres.dump":
                data = data[:-10] + bytes([data[-10] ^ 0xFF]) + data[-9:]
            info = tarfile.TarInfo(member.name)
            info.size = len(data)
            new.addfile(info, io.BytesIO(data))


def test_backup_wipe_restore_brings_everything_back(
    settings: Settings, target_database: str, tmp_path: Path
) -> None:
    planted = Planted()
    source_redis = _with_path(settings.redis_url, f"/{SOURCE_REDIS_DB}")
    target_redis = _with_path(settings.redis_url, f"/{TARGET_REDIS_DB}")
    recovery = tmp_path / "recovery"
    recovery.mkdir()
    init_db_dir(recovery, 3)  # type: ignore[no-untyped-call]
    first_items = ["a", "b", "a", "c", "a"]
    seen: list[tuple[str, int]] = []
    run_main(  # type: ignore[no-untyped-call]
        _counting_flow(first_items, seen),
        epoch_interval=timedelta(seconds=0),
        recovery_config=RecoveryConfig(recovery),  # type: ignore[no-untyped-call]
    )
    assert dict(seen) == {"a": 3, "b": 1, "c": 1}

    runner = CliRunner()
    env = {"REDIS_URL": source_redis, "RECOVERY_DIR": str(recovery), "COLUMNS": "200"}
    try:
        asyncio.run(_plant_postgres(settings.database_url, planted))
        asyncio.run(_mirror(source_redis, lambda m: m.write_many(planted.snapshots)))

        backed_up = runner.invoke(app, ["backup", "--out", str(tmp_path / "out")], env=env)
        assert backed_up.exit_code == 0, backed_up.output
        (archive,) = (tmp_path / "out").glob("tgstream-backup-*.tar.gz")
    finally:
        _wipe_postgres(settings.database_url, planted)
        _wipe_redis(source_redis, planted)
    shutil.rmtree(recovery)
    with psycopg.connect(settings.database_url) as conn:
        row = conn.execute(
            "SELECT count(*) FROM memories WHERE chat_id = ANY(%s)", (planted.chats,)
        ).fetchone()
        assert row == (0,), "wiped"

    restore_args = [
        "restore",
        "--yes",
        "--database-url",
        target_database,
        "--redis-url",
        target_redis,
        "--recovery-dir",
        str(recovery),
    ]
    tampered = tmp_path / "tampered.tar.gz"
    _tamper(archive, tampered)
    refused = runner.invoke(app, [*restore_args[:1], str(tampered), *restore_args[1:]], env=env)
    assert refused.exit_code == 2
    assert "postgres.dump sha256 mismatch" in refused.output
    assert "refusing to restore" in refused.output
    with psycopg.connect(target_database) as conn:
        tables = conn.execute("SELECT count(*) FROM pg_tables WHERE schemaname = 'public'").fetchone()
    assert tables == (0,), "a refused archive changes nothing"
    assert not recovery.exists()

    try:
        restored = runner.invoke(app, [*restore_args[:1], str(archive), *restore_args[1:]], env=env)
        assert restored.exit_code == 0, restored.output
        assert "all integrity checks passed" in restored.output
        _assert_postgres_restored(target_database, planted)
        _assert_redis_restored(target_redis, planted)
        _assert_recovery_resumes(recovery, first_items)
    finally:
        _wipe_redis(target_redis, planted)


def _assert_postgres_restored(database_url: str, planted: Planted) -> None:
    migrate(database_url)  # already current after the restore: nothing to apply, checksums match

    async def check() -> None:
        pool = await open_pool(database_url, min_size=1, max_size=2)
        try:
            resolved = await PersonaStore(pool).resolve_many(planted.chats)
            memories = MemoryStore(pool)
            for chat in planted.chats:
                assignment = resolved[chat]
                assert assignment.persona.name == planted.persona
                assert assignment.persona.system_prompt == f"You are {planted.persona}."
                assert assignment.customizations == {"nickname": f"n{chat}"}
                hits = await memories.search(chat, planted.embeddings[chat], k=3, min_score=0.0, touch=False)
                assert [hit.text for hit in hits] == [planted.memory_text[chat]]
                assert hits[0].relevance == pytest.approx(1.0, abs=1e-5)
        finally:
            await pool.close()

    asyncio.run(check())


def _assert_redis_restored(redis_url: str, planted: Planted) -> None:
    async def read(mirror: ConversationMirror) -> tuple[list[dict[str, Any] | None], list[int]]:
        return [await mirror.read(chat) for chat in planted.chats], await mirror.active(since=0)

    states, active = asyncio.run(_mirror(redis_url, read))
    for snapshot, state in zip(planted.snapshots, states, strict=True):
        assert state is not None
        assert state["turns"] == snapshot.turns
        assert state["personality_id"] == planted.persona
        assert state["context_window"] == snapshot.context_window
        assert state["last_activity"] == pytest.approx(snapshot.last_activity)
    assert set(planted.chats) <= set(active)
    client = redis.Redis.from_url(redis_url)
    try:
        ttls = [client.ttl(f"conversation:{chat}") for chat in planted.chats]
    finally:
        client.close()
    assert all(0 < ttl <= 3600 for ttl in ttls), ttls


def _assert_recovery_resumes(recovery: Path, first_items: list[str]) -> None:
    later: list[tuple[str, int]] = []
    run_main(  # type: ignore[no-untyped-call]
        _counting_flow([*first_items, "a", "c"], later),
        epoch_interval=timedelta(seconds=0),
        recovery_config=RecoveryConfig(recovery),  # type: ignore[no-untyped-call]
    )
    assert later == [("a", 4), ("c", 2)], "the restored partitions resume the counts, not restart them"
