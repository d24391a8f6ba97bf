"""Delivering one Reply to Telegram: split, render, pace, send, and decide what each error means.

Errors by kind (as PTB's own network loop sorts them):

- 429 ``RetryAfter``: pause the scope it hit (shared through Redis) and send again when allowed;
  not counted as a failed attempt, but bounded by ``max_flood_wait_s`` in total.
- ``BadRequest`` "can't parse entities": send the same part again as plain text, at once.
- other ``BadRequest``: permanent, dead-lettered, never retried.
- ``Forbidden`` (the user blocked the bot): the chat is marked inactive, dead-lettered, never retried.
- ``TimedOut`` / ``NetworkError`` (5xx, connection): retried with capped, jittered backoff, at most
  ``max_attempts`` times, then dead-lettered so an operator can replay it.
- ``InvalidToken``: raised; the process cannot do anything useful and must stop.

Idempotency: each part of a reply is marked ``sent`` in Redis right after Telegram accepted it, and
parts already marked are skipped, so a replayed reply resumes at its first unsent part. The window
between Telegram's answer and the mark (one Redis round trip) is where a crash can still send one
part twice; closing it would need Telegram to accept an idempotency key, which it does not.

A reply whose key is already being delivered in this process (the same record consumed again after
a rebalance while its first copy is still sending) is not started in parallel: it waits for the
first copy and then meets its sent marks, so the mark check can never race the first send.
"""

from __future__ import annotations

import asyncio
import enum
import time
from collections.abc import Callable
from dataclasses import dataclass

from aiolimiter import AsyncLimiter
from telegram import Bot, ReplyParameters
from telegram.constants import ChatAction, ParseMode
from telegram.error import BadRequest, Forbidden, NetworkError, RetryAfter, TelegramError
from tenacity import AsyncRetrying, retry_if_exception, stop_after_attempt, wait_exponential_jitter

from tgstream.connectors.telegram_bot import retry_after_seconds
from tgstream.edges.sender.metrics import SenderMetrics
from tgstream.schemas.events import Reply
from tgstream.state.dedupe import DedupeUnavailableError, SentMarks
from tgstream.state.send_limits import InactiveChats, SendLimits, SendLimitsUnavailableError
from tgstream.steps.split import split_text
from tgstream.steps.telegram_html import render_html


class Outcome(enum.Enum):
    SENT = "sent"
    DUPLICATE = "duplicate"
    DROPPED = "dropped"
    DEAD_LETTER = "dead_letter"


@dataclass(frozen=True, slots=True)
class Result:
    outcome: Outcome
    reason: str | None = None


@dataclass(frozen=True)
class DeliveryPolicy:
    max_attempts: int = 8
    first_backoff_s: float = 0.5
    max_backoff_s: float = 30.0
    max_flood_wait_s: float = 900.0
    typing_ttl_s: float = 5.0
    """A typing action older than this is stale (Telegram shows one for about 5 s)."""
    fallback_global_per_s: float = 30.0
    fallback_chat_gap_s: float = 1.0


class _Permanent(Exception):
    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class _Blocked(Exception):
    pass


def _transient(exc: BaseException) -> bool:
    return isinstance(exc, NetworkError) and not isinstance(exc, BadRequest)


