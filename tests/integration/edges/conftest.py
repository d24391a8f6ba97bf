"""Fixtures for edge tests against the real Kafka and Redis from `tgstream dev up`.

Every test gets fresh topics, a unique Redis namespace and random 12-digit chat ids, and runs its
own fake Bot API and gateway on port 0, so parallel runs and the demo never collide.
"""

from __future__ import annotations

import asyncio
import random
import socket
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import asynccontextmanager
from typing import Any

import pytest
import redis
from confluent_kafka import Consumer

from tgstream.config import Settings, load_settings
from tgstream.doubles.telegram_api import FakeTelegramControl, FakeTelegramServer
from tgstream.doubles.telegram_api.webhook import RetryPolicy
from tgstream.edges.gateway.server import GatewayOptions, GatewayServer


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def chat_ids() -> Callable[[int], list[int]]:
    rng = random.Random()
    return lambda n: rng.sample(range(10**11, 10**12), n)


@pytest.fixture
def namespace(unique_name: Callable[[str], str]) -> Iterator[str]:
    """A Redis key prefix for this test; its keys are deleted afterwards."""
    name = unique_name("test-edges")
    yield name
    client = redis.Redis.from_url(load_settings().redis_url)
    try:
        keys = list(client.scan_iter(f"{name}*", count=1000))
        if keys:
            client.delete(*keys)
    finally:
        client.close()


@pytest.fixture
def closed_port() -> int:
    """A port nothing listens on: bound by us for a moment, then released."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
async def fake_telegram(settings: Settings) -> AsyncIterator[FakeTelegramServer]:
    policy = RetryPolicy(first_backoff_s=0.05, max_backoff_s=0.5)
    async with FakeTelegramServer(settings.telegram_bot_token.get_secret_value(), policy=policy) as server:
        yield server


@pytest.fixture
async def control(fake_telegram: FakeTelegramServer) -> AsyncIterator[FakeTelegramControl]:
    async with FakeTelegramControl(fake_telegram.url) as client:
        yield client


GatewayFactory = Callable[..., Any]


@pytest.fixture
def gateway_factory(settings: Settings, namespace: str) -> GatewayFactory:
    @asynccontextmanager
    async def make(
        topic: str, *, dead_letter_topic: str | None = None, delivery_timeout_s: float = 5.0, **overrides: Any
    ) -> AsyncIterator[GatewayServer]:
        gw_settings = load_settings(**overrides) if overrides else settings
        options = GatewayOptions(
            host="127.0.0.1",
            port=0,
            delivery_timeout_s=delivery_timeout_s,
            namespace=namespace,
            topic=topic,
            dead_letter_topic=dead_letter_topic or topic + "-dlq",
        )
        async with GatewayServer(gw_settings, options) as server:
            yield server

    return make


@pytest.fixture
def read_topic(settings: Settings) -> Callable[..., list[Any]]:
    return lambda topic, **kw: _read_topic(settings, topic, **kw)


def _read_topic(
    settings: Settings, topic: str, *, expect: int, within_s: float = 20.0, settle_s: float = 1.0
) -> list[Any]:
    """Every record on ``topic``, waiting until ``expect`` arrived and then ``settle_s`` more for extras."""
    consumer = Consumer(
        {
            "bootstrap.servers": settings.kafka_bootstrap_servers,
            "group.id": f"read-{topic}-{time.monotonic_ns()}",
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
        }
    )
    consumer.subscribe([topic])
    records: list[Any] = []
    deadline = time.monotonic() + within_s
    settle_until: float | None = None
    try:
        while time.monotonic() < deadline:
            if settle_until is not None and time.monotonic() > settle_until:
                break
            for msg in consumer.consume(500, 0.2):
                if msg.error() is None:
                    records.append(msg)
            if len(records) >= expect and settle_until is None:
                settle_until = time.monotonic() + settle_s
    finally:
        consumer.close()
    return records


Probe = Callable[[], Awaitable[bool]]


@pytest.fixture
def eventually() -> Callable[[Probe, float], Awaitable[None]]:
    """Wait until an async condition holds; fail the test after ``within_s`` seconds."""

    async def wait(probe: Probe, within_s: float = 20.0) -> None:
        deadline = time.monotonic() + within_s
        while time.monotonic() < deadline:
            if await probe():
                return
            await asyncio.sleep(0.05)
        pytest.fail(f"condition not met within {within_s} s")

    return wait
