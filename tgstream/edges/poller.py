"""getUpdates long polling into ``telegram_messages``, for bots without a public HTTPS endpoint.

Telegram forgets an update only when a later getUpdates call passes ``offset`` above its id. So
one round is, in this order:

1. ``getUpdates(offset=next)`` — which also confirms everything below ``next``;
2. produce the batch in order and wait for every ack (retrying the failed ones, capped backoff);
3. persist ``last_id + 1`` in Redis;
4. loop: the next call confirms the batch to Telegram.

A restart therefore never loses an update (nothing is confirmed before its ack) and does not
repeat one: a crash after 3 resumes from the stored offset; a crash between 2 and 3 gets the
batch again from Telegram, and the update-id markers written in 2 drop every copy.
"""

from __future__ import annotations

import asyncio
import contextlib
import time

import structlog
import telegram
from prometheus_client import CollectorRegistry, Counter, Gauge
from redis.asyncio import Redis
from redis.exceptions import RedisError
from telegram.error import Conflict, InvalidToken, NetworkError, RetryAfter, TimedOut
from tenacity import AsyncRetrying, retry_if_result, wait_exponential

from tgstream.connectors.telegram_bot import retry_after_seconds
from tgstream.edges.inbound import Ingestor, Outcome, RejectedUpdateError, parse_update
from tgstream.schemas.events import InboundMessage

log = structlog.get_logger(__name__)

ALLOWED_UPDATES = ("message", "edited_message", "channel_post", "callback_query", "my_chat_member")


class OffsetStore:
    """The next update id to request, in one Redis key per bot."""

    def __init__(self, redis: Redis, *, namespace: str) -> None:
        self._redis = redis
        self.key = f"{namespace}:poller:offset"

    async def load(self) -> int | None:
        raw = await self._redis.get(self.key)
        return int(raw) if raw is not None else None

    async def save(self, offset: int) -> None:
        await self._redis.set(self.key, str(offset))


class PollerMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        updates = Counter(
            "tgstream_poller_updates", "Updates by outcome", ["outcome"], registry=self.registry
        )
        self.outcomes = {o: updates.labels(o.value) for o in Outcome}
        self.rejected = Counter(
            "tgstream_poller_rejected", "Unreadable updates dead-lettered", registry=self.registry
        )
        polls = Counter(
            "tgstream_poller_polls", "getUpdates calls by result", ["result"], registry=self.registry
        )
        self.polls = {
            r: polls.labels(r) for r in ("ok", "empty", "retry_after", "timeout", "conflict", "error")
        }
        self.offset = Gauge("tgstream_poller_offset", "Next update id to request", registry=self.registry)
        self.offset_unsaved = Counter(
            "tgstream_poller_offset_save_failures",
            "Offsets kept only in memory (Redis down)",
            registry=self.registry,
        )


class Poller:
    """Lifecycle: :meth:`run` until ``stop`` is set; it returns after the current round's acks."""

    def __init__(
        self,
        bot: telegram.Bot,
        ingestor: Ingestor,
        offsets: OffsetStore,
        *,
        limit: int = 100,
        poll_timeout_s: int = 25,
        max_backoff_s: float = 10.0,
    ) -> None:
        self._bot = bot
        self._ingestor = ingestor
        self._offsets = offsets
        self._limit = limit
        self._poll_timeout_s = poll_timeout_s
        self._max_backoff_s = max_backoff_s
        self._next: int | None = None
        self._errors = 0
        self.metrics = PollerMetrics()

    async def run(self, stop: asyncio.Event) -> None:
        self._next = await self._offsets.load()
        log.info("poller starting", offset=self._next)
        while not stop.is_set():
            updates = await self._fetch(stop)
            if updates:
                await self._ingest(updates, stop)

    async def _fetch(self, stop: asyncio.Event) -> tuple[telegram.Update, ...]:
        """One getUpdates call; errors are handled by kind and yield an empty batch."""
        try:
            updates = await self._bot.get_updates(
                offset=self._next,
                limit=self._limit,
                timeout=self._poll_timeout_s,
                allowed_updates=ALLOWED_UPDATES,
            )
        except RetryAfter as exc:
            self.metrics.polls["retry_after"].inc()
            await _sleep(stop, retry_after_seconds(exc))
            return ()
        except TimedOut:
            self.metrics.polls["timeout"].inc()
            return ()
        except InvalidToken:
            raise
        except Conflict as exc:
            self.metrics.polls["conflict"].inc()
            log.error("getUpdates conflict: a webhook is set or another poller runs", error=str(exc))
            await self._back_off(stop)
            return ()
        except NetworkError as exc:
            self.metrics.polls["error"].inc()
            log.warning("getUpdates failed", error=str(exc))
            await self._back_off(stop)
            return ()
        self._errors = 0
        self.metrics.polls["ok" if updates else "empty"].inc()
        return updates

    async def _back_off(self, stop: asyncio.Event) -> None:
        self._errors += 1
        await _sleep(stop, min(self._max_backoff_s, 0.5 * 2 ** min(self._errors, 10)))

    async def _ingest(self, updates: tuple[telegram.Update, ...], stop: asyncio.Event) -> None:
        messages: list[InboundMessage] = []
        for update in updates:
            body = update.to_json().encode()
            try:
                message = parse_update(body, received_at=time.time())
            except RejectedUpdateError as exc:
                self.metrics.rejected.inc()
                if not await self._dead_letter(body, f"{exc.reason}: {exc.detail}", stop):
                    return
                continue
            if message is None:
                self.metrics.outcomes[Outcome.IGNORED].inc()
            else:
                messages.append(message)
        if await self._produce_all(messages, stop):
            return  # stopped before every ack: leave the batch unconfirmed for the next run
        next_offset = max(u.update_id for u in updates) + 1
        self._next = next_offset
        self.metrics.offset.set(next_offset)
        try:
            await self._offsets.save(next_offset)
        except RedisError as exc:
            self.metrics.offset_unsaved.inc()
            log.warning("offset kept in memory only", error=str(exc))

    async def _produce_all(self, messages: list[InboundMessage], stop: asyncio.Event) -> list[InboundMessage]:
        """Produce until every message is acked (or a duplicate); returns what is left when stopped."""
        remaining = messages

        async def attempt() -> list[InboundMessage]:
            nonlocal remaining
            outcomes = await self._ingestor.accept_batch(remaining)
            for outcome in outcomes:
                self.metrics.outcomes[outcome].inc()
            remaining = [
                m
                for m, o in zip(remaining, outcomes, strict=True)
                if o in (Outcome.UNAVAILABLE, Outcome.IN_FLIGHT)
            ]
            return remaining

        retrying = AsyncRetrying(
            wait=wait_exponential(multiplier=0.2, max=self._max_backoff_s),
            retry=retry_if_result(lambda left: bool(left) and not stop.is_set()),
            stop=lambda state: stop.is_set(),
            retry_error_callback=lambda state: remaining,
        )
        if not remaining:
            return []
        left: list[InboundMessage] = await retrying(attempt)
        return left

    async def _dead_letter(self, body: bytes, reason: str, stop: asyncio.Event) -> bool:
        while not await self._ingestor.dead_letter(body, reason):
            if stop.is_set():
                return False
            await self._back_off(stop)
        return True


async def _sleep(stop: asyncio.Event, seconds: float) -> None:
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), seconds)
