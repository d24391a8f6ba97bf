"""Fixtures for persona, fact and adaptation tests against the real services of `tgstream dev up`."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable, Iterator

import psycopg
import pytest
import redis.asyncio as aioredis
from aiohttp import web

from tgstream.config import Settings
from tgstream.connectors.postgres import Pool


@pytest.fixture
def pool(pg_pool: Pool) -> Pool:
    """The shared integration pool under the name these tests use."""
    return pg_pool


@pytest.fixture
async def redis_client(settings: Settings) -> AsyncIterator[aioredis.Redis]:
    client = aioredis.Redis.from_url(settings.redis_url, socket_timeout=5)
    await client.ping()
    try:
        yield client
    finally:
        await client.aclose()


@pytest.fixture
def persona_name(settings: Settings, chat_ids: list[int]) -> Iterator[Callable[[], str]]:
    """Unique persona names; those personas and the test chats' assignments are deleted after.

    Synchronous (plain psycopg) so that the CLI tests, which run their own event loop, can use it.
    """
    made: list[str] = []

    def make() -> str:
        made.append(f"Test {uuid.uuid4().hex[:10]}")
        return made[-1]

    yield make
    with psycopg.connect(settings.database_url, autocommit=True) as conn:
        conn.execute("DELETE FROM user_personalities WHERE chat_id = ANY(%s)", [chat_ids])
        conn.execute("DELETE FROM personalities WHERE lower(name) = ANY(%s)", [[n.lower() for n in made]])


@pytest.fixture
async def scripted_llm() -> AsyncIterator[Callable[[str], str]]:
    """A local OpenAI-compatible server whose chat completions answer with a scripted text.

    The shared OpenAI stub echoes the user (deterministic, never JSON); this double lets a test
    drive the "model answered usable JSON" path through the real ``openai`` client. Call it with
    the text to answer; it returns the base URL.
    """
    answer = {"content": ""}

    async def completions(request: web.Request) -> web.Response:
        await request.read()
        body = {
            "id": "scripted",
            "object": "chat.completion",
            "created": 0,
            "model": "scripted",
            "choices": [{"index": 0, "message": {"role": "assistant", "content": answer["content"]},
                         "finish_reason": "stop"}],
            "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2},
        }  # fmt: skip
        return web.json_response(body)

    app = web.Application()
    app.router.add_post("/v1/chat/completions", completions)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]

    def script(content: str) -> str:
        answer["content"] = content
        return f"http://127.0.0.1:{port}/v1"

    try:
        yield script
    finally:
        await runner.cleanup()
