"""Fixtures shared by the integration suites, against the real services of `tgstream dev up`."""

from __future__ import annotations

import random
from collections.abc import AsyncIterator

import pytest

from tgstream.config import Settings
from tgstream.connectors.postgres import Pool, open_pool


@pytest.fixture
async def pg_pool(settings: Settings) -> AsyncIterator[Pool]:
    """A small pool; an unreachable Postgres fails the test with DatabaseUnavailable."""
    pool = await open_pool(settings.database_url, min_size=1, max_size=4, timeout_s=10)
    try:
        yield pool
    finally:
        await pool.close()


@pytest.fixture
def chat_ids() -> list[int]:
    """Random 12-digit chat ids, so parallel runs and leftovers never collide."""
    return random.sample(range(10**11, 10**12), 8)