class ReplyDelivery:
    """Sends replies through ``bot`` within ``limits``; one instance serves every chat."""

    def __init__(
        self,
        bot: Bot,
        limits: SendLimits,
        marks: SentMarks,
        inactive: InactiveChats,
        metrics: SenderMetrics,
        *,
        policy: DeliveryPolicy | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._bot = bot
        self._limits = limits
        self._marks = marks
        self._inactive = inactive
        self._metrics = metrics
        self._policy = policy or DeliveryPolicy()
        self._clock = clock
        self._local_global = AsyncLimiter(self._policy.fallback_global_per_s, 1.0)
        self._in_flight: dict[str, asyncio.Future[None]] = {}

    @property
    def in_flight(self) -> int:
        return len(self._in_flight)

    async def deliver(self, reply: Reply, *, queued_behind: int = 0) -> Result:
        if reply.kind == "typing":
            return await self._typing(reply, queued_behind)
        key = reply.idempotency_key
        while (first := self._in_flight.get(key)) is not None:
            await asyncio.shield(first)
        done = self._in_flight[key] = asyncio.get_running_loop().create_future()
        try:
            return await self._deliver_once(reply)
        finally:
            del self._in_flight[key]
            done.set_result(None)

    async def _deliver_once(self, reply: Reply) -> Result:
        parts = split_text(reply.text)
        if not parts:
            return Result(Outcome.DEAD_LETTER, "empty_text")
        done, turn_taken = await self._check_and_take_turn(reply, len(parts))
        if all(done):
            return Result(Outcome.DUPLICATE)
        try:
            for index, part in enumerate(parts):
                if done[index]:
                    continue
                reply_to = reply.reply_to_message_id if index == 0 else None
                message_id = await self._send_part(reply, part, reply_to, turn_taken=turn_taken)
                turn_taken = False
                await self._mark(reply, index, message_id)
        except _Blocked:
            await self._mark_inactive(reply.chat_id)
            return Result(Outcome.DEAD_LETTER, "blocked_by_user")
        except _Permanent as exc:
            return Result(Outcome.DEAD_LETTER, exc.reason)
        self._metrics.reply_latency.observe(max(0.0, self._clock() - reply.emitted_at))
        return Result(Outcome.SENT)

    async def _check_and_take_turn(self, reply: Reply, parts: int) -> tuple[list[bool], bool]:
        """The parts already sent, and whether a send slot was taken, asked of Redis together.

        Both questions go out at once, so they share one pipeline round trip. A reply that turns
        out to be a duplicate has then spent a token of its chat's bucket: only replays pay that.
        """
        marks, slot = await asyncio.gather(
            self._marks.sent_parts(reply.idempotency_key, parts),
            self._limits.acquire(reply.chat_id, reply.chat_type),
            return_exceptions=True,
        )
        if isinstance(marks, DedupeUnavailableError):
            self._metrics.degraded.labels("sent_marks").inc()
            marks = self._marks.sent_here(reply.idempotency_key, parts)
        elif isinstance(marks, BaseException):
            raise marks
        if isinstance(slot, SendLimitsUnavailableError):
            slot = 1.0  # not taken: the first send waits its turn the usual (degraded) way
        elif isinstance(slot, BaseException):
            raise slot
        return marks, slot <= 0

    async def _typing(self, reply: Reply, queued_behind: int) -> Result:
        """Best effort: never queued, never retried, never ahead of a reply."""
        if queued_behind > 0 or self._clock() - reply.emitted_at > self._policy.typing_ttl_s:
            return Result(Outcome.DROPPED, "stale")
        if not await self._wait_for_turn(reply, low_priority=True):
            return Result(Outcome.DROPPED, "rate_limited")
        try:
            await self._bot.send_chat_action(reply.chat_id, ChatAction.TYPING)
        except RetryAfter as exc:
            await self._report_flood(reply, retry_after_seconds(exc))
            return Result(Outcome.DROPPED, "flood")
        except Forbidden:
            await self._mark_inactive(reply.chat_id)
            return Result(Outcome.DROPPED, "blocked_by_user")
        except TelegramError as exc:
            if _transient(exc) or isinstance(exc, BadRequest):
                return Result(Outcome.DROPPED, type(exc).__name__)
            raise
        return Result(Outcome.SENT)

    async def _send_part(self, reply: Reply, plain: str, reply_to: int | None, *, turn_taken: bool) -> int:
        retrying = AsyncRetrying(
            stop=stop_after_attempt(self._policy.max_attempts),
            wait=wait_exponential_jitter(
                initial=self._policy.first_backoff_s, max=self._policy.max_backoff_s
            ),
            retry=retry_if_exception(_transient),
            before_sleep=lambda state: self._metrics.retries.labels(
                type(state.outcome.exception()).__name__ if state.outcome else "unknown"
            ).inc(),
            reraise=True,
        )
        try:
            async for attempt in retrying:
                with attempt:
                    taken, turn_taken = turn_taken, False  # a retry waits for a slot of its own
                    return await self._send_until_accepted(reply, plain, reply_to, turn_taken=taken)
        except NetworkError as exc:
            if _transient(exc):
                raise _Permanent(
                    f"gave_up_after_{self._policy.max_attempts}_attempts: {exc.message}"
                ) from exc
            raise
        raise _Permanent("unreachable: retry loop ended without a result")

    async def _send_until_accepted(
        self, reply: Reply, plain: str, reply_to: int | None, *, turn_taken: bool = False
    ) -> int:
        """One attempt: waits out 429s and falls back to plain text; transient errors propagate.

        ``turn_taken``: a send slot was already acquired for the first try (see
        :meth:`_check_and_take_turn`); every later try waits for its own.
        """
        text = render_html(plain)
        mode: ParseMode | None = ParseMode.HTML
        flood_deadline = self._clock() + self._policy.max_flood_wait_s
        reply_parameters = ReplyParameters(reply_to, allow_sending_without_reply=True) if reply_to else None
        while True:
            if not turn_taken:
                await self._wait_for_turn(reply, low_priority=False)
            turn_taken = False
            started = time.perf_counter()
            try:
                message = await self._bot.send_message(
                    reply.chat_id, text, parse_mode=mode, reply_parameters=reply_parameters
                )
            except RetryAfter as exc:
                await self._report_flood(reply, retry_after_seconds(exc))
                if self._clock() > flood_deadline:
                    raise _Permanent("flood_wait_exceeded") from exc
                continue
            except BadRequest as exc:
                if mode is not None and "can't parse entities" in exc.message.lower():
                    text, mode = plain, None
                    self._metrics.retries.labels("plain_text_fallback").inc()
                    continue
                raise _Permanent(f"bad_request: {exc.message}") from exc
            except Forbidden as exc:
                raise _Blocked(exc.message) from exc
            self._metrics.send_seconds.observe(time.perf_counter() - started)
            self._metrics.messages.labels(mode or "plain").inc()
            return message.message_id

    async def _wait_for_turn(self, reply: Reply, *, low_priority: bool) -> bool:
        """Wait until the shared limits allow a send; a low-priority send gives up instead of waiting.

        With Redis down, pace locally: a process-wide global limiter plus a fixed gap per chat (a
        chat's sends are sequential, so sleeping before each one spaces them).
        """
        while True:
            try:
                wait_s = await self._limits.acquire(reply.chat_id, reply.chat_type, low_priority=low_priority)
            except SendLimitsUnavailableError:
                self._metrics.degraded.labels("send_limits").inc()
                if low_priority:
                    return False
                await self._local_global.acquire()
                await asyncio.sleep(self._policy.fallback_chat_gap_s)
                return True
            if wait_s <= 0:
                return True
            if low_priority:
                return False
            await asyncio.sleep(wait_s)

    async def _report_flood(self, reply: Reply, retry_after_s: float) -> None:
        try:
            scope = await self._limits.report_flood(reply.chat_id, reply.chat_type, retry_after_s)
        except SendLimitsUnavailableError:
            self._metrics.degraded.labels("send_limits").inc()
            scope = "local"
            await asyncio.sleep(retry_after_s)
        self._metrics.floods.labels(scope).inc()

    async def _mark(self, reply: Reply, index: int, message_id: int) -> None:
        try:
            await self._marks.mark(reply.idempotency_key, index, message_id)
        except DedupeUnavailableError:
            self._metrics.degraded.labels("sent_marks").inc()

    async def _mark_inactive(self, chat_id: int) -> None:
        self._metrics.inactive.inc()
        try:
            await self._inactive.add(chat_id)
        except SendLimitsUnavailableError:
            self._metrics.degraded.labels("inactive_chats").inc()
