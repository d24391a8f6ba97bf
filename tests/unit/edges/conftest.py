"""Fixtures for the edge tests that need no external service: a fake Bot API on a free port."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from tgstream.doubles.telegram_api import FakeTelegramControl, FakeTelegramServer
from tgstream.doubles.telegram_api.webhook import RetryPolicy

TOKEN = "777000:unit-test-token"


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def bot_token() -> str:
    return TOKEN


@pytest.fixture
async def fake_telegram() -> AsyncIterator[FakeTelegramServer]:
    policy = RetryPolicy(first_backoff_s=0.01, max_backoff_s=0.05, max_client_error_attempts=3)
    async with FakeTelegramServer(TOKEN, seed=7, policy=policy) as server:
        yield server


@pytest.fixture
async def control(fake_telegram: FakeTelegramServer) -> AsyncIterator[FakeTelegramControl]:
    async with FakeTelegramControl(fake_telegram.url) as client:
        yield client
