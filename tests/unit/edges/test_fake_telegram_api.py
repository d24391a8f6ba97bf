"""python-telegram-bot against the fake Bot API: the calls, errors and semantics the edges rely on."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable

import pytest
import telegram
from aiohttp import web
from telegram.error import BadRequest, Conflict, Forbidden, InvalidToken, NetworkError, RetryAfter

from tgstream.doubles.telegram_api import FakeTelegramControl, FakeTelegramServer

pytestmark = pytest.mark.anyio


@pytest.fixture
async def bot(fake_telegram: FakeTelegramServer, bot_token: str) -> AsyncIterator[telegram.Bot]:
    async with telegram.Bot(bot_token, base_url=f"{fake_telegram.url}/bot") as client:
        yield client


async def test_get_me_and_send_message_are_recorded(
    bot: telegram.Bot, control: FakeTelegramControl, bot_token: str
) -> None:
    me = await bot.get_me()
    assert me.id == int(bot_token.partition(":")[0])
    first = await bot.send_message(4242, "<b>hi</b> &amp; bye", parse_mode="HTML")
    second = await bot.send_message(4242, "plain", reply_to_message_id=first.message_id)
    await bot.send_chat_action(4242, "typing")
    assert (first.message_id, second.message_id) == (1, 2)
    assert first.text == "hi & bye"
    records = await control.sent(chat_id=4242)
    assert [(r["kind"], r["visible_text"], r["action"]) for r in records] == [
        ("message", "hi & bye", None),
        ("message", "plain", None),
        ("action", "", "typing"),
    ]
    assert records[1]["reply_to_message_id"] == 1
    assert records[0]["mono"] <= records[1]["mono"] <= records[2]["mono"]
    later = await control.sent(chat_id=4242, after=records[0]["seq"])
    assert [r["seq"] for r in later] == [r["seq"] for r in records[1:]]


async def test_edit_message_text(bot: telegram.Bot, control: FakeTelegramControl) -> None:
    sent = await bot.send_message(1, "draft")
    edited = await bot.edit_message_text("final", chat_id=1, message_id=sent.message_id)
    assert isinstance(edited, telegram.Message)
    assert edited.text == "final"
    with pytest.raises(BadRequest, match="not modified"):
        await bot.edit_message_text("final", chat_id=1, message_id=sent.message_id)
    with pytest.raises(BadRequest, match="not found"):
        await bot.edit_message_text("x", chat_id=1, message_id=999)


async def test_text_limits_and_parse_errors(bot: telegram.Bot) -> None:
    await bot.send_message(1, "😀" * 2048)
    with pytest.raises(BadRequest, match="too long"):
        await bot.send_message(1, "😀" * 2048 + "x")
    # The limit applies to the visible text, after entity parsing.
    await bot.send_message(1, "<b>" + "a" * 4096 + "</b>", parse_mode="HTML")
    with pytest.raises(BadRequest, match="parse entities"):
        await bot.send_message(1, "a < b", parse_mode="HTML")
    with pytest.raises(BadRequest, match="reserved"):
        await bot.send_message(1, "Hello.", parse_mode="MarkdownV2")
    with pytest.raises(BadRequest, match="empty"):
        await bot.send_message(1, "   ")


async def test_wrong_token_is_unauthorized(fake_telegram: FakeTelegramServer) -> None:
    wrong = telegram.Bot("777000:wrong", base_url=f"{fake_telegram.url}/bot")
    with pytest.raises(InvalidToken):
        async with wrong:
            pass


async def test_injected_faults_map_to_ptb_errors(bot: telegram.Bot, control: FakeTelegramControl) -> None:
    await control.set_faults(
        [{"error": 429, "retry_after": 5, "chat_ids": [10], "times": 1}, {"error": 502, "chat_ids": [30]}],
        blocked_chat_ids=[20],
    )
    with pytest.raises(RetryAfter) as flood:
        await bot.send_message(10, "x")
    assert flood.value.retry_after == 5
    # The flood window covers the chat until retry_after passes, and counts the violation.
    with pytest.raises(RetryAfter):
        await bot.send_message(10, "again")
    await bot.send_message(11, "another chat is not affected")
    with pytest.raises(Forbidden, match="blocked"):
        await bot.send_message(20, "x")
    with pytest.raises(NetworkError):
        await bot.send_message(30, "x")
    stats = await control.stats()
    assert stats["violations"] == {"global": 0, "chat": 1}


async def test_global_flood_pauses_every_chat(bot: telegram.Bot, control: FakeTelegramControl) -> None:
    await control.set_faults([{"error": 429, "scope": "global", "retry_after": 3, "times": 1}])
    with pytest.raises(RetryAfter):
        await bot.send_message(1, "x")
    with pytest.raises(RetryAfter):
        await bot.send_chat_action(2, "typing")
    assert (await control.stats())["violations"]["global"] == 1


async def test_probabilistic_faults_fire_at_about_their_rate(
    bot: telegram.Bot, control: FakeTelegramControl
) -> None:
    await control.set_faults([{"error": 500, "probability": 0.25}])
    failures = 0
    for i in range(200):
        try:
            await bot.send_message(100 + i, "x")
        except NetworkError:
            failures += 1
    assert 20 <= failures <= 80


async def test_get_updates_confirms_by_offset(bot: telegram.Bot, control: FakeTelegramControl) -> None:
    ids = await control.send_user_messages([{"chat_id": 5, "text": f"m{i}"} for i in range(3)])
    first = await bot.get_updates(limit=2)
    assert [u.update_id for u in first] == ids[:2]
    again = await bot.get_updates(limit=2)
    assert [u.update_id for u in again] == ids[:2], "unconfirmed updates are returned again"
    rest = await bot.get_updates(offset=ids[1] + 1)
    assert [u.update_id for u in rest] == ids[2:]
    assert [u.message.text for u in rest if u.message] == ["m2"]
    assert await bot.get_updates(offset=ids[2] + 1, timeout=0) == ()


async def test_long_poll_wakes_when_an_update_arrives(
    bot: telegram.Bot, control: FakeTelegramControl
) -> None:
    poll = asyncio.create_task(bot.get_updates(timeout=10, read_timeout=15))
    await asyncio.sleep(0.2)
    assert not poll.done()
    [update_id] = await control.send_user_messages([{"chat_id": 9, "text": "wake"}])
    updates = await asyncio.wait_for(poll, 5)
    assert [u.update_id for u in updates] == [update_id]


async def test_second_poller_terminates_the_first(
    bot: telegram.Bot, fake_telegram: FakeTelegramServer, bot_token: str
) -> None:
    first = asyncio.create_task(bot.get_updates(timeout=10, read_timeout=15))
    await asyncio.sleep(0.2)
    async with telegram.Bot(bot_token, base_url=f"{fake_telegram.url}/bot") as other_instance:
        second = asyncio.create_task(other_instance.get_updates(timeout=1, read_timeout=5))
        with pytest.raises(Conflict, match="terminated by other getUpdates"):
            await asyncio.wait_for(first, 5)
        assert await second == ()


class _Receiver:
    """A webhook endpoint that fails the first ``failures`` deliveries with ``status``."""

    def __init__(self, failures: int, status: int) -> None:
        self.failures = failures
        self.status = status
        self.received: list[tuple[str | None, dict[str, object]]] = []

    async def handle(self, request: web.Request) -> web.Response:
        body = await request.json()
        self.received.append((request.headers.get("X-Telegram-Bot-Api-Secret-Token"), body))
        if self.failures > 0:
            self.failures -= 1
            return web.Response(status=self.status)
        return web.Response(text="ok")


async def _serve(receiver: _Receiver) -> tuple[web.AppRunner, str]:
    app = web.Application()
    app.router.add_post("/hook", receiver.handle)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    return runner, f"http://127.0.0.1:{port}/hook"


async def _until(predicate: Callable[[], bool], within_s: float = 5.0) -> None:
    deadline = asyncio.get_running_loop().time() + within_s
    while not predicate():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.02)


async def test_webhook_delivery_retries_5xx_in_chat_order(
    bot: telegram.Bot, control: FakeTelegramControl
) -> None:
    receiver = _Receiver(failures=2, status=503)
    runner, url = await _serve(receiver)
    try:
        assert await bot.set_webhook(url, secret_token="s3cret")
        with pytest.raises(Conflict, match="webhook is active"):
            await bot.get_updates()
        ids = await control.send_user_messages([{"chat_id": 77, "text": f"m{i}"} for i in range(3)])
        await _until(lambda: len(receiver.received) >= 5)
        assert {secret for secret, _ in receiver.received} == {"s3cret"}
        delivered = [body["update_id"] for _, body in receiver.received]
        assert delivered == [ids[0], ids[0], ids[0], ids[1], ids[2]]
        info = await bot.get_webhook_info()
        assert info.url == url
        assert info.pending_update_count == 0
        assert info.last_error_message == "Wrong response from the webhook: 503"
    finally:
        await bot.delete_webhook()
        await runner.cleanup()


async def test_webhook_gives_up_on_a_persistent_4xx(
    bot: telegram.Bot, control: FakeTelegramControl, fake_telegram: FakeTelegramServer
) -> None:
    receiver = _Receiver(failures=100, status=400)
    runner, url = await _serve(receiver)
    try:
        await bot.set_webhook(url)
        [update_id] = await control.send_user_messages([{"chat_id": 78, "text": "bad"}])
        await _until(lambda: len(receiver.received) >= 3)
        await _until(
            lambda: fake_telegram.api.deliverer is not None and fake_telegram.api.deliverer.dropped == 1
        )
        await asyncio.sleep(0.2)
        assert len(receiver.received) == 3
        assert (await bot.get_webhook_info()).pending_update_count == 0
        assert receiver.received[0][1]["update_id"] == update_id
    finally:
        await bot.delete_webhook()
        await runner.cleanup()


async def test_undelivered_updates_return_to_get_updates(
    bot: telegram.Bot, control: FakeTelegramControl
) -> None:
    await bot.set_webhook("http://127.0.0.1:9/unreachable")
    [update_id] = await control.send_user_messages([{"chat_id": 79, "text": "kept"}])
    await asyncio.sleep(0.1)
    await bot.delete_webhook()
    assert [u.update_id for u in await bot.get_updates()] == [update_id]
