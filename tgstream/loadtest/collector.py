"""Reading what the bot sent from the fake Telegram server and matching it to what users sent.

Polls ``GET /control/sent?after=<seq>&kind=message`` so each poll returns only new records; the
server stamps each with ``mono`` (``time.monotonic()`` at receipt), the clock the driver uses.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from typing import Any

import aiohttp

from tgstream.doubles.telegram_api.client import ControlError, FakeTelegramControl
from tgstream.loadtest.tracker import Pending, ReplyTracker

AnswerCallback = Callable[[Pending, float, str], None]


class Collector:
    """Feeds every new bot message to ``tracker`` and reports each answered message."""

    def __init__(
        self, tracker: ReplyTracker, *, clock_origin: Callable[[], float], on_answer: AnswerCallback
    ) -> None:
        self._tracker = tracker
        self._origin = clock_origin
        self._on_answer = on_answer
        self.last_seq = 0
        self.records = 0
        self.poll_errors = 0

    def feed(self, records: list[dict[str, Any]]) -> None:
        origin = self._origin()
        for record in records:
            self.last_seq = max(self.last_seq, int(record["seq"]))
            self.records += 1
            mono = float(record["mono"])
            reply_to = record.get("reply_to_message_id")
            answered = self._tracker.match(
                chat_id=int(record["chat_id"]),
                reply_to=int(reply_to) if reply_to is not None else None,
                at=mono - origin,
            )
            for pending in answered:
                self._on_answer(pending, mono, str(record.get("visible_text") or record.get("text") or ""))

    async def poll_once(self, control: FakeTelegramControl) -> None:
        self.feed(await control.sent(after=self.last_seq, kind="message"))

    async def run(self, control: FakeTelegramControl, interval_s: float) -> None:
        """Poll until cancelled; a failed poll is counted and retried, never fatal mid-run."""
        while True:
            try:
                await self.poll_once(control)
            except (aiohttp.ClientError, ControlError, TimeoutError):
                self.poll_errors += 1
            with contextlib.suppress(TimeoutError):
                await asyncio.sleep(interval_s)
