"""Erase one Telegram user (``tgstream forget --user ID``): Postgres now, Redis now, Parquet by tombstone.

What is removed, and why this way:

- Postgres: the user's memories, facts and persona assignments, in one transaction, so a crash
  never leaves half a user.
- Redis: the conversation mirror, adapted traits and ``active_conversations`` entry of every chat
  the user is known in (the chats of their Postgres rows, plus their private chat, whose id is
  their user id). A group chat's mirror holds other members' turns too; it is dropped whole,
  because the mirror is only a cache of the dataflow's state and erasure must not be partial.
  The user id is also added to the ``forgotten_users`` set: a tombstone for later readers.
- Dataflow state: the context windows live in the dataflow (and its recovery snapshots), which
  has one owner per chat. So the erasure goes through the stream: one ``erase_user`` record per
  chat on the inbound topic, keyed like the chat's messages, so the dataflow handles it after
  everything the user said there, drops their turns and the rolling summary, rewrites the Redis
  mirror, and its next snapshot no longer holds them. Nobody is answered.
- Parquet: files are immutable and may be read while we run, so the user's salted hash is
  appended to ``<parquet_dir>/_tombstones/users.txt`` (pyarrow and DuckDB globs skip ``_`` names)
  and :mod:`tgstream.ops.parquet_compact` rewrites the affected files without those rows.

Dedupe markers are update ids, not personal data, and are left to expire.
"""

from __future__ import annotations

import asyncio
import os
import time
from dataclasses import dataclass, field
from pathlib import Path

from confluent_kafka import Producer
from redis.asyncio import Redis
from redis.exceptions import RedisError

from tgstream.connectors.postgres import Pool, connection
from tgstream.schemas.codec import encode
from tgstream.schemas.events import erase_request
from tgstream.state.adaptations import KEY_PREFIX as ADAPTATION_PREFIX
from tgstream.state.conversation_mirror import ACTIVE_KEY, USER_CHATS_PREFIX
from tgstream.steps.privacy import hash_id

FORGOTTEN_USERS_KEY = "forgotten_users"
TOMBSTONE_FILE = Path("_tombstones") / "users.txt"

_CHATS_SQL = """
SELECT chat_id FROM memories WHERE user_id = %(u)s
UNION SELECT chat_id FROM facts WHERE user_id = %(u)s
UNION SELECT chat_id FROM user_personalities WHERE user_id = %(u)s
"""


class ForgetError(Exception):
    """A store could not be reached; nothing after it was attempted, so the command can be rerun."""


@dataclass
class ForgetReport:
    user_id: int
    chats: list[int] = field(default_factory=list)
    memories: int = 0
    facts: int = 0
    assignments: int = 0
    redis_keys: int = 0
    user_hash: str = ""


def tombstone_path(parquet_dir: Path) -> Path:
    return parquet_dir / TOMBSTONE_FILE


def read_tombstones(parquet_dir: Path) -> set[str]:
    path = tombstone_path(parquet_dir)
    if not path.exists():
        return set()
    return {line.strip() for line in path.read_text().splitlines() if line.strip()}


def add_tombstone(parquet_dir: Path, user_hash: str) -> None:
    """Append (idempotently) and fsync, so a crash after the Postgres delete still leaves the tombstone."""
    if user_hash in read_tombstones(parquet_dir):
        return
    path = tombstone_path(parquet_dir)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as out:
        out.write(user_hash + "\n")
        out.flush()
        os.fsync(out.fileno())


async def forget_postgres(pool: Pool, user_id: int, report: ForgetReport) -> None:
    async with connection(pool) as conn, conn.transaction():
        cur = await conn.execute(_CHATS_SQL, {"u": user_id})
        report.chats = sorted({int(row[0]) for row in await cur.fetchall()} | {user_id})
        report.memories = (await conn.execute("DELETE FROM memories WHERE user_id = %s", [user_id])).rowcount
        report.facts = (await conn.execute("DELETE FROM facts WHERE user_id = %s", [user_id])).rowcount
        report.assignments = (
            await conn.execute("DELETE FROM user_personalities WHERE user_id = %s", [user_id])
        ).rowcount


async def chats_in_redis(client: Redis, user_id: int, prefix: str = "") -> set[int]:
    """The chats whose live context window holds the user's turns (the dataflow indexes them)."""
    try:
        members = await client.smembers(f"{prefix}{USER_CHATS_PREFIX}{user_id}")
    except RedisError as exc:
        raise ForgetError(f"Redis: {exc}") from exc
    return {int(m) for m in members}


async def forget_redis(
    client: Redis, user_id: int, chats: list[int], report: ForgetReport, prefix: str = ""
) -> None:
    pipe = client.pipeline(transaction=True)
    pipe.delete(f"{prefix}{USER_CHATS_PREFIX}{user_id}")
    pipe.sadd(f"{prefix}{FORGOTTEN_USERS_KEY}", str(user_id))
    for chat in chats:
        pipe.delete(f"{prefix}conversation:{chat}", f"{prefix}{ADAPTATION_PREFIX}{chat}")
        pipe.zrem(f"{prefix}{ACTIVE_KEY}", str(chat))
    try:
        results = await pipe.execute()
    except RedisError as exc:
        raise ForgetError(f"Redis: {exc}") from exc
    report.redis_keys = int(results[0]) + sum(int(r) for r in results[2::2])


def request_dataflow_erasure(
    kafka_config: dict[str, object], topic: str, user_id: int, chats: list[int], *, now: float
) -> None:
    """One ``erase_user`` record per chat on the inbound topic, acked by Kafka, or ForgetError."""
    producer = Producer({**kafka_config, "enable.idempotence": True, "acks": "all"})
    failed: list[str] = []

    def report(err: object, _msg: object) -> None:
        if err is not None:
            failed.append(str(err))

    for index, chat in enumerate(chats):
        record = erase_request(chat, user_id, now=now, index=index)
        producer.produce(topic, encode(record), str(chat).encode(), on_delivery=report)
    if producer.flush(30) > 0 or failed:
        raise ForgetError(f"Kafka: erase requests not acknowledged ({failed[:1] or 'timed out'})")


async def forget_user(
    pool: Pool,
    client: Redis,
    user_id: int,
    *,
    parquet_dir: Path,
    salt: bytes,
    redis_prefix: str = "",
    kafka: tuple[dict[str, object], str] | None = None,
) -> ForgetReport:
    """Erase ``user_id`` everywhere; rerunnable (every step is idempotent) after a partial failure.

    The Parquet tombstone is written first, so whatever fails later, the next compaction drops
    the user's analytics rows.
    """
    report = ForgetReport(user_id=user_id, user_hash=hash_id(user_id, salt))
    add_tombstone(parquet_dir, report.user_hash)
    await forget_postgres(pool, user_id, report)
    report.chats = sorted(set(report.chats) | await chats_in_redis(client, user_id, redis_prefix))
    await forget_redis(client, user_id, report.chats, report, prefix=redis_prefix)
    if kafka is not None:
        config, topic = kafka
        await asyncio.to_thread(
            request_dataflow_erasure, config, topic, user_id, report.chats, now=time.time()
        )
    return report
