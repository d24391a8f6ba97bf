"""The edge Kafka clients recovering by themselves, against real Kafka: a stuck fetcher, a stuck producer."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Callable

import pytest
from confluent_kafka import Message, Producer, TopicPartition

from tgstream.config import Settings
from tgstream.connectors.kafka_io import (
    AsyncConsumer,
    AsyncProducer,
    KafkaUnavailableError,
    consumer_config,
    producer_config,
)

pytestmark = [pytest.mark.integration, pytest.mark.anyio]


async def _consume(consumer: AsyncConsumer, want: int, timeout_s: float = 20.0) -> list[Message]:
    got: list[Message] = []
    deadline = time.monotonic() + timeout_s
    while len(got) < want and time.monotonic() < deadline:
        got.extend(await consumer.consume(100, 0.2))
    return got


async def test_lag_counts_waiting_records_and_a_fresh_consumer_reads_them(
    settings: Settings, topic_factory: Callable[..., str]
) -> None:
    topic = topic_factory("consumer-stall")
    producer = Producer({"bootstrap.servers": settings.kafka_bootstrap_servers})

    def produce(values: range) -> None:
        for i in values:
            producer.produce(topic, key=b"k", value=str(i).encode())
        assert producer.flush(20) == 0

    revoked: list[list[TopicPartition]] = []
    consumer = AsyncConsumer(
        consumer_config(settings, group_id=f"t-{uuid.uuid4().hex}", client_id="t"),
        [topic],
        on_revoke=revoked.append,
    )
    try:
        await consumer.subscribe()
        produce(range(3))
        first = await _consume(consumer, 3)
        assert [m.value() for m in first] == [b"0", b"1", b"2"]
        await consumer.commit([TopicPartition(topic, 0, 3)])
        assert await consumer.lag() == {(topic, 0): 0}

        # A paused fetcher stands in for librdkafka's stuck one after a broker restart: the
        # partition stays assigned, nothing arrives, records pile up.
        await consumer._run(lambda: consumer._consumer.pause(consumer._consumer.assignment()))
        produce(range(3, 10))
        assert await _consume(consumer, 1, timeout_s=1.0) == []
        assert await consumer.lag() == {(topic, 0): 7}

        await consumer.reconnect()
        assert revoked, "the old consumer handed its partitions back before leaving"
        rest = await _consume(consumer, 7)
        assert [m.value() for m in rest] == [str(i).encode() for i in range(3, 10)]
    finally:
        await asyncio.wait_for(consumer.close(), 30)


async def test_a_producer_that_only_fails_while_the_cluster_answers_is_replaced(
    settings: Settings, topic_factory: Callable[..., str], unique_name: Callable[[str], str]
) -> None:
    """Records for a topic that does not exist (auto-creation is off) stand in for a stuck producer:
    every delivery fails, yet metadata requests succeed."""
    producer = AsyncProducer(
        producer_config(settings, client_id="t-stall", delivery_timeout_s=0.5), stall_s=1.0
    )
    producer.start()
    try:
        with pytest.raises(KafkaUnavailableError):
            await producer.produce(unique_name("missing"), b"lost")
        deadline = time.monotonic() + 15
        while producer.replaced == 0 and time.monotonic() < deadline:
            with pytest.raises(KafkaUnavailableError):
                await producer.produce(unique_name("missing"), b"lost")
        assert producer.replaced >= 1
        topic = topic_factory("producer-after-replace")
        delivered = await producer.produce(topic, b"kept")
        assert (delivered.topic, delivered.offset) == (topic, 0)
    finally:
        await producer.close()
