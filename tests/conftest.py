"""Shared fixtures. Integration tests talk to the real services that `tgstream dev up` started.

A service that is not reachable fails the test loudly with the command to run; nothing is
skipped and nothing is mocked.
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Callable, Iterator

import pytest

from tgstream.config import Settings, load_settings


@pytest.fixture(scope="session")
def settings() -> Settings:
    return load_settings()


@pytest.fixture
def unique_name() -> Callable[[str], str]:
    """Names for per-test topics, consumer groups and keys, so tests never share state."""

    def make(prefix: str) -> str:
        return f"{prefix}-{uuid.uuid4().hex[:10]}"

    return make


@pytest.fixture
def topic_factory(settings: Settings, unique_name: Callable[[str], str]) -> Iterator[Callable[..., str]]:
    """Create a fresh Kafka topic per call; all are deleted after the test."""
    from confluent_kafka.admin import AdminClient, NewTopic

    admin = AdminClient({"bootstrap.servers": settings.kafka_bootstrap_servers})
    created: list[str] = []

    def make(prefix: str = "t", partitions: int = 1, config: dict[str, str] | None = None) -> str:
        name = unique_name(prefix)
        topic = NewTopic(name, partitions, 1, config=config or {})
        futures = admin.create_topics([topic], operation_timeout=20)
        for future in futures.values():
            future.result(timeout=30)
        created.append(name)
        return name

    yield make
    if created:
        for future in admin.delete_topics(created, operation_timeout=20).values():
            # Cleanup must not mask the test's own result.
            with contextlib.suppress(Exception):
                future.result(timeout=30)
