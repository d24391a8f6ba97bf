"""The dataflow's outbound sink against real Kafka: a failed delivery is retried, never dropped."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable

import pytest
from bytewax.connectors.kafka import KafkaSinkMessage
from confluent_kafka import Consumer, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic
from prometheus_client import REGISTRY

from tgstream.config import Settings
from tgstream.sinks.kafka_checked import CheckedKafkaPartition, OutboundDeliveryError, SharedProducer

pytestmark = pytest.mark.integration


def _config(settings: Settings) -> dict[str, object]:
    # A short timeout so that a record for a missing topic fails within the test.
    return {
        "bootstrap.servers": settings.kafka_bootstrap_servers,
        "enable.idempotence": True,
        "acks": "all",
        "message.timeout.ms": 1500,
        "log_level": 0,
    }


def _read_all(settings: Settings, topic: str, want: int) -> list[bytes]:
    consumer = Consumer(
        {"bootstrap.servers": settings.kafka_bootstrap_servers, "group.id": f"t-{uuid.uuid4().hex}"}
    )
    consumer.assign([TopicPartition(topic, 0, 0)])
    values: list[bytes] = []
    deadline = time.monotonic() + 20
    try:
        while len(values) < want and time.monotonic() < deadline:
            for record in consumer.consume(100, 0.5):
                if record.error() is None:
                    values.append(record.value() or b"")
    finally:
        consumer.close()
    return values


def _retried() -> float:
    return sum(
        sample.value
        for metric in REGISTRY.collect()
        if metric.name == "tgstream_sink_records_retried"
        for sample in metric.samples
        if sample.name.endswith("_total")
    )


def test_records_whose_delivery_failed_are_produced_again(
    settings: Settings, unique_name: Callable[[str], str]
) -> None:
    """The topic does not exist at the first attempt (auto-creation is off); the backoff creates it."""
    topic = unique_name("sink-late")
    admin = AdminClient({"bootstrap.servers": settings.kafka_bootstrap_servers})
    created: list[str] = []

    def create_then_sleep(seconds: float) -> None:
        if not created:
            for future in admin.create_topics([NewTopic(topic, 1, 1)], operation_timeout=20).values():
                future.result(timeout=30)
            created.append(topic)
        time.sleep(seconds)

    before = _retried()
    sink = CheckedKafkaPartition(
        SharedProducer(
            lambda: Producer(_config(settings)), retry_for_s=60, max_backoff_s=1.0, sleep=create_then_sleep
        )
    )
    try:
        sink.write_batch([KafkaSinkMessage(b"k", f"v{i}".encode(), topic=topic) for i in range(5)])
        assert not created, "write_batch only queues; the epoch's snapshot waits for the acks"
        sink.snapshot()
        assert created, "the first attempt should have failed and backed off"
        assert _retried() - before >= 5
        assert _read_all(settings, topic, 5) == [f"v{i}".encode() for i in range(5)]
    finally:
        sink.close()
        if created:
            admin.delete_topics(created)


def test_a_record_the_broker_always_refuses_raises_instead_of_vanishing(
    settings: Settings, topic_factory: Callable[..., str]
) -> None:
    topic = topic_factory("sink-small", config={"max.message.bytes": "1000"})
    sink = CheckedKafkaPartition(
        SharedProducer(lambda: Producer(_config(settings)), retry_for_s=2.0, max_backoff_s=0.2)
    )
    try:
        sink.write_batch([KafkaSinkMessage(b"k", b"ok", topic=topic)])
        sink.snapshot()
        sink.write_batch([KafkaSinkMessage(b"k", b"x" * 5000, topic=topic)])
        with pytest.raises(OutboundDeliveryError, match="unacked"):
            sink.snapshot()
    finally:
        sink.close()
    assert _read_all(settings, topic, 1) == [b"ok"]
