"""The driver against the real fake Telegram server and a tiny in-process echo bot (no Kafka).

The echo bot stands in for gateway → Kafka → dataflow → sender: it answers each webhook POST with
200 and, a moment later, calls sendMessage at the fake Telegram server like the sender would. This
checks the driver's bookkeeping — every accepted message matched to exactly one reply — without
depending on the other processes. Assertions are about counts, never about timing.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

import aiohttp
import orjson
import pytest
from aiohttp import web

from tgstream.doubles.telegram_api.server import FakeTelegramServer
from tgstream.loadtest.driver import MAX_LAG_S, Driver, DriverConfig, DriverError
from tgstream.loadtest.scenario import RunIds
from tgstream.loadtest.schedule import Phase, ThinkTime
from tgstream.loadtest.webhook_client import SECRET_HEADER

pytestmark = pytest.mark.anyio

TOKEN = "123456:test-token"
SECRET = "s3cret"
QUICK_THINK = ThinkTime(min_s=0.05, median_s=0.1, max_s=0.2)
IDS = RunIds(update_base=7_000_000, chat_base=600_000_000_000)


@contextlib.asynccontextmanager
async def echo_bot(
    telegram_url: str, *, reply_to: bool, refuse_every: int = 0, drop_every: int = 0
) -> AsyncIterator[str]:
    session = aiohttp.ClientSession()
    tasks: set[asyncio.Task[None]] = set()
    seen = 0

    async def reply(chat_id: int, message_id: int, text: str) -> None:
        await asyncio.sleep(0.02)
        payload: dict[str, object] = {"chat_id": chat_id, "text": f"you said: {text}"}
        if reply_to:
            payload["reply_parameters"] = {"message_id": message_id}
        async with session.post(f"{telegram_url}/bot{TOKEN}/sendMessage", json=payload) as response:
            await response.read()

    async def webhook(request: web.Request) -> web.Response:
        nonlocal seen
        if request.headers.get(SECRET_HEADER) != SECRET:
            return web.Response(status=401)
        seen += 1
        if refuse_every and seen % refuse_every == 0:
            return web.Response(status=400)
        message = orjson.loads(await request.read())["message"]
        if not (drop_every and seen % drop_every == 0):
            task = asyncio.create_task(reply(message["chat"]["id"], message["message_id"], message["text"]))
            tasks.add(task)
            task.add_done_callback(tasks.discard)
        return web.Response(body=b'{"ok":true}', content_type="application/json")

    async def healthz(request: web.Request) -> web.Response:
        return web.Response(body=b'{"ok":true}', content_type="application/json")

    app = web.Application()
    app.router.add_post("/webhook", webhook)
    app.router.add_get("/healthz", healthz)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    try:
        yield f"http://127.0.0.1:{port}/webhook"
    finally:
        await asyncio.gather(*tasks, return_exceptions=True)
        await runner.cleanup()
        await session.close()


def _config(webhook: str, telegram: str, **overrides: object) -> DriverConfig:
    base: dict[str, object] = {
        "webhook_url": webhook,
        "secret": SECRET,
        "telegram_url": telegram,
        "phases": (Phase("warmup", 20, 0.6), Phase("peak", 60, 0.6)),
        "max_users": 200,
        "think": QUICK_THINK,
        "reply_timeout_s": 5.0,
        "drain_timeout_s": 5.0,
        "poll_interval_s": 0.02,
    }
    base.update(overrides)
    return DriverConfig(**base)  # type: ignore[arg-type]


@pytest.mark.parametrize("reply_to", [True, False])
async def test_every_accepted_message_is_matched_to_one_reply(reply_to: bool) -> None:
    async with FakeTelegramServer(TOKEN) as telegram, echo_bot(telegram.url, reply_to=reply_to) as hook:
        driver = Driver(_config(hook, telegram.url), ids=IDS)
        await driver.run()
    sent = sum(c.sent for c in driver.counters)
    assert sent > 20
    assert sum(c.accepted for c in driver.counters) == sent
    assert driver.tracker.answered == sent
    assert driver.tracker.in_flight == 0
    assert driver.tracker.extra == 0
    assert driver.log.answered_count == sent
    assert [driver.log.phase_sent(i) for i in range(2)] == [c.sent for c in driver.counters]
    for chat_id, turns in driver.conversations.items():
        assert chat_id - IDS.chat_base < 3
        assert turns[0][0] == "/start"
        assert turns[0][1] == "you said: /start"


async def test_refused_and_unanswered_messages_are_counted_not_hidden() -> None:
    async with (
        FakeTelegramServer(TOKEN) as telegram,
        echo_bot(telegram.url, reply_to=True, refuse_every=7, drop_every=5) as hook,
    ):
        driver = Driver(_config(hook, telegram.url, drain_timeout_s=0.5, reply_timeout_s=0.3), ids=IDS)
        await driver.run()
    sent = sum(c.sent for c in driver.counters)
    rejected = sum(c.rejected for c in driver.counters)
    accepted = sum(c.accepted for c in driver.counters)
    assert rejected > 0
    assert accepted + rejected == sent
    unanswered = [p for p in driver.tracker.outstanding() if p.accepted]
    assert len(unanswered) > 0
    assert driver.tracker.answered + len(unanswered) == accepted


async def test_an_unreachable_gateway_fails_fast_with_its_address() -> None:
    async with FakeTelegramServer(TOKEN) as telegram:
        driver = Driver(_config("http://127.0.0.1:9/webhook", telegram.url), ids=IDS)
        with pytest.raises(DriverError, match=r"127\.0\.0\.1:9"):
            await driver.run()


async def test_arrivals_no_user_can_take_are_skipped_and_the_plan_does_not_stretch() -> None:
    import random

    from tgstream.loadtest.schedule import arrivals

    phases = (Phase("busy", 40, 1.0),)
    slow_think = ThinkTime(min_s=0.6, median_s=0.6, max_s=0.6)
    async with FakeTelegramServer(TOKEN) as telegram, echo_bot(telegram.url, reply_to=True) as hook:
        config = _config(hook, telegram.url, phases=phases, max_users=2, think=slow_think, seed=3)
        driver = Driver(config, ids=IDS)
        await driver.run()
    offered = len(list(arrivals(phases, rng=random.Random(config.seed + 1))))
    counters = driver.counters[0]
    assert counters.skipped > 0
    assert counters.sent + counters.skipped == offered
    # A user sends at most once per think time, until the last arrival's give-up time.
    per_user = int((phases[0].duration_s + MAX_LAG_S) / slow_think.min_s) + 1
    assert counters.sent <= 2 * per_user
    assert driver.tracker.answered == counters.sent


async def test_max_turns_ends_sessions_so_new_users_join() -> None:
    phases = (Phase("churn", 40, 1.0),)
    async with FakeTelegramServer(TOKEN) as telegram, echo_bot(telegram.url, reply_to=True) as hook:
        config = _config(hook, telegram.url, phases=phases, max_users=5, max_turns=2)
        driver = Driver(config, ids=IDS)
        await driver.run()
    sent = driver.counters[0].sent
    assert sent > 10
    assert driver.pool.joined >= sent / 2
