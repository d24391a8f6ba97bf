"""The webhook gateway against real Kafka and Redis: 200 only after the ack, nothing lost, no dupes."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import aiohttp
import pytest

from tgstream.config import Settings
from tgstream.doubles.telegram_api import FakeTelegramControl, FakeTelegramServer
from tgstream.edges.gateway.app import SECRET_HEADER
from tgstream.schemas.codec import decode
from tgstream.schemas.events import InboundMessage

pytestmark = [pytest.mark.integration, pytest.mark.anyio]


def _update(update_id: int, chat_id: int, text: str) -> dict[str, Any]:
    return {
        "update_id": update_id,
        "message": {
            "message_id": update_id % 100_000,
            "date": int(time.time()),
            "chat": {"id": chat_id, "type": "private"},
            "from": {"id": chat_id, "is_bot": False, "first_name": "Ada"},
            "text": text,
        },
    }


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


@pytest.fixture
def secret(settings: Settings) -> dict[str, str]:
    return {SECRET_HEADER: settings.webhook_secret.get_secret_value()}


async def test_webhook_round_trip(
    gateway_factory: Any,
    topic_factory: Callable[..., str],
    read_topic: Any,
    http: aiohttp.ClientSession,
    secret: dict[str, str],
    chat_ids: Callable[[int], list[int]],
) -> None:
    topic = topic_factory("gw-in", partitions=3)
    [chat] = chat_ids(1)
    async with gateway_factory(topic) as gw:
        resp = await http.post(f"{gw.url}/webhook", json=_update(901, chat, "hello"), headers=secret)
        assert resp.status == 200
    [record] = read_topic(topic, expect=1)
    assert record.key() == str(chat).encode()
    message = decode(InboundMessage, record.value())
    assert (message.update_id, message.chat_id, message.text) == (901, chat, "hello")


async def test_wrong_or_missing_secret_is_401_and_produces_nothing(
    gateway_factory: Any,
    topic_factory: Callable[..., str],
    read_topic: Any,
    http: aiohttp.ClientSession,
    secret: dict[str, str],
    chat_ids: Callable[[int], list[int]],
) -> None:
    topic = topic_factory("gw-auth")
    [chat] = chat_ids(1)
    async with gateway_factory(topic) as gw:
        for headers in ({SECRET_HEADER: "wrong"}, {}, {SECRET_HEADER: secret[SECRET_HEADER] + "x"}):
            async with http.post(f"{gw.url}/webhook", json=_update(1, chat, "x"), headers=headers) as resp:
                assert resp.status == 401
        async with http.post(f"{gw.url}/webhook", json=_update(2, chat, "ok"), headers=secret) as resp:
            assert resp.status == 200
    records = read_topic(topic, expect=1)
    assert [decode(InboundMessage, r.value()).update_id for r in records] == [2]


async def test_duplicate_update_is_dropped(
    gateway_factory: Any,
    topic_factory: Callable[..., str],
    read_topic: Any,
    http: aiohttp.ClientSession,
    secret: dict[str, str],
    chat_ids: Callable[[int], list[int]],
) -> None:
    topic = topic_factory("gw-dup")
    [chat] = chat_ids(1)
    async with gateway_factory(topic) as gw:
        for _ in range(3):
            async with http.post(f"{gw.url}/webhook", json=_update(77, chat, "once"), headers=secret) as resp:
                assert resp.status == 200
        # A second gateway replica shares the markers through Redis.
        async with (
            gateway_factory(topic) as replica,
            http.post(f"{replica.url}/webhook", json=_update(77, chat, "once"), headers=secret) as resp,
        ):
            assert resp.status == 200
        assert gw.ingestor.stats.accepted + replica.ingestor.stats.accepted == 1
    assert len(read_topic(topic, expect=1)) == 1


async def test_unreadable_bodies_get_400_and_are_dead_lettered(
    gateway_factory: Any,
    topic_factory: Callable[..., str],
    read_topic: Any,
    http: aiohttp.ClientSession,
    secret: dict[str, str],
) -> None:
    topic, dlq = topic_factory("gw-bad"), topic_factory("gw-dlq")
    bodies = [b"not json", b'{"message": {}}', b"[1, 2]"]
    async with gateway_factory(topic, dead_letter_topic=dlq) as gw:
        for body in bodies:
            headers = {**secret, "Content-Type": "application/json"}
            async with http.post(f"{gw.url}/webhook", data=body, headers=headers) as resp:
                assert resp.status == 400
                reason = (await resp.json())["error"]
                assert reason in {"not_json", "invalid_update"}
        # An update of a kind without a chat is valid but has nothing to answer: 200, not produced.
        async with http.post(
            f"{gw.url}/webhook", json={"update_id": 5, "poll": {"id": "1"}}, headers=secret
        ) as resp:
            assert resp.status == 200
    dead = read_topic(dlq, expect=len(bodies))
    assert sorted(r.value() for r in dead) == sorted(bodies)
    assert all(dict(r.headers())["tgstream-error"] for r in dead)
    assert read_topic(topic, expect=0, within_s=2) == []


async def test_body_size_limit_by_header_and_while_reading(
    gateway_factory: Any,
    topic_factory: Callable[..., str],
    http: aiohttp.ClientSession,
    secret: dict[str, str],
    settings: Settings,
) -> None:
    too_big = b"x" * (settings.gateway_max_body_bytes + 1)
    async with gateway_factory(topic_factory("gw-big")) as gw:
        async with http.post(f"{gw.url}/webhook", data=too_big, headers=secret) as resp:
            assert resp.status == 413

        async def chunks() -> AsyncIterator[bytes]:
            for _ in range(settings.gateway_max_body_bytes // 65536 + 2):
                yield b"y" * 65536

        async with http.post(f"{gw.url}/webhook", data=chunks(), headers=secret) as resp:
            assert resp.status == 413


async def test_kafka_down_gives_503_then_the_retry_succeeds_with_nothing_lost(
    gateway_factory: Any,
    topic_factory: Callable[..., str],
    read_topic: Any,
    http: aiohttp.ClientSession,
    secret: dict[str, str],
    chat_ids: Callable[[int], list[int]],
    closed_port: int,
) -> None:
    """The shared broker cannot be stopped, so "down" is a gateway whose bootstrap is a closed port,
    sharing the Redis namespace with a healthy one; "back" is the retry reaching the healthy one."""
    topic = topic_factory("gw-down")
    [chat] = chat_ids(1)
    update = _update(4242, chat, "survive")
    down = {"kafka_bootstrap_servers": f"127.0.0.1:{closed_port}"}
    async with gateway_factory(topic, delivery_timeout_s=1.0, **down) as broken:
        async with http.get(f"{broken.url}/readyz") as resp:
            assert resp.status == 503
        async with http.post(f"{broken.url}/webhook", json=update, headers=secret) as resp:
            assert resp.status == 503
            assert resp.headers["Retry-After"] == "1"
    async with gateway_factory(topic) as healthy:
        async with http.get(f"{healthy.url}/readyz") as resp:
            assert resp.status == 200
            assert await resp.json() == {"kafka": True, "redis": True}
        async with http.post(f"{healthy.url}/webhook", json=update, headers=secret) as resp:
            assert resp.status == 200, "the failed attempt must have released its claim"
    records = read_topic(topic, expect=1)
    assert [decode(InboundMessage, r.value()).text for r in records] == ["survive"]


async def test_redis_down_fails_open(
    gateway_factory: Any,
    topic_factory: Callable[..., str],
    read_topic: Any,
    http: aiohttp.ClientSession,
    secret: dict[str, str],
    chat_ids: Callable[[int], list[int]],
    closed_port: int,
) -> None:
    topic = topic_factory("gw-noredis")
    [chat] = chat_ids(1)
    async with gateway_factory(topic, redis_url=f"redis://127.0.0.1:{closed_port}/0") as gw:
        async with http.post(f"{gw.url}/webhook", json=_update(5, chat, "still in"), headers=secret) as resp:
            assert resp.status == 200
        async with http.get(f"{gw.url}/metrics") as resp:
            text = await resp.text()
        # Both Redis calls of the update failed open: the claim before producing and the commit after.
        assert "tgstream_gateway_dedupe_unavailable_total 2.0" in text
    assert len(read_topic(topic, expect=1)) == 1


async def test_fake_telegram_delivers_to_the_gateway_in_chat_order(
    gateway_factory: Any,
    topic_factory: Callable[..., str],
    read_topic: Any,
    settings: Settings,
    fake_telegram: FakeTelegramServer,
    control: FakeTelegramControl,
    chat_ids: Callable[[int], list[int]],
) -> None:
    import telegram

    topic = topic_factory("gw-e2e", partitions=4)
    chats = chat_ids(5)
    async with (
        gateway_factory(topic) as gw,
        telegram.Bot(
            settings.telegram_bot_token.get_secret_value(), base_url=f"{fake_telegram.url}/bot"
        ) as bot,
    ):
        await bot.set_webhook(f"{gw.url}/webhook", secret_token=settings.webhook_secret.get_secret_value())
        sent = [{"chat_id": c, "text": f"{c}:{i}"} for i in range(6) for c in chats]
        await control.send_user_messages(sent)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            if not (await bot.get_webhook_info()).pending_update_count:
                break
            await asyncio.sleep(0.1)
        await bot.delete_webhook()
    records = read_topic(topic, expect=len(sent))
    texts = [decode(InboundMessage, r.value()).text for r in records]
    assert sorted(texts) == sorted(m["text"] for m in sent)
    for chat in chats:
        mine = [t for t in texts if t.startswith(f"{chat}:")]
        assert mine == [f"{chat}:{i}" for i in range(6)]
