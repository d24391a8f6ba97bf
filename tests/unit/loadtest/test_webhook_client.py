"""The load generator's webhook POSTs retry like Telegram: 5xx, 429 and connection errors only."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

import aiohttp
import pytest
from aiohttp import web

from tgstream.loadtest.webhook_client import (
    FAILED,
    SECRET_HEADER,
    GatewayUnreachableError,
    WebhookPoster,
)

pytestmark = pytest.mark.anyio


@contextlib.asynccontextmanager
async def gateway(statuses: list[int]) -> AsyncIterator[tuple[str, list[str]]]:
    """A server answering the given statuses in turn (the last one forever); records secrets seen."""
    seen: list[str] = []

    async def webhook(request: web.Request) -> web.Response:
        seen.append(request.headers.get(SECRET_HEADER, ""))
        status = statuses.pop(0) if len(statuses) > 1 else statuses[0]
        return web.Response(status=status)

    async def healthz(request: web.Request) -> web.Response:
        return web.Response(status=statuses[0])

    app = web.Application()
    app.router.add_post("/webhook", webhook)
    app.router.add_get("/healthz", healthz)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    try:
        yield f"http://127.0.0.1:{runner.addresses[0][1]}/webhook", seen
    finally:
        await runner.cleanup()


def _poster(session: aiohttp.ClientSession, url: str, **kwargs: object) -> WebhookPoster:
    return WebhookPoster(session, url, "s3cret", first_backoff_s=0.001, max_backoff_s=0.002, **kwargs)  # type: ignore[arg-type]


async def test_retries_later_statuses_until_accepted() -> None:
    async with gateway([503, 429, 200]) as (url, seen), aiohttp.ClientSession() as session:
        assert await _poster(session, url).post(b"{}") == 200
    assert seen == ["s3cret"] * 3


async def test_a_refusal_is_final() -> None:
    async with gateway([400, 200]) as (url, seen), aiohttp.ClientSession() as session:
        assert await _poster(session, url).post(b"{}") == 400
    assert len(seen) == 1


async def test_gives_up_after_the_attempts() -> None:
    async with gateway([503]) as (url, seen), aiohttp.ClientSession() as session:
        assert await _poster(session, url, attempts=3).post(b"{}") == FAILED
    assert len(seen) == 3


async def test_stops_retrying_when_told() -> None:
    async with gateway([503]) as (url, seen), aiohttp.ClientSession() as session:
        assert await _poster(session, url, stopped=lambda: True).post(b"{}") == FAILED
    assert len(seen) == 1


async def test_nobody_listening_is_a_failure_and_fails_the_check() -> None:
    async with aiohttp.ClientSession() as session:
        poster = _poster(session, "http://127.0.0.1:9/webhook", attempts=2)
        assert await poster.post(b"{}") == FAILED
        with pytest.raises(GatewayUnreachableError, match=r"127\.0\.0\.1:9"):
            await poster.check()
