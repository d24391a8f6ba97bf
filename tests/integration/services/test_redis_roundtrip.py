from __future__ import annotations

from collections.abc import Callable

import pytest
import redis

from tgstream.config import Settings

pytestmark = pytest.mark.integration


def test_set_get_and_ttl(settings: Settings, unique_name: Callable[[str], str]) -> None:
    client = redis.Redis.from_url(settings.redis_url, socket_timeout=5)
    key = unique_name("test:roundtrip")
    try:
        assert client.set(key, "ünïcode", ex=60, nx=True)
        assert not client.set(key, "other", ex=60, nx=True), "NX must refuse an existing key"
        assert client.get(key) == "ünïcode".encode()
        assert 0 < client.ttl(key) <= 60
    finally:
        client.delete(key)
        client.close()
