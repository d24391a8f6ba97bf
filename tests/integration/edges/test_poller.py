"""The poller against the fake Bot API, real Kafka and Redis: a restart neither loses nor repeats."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import pytest
import telegram
from redis.asyncio import Redis

from tgstream.config import Settings
from tgstream.connectors.kafka_io import AsyncProducer, producer_config
from tgstream.doubles.telegram_api import FakeTelegramControl, FakeTelegramServer
from tgstream.edges.inbound import Ingestor
from tgstream.edges.poller import OffsetStore, Poller
from tgstream.schemas.codec import decode
from tgstream.schemas.events import InboundMessage
from tgstream.state.dedupe import UpdateDedupe

pytestmark = [pytest.mark.integration, pytest.mark.anyio]
BATCH = 7


class CrashBeforeSave(OffsetStore):
    """Stands in for a crash between the Kafka acks and the offset write: save never completes."""

    def __init__(self, redis: Redis, *, namespace: str) -> None:
        super().__init__(redis, namespace=namespace)
        self.reached = asyncio.Event()

    async def save(self, offset: int) -> None:
        self.reached.set()
        await asyncio.Event().wait()


@pytest.fixture
def poller_factory(settings: Settings, namespace: str, fake_telegram: FakeTelegramServer) -> Any:
    @asynccontextmanager
    async def make(
        topic: str, offsets_cls: type[OffsetStore] = OffsetStore
    ) -> AsyncIterator[tuple[Poller, OffsetStore]]:
        producer = AsyncProducer(producer_config(settings, client_id="test-poller"))
        producer.start()
        redis = Redis.from_url(settings.redis_url)
        dedupe = UpdateDedupe(redis, namespace=namespace, ttl_s=settings.dedupe_ttl_s, claim_ttl_s=10)
        ingestor = Ingestor(producer, dedupe, topic=topic, dead_letter_topic=topic + "-dlq", origin="poller")
        offsets = offsets_cls(redis, namespace=namespace)
        bot = telegram.Bot(
            settings.telegram_bot_token.get_secret_value(), base_url=f"{fake_telegram.url}/bot"
        )
        try:
            async with bot:
                yield Poller(bot, ingestor, offsets, limit=BATCH, poll_timeout_s=1), offsets
        finally:
            await producer.close()
            await redis.aclose()

    return make


async def _texts(read_topic: Any, topic: str, expect: int) -> list[str]:
    records = await asyncio.to_thread(read_topic, topic, expect=expect)
    return [decode(InboundMessage, r.value()).text for r in records]


async def test_poller_restarts_neither_lose_nor_repeat(
    poller_factory: Any,
    control: FakeTelegramControl,
    topic_factory: Callable[..., str],
    read_topic: Any,
    chat_ids: Callable[[int], list[int]],
    eventually: Any,
) -> None:
    async def drained(offsets: OffsetStore) -> bool:
        return (await control.stats())["pending_updates"] == 0 and await offsets.load() is not None

    topic = topic_factory("poll", partitions=2)
    chats = chat_ids(3)
    first = [{"chat_id": c, "text": f"a{i}-{c}"} for i in range(5) for c in chats]
    await control.send_user_messages(first)

    # Run 1: stop cleanly once everything queued so far was taken.
    async with poller_factory(topic) as (poller, offsets):
        stop = asyncio.Event()
        task = asyncio.create_task(poller.run(stop))
        await eventually(lambda: drained(offsets))
        stop.set()
        await asyncio.wait_for(task, 10)

    # Run 2 "crashes" after producing a batch but before storing its offset.
    second = [{"chat_id": c, "text": f"b{i}-{c}"} for i in range(4) for c in chats]
    await control.send_user_messages(second)
    async with poller_factory(topic, CrashBeforeSave) as (poller, offsets):
        task = asyncio.create_task(poller.run(asyncio.Event()))
        await asyncio.wait_for(offsets.reached.wait(), 10)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    # Run 3 gets that batch again from Telegram (it was never confirmed) and must drop it.
    async with poller_factory(topic) as (poller, offsets):
        stop = asyncio.Event()
        task = asyncio.create_task(poller.run(stop))
        await eventually(lambda: drained(offsets))
        await asyncio.sleep(0.3)
        stop.set()
        await asyncio.wait_for(task, 10)
        duplicates = poller.metrics.registry.get_sample_value(
            "tgstream_poller_updates_total", {"outcome": "duplicate"}
        )
        assert duplicates == BATCH, "the batch produced before the crash came back and was dropped"

    texts = await _texts(read_topic, topic, len(first) + len(second))
    assert sorted(texts) == sorted(m["text"] for m in first + second)
    for chat in chats:
        assert [t for t in texts if t.endswith(f"-{chat}")] == [f"a{i}-{chat}" for i in range(5)] + [
            f"b{i}-{chat}" for i in range(4)
        ]
