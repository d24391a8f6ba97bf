"""A constant-rate load against a running Stack, with a fault injected mid-run, and its verdict.

Each simulated chat sends exactly one message, so no burst can merge two updates into one turn:
"every accepted update gets exactly one reply" then reads, at the fake Bot API, as "every
accepted chat received exactly one bot message, replying to its message". A POST is retried
like Telegram retries (5xx and connection errors, with backoff, for up to ``retry_for_s``);
only a 200 counts as accepted.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import orjson

from tgstream.doubles.telegram_api.client import FakeTelegramControl
from tgstream.edges.gateway.app import SECRET_HEADER
from tgstream.loadtest.stack import Stack


@dataclass
class LoadResult:
    offered: int = 0
    accepted: dict[int, float] = field(default_factory=dict)
    """chat id -> monotonic time its POST started."""
    refused: Counter[int] = field(default_factory=Counter)
    duplicate_records: int = -1
    """Extra records per idempotency key on the responses topic (-1: not audited)."""
    replies: dict[int, list[dict[str, Any]]] = field(default_factory=dict)
    fault_window: tuple[float, float] = (0.0, 0.0)

    def missing(self) -> list[int]:
        return [chat for chat in self.accepted if not self.replies.get(chat)]

    def duplicated(self) -> list[int]:
        return [chat for chat, got in self.replies.items() if len(got) > 1]

    def duplicated_outside_kill(self, slack_s: float = 2.0, in_flight_s: float = 0.5) -> list[int]:
        """Duplicates whose first copy was not sent just before the fault began (see test_faults).

        ``in_flight_s``: a request the sender had already written to its socket when it was killed
        still reaches the fake Bot API, and is stamped there a moment after the kill.
        """
        kill = self.fault_window[0]
        return [
            chat
            for chat in self.duplicated()
            if not kill - slack_s <= min(r["mono"] for r in self.replies[chat]) <= kill + in_flight_s
        ]

    def strays(self) -> list[int]:
        return [chat for chat in self.replies if chat not in self.accepted]

    def waits(self, *, posted_before: float | None = None) -> list[float]:
        return sorted(
            min(r["mono"] for r in self.replies[chat]) - started
            for chat, started in self.accepted.items()
            if self.replies.get(chat) and (posted_before is None or started < posted_before)
        )

    def summary(self) -> dict[str, Any]:
        waits = self.waits()

        def pct(q: float) -> float:
            return round(waits[min(len(waits) - 1, int(q * len(waits)))], 2) if waits else float("nan")

        return {
            "offered": self.offered,
            "accepted": len(self.accepted),
            "replied": len(waits),
            "missing": len(self.missing()),
            "duplicated": len(self.duplicated()),
            "wait_p50_s": pct(0.5),
            "wait_p99_s": pct(0.99),
            "wait_max_s": round(waits[-1], 2) if waits else float("nan"),
            "wait_p99_before_fault_s": _pct(self.waits(posted_before=self.fault_window[0]), 0.99),
            "fault_s": round(self.fault_window[1] - self.fault_window[0], 2),
            "duplicate_reply_records": self.duplicate_records,
        }


def _pct(waits: list[float], q: float) -> float:
    return round(waits[min(len(waits) - 1, int(q * len(waits)))], 2) if waits else float("nan")


def _update(update_id: int, chat: int) -> dict[str, Any]:
    return {
        "update_id": update_id,
        "message": {
            "message_id": 1,
            "date": int(time.time()),
            "chat": {"id": chat, "type": "private"},
            "from": {"id": chat, "is_bot": False, "first_name": "Load"},
            "text": f"hello from {chat}",
        },
    }


async def _post(
    session: aiohttp.ClientSession,
    url: str,
    secret: str,
    body: dict[str, Any],
    retry_for_s: float,
    result: LoadResult,
) -> bool:
    deadline = time.monotonic() + retry_for_s
    delay = 0.1
    while True:
        try:
            async with session.post(url, json=body, headers={SECRET_HEADER: secret}) as response:
                if response.status == 200:
                    return True
                result.refused[response.status] += 1
                if response.status < 500:
                    return False
        except (aiohttp.ClientError, TimeoutError):
            result.refused[0] += 1
        if time.monotonic() > deadline:
            return False
        await asyncio.sleep(delay)
        delay = min(delay * 2, 2.0)


async def run_with_fault(
    stack: Stack,
    *,
    rate: float,
    seconds: float,
    fault_at_s: float,
    fault: Callable[[], Awaitable[None]],
    drain_s: float = 90.0,
    retry_for_s: float = 60.0,
) -> LoadResult:
    """Offer ``rate`` msg/s for ``seconds``, run ``fault`` at ``fault_at_s``, then wait for every reply."""
    result = LoadResult()
    secret = stack.settings.webhook_secret.get_secret_value()
    chats = random.sample(range(10**11, 10**12), int(rate * seconds))
    first_update = time.time_ns() // 1000
    timeout = aiohttp.ClientTimeout(total=10)
    async with aiohttp.ClientSession(timeout=timeout) as session:
        posts: list[asyncio.Task[None]] = []

        async def one(index: int, chat: int) -> None:
            started = time.monotonic()
            if await _post(
                session, stack.webhook_url, secret, _update(first_update + index, chat), retry_for_s, result
            ):
                result.accepted[chat] = started

        async def injected() -> None:
            await asyncio.sleep(fault_at_s)
            begin = time.monotonic()
            await fault()
            result.fault_window = (begin, time.monotonic())

        fault_task = asyncio.create_task(injected())
        begin = time.monotonic()
        for index, chat in enumerate(chats):
            await asyncio.sleep(max(0.0, begin + index / rate - time.monotonic()))
            posts.append(asyncio.create_task(one(index, chat)))
            result.offered += 1
        await asyncio.gather(*posts)
        await fault_task
    await _collect(stack, result, drain_s)
    result.duplicate_records = await asyncio.to_thread(duplicate_reply_records, stack)
    return result


async def _collect(stack: Stack, result: LoadResult, drain_s: float) -> None:
    """Read every bot message until each accepted chat has one, then 3 s more to catch duplicates."""
    after = 0
    deadline = time.monotonic() + drain_s
    settle_until: float | None = None
    async with FakeTelegramControl(stack.telegram_url) as control:
        while time.monotonic() < deadline and (settle_until is None or time.monotonic() < settle_until):
            for record in await control.sent(after=after, kind="message"):
                after = max(after, int(record["seq"]))
                result.replies.setdefault(int(record["chat_id"]), []).append(record)
            if settle_until is None and not result.missing():
                settle_until = time.monotonic() + 3.0
            await asyncio.sleep(0.2)


def duplicate_reply_records(stack: Stack) -> int:
    """Records on the responses topic beyond the first per idempotency key (typing actions aside).

    Tells a duplicate made by the dataflow's sink (two records) from one made by the sender
    (one record, sent twice).
    """
    from confluent_kafka import Consumer, TopicPartition

    topic = stack.topics["TOPIC_RESPONSES"]
    consumer = Consumer(
        {
            "bootstrap.servers": stack.settings.kafka_bootstrap_servers,
            "group.id": f"fault-audit-{time.monotonic_ns()}",
            "enable.auto.commit": False,
        }
    )
    try:
        partitions = consumer.list_topics(topic, timeout=10).topics[topic].partitions
        ends = {
            p: consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=10)[1] for p in partitions
        }
        consumer.assign([TopicPartition(topic, p, 0) for p in partitions])
        keys: Counter[str] = Counter()
        done: set[int] = {p for p, end in ends.items() if end == 0}
        deadline = time.monotonic() + 30
        while len(done) < len(partitions) and time.monotonic() < deadline:
            for record in consumer.consume(1000, 0.5):
                if record.error() is not None:
                    continue
                reply = orjson.loads(record.value() or b"{}")
                if reply.get("kind") != "typing":
                    keys[str(reply.get("idempotency_key"))] += 1
                if (record.offset() or 0) + 1 >= ends[record.partition() or 0]:
                    done.add(record.partition() or 0)
        return sum(count - 1 for count in keys.values())
    finally:
        consumer.close()
