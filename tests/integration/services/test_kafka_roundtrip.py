from __future__ import annotations

import time
from collections.abc import Callable

import pytest
from confluent_kafka import Consumer, Producer

from tgstream.config import Settings

pytestmark = pytest.mark.integration


def test_message_comes_back_intact_with_key_and_headers(
    settings: Settings, topic_factory: Callable[..., str], unique_name: Callable[[str], str]
) -> None:
    topic = topic_factory("roundtrip", partitions=3)
    key, value = b"123456789012", "héllo wörld ✓".encode()
    headers: list[tuple[str, str | bytes | None]] = [("source", b"test"), ("update_id", b"42")]
    producer = Producer({"bootstrap.servers": settings.kafka_bootstrap_servers, "enable.idempotence": True})
    producer.produce(topic, value=value, key=key, headers=headers)
    assert producer.flush(30) == 0

    consumer = Consumer(
        {
            "bootstrap.servers": settings.kafka_bootstrap_servers,
            "group.id": unique_name("roundtrip-group"),
            "auto.offset.reset": "earliest",
        }
    )
    consumer.subscribe([topic])
    try:
        deadline = time.monotonic() + 30
        message = None
        while time.monotonic() < deadline:
            message = consumer.poll(1.0)
            if message is not None and message.error() is None:
                break
        assert message is not None, "no message within 30 s"
        assert message.error() is None
        assert message.key() == key
        assert message.value() == value
        assert message.headers() == headers
    finally:
        consumer.close()
