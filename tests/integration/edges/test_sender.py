"""The sender against real Kafka and Redis and the fake Bot API: order, no loss, no dupes, limits."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import pytest
from confluent_kafka import Consumer, Producer, TopicPartition
from redis.asyncio import Redis

from tgstream.config import Settings, load_settings
from tgstream.doubles.telegram_api import FakeTelegramControl, FakeTelegramServer
from tgstream.edges.sender.delivery import DeliveryPolicy
from tgstream.edges.sender.metrics import SenderMetrics
from tgstream.edges.sender.process import SenderOptions, serve
from tgstream.edges.sender.service import LoopOptions
from tgstream.schemas.codec import encode
from tgstream.schemas.events import Reply, idempotency_key
from tgstream.steps.split import utf16_len

pytestmark = [pytest.mark.integration, pytest.mark.anyio]


def reply(
    chat_id: int,
    text: str,
    *,
    n: int,
    kind: str = "reply",
    emitted_at: float | None = None,
    chat_type: str = "private",
) -> Reply:
    now = time.time()
    return Reply(
        idempotency_key=idempotency_key(chat_id, (n,), kind),
        kind=kind,
        chat_id=chat_id,
        chat_type=chat_type,
        text=text,
        update_ids=(n,),
        received_at=now,
        emitted_at=emitted_at if emitted_at is not None else now,
    )


@pytest.fixture
def produce(settings: Settings) -> Callable[[str, list[Reply | bytes]], None]:
    def send(topic: str, records: list[Reply | bytes]) -> None:
        producer = Producer(
            {"bootstrap.servers": settings.kafka_bootstrap_servers, "enable.idempotence": True}
        )
        for record in records:
            if isinstance(record, Reply):
                producer.produce(topic, encode(record), str(record.chat_id).encode())
            else:
                producer.produce(topic, record, b"0")
        assert producer.flush(20) == 0

    return send


class SenderHandle:
    def __init__(self) -> None:
        self.stop = asyncio.Event()
        self.task: asyncio.Task[SenderMetrics] | None = None
        self.metrics = SenderMetrics()

    def assigned(self) -> float:
        return self.metrics.registry.get_sample_value("tgstream_sender_assigned_partitions") or 0

    async def finish(self) -> SenderMetrics:
        self.stop.set()
        assert self.task is not None
        return await asyncio.wait_for(self.task, 60)


@pytest.fixture
def sender_factory(
    settings: Settings, namespace: str, fake_telegram: FakeTelegramServer, unique_name: Callable[[str], str]
) -> Any:
    group = unique_name("sender-group")

    @asynccontextmanager
    async def start(
        topic: str, dlq: str, *, group_id: str | None = None, **limits: float
    ) -> AsyncIterator[SenderHandle]:
        overrides = {
            "telegram_api_url": fake_telegram.url,
            "send_global_per_s": 200.0,
            "send_per_chat_per_s": 20.0,
            **limits,
        }
        run_settings = load_settings(**overrides)
        options = SenderOptions(
            group_id=group_id or group,
            topic=topic,
            dead_letter_topic=dlq,
            namespace=namespace,
            loop=LoopOptions(commit_interval_s=0.2, drain_timeout_s=20),
            policy=DeliveryPolicy(first_backoff_s=0.05, max_backoff_s=0.5),
        )
        handle = SenderHandle()
        started = asyncio.Event()
        handle.task = asyncio.create_task(
            serve(
                run_settings,
                options,
                handle.stop,
                handle_signals=False,
                started=started,
                metrics=handle.metrics,
            )
        )
        await asyncio.wait_for(started.wait(), 20)
        try:
            yield handle
        finally:
            if not handle.task.done():
                await handle.finish()

    return start


async def as_async(value: bool) -> bool:
    return value


async def wait_for_messages(
    control: FakeTelegramControl, count: int, within_s: float = 60
) -> list[dict[str, Any]]:
    deadline = time.monotonic() + within_s
    while time.monotonic() < deadline:
        records = await control.sent(kind="message")
        if len(records) >= count:
            await asyncio.sleep(0.5)
            return await control.sent(kind="message")
        await asyncio.sleep(0.1)
    pytest.fail(f"only {len(await control.sent(kind='message'))} of {count} messages arrived")


def committed_offsets(settings: Settings, topic: str, group: str, partitions: int) -> list[int]:
    consumer = Consumer({"bootstrap.servers": settings.kafka_bootstrap_servers, "group.id": group})
    try:
        found = consumer.committed([TopicPartition(topic, p) for p in range(partitions)], timeout=10)
        return [tp.offset for tp in found]
    finally:
        consumer.close()


def end_offsets(settings: Settings, topic: str, partitions: int) -> list[int]:
    consumer = Consumer({"bootstrap.servers": settings.kafka_bootstrap_servers, "group.id": "probe"})
    try:
        return [
            consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=10)[1] for p in range(partitions)
        ]
    finally:
        consumer.close()


async def test_per_chat_order_under_injected_429s_and_5xx_without_loss_or_duplicates(
    sender_factory: Any,
    control: FakeTelegramControl,
    topic_factory: Callable[..., str],
    produce: Any,
    chat_ids: Callable[[int], list[int]],
    settings: Settings,
    unique_name: Callable[[str], str],
) -> None:
    topic, dlq = topic_factory("snd", partitions=3), topic_factory("snd-dlq")
    chats = chat_ids(6)
    await control.set_faults(
        [
            {"error": 429, "retry_after": 1, "chat_ids": chats[:2], "times": 3},
            {"error": 502, "probability": 0.15},
        ]
    )
    replies = [reply(c, f"{c}#{i}", n=i) for i in range(5) for c in chats]
    produce(topic, replies)
    group = unique_name("order")
    async with sender_factory(topic, dlq, group_id=group) as sender:
        sent = await wait_for_messages(control, len(replies))
        metrics = await sender.finish()
    texts = [r["visible_text"] for r in sent]
    assert sorted(texts) == sorted(r.text for r in replies), "no loss, no duplicates"
    for chat in chats:
        assert [r["visible_text"] for r in sent if r["chat_id"] == chat] == [f"{chat}#{i}" for i in range(5)]
    stats = await control.stats()
    assert stats["violations"]["chat"] == 0, "a paused chat was not sent to before retry_after passed"
    assert metrics.registry.get_sample_value("tgstream_sender_429_total", {"scope": "chat"}) == 3
    # Every record is committed; a partition that got no record has no commit (-1001).
    committed = committed_offsets(settings, topic, group, 3)
    assert [max(c, 0) for c in committed] == end_offsets(settings, topic, 3)


async def test_long_and_html_hostile_replies_arrive_split_and_valid(
    sender_factory: Any,
    control: FakeTelegramControl,
    topic_factory: Callable[..., str],
    produce: Any,
    chat_ids: Callable[[int], list[int]],
) -> None:
    topic, dlq = topic_factory("snd-long"), topic_factory("snd-long-dlq")
    [chat, fallback_chat] = chat_ids(2)
    hostile = "<b>not a tag</b> & &amp; 1<2 > 0 😀 Sentence ends here. "
    long_text = (hostile * 40 + "\n\n") * 5
    await control.set_faults(
        [
            {
                "error": 400,
                "description": "Bad Request: can't parse entities: injected",
                "chat_ids": [fallback_chat],
                "times": 1,
            }
        ]
    )
    produce(topic, [reply(chat, long_text, n=1), reply(fallback_chat, "plain <i>after</i> fallback", n=2)])
    expected_parts = -(-utf16_len(long_text.strip()) // 4096)
    async with sender_factory(topic, dlq):
        sent = await wait_for_messages(control, expected_parts + 1)
    mine = [r for r in sent if r["chat_id"] == chat]
    assert len(mine) >= expected_parts
    assert all(utf16_len(r["visible_text"]) <= 4096 for r in mine)
    assert all(r["parse_mode"] == "HTML" for r in mine)
    assert "".join("".join(r["visible_text"].split()) for r in mine) == "".join(long_text.split())
    [fallback] = [r for r in sent if r["chat_id"] == fallback_chat]
    assert (fallback["parse_mode"], fallback["visible_text"]) == (None, "plain <i>after</i> fallback")


async def test_replayed_replies_are_not_sent_twice(
    sender_factory: Any,
    control: FakeTelegramControl,
    topic_factory: Callable[..., str],
    produce: Any,
    chat_ids: Callable[[int], list[int]],
    unique_name: Callable[[str], str],
) -> None:
    topic, dlq = topic_factory("snd-dup"), topic_factory("snd-dup-dlq")
    chats = chat_ids(3)
    replies = [reply(c, f"once {c}", n=7) for c in chats]
    produce(topic, [*replies, replies[0]])
    async with sender_factory(topic, dlq):
        await wait_for_messages(control, len(replies))
    # A replica in a fresh consumer group re-reads everything, as after a crash before commit.
    async with sender_factory(topic, dlq, group_id=unique_name("replay")) as replay:
        await asyncio.sleep(2)
        metrics = await replay.finish()
    assert len(await control.sent(kind="message")) == len(replies)
    assert (
        metrics.registry.get_sample_value(
            "tgstream_sender_replies_total", {"kind": "reply", "result": "duplicate"}
        )
        == len(replies) + 1
    )


async def test_blocked_chat_and_bad_records_go_to_the_dead_letter_topic(
    sender_factory: Any,
    control: FakeTelegramControl,
    topic_factory: Callable[..., str],
    produce: Any,
    chat_ids: Callable[[int], list[int]],
    read_topic: Any,
    settings: Settings,
    namespace: str,
) -> None:
    topic, dlq = topic_factory("snd-dead"), topic_factory("snd-dead-dlq")
    blocked, fine = chat_ids(2)
    await control.set_faults([], blocked_chat_ids=[blocked])
    produce(topic, [reply(blocked, "hello?", n=1), b"{not json", reply(fine, "still delivered", n=2)])
    async with sender_factory(topic, dlq):
        sent = await wait_for_messages(control, 1)
    assert [r["visible_text"] for r in sent] == ["still delivered"]
    dead = await asyncio.to_thread(read_topic, dlq, expect=2)
    reasons = sorted(dict(r.headers())["tgstream-error"].decode() for r in dead)
    assert reasons[0] == "blocked_by_user"
    assert reasons[1].startswith("undecodable")
    redis = Redis.from_url(settings.redis_url)
    try:
        assert await redis.sismember(f"{namespace}:inactive_chats", str(blocked))
    finally:
        await redis.aclose()


async def test_typing_actions_never_delay_or_follow_replies(
    sender_factory: Any,
    control: FakeTelegramControl,
    topic_factory: Callable[..., str],
    produce: Any,
    chat_ids: Callable[[int], list[int]],
) -> None:
    topic, dlq = topic_factory("snd-typing"), topic_factory("snd-typing-dlq")
    fresh, stale = chat_ids(2)
    produce(
        topic,
        [
            reply(fresh, "", n=1, kind="typing"),
            reply(stale, "", n=2, kind="typing", emitted_at=time.time() - 60),
            reply(stale, "answer", n=2),
        ],
    )
    async with sender_factory(topic, dlq):
        await wait_for_messages(control, 1)
        await asyncio.sleep(0.5)
    records = await control.sent()
    assert [(r["chat_id"], r["kind"]) for r in records if r["chat_id"] == stale] == [(stale, "message")]
    assert [(r["kind"], r["action"]) for r in records if r["chat_id"] == fresh] == [("action", "typing")]


async def test_two_replicas_together_stay_within_the_global_rate(
    sender_factory: Any,
    control: FakeTelegramControl,
    topic_factory: Callable[..., str],
    produce: Any,
    chat_ids: Callable[[int], list[int]],
    unique_name: Callable[[str], str],
    eventually: Any,
) -> None:
    rate = 10.0
    topic, dlq = topic_factory("snd-rate", partitions=4), topic_factory("snd-rate-dlq")
    chats = chat_ids(60)
    group = unique_name("rate")
    async with (
        sender_factory(topic, dlq, group_id=group, send_global_per_s=rate) as one,
        sender_factory(topic, dlq, group_id=group, send_global_per_s=rate) as two,
    ):
        # Produce only once both replicas own partitions, or the first would take everything.
        await eventually(lambda: as_async(min(one.assigned(), two.assigned()) > 0), 60)
        produce(topic, [reply(c, f"hi {c}", n=1) for c in chats])
        sent = await wait_for_messages(control, len(chats))
        metrics = [await one.finish(), await two.finish()]
    per_replica = [
        m.registry.get_sample_value("tgstream_sender_messages_total", {"parse_mode": "HTML"}) or 0
        for m in metrics
    ]
    assert sum(per_replica) == len(chats)
    assert all(n > 0 for n in per_replica), f"both replicas should have sent: {per_replica}"
    times = sorted(r["mono"] for r in sent)
    burst = rate  # the bucket holds one second of tokens
    window = 2.0
    for i, start in enumerate(times):
        in_window = sum(1 for t in times[i:] if t < start + window)
        assert in_window <= burst + rate * window + 2, f"{in_window} sends within {window}s"
    elapsed = times[-1] - times[0]
    assert elapsed >= (len(chats) - burst) / rate * 0.9
