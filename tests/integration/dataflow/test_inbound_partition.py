"""The inbound partitions against real Kafka: one shared consumer, resume offsets, the stall watchdog."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator

import pytest
from confluent_kafka import Producer, TopicPartition

from tgstream.config import Settings
from tgstream.connectors.kafka_partition import REASSIGNED, InboundPartition, SharedReader, SourceRecord

pytestmark = pytest.mark.integration


def _produce(settings: Settings, topic: str, count: int, partition: int = 0) -> None:
    producer = Producer({"bootstrap.servers": settings.kafka_bootstrap_servers})
    for i in range(count):
        producer.produce(topic, key=b"k", value=f"{partition}:{i}".encode(), partition=partition)
    if producer.flush(20) != 0:
        pytest.fail("records were not delivered to Kafka")


def _read(part: InboundPartition, want: int, timeout_s: float = 20.0) -> list[SourceRecord]:
    got: list[SourceRecord] = []
    deadline = time.monotonic() + timeout_s
    while len(got) < want and time.monotonic() < deadline:
        got.extend(part.next_batch())
        time.sleep(0.01)
    return got


@pytest.fixture
def reader_factory(settings: Settings) -> Iterator[Callable[..., SharedReader]]:
    made: list[SharedReader] = []

    def make(topic: str, **options: float) -> SharedReader:
        reader = SharedReader({"bootstrap.servers": settings.kafka_bootstrap_servers}, topic, **options)  # type: ignore[arg-type]
        made.append(reader)
        return reader

    yield make
    for reader in made:
        reader.close()


def test_resumes_right_after_the_last_record_it_returned(
    settings: Settings, topic_factory: Callable[..., str], reader_factory: Callable[..., SharedReader]
) -> None:
    topic = topic_factory("inbound-resume")
    _produce(settings, topic, 20)

    first = InboundPartition(reader_factory(topic), 0, None)
    records = _read(first, 20)
    assert [r.offset for r in records] == list(range(20))
    assert first.snapshot() == 20
    first.close()

    resumed = InboundPartition(reader_factory(topic), 0, 15)
    assert [r.value for r in _read(resumed, 5)] == [f"0:{i}".encode() for i in range(15, 20)]


def test_partitions_sharing_one_consumer_each_get_only_their_records(
    settings: Settings, topic_factory: Callable[..., str], reader_factory: Callable[..., SharedReader]
) -> None:
    topic = topic_factory("inbound-shared", partitions=3)
    for partition in range(3):
        _produce(settings, topic, 10 + partition, partition)
    reader = reader_factory(topic)
    parts = [
        InboundPartition(reader, 0, None),
        InboundPartition(reader, 1, 4),
        InboundPartition(reader, 2, None),
    ]

    got = [_read(part, want) for part, want in zip(parts, (10, 7, 12), strict=True)]

    assert [[r.value for r in records] for records in got] == [
        [f"0:{i}".encode() for i in range(10)],
        [f"1:{i}".encode() for i in range(4, 11)],
        [f"2:{i}".encode() for i in range(12)],
    ]
    assert [part.snapshot() for part in parts] == [10, 11, 12]
    assert reader.positions() == {0: 10, 1: 11, 2: 12}
    assert not any(part.next_batch() for part in parts)
    for part in parts:
        part.close()
    assert reader._consumer is None, "the consumer must close with its last partition"


def test_a_partition_whose_fetching_stalled_is_assigned_again(
    settings: Settings, topic_factory: Callable[..., str], reader_factory: Callable[..., SharedReader]
) -> None:
    """A paused fetcher stands in for librdkafka's stuck one after a broker restart."""
    topic = topic_factory("inbound-stall")
    reader = reader_factory(topic, stall_s=0.5)
    part = InboundPartition(reader, 0, None)
    idle_deadline = time.monotonic() + 1.5
    before = REASSIGNED._value.get()
    while time.monotonic() < idle_deadline:
        assert part.next_batch() == []
        time.sleep(0.05)
    assert REASSIGNED._value.get() == before, "an idle partition with nothing to read was reassigned"

    assert reader._consumer is not None
    reader._consumer.pause([TopicPartition(topic, 0)])
    _produce(settings, topic, 10)
    records = _read(part, 10)
    assert [r.offset for r in records] == list(range(10))
    assert REASSIGNED._value.get() > before
