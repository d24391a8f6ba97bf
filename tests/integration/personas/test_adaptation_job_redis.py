"""The adaptation job against the real Redis, with the OpenAI stub and a scripted model server."""

from __future__ import annotations

import socket
import time
import uuid
from collections.abc import AsyncIterator, Callable

import pytest
import redis.asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

from tgstream.config import Settings
from tgstream.connectors.llm import LlmClient
from tgstream.jobs.adaptation import AdaptationConfig, AdaptationJob
from tgstream.jobs.rounds import run_round
from tgstream.state.adaptations import AdaptationStore
from tgstream.state.conversation_mirror import ConversationMirror, ConversationSnapshot

pytestmark = [pytest.mark.integration, pytest.mark.anyio]

TTL = 120
CHATTY = [
    ("hey!! 😄", "Hi there!"),
    ("lol my marathon training is killing me 😅", "Oh no, what happened?"),
    ("haha the marathon is in june, so close", "You've got this."),
    ("can you keep it short? call me Sam", "Sure, Sam."),
]


@pytest.fixture
def prefix() -> str:
    return f"test-{uuid.uuid4().hex[:10]}:"


@pytest.fixture
async def cleanup(redis_client: aioredis.Redis, prefix: str) -> AsyncIterator[None]:
    yield
    keys = [key async for key in redis_client.scan_iter(match=f"{prefix}*")]
    if keys:
        await redis_client.delete(*keys)


def llm_client(settings: Settings, base_url: str, timeout_s: float = 10.0) -> LlmClient:
    return LlmClient(
        base_url=base_url,
        api_key=settings.openai_api_key,
        model=settings.llm_model,
        timeout_s=timeout_s,
        max_retries=0,
        max_tokens=256,
        temperature=0.2,
    )


async def mirror_chats(
    mirror: ConversationMirror, chats: dict[int, list[tuple[str, str]]], at: float
) -> None:
    await mirror.write_many(
        [
            ConversationSnapshot(
                chat_id, [{"user": u, "assistant": a, "at": at} for u, a in turns], at, len(turns)
            )
            for chat_id, turns in chats.items()
        ],
        now=at,
    )


async def test_a_round_against_the_stub_stores_model_free_traits_with_a_ttl(
    settings: Settings, redis_client: aioredis.Redis, prefix: str, cleanup: None, chat_ids: list[int]
) -> None:
    chatty, quiet = chat_ids[:2]
    mirror = ConversationMirror(redis_client, ttl_s=TTL, prefix=prefix)
    store = AdaptationStore(redis_client, ttl_s=TTL, prefix=prefix)
    await mirror_chats(mirror, {chatty: CHATTY, quiet: CHATTY[:1]}, time.time())
    llm = llm_client(settings, settings.llm_stub_url)
    job = AdaptationJob(mirror=mirror, store=store, llm=llm, config=AdaptationConfig(min_exchanges=3))
    try:
        first = await job.run_once()
        second = await job.run_once()
    finally:
        await llm.aclose()

    stored = (await store.get_many([chatty, quiet])).get(chatty)
    assert (first.adapted, first.too_short, first.model) == (1, 1, {"unusable": 1})
    assert (second.adapted, second.unchanged) == (0, 1)
    assert stored is not None
    assert stored.traits.source == "heuristic"  # the stub's echo is not JSON
    assert (stored.traits.reply_length, stored.traits.emoji, stored.traits.nickname) == (
        "short",
        "often",
        "Sam",
    )
    assert "marathon" in stored.traits.topics
    assert 0 < await store.ttl(chatty) <= TTL
    assert quiet not in await store.get_many([quiet])


async def test_new_activity_triggers_a_new_adaptation(
    settings: Settings, redis_client: aioredis.Redis, prefix: str, cleanup: None, chat_ids: list[int]
) -> None:
    chat = chat_ids[0]
    mirror = ConversationMirror(redis_client, ttl_s=TTL, prefix=prefix)
    store = AdaptationStore(redis_client, ttl_s=TTL, prefix=prefix)
    job = AdaptationJob(mirror=mirror, store=store, llm=None)
    now = time.time()
    await mirror_chats(mirror, {chat: CHATTY[:3]}, now - 10)
    await job.run_once()
    await mirror_chats(mirror, {chat: [*CHATTY[:3], ("please more detail next time", "Will do.")]}, now)

    report = await job.run_once()

    stored = (await store.get_many([chat]))[chat]
    assert report.adapted == 1
    assert stored.traits.reply_length == "long"
    assert stored.source_activity == pytest.approx(now)


async def test_a_usable_model_answer_is_merged_under_explicit_requests(
    settings: Settings,
    redis_client: aioredis.Redis,
    prefix: str,
    cleanup: None,
    chat_ids: list[int],
    scripted_llm: Callable[[str], str],
) -> None:
    chat = chat_ids[0]
    mirror = ConversationMirror(redis_client, ttl_s=TTL, prefix=prefix)
    store = AdaptationStore(redis_client, ttl_s=TTL, prefix=prefix)
    await mirror_chats(mirror, {chat: CHATTY}, time.time())
    url = scripted_llm('Sure!\n```json\n{"tone": "teasing but kind", "reply_length": "long", "mood": "tired",'
                       ' "topics": ["running"]}\n```')  # fmt: skip
    llm = llm_client(settings, url)
    try:
        report = await AdaptationJob(mirror=mirror, store=store, llm=llm).run_once()
    finally:
        await llm.aclose()

    traits = (await store.get_many([chat]))[chat].traits
    assert report.model == {"parsed": 1}
    assert traits.source == "merged"
    assert (traits.tone, traits.mood) == ("teasing but kind", "tired")
    assert traits.reply_length == "short"  # the user asked for it; the model's "long" loses
    assert traits.topics[0] == "running"
    customizations = (await store.customizations_many([chat]))[chat]
    assert customizations["conversation_style"]["length"] == "short"
    assert customizations["nickname"] == "Sam"


async def test_a_model_outage_still_adapts_and_a_redis_outage_fails_only_the_round(
    settings: Settings, redis_client: aioredis.Redis, prefix: str, cleanup: None, chat_ids: list[int]
) -> None:
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        dead_port = probe.getsockname()[1]
    chat = chat_ids[0]
    mirror = ConversationMirror(redis_client, ttl_s=TTL, prefix=prefix)
    store = AdaptationStore(redis_client, ttl_s=TTL, prefix=prefix)
    await mirror_chats(mirror, {chat: CHATTY}, time.time())
    llm = llm_client(settings, f"http://127.0.0.1:{dead_port}/v1", timeout_s=2.0)
    dead = aioredis.Redis(
        host="127.0.0.1", port=dead_port, socket_connect_timeout=1, retry=Retry(NoBackoff(), 0)
    )
    try:
        report = await AdaptationJob(mirror=mirror, store=store, llm=llm).run_once()
        broken = AdaptationJob(
            mirror=ConversationMirror(dead, ttl_s=TTL), store=AdaptationStore(dead, ttl_s=TTL), llm=None
        )
        outcome = await run_round(1, broken, None)
    finally:
        await llm.aclose()
        await dead.aclose()

    assert list(report.model) in (["error_connection"], ["error_timeout"])
    assert (await store.get_many([chat]))[chat].traits.nickname == "Sam"
    assert not outcome.ok
    assert outcome.errors[0].startswith("adaptation:")
