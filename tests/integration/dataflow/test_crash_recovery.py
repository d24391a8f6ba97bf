"""SIGKILL the dataflow mid-stream and start it again: every input is answered, and a reply that
appears twice on the topic carries the same idempotency key (and answers the same updates)."""

from __future__ import annotations

import random
import threading
import time
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path

import pytest
from dataflow_harness import (
    DataflowProcess,
    FlowTopics,
    Telegram,
    TopicReader,
    as_reply,
    flow_env,
    random_chat_id,
)

from tgstream.config import Settings
from tgstream.schemas.events import Reply

pytestmark = [pytest.mark.integration, pytest.mark.slow]

PARTITIONS = 3
LINES = ("hey", "how are you?", "I saw a fox today", "it was orange", "then it ran off", "bye for now")


def test_sigkill_mid_stream_then_restart_answers_everything_once_per_key(
    settings: Settings, topic_factory: Callable[..., str], tmp_path: Path
) -> None:
    topics = FlowTopics(
        topic_factory("msgs", partitions=PARTITIONS),
        topic_factory("replies", partitions=PARTITIONS),
        topic_factory("events", partitions=PARTITIONS),
        topic_factory("dead"),
    )
    telegram = Telegram(settings, topics.messages)
    replies = TopicReader(settings, topics.responses, PARTITIONS)
    env = flow_env(settings, topics, tmp_path)
    chats = [random_chat_id() for _ in range(40)]
    sent: list[int] = []
    rng = random.Random(3)

    def produce() -> None:
        # Messages keep arriving at irregular gaps across the crash, so bursts form differently.
        for line in LINES:
            for chat in chats:
                sent.append(telegram.say(chat, line).update_id)
            telegram.flush()
            time.sleep(rng.uniform(0.2, 0.8))

    first = DataflowProcess(env, tmp_path / "dataflow-1.log").start()
    producer = threading.Thread(target=produce)
    producer.start()
    try:
        replies.read_until(lambda rs: sum(r.kind == "reply" for r in rs) >= 60, 60, as_reply)
        first.kill()
        producer.join(timeout=30)
        second = DataflowProcess(env, tmp_path / "dataflow-2.log").start()
        try:

            def all_answered(records: list[Reply]) -> bool:
                covered = {u for r in records if r.kind == "reply" for u in r.update_ids}
                return covered.issuperset(sent)

            replies.read_until(all_answered, 120, as_reply)
            time.sleep(2)  # let any late duplicate land before judging
            replies.read_until(lambda rs: True, 5, as_reply)
        finally:
            second.stop()
    finally:
        first.kill()
        producer.join(timeout=30)
        replies.close()

    answers = [r for r in replies.records if r.kind == "reply"]
    by_key: dict[str, set[tuple[int, ...]]] = defaultdict(set)
    keys_per_update: dict[int, set[str]] = defaultdict(set)
    for reply in answers:
        by_key[reply.idempotency_key].add(reply.update_ids)
        for update_id in reply.update_ids:
            keys_per_update[update_id].add(reply.idempotency_key)
    assert set(keys_per_update) == set(sent), "every input answered"
    assert all(len(groups) == 1 for groups in by_key.values()), "one key always answers the same updates"
    doubly = {u: keys for u, keys in keys_per_update.items() if len(keys) > 1}
    assert not doubly, f"updates answered under two different keys: {doubly}"
