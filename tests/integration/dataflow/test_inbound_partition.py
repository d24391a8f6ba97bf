"""The inbound partition against real Kafka: resume offsets and the stall watchdog."""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest
from confluent_kafka import Producer, TopicPartition

from tgstream.config import Settings
from tgstream.connectors.kafka_partition import REASSIGNED, InboundPartition, SourceRecord

pytestmark = pytest.mark.integration


def _produce(settings: Settings, topic: str, count: int) -> None:
    producer = Producer({"bootstrap.servers": settings.kafka_bootstrap_servers})
    for i in range(count):
        producer.produce(topic, key=b"k", value=str(i).encode())
    if producer.flush(20) != 0:
        pytest.fail("records were not delivered to Kafka")


def _read(part: InboundPartition, want: int, timeout_s: float = 20.0) -> list[SourceRecord]:
    got: list[SourceRecord] = []
    deadline = time.monotonic() + timeout_s
    while len(got) < want and time.monotonic() < deadline:
        got.extend(part.next_batch())
        time.sleep(0.01)
    return got


def test_resumes_right_after_the_last_record_it_returned(
    settings: Settings, topic_factory: Callable[..., str]
) -> None:
    topic = topic_factory("inbound-resume")
    _produce(settings, topic, 20)
    config = {"bootstrap.servers": settings.kafka_bootstrap_servers}

    first = InboundPartition(config, topic, 0, None)
    try:
        records = _read(first, 20)
        assert [r.offset for r in records] == list(range(20))
        assert first.snapshot() == 20
    finally:
        first.close()

    resumed = InboundPartition(config, topic, 0, 15)
    try:
        assert [r.value for r in _read(resumed, 5)] == [str(i).encode() for i in range(15, 20)]
    finally:
        resumed.close()


def test_a_partition_whose_fetching_stalled_is_assigned_again(
    settings: Settings, topic_factory: Callable[..., str]
) -> None:
    """A paused fetcher stands in for librdkafka's stuck one after a broker restart."""
    topic = topic_factory("inbound-stall")
    config = {"bootstrap.servers": settings.kafka_bootstrap_servers}
    part = InboundPartition(config, topic, 0, None, stall_s=0.5)
    try:
        idle_deadline = time.monotonic() + 1.5
        before = REASSIGNED._value.get()
        while time.monotonic() < idle_deadline:
            assert part.next_batch() == []
            time.sleep(0.05)
        assert REASSIGNED._value.get() == before, "an idle partition with nothing to read was reassigned"

        part._consumer.pause([TopicPartition(topic, 0)])
        _produce(settings, topic, 10)
        records = _read(part, 10)
        assert [r.offset for r in records] == list(range(10))
        assert REASSIGNED._value.get() > before
    finally:
        part.close()
