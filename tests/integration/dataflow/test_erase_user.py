"""`tgstream forget --user` reaches the dataflow's own state: context windows, summary, mirror, snapshots.

A user talks in their private chat and in a group with a bystander; the CLI runs as a real
subprocess against the running dataflow (real Kafka, Postgres, Redis, the OpenAI stub). The stub
answers "... [turn N]" with N the user messages in its prompt, so a reply shows how much context
survived.
"""

from __future__ import annotations

import sqlite3
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import orjson
import pytest
import redis
from dataflow_harness import (
    FlowTopics,
    Telegram,
    TopicReader,
    answered,
    as_reply,
    flow_env,
    random_chat_id,
    running_dataflow,
)

from tgstream.config import Settings
from tgstream.schemas.events import Reply

pytestmark = pytest.mark.integration


@pytest.fixture
def topics(topic_factory: Callable[..., str]) -> FlowTopics:
    return FlowTopics(
        messages=topic_factory("erase-msgs", partitions=2),
        responses=topic_factory("erase-replies", partitions=2),
        events=topic_factory("erase-events", partitions=2),
        dead_letter=topic_factory("erase-dead", partitions=1),
    )


@pytest.fixture
def replies(settings: Settings, topics: FlowTopics) -> Iterator[TopicReader]:
    reader = TopicReader(settings, topics.responses, 2)
    yield reader
    reader.close()


def _next_reply(replies: TopicReader, chat: int, count: int) -> Reply:
    replies.read_until(lambda rs: len(answered(rs, chat)) >= count, 30, as_reply)
    return answered(replies.records, chat)[count - 1]


def _recovery_bytes(directory: Path) -> bytes:
    return b"".join(path.read_bytes() for path in sorted(directory.rglob("*")) if path.is_file())


def _live_snapshots(directory: Path) -> list[bytes]:
    """Every snapshot Bytewax would resume from (opened read-only beside the running dataflow)."""
    blobs: list[bytes] = []
    for path in sorted(directory.glob("part-*.sqlite3")):
        conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=10)
        try:
            blobs.extend(row[0] for row in conn.execute("SELECT ser_change FROM snaps") if row[0])
        finally:
            conn.close()
    return blobs


def test_forget_user_drops_their_turns_from_live_state_and_snapshots(
    settings: Settings, topics: FlowTopics, tmp_path: Path, replies: TopicReader
) -> None:
    user, bystander, group = random_chat_id(), random_chat_id(), -random_chat_id()
    secret = f"zebra-{uuid.uuid4().hex[:8]}"
    telegram = Telegram(settings, topics.messages)
    env = flow_env(settings, topics, tmp_path)
    client = redis.Redis.from_url(settings.redis_url)
    try:
        with running_dataflow(env, tmp_path / "dataflow.log"):
            telegram.say(user, f"my locker code is {secret}")
            telegram.flush()
            assert _next_reply(replies, user, 1).text.endswith("[turn 1]")
            telegram.say(group, f"in the group: {secret}", user_id=user)
            telegram.flush()
            _next_reply(replies, group, 1)
            telegram.say(group, "hello from the bystander", user_id=bystander, first_name="Bob")
            telegram.flush()
            assert _next_reply(replies, group, 2).text.endswith("[turn 2]")
            time.sleep(2.5)  # two snapshot intervals: the secret is in the recovery store now
            assert secret.encode() in _recovery_bytes(tmp_path / "recovery")

            done = subprocess.run(
                [sys.executable, "-m", "tgstream", "forget", "--user", str(user), "--skip-compact"],
                env=env,
                capture_output=True,
                text=True,
                timeout=120,
                check=False,
            )
            assert done.returncode == 0, done.stdout + done.stderr
            assert "erasure sent to the dataflow" in done.stdout

            # The group now holds only the bystander's turn; the private chat starts afresh.
            telegram.say(group, "still here", user_id=bystander, first_name="Bob")
            telegram.flush()
            assert _next_reply(replies, group, 3).text.endswith("You said: still here [turn 2]")
            telegram.say(user, "hello again")
            telegram.flush()
            assert _next_reply(replies, user, 2).text.endswith("[turn 1]")

            mirror = client.hget(f"conversation:{group}", "context_window") or b""
            assert b"bystander" in mirror
            assert b"still here" in mirror
            assert secret.encode() not in mirror
            assert secret.encode() not in (client.hget(f"conversation:{user}", "context_window") or b"")
            time.sleep(2.5)
            held = [blob for blob in _live_snapshots(tmp_path / "recovery") if secret.encode() in blob]
            assert not held, "a snapshot the dataflow would resume from still holds the erased text"
            assert all(secret not in orjson.dumps(r.model_dump()).decode() for r in replies.records[-2:])

        # Stopped: the free page space of the SQLite files is rewritten too.
        done = subprocess.run(
            [sys.executable, "-m", "tgstream", "recovery", "vacuum", "--dir", str(tmp_path / "recovery")],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert done.returncode == 0, done.stdout + done.stderr
        assert secret.encode() not in _recovery_bytes(tmp_path / "recovery")
    finally:
        client.delete(f"conversation:{group}", f"conversation:{user}", f"conversation:{bystander}")
        client.close()
