"""Fixtures for the reliability suite: the real services from `tgstream dev up`, failing loudly if down.

The hostile-input strategies live next to the unit fuzz tests and the dataflow subprocess harness
next to the dataflow tests; their folders are put on the path so every suite uses one definition.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import redis

from tgstream.config import Settings

_TESTS = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(_TESTS / "unit" / "reliability"))
sys.path.insert(0, str(_TESTS / "integration" / "dataflow"))


@pytest.fixture(scope="session", autouse=True)
def _services_are_up(settings: Settings) -> None:
    client = redis.Redis.from_url(settings.redis_url, socket_connect_timeout=2)
    try:
        client.ping()
    except redis.RedisError as exc:
        pytest.fail(f"Redis at {settings.redis_url} is unreachable ({exc}); run `tgstream dev up`")
    finally:
        client.close()
    from confluent_kafka.admin import AdminClient

    try:
        AdminClient({"bootstrap.servers": settings.kafka_bootstrap_servers}).list_topics(timeout=10)
    except Exception as exc:
        pytest.fail(
            f"Kafka at {settings.kafka_bootstrap_servers} is unreachable ({exc}); run `tgstream dev up`"
        )
