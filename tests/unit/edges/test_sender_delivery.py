"""How the sender treats each kind of Bot API error, against the fake Bot API.

Limits, sent markers and the inactive set are small in-memory stand-ins here (their Redis
versions are tested in tests/integration/edges); the HTTP side is real.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Any

import pytest
import telegram

from tgstream.doubles.telegram_api import FakeTelegramControl, FakeTelegramServer
from tgstream.edges.sender.delivery import DeliveryPolicy, Outcome, ReplyDelivery
from tgstream.edges.sender.metrics import SenderMetrics
from tgstream.schemas.events import Reply

pytestmark = pytest.mark.anyio


class OpenLimits:
    """No rate limit, but a 429 pauses everything for its retry_after, as the Redis version would."""

    def __init__(self) -> None:
        self.floods: list[tuple[int, float]] = []
        self.paused_until = 0.0
        self.taken = 0

    async def acquire(self, chat_id: int, chat_type: str, *, low_priority: bool = False) -> float:
        wait = max(0.0, self.paused_until - time.monotonic())
        self.taken += wait <= 0
        return wait

    async def report_flood(self, chat_id: int, chat_type: str, retry_after_s: float) -> str:
        self.floods.append((chat_id, retry_after_s))
        self.paused_until = time.monotonic() + retry_after_s
        return "chat"


class Marks:
    def __init__(self) -> None:
        self.sent: dict[tuple[str, int], int] = {}

    def sent_here(self, key: str, parts: int) -> list[bool]:
        return [(key, i) in self.sent for i in range(parts)]

    async def sent_parts(self, key: str, parts: int) -> list[bool]:
        return self.sent_here(key, parts)

    async def mark(self, key: str, part: int, message_id: int | None) -> None:
        self.sent[(key, part)] = message_id or 0


class Inactive:
    def __init__(self) -> None:
        self.chats: set[int] = set()

    async def add(self, chat_id: int) -> None:
        self.chats.add(chat_id)


def reply(chat_id: int, text: str, key: str = "k", kind: str = "reply") -> Reply:
    now = time.time()
    return Reply(idempotency_key=key, kind=kind, chat_id=chat_id, text=text, received_at=now, emitted_at=now)  # type: ignore[arg-type]


@pytest.fixture
async def parts(fake_telegram: FakeTelegramServer, bot_token: str) -> AsyncIterator[dict[str, Any]]:
    async with telegram.Bot(bot_token, base_url=f"{fake_telegram.url}/bot") as bot:
        limits, marks, inactive = OpenLimits(), Marks(), Inactive()
        delivery = ReplyDelivery(
            bot,
            limits,
            marks,
            inactive,
            SenderMetrics(),  # type: ignore[arg-type]
            policy=DeliveryPolicy(max_attempts=3, first_backoff_s=0.01, max_backoff_s=0.02),
        )
        yield {"delivery": delivery, "limits": limits, "marks": marks, "inactive": inactive}


async def test_sent_parts_are_skipped_on_replay(parts: dict[str, Any], control: FakeTelegramControl) -> None:
    text = "a" * 4000 + "\n\n" + "b" * 100
    parts["marks"].sent[("k", 0)] = 1
    result = await parts["delivery"].deliver(reply(5, text))
    assert result.outcome is Outcome.SENT
    assert [r["visible_text"] for r in await control.sent()] == ["b" * 100]
    assert (await parts["delivery"].deliver(reply(5, text))).outcome is Outcome.DUPLICATE


async def test_429_waits_and_is_not_a_failed_attempt(
    parts: dict[str, Any], control: FakeTelegramControl
) -> None:
    # More 429s in a row than max_attempts (3): they must not count as failed attempts.
    await control.set_faults([{"error": 429, "retry_after": 1, "times": 4}])
    assert (await parts["delivery"].deliver(reply(6, "after the flood"))).outcome is Outcome.SENT
    assert parts["limits"].floods == [(6, 1.0)] * 4
    assert (await control.stats())["violations"]["chat"] == 0, "no call was made inside a flood window"


async def test_5xx_retried_then_dead_lettered(parts: dict[str, Any], control: FakeTelegramControl) -> None:
    await control.set_faults([{"error": 502, "times": 2}])
    assert (await parts["delivery"].deliver(reply(7, "third time lucky", key="a"))).outcome is Outcome.SENT
    await control.set_faults([{"error": 500}])
    result = await parts["delivery"].deliver(reply(7, "never", key="b"))
    assert result.outcome is Outcome.DEAD_LETTER
    assert (result.reason or "").startswith("gave_up_after_3_attempts")


async def test_bad_request_is_not_retried(parts: dict[str, Any], control: FakeTelegramControl) -> None:
    await control.set_faults([{"error": 400, "times": 1}])
    result = await parts["delivery"].deliver(reply(8, "x"))
    assert result.outcome is Outcome.DEAD_LETTER
    assert (result.reason or "").lower() == "bad_request: injected fault"
    assert await control.sent() == []


async def test_blocked_chat_is_marked_inactive(parts: dict[str, Any], control: FakeTelegramControl) -> None:
    await control.set_faults([], blocked_chat_ids=[9])
    result = await parts["delivery"].deliver(reply(9, "hello?"))
    assert (result.outcome, result.reason) == (Outcome.DEAD_LETTER, "blocked_by_user")
    assert parts["inactive"].chats == {9}


async def test_empty_reply_is_dead_lettered(parts: dict[str, Any]) -> None:
    result = await parts["delivery"].deliver(reply(10, "   "))
    assert (result.outcome, result.reason) == (Outcome.DEAD_LETTER, "empty_text")


async def test_typing_behind_a_reply_is_dropped(parts: dict[str, Any], control: FakeTelegramControl) -> None:
    result = await parts["delivery"].deliver(reply(11, "", kind="typing"), queued_behind=1)
    assert (result.outcome, result.reason) == (Outcome.DROPPED, "stale")
    assert (await parts["delivery"].deliver(reply(11, "", kind="typing"))).outcome is Outcome.SENT
    assert [r["action"] for r in await control.sent()] == ["typing"]


async def test_a_copy_consumed_again_while_the_first_is_sending_is_delivered_once(
    parts: dict[str, Any], control: FakeTelegramControl
) -> None:
    # Two copies of one record (a rebalance re-consumed it while its first send was in flight):
    # both check the sent marks before either has sent, so only the in-flight guard keeps the
    # second from sending too.
    copy = reply(9, "only once", key="rebalanced")
    results = await asyncio.gather(*(parts["delivery"].deliver(copy) for _ in range(3)))
    assert sorted(r.outcome.value for r in results) == ["duplicate", "duplicate", "sent"]
    assert [r["visible_text"] for r in await control.sent(chat_id=9)] == ["only once"]
    assert parts["delivery"].in_flight == 0


async def test_each_send_takes_exactly_one_slot_and_a_retry_takes_its_own(
    parts: dict[str, Any], control: FakeTelegramControl
) -> None:
    assert (await parts["delivery"].deliver(reply(11, "one slot", key="one"))).outcome is Outcome.SENT
    assert parts["limits"].taken == 1
    await control.set_faults([{"error": 502, "times": 1}])
    assert (await parts["delivery"].deliver(reply(11, "two tries", key="two"))).outcome is Outcome.SENT
    assert parts["limits"].taken == 3, "the retry after a 502 must wait for a slot of its own"
    assert [r["visible_text"] for r in await control.sent()] == ["one slot", "two tries"]
