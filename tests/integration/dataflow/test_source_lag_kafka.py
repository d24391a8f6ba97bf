"""The source lag against the real Kafka: a consumer read the way the source reads (``assign()``, no
group), records produced to a fresh topic, and the gauge equal to produced minus next offset."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator

import pytest
from confluent_kafka import OFFSET_BEGINNING, Consumer, Producer, TopicPartition
from prometheus_client import CollectorRegistry, Gauge

from tgstream.config import Settings
from tgstream.connectors.source_lag import SourceLag, consumer_watermarks

pytestmark = pytest.mark.integration

PRODUCED = {0: 10, 1: 4, 2: 0}
READ = 5


@pytest.fixture
def topic(topic_factory: Callable[..., str], settings: Settings) -> str:
    name = topic_factory("source-lag", partitions=len(PRODUCED))
    produce(settings, name, PRODUCED)
    return name


def produce(settings: Settings, topic: str, counts: dict[int, int]) -> None:
    producer = Producer({"bootstrap.servers": settings.kafka_bootstrap_servers})
    for partition, count in counts.items():
        for i in range(count):
            producer.produce(topic, value=f"{partition}-{i}".encode(), partition=partition)
    assert producer.flush(30) == 0


@pytest.fixture
def consumer(settings: Settings, topic: str) -> Iterator[Consumer]:
    consumer = Consumer(
        {
            "bootstrap.servers": settings.kafka_bootstrap_servers,
            "group.id": "tgstream-unused",
            "enable.auto.commit": "false",
        }
    )
    consumer.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in PRODUCED])
    yield consumer
    consumer.close()


def read(consumer: Consumer, count: int, next_offsets: dict[int, int | None]) -> None:
    """Take ``count`` records, remembering the next offset per partition as the source does."""
    deadline = time.monotonic() + 30
    taken = 0
    while taken < count:
        assert time.monotonic() < deadline, f"read {taken} of {count} records"
        for message in consumer.consume(count - taken, 0.5):
            if message.error() is None:
                next_offsets[message.partition()] = message.offset() + 1
                taken += 1


def settle(lag: SourceLag, expected: dict[int, int]) -> dict[int, int]:
    """Cached watermarks appear with the consumer's fetch responses; give them a few seconds."""
    deadline = time.monotonic() + 20
    while (seen := lag.refresh()) != expected and time.monotonic() < deadline:
        time.sleep(0.2)
    return seen


def expected_lag(produced: dict[int, int], next_offsets: dict[int, int | None]) -> dict[int, int]:
    return {p: n - (next_offsets[p] or 0) for p, n in produced.items()}


def test_lag_is_produced_minus_next_offset_and_follows_new_records(
    settings: Settings, topic: str, consumer: Consumer
) -> None:
    gauge = Gauge("lag_itest", "lag", ["partition"], registry=CollectorRegistry())
    next_offsets: dict[int, int | None] = dict.fromkeys(PRODUCED)
    read(consumer, READ, next_offsets)
    lag = SourceLag(lambda: next_offsets, consumer_watermarks(consumer, topic), gauge=gauge)

    expected = expected_lag(PRODUCED, next_offsets)
    assert sum(expected.values()) == sum(PRODUCED.values()) - READ
    assert settle(lag, expected) == expected
    exposed = {s.labels["partition"]: s.value for m in gauge.collect() for s in m.samples}
    assert exposed == {str(p): float(n) for p, n in expected.items()}

    # New records show up without the source reading: librdkafka keeps fetching in the background.
    produce(settings, topic, {2: 7})
    grown = expected_lag({**PRODUCED, 2: 7}, next_offsets)
    assert settle(lag, grown) == grown

    uncached = consumer_watermarks(consumer, topic, cached=False)(list(PRODUCED))
    assert {p: high for p, (_low, high) in uncached.items()} == {0: 10, 1: 4, 2: 7}
    through_getter = consumer_watermarks(lambda: consumer, topic)(list(PRODUCED))
    assert {p: high for p, (_low, high) in through_getter.items()} == {0: 10, 1: 4, 2: 7}


def test_partitions_the_consumer_has_not_fetched_yet_get_no_value(settings: Settings, topic: str) -> None:
    idle = Consumer({"bootstrap.servers": settings.kafka_bootstrap_servers, "group.id": "tgstream-unused"})
    try:
        assert consumer_watermarks(idle, topic)(list(PRODUCED)) == {}
    finally:
        idle.close()
