"""What the fake Bot API remembers: messages the bot sent, and updates waiting for the bot.

Everything is bounded (the double runs for hours in the demo and load tests): the sent log keeps
the newest ``max_records`` entries, and pending updates are capped like Telegram's own queue.
Records carry both clocks: ``mono`` to measure rates and latencies, ``wall`` to correlate with
Unix timestamps stamped by other processes.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from typing import Any

MAX_PENDING_UPDATES = 100_000


@dataclass(slots=True)
class SentRecord:
    seq: int
    kind: str
    chat_id: int
    message_id: int | None
    text: str
    visible_text: str
    parse_mode: str | None
    reply_to_message_id: int | None
    action: str | None
    mono: float
    wall: float

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class WebhookConfig:
    url: str
    secret_token: str | None
    max_connections: int
    generation: int


@dataclass
class BotStore:
    max_records: int = 200_000
    sent: deque[SentRecord] = field(default_factory=deque)
    texts: dict[tuple[int, int], str] = field(default_factory=dict)
    next_seq: int = 1
    next_message_id: dict[int, int] = field(default_factory=dict)
    pending: dict[int, dict[str, Any]] = field(default_factory=dict)
    next_update_id: int = field(default_factory=lambda: time.time_ns() // 1000)
    """Starts at the wall clock in microseconds: a restarted or second fake server never reuses an
    update id, so the gateway's 26-hour duplicate markers cannot swallow a new run's updates."""
    webhook: WebhookConfig | None = None
    webhook_generation: int = 0
    last_webhook_error: tuple[float, str] | None = None
    _waiters: set[asyncio.Future[None]] = field(default_factory=set)

    def record(
        self,
        kind: str,
        chat_id: int,
        *,
        text: str = "",
        visible_text: str = "",
        parse_mode: str | None = None,
        message_id: int | None = None,
        reply_to: int | None = None,
        action: str | None = None,
    ) -> SentRecord:
        if kind == "message":
            message_id = self.next_message_id.get(chat_id, 0) + 1
            self.next_message_id[chat_id] = message_id
        entry = SentRecord(
            self.next_seq,
            kind,
            chat_id,
            message_id,
            text,
            visible_text,
            parse_mode,
            reply_to,
            action,
            time.monotonic(),
            time.time(),
        )
        self.next_seq += 1
        self.sent.append(entry)
        if message_id is not None:
            self.texts[(chat_id, message_id)] = visible_text
        while len(self.sent) > self.max_records:
            old = self.sent.popleft()
            if old.message_id is not None and old.kind == "message":
                self.texts.pop((old.chat_id, old.message_id), None)
        return entry

    def query(self, *, chat_id: int | None, after: int, kind: str | None, limit: int) -> list[SentRecord]:
        """Records with ``seq > after``, oldest first; the deque is in seq order so we scan from the end."""
        found: list[SentRecord] = []
        for entry in reversed(self.sent):
            if entry.seq <= after:
                break
            if (chat_id is None or entry.chat_id == chat_id) and (kind is None or entry.kind == kind):
                found.append(entry)
        found.reverse()
        return found[:limit]

    def add_updates(self, updates: Iterable[dict[str, Any]]) -> list[int]:
        """Queue updates, assigning ids to those without one, and wake long polls."""
        ids = []
        for update in updates:
            update_id = update.get("update_id")
            if not isinstance(update_id, int):
                update_id = self.next_update_id
                update = {"update_id": update_id, **update}
            self.next_update_id = max(self.next_update_id, update_id + 1)
            self.pending[update_id] = update
            ids.append(update_id)
        while len(self.pending) > MAX_PENDING_UPDATES:
            del self.pending[next(iter(self.pending))]
        self.wake_polls()
        return ids

    def wake_polls(self) -> None:
        """End every long poll's wait; each one then re-checks what changed."""
        for waiter in self._waiters:
            if not waiter.done():
                waiter.set_result(None)

    def confirm(self, offset: int) -> None:
        """getUpdates' offset semantics: every update with a smaller id is forgotten."""
        for update_id in [u for u in self.pending if u < offset]:
            del self.pending[update_id]

    def take(self, limit: int, offset: int | None) -> list[dict[str, Any]]:
        """Pending updates in arrival order (ids only grow, as Telegram's do), from ``offset``."""
        if offset is not None and offset < 0:
            return list(self.pending.values())[offset:][:limit]
        batch = []
        for update_id, update in self.pending.items():
            if offset is None or update_id >= offset:
                batch.append(update)
                if len(batch) >= limit:
                    break
        return batch

    async def wait_for_updates(self, wait_s: float) -> None:
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters.add(waiter)
        try:
            await asyncio.wait_for(waiter, wait_s)
        except TimeoutError:
            pass
        finally:
            self._waiters.discard(waiter)

    def delivered(self, update_id: int) -> None:
        self.pending.pop(update_id, None)

    def reset(self) -> None:
        self.sent.clear()
        self.texts.clear()
        self.next_message_id.clear()
        self.pending.clear()
        self.last_webhook_error = None
