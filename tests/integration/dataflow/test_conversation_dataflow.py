"""`tgstream dataflow` as a subprocess against real Kafka, Postgres and Redis with the OpenAI stub.

The stub answers "[<persona>] You said: <last user text> [turn N]", N being the number of user
messages in the prompt, so a reply shows both what it answers and how much context it saw.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pyarrow.dataset as ds
import pytest
from dataflow_harness import (
    FlowTopics,
    Telegram,
    TopicReader,
    answered,
    as_event,
    as_reply,
    flow_env,
    random_chat_id,
    running_dataflow,
)

from tgstream.config import Settings
from tgstream.schemas.arrow import CONVERSATION_EVENTS
from tgstream.schemas.events import ConversationEvent, Reply

pytestmark = pytest.mark.integration

MESSAGE_PARTITIONS = 3


@pytest.fixture
def topics(topic_factory: Callable[..., str]) -> FlowTopics:
    return FlowTopics(
        messages=topic_factory("msgs", partitions=MESSAGE_PARTITIONS),
        responses=topic_factory("replies", partitions=MESSAGE_PARTITIONS),
        events=topic_factory("events", partitions=MESSAGE_PARTITIONS),
        dead_letter=topic_factory("dead", partitions=1),
    )


@pytest.fixture
def telegram(settings: Settings, topics: FlowTopics) -> Telegram:
    return Telegram(settings, topics.messages)


@pytest.fixture
def replies(settings: Settings, topics: FlowTopics) -> Iterator[TopicReader]:
    reader = TopicReader(settings, topics.responses, MESSAGE_PARTITIONS)
    yield reader
    reader.close()


@pytest.fixture
def events(settings: Settings, topics: FlowTopics) -> Iterator[TopicReader]:
    reader = TopicReader(settings, topics.events, MESSAGE_PARTITIONS)
    yield reader
    reader.close()


def wait_for_replies(reader: TopicReader, chat_id: int, count: int, timeout_s: float = 30) -> list[Reply]:
    reader.read_until(lambda rs: len(answered(rs, chat_id)) >= count, timeout_s, as_reply)
    return answered(reader.records, chat_id)


def test_five_turn_conversation_keeps_order_and_context(
    settings: Settings, topics: FlowTopics, tmp_path: Path, telegram: Telegram, replies: TopicReader
) -> None:
    chat = random_chat_id()
    lines = ["hi!", "I had a long day", "work was hectic", "but I made pasta", "good night"]
    with running_dataflow(flow_env(settings, topics, tmp_path), tmp_path / "dataflow.log"):
        for turn, line in enumerate(lines, start=1):
            telegram.say(chat, line)
            telegram.flush()
            got = wait_for_replies(replies, chat, turn)
            assert got[-1].text.endswith(f"You said: {line} [turn {turn}]")
    assert [r.kind for r in got] == ["reply"] * 5
    assert len({r.idempotency_key for r in got}) == 5


def test_200_interleaved_chats_each_get_ordered_replies(
    settings: Settings, topics: FlowTopics, tmp_path: Path, telegram: Telegram, replies: TopicReader
) -> None:
    chats = [random_chat_id() for _ in range(200)]
    lines = ["good morning", "any plans for today?", "I might go hiking"]
    sent: dict[int, list[int]] = {chat: [] for chat in chats}
    with running_dataflow(flow_env(settings, topics, tmp_path), tmp_path / "dataflow.log"):
        for line in lines:
            for chat in chats:
                sent[chat].append(telegram.say(chat, line).update_id)
        telegram.flush()

        def all_answered(records: list[Reply]) -> bool:
            covered = {u for r in records if r.kind == "reply" for u in r.update_ids}
            return all(u in covered for ids in sent.values() for u in ids)

        replies.read_until(all_answered, 90, as_reply)
    for chat in chats:
        mine = answered(replies.records, chat)
        assert [u for r in mine for u in r.update_ids] == sent[chat], (
            f"chat {chat}: each update once, in order"
        )
        # A burst is one turn: the stub sees one user message per reply so far.
        assert mine[-1].text.endswith(f"{lines[-1]} [turn {len(mine)}]")


def test_rate_limit_gives_one_notice_per_window(
    settings: Settings,
    topics: FlowTopics,
    tmp_path: Path,
    telegram: Telegram,
    replies: TopicReader,
    events: TopicReader,
) -> None:
    while time.time() % 60 > 45:  # keep the burst inside one calendar minute window
        time.sleep(1)
    chat = random_chat_id()
    lines = ["one", "two please", "three of them", "four is more", "five alive", "six sticks"]
    with running_dataflow(
        flow_env(settings, topics, tmp_path, RATE_PER_MINUTE="3"), tmp_path / "dataflow.log"
    ):
        for line in lines:
            telegram.say(chat, line)
        telegram.flush()
        events.read_until(lambda es: sum(e.event_type == "rate_limited" for e in es) >= 3, 30, as_event)
        got = wait_for_replies(replies, chat, 2)
    notices = [r for r in got if r.kind == "notice"]
    assert len(notices) == 1, "one polite notice per window, not one per dropped message"
    limited = [e for e in events.records if e.event_type == "rate_limited"]
    assert len(limited) == 3
    assert {e.rate_window for e in limited} == {"minute"}


def test_spam_is_dropped_with_its_score_and_one_notice(
    settings: Settings,
    topics: FlowTopics,
    tmp_path: Path,
    telegram: Telegram,
    replies: TopicReader,
    events: TopicReader,
) -> None:
    chat = random_chat_id()
    links = " ".join(f"http://win{i}.example.biz" for i in range(6))
    with running_dataflow(flow_env(settings, topics, tmp_path), tmp_path / "dataflow.log"):
        telegram.say(chat, f"FREE MONEY CLICK NOW {links}")
        telegram.say(chat, f"FREE MONEY CLICK HERE {links}")
        telegram.say(chat, "sorry, my phone got hacked. how are you?")
        telegram.flush()
        events.read_until(lambda es: any(e.event_type == "reply_out" for e in es), 30, as_event)
        got = wait_for_replies(replies, chat, 2)
    blocked = [e for e in events.records if e.event_type == "spam_blocked"]
    assert len(blocked) == 2
    assert all(e.spam_score >= settings.spam_threshold for e in blocked)
    assert any(reason.startswith("links") for reason in blocked[0].spam_reasons)
    assert [r.kind for r in got] == ["notice", "reply"], "one notice for two spam messages, then the answer"
    assert got[-1].text.endswith("how are you? [turn 1]")


def test_bad_record_goes_to_dead_letter_and_the_flow_goes_on(
    settings: Settings, topics: FlowTopics, tmp_path: Path, telegram: Telegram, replies: TopicReader
) -> None:
    chat = random_chat_id()
    dead = TopicReader(settings, topics.dead_letter, 1)
    with running_dataflow(flow_env(settings, topics, tmp_path), tmp_path / "dataflow.log"):
        telegram.raw(b'{"v": 1, "update_id": "not a number"}')
        telegram.say(chat, "still there?")
        telegram.flush()
        letters = dead.read_until(lambda ls: len(ls) >= 1, 30, lambda m: m)
        got = wait_for_replies(replies, chat, 1)
    dead.close()
    assert letters[0].value() == b'{"v": 1, "update_id": "not a number"}'
    reason = dict(letters[0].headers())["tgstream-error"].decode()
    assert "InboundMessage" in reason
    assert got[0].text.endswith("still there? [turn 1]")


def test_events_reach_kafka_and_parquet_under_the_declared_schema(
    settings: Settings,
    topics: FlowTopics,
    tmp_path: Path,
    telegram: Telegram,
    replies: TopicReader,
    events: TopicReader,
) -> None:
    chats = [random_chat_id() for _ in range(5)]
    with running_dataflow(flow_env(settings, topics, tmp_path), tmp_path / "dataflow.log"):
        for chat in chats:
            telegram.say(chat, "tell me a joke")
        telegram.flush()
        got: list[ConversationEvent] = events.read_until(
            lambda es: sum(e.event_type == "reply_out" for e in es) >= 5, 30, as_event
        )
        parquet_dir = tmp_path / "parquet"
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            files = list(parquet_dir.rglob("*.parquet"))
            if files and ds.dataset(parquet_dir, format="parquet", partitioning="hive").count_rows() >= 5:
                break
            time.sleep(0.5)
    for event in got:
        assert event.received_at <= event.processed_at <= event.llm_started_at <= event.emitted_at  # type: ignore[operator]
    table = ds.dataset(parquet_dir, format="parquet", partitioning="hive").to_table()
    assert table.num_rows >= 5
    file_schema = ds.dataset(next(parquet_dir.rglob("*.parquet")), format="parquet").schema
    assert file_schema.remove_metadata().equals(CONVERSATION_EVENTS.remove_metadata())
    assert set(table.column("event_type").to_pylist()) == {"reply_out"}
