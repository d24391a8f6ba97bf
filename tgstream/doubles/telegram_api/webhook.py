"""Delivering updates to a webhook the way Telegram does.

- One POST per update, JSON body, ``X-Telegram-Bot-Api-Secret-Token`` when a secret is set.
- At most one delivery in flight per chat, so a chat's updates arrive in order; up to
  ``max_connections`` chats at once.
- A non-2xx answer or a connection error is retried with capped exponential backoff. Telegram
  says it gives up "after a reasonable amount of attempts"; here a 4xx other than 429 is dropped
  after ``max_client_error_attempts`` tries (a malformed update is never retried forever), while
  5xx, 429 and network errors keep being retried until the webhook changes, since those mean
  "try again later".
- Undelivered updates stay pending, so after ``deleteWebhook`` getUpdates returns them.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from dataclasses import dataclass
from typing import Any

import aiohttp
import orjson
import structlog

from tgstream.doubles.telegram_api.store import BotStore, WebhookConfig

log = structlog.get_logger(__name__)


@dataclass(frozen=True)
class RetryPolicy:
    first_backoff_s: float = 0.1
    max_backoff_s: float = 2.0
    max_client_error_attempts: int = 3
    request_timeout_s: float = 10.0


def chat_of(update: dict[str, Any]) -> int | None:
    for kind in ("message", "edited_message", "channel_post", "my_chat_member"):
        payload = update.get(kind)
        if isinstance(payload, dict) and isinstance(payload.get("chat"), dict):
            chat_id = payload["chat"].get("id")
            return chat_id if isinstance(chat_id, int) else None
    query = update.get("callback_query")
    if isinstance(query, dict) and isinstance(query.get("message"), dict):
        chat_id = query["message"].get("chat", {}).get("id")
        return chat_id if isinstance(chat_id, int) else None
    return None


class WebhookDeliverer:
    """Owns the delivery tasks for one webhook configuration; :meth:`stop` cancels them all."""

    def __init__(self, store: BotStore, config: WebhookConfig, policy: RetryPolicy) -> None:
        self._store = store
        self._config = config
        self._policy = policy
        self._queues: dict[int | str, deque[int]] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._slots = asyncio.Semaphore(config.max_connections)
        self._session: aiohttp.ClientSession | None = None
        self.delivered = 0
        self.dropped = 0
        self.failed_attempts = 0

    async def start(self) -> None:
        """Open the HTTP session and queue every update that is already pending."""
        self._session = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=self._config.max_connections),
            timeout=aiohttp.ClientTimeout(total=self._policy.request_timeout_s),
            json_serialize=lambda obj: orjson.dumps(obj).decode(),
        )
        self.enqueue(list(self._store.pending.values()))

    async def stop(self) -> None:
        """Cancel deliveries in flight; their updates stay pending in the store."""
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
        self._queues.clear()
        if self._session is not None:
            await self._session.close()

    @property
    def queued(self) -> int:
        return sum(len(q) for q in self._queues.values())

    def enqueue(self, updates: list[dict[str, Any]]) -> None:
        for update in updates:
            chat = chat_of(update)
            key: int | str = chat if chat is not None else f"u{update['update_id']}"
            queue = self._queues.get(key)
            if queue is None:
                queue = self._queues[key] = deque()
                task = asyncio.create_task(self._drain(key, queue), name=f"webhook-chat-{key}")
                self._tasks.add(task)
                task.add_done_callback(self._task_done)
            queue.append(update["update_id"])

    def _task_done(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("webhook delivery task failed", task=task.get_name(), error=repr(task.exception()))

    async def _drain(self, key: int | str, queue: deque[int]) -> None:
        try:
            while queue:
                update = self._store.pending.get(queue[0])
                if update is not None:
                    async with self._slots:
                        await self._deliver(update)
                queue.popleft()
        finally:
            self._queues.pop(key, None)

    async def _deliver(self, update: dict[str, Any]) -> None:
        if self._session is None:
            raise RuntimeError("WebhookDeliverer.start() was not awaited")
        headers = {"Content-Type": "application/json"}
        if self._config.secret_token:
            headers["X-Telegram-Bot-Api-Secret-Token"] = self._config.secret_token
        body = orjson.dumps(update)
        backoff = self._policy.first_backoff_s
        client_errors = 0
        while True:
            try:
                async with self._session.post(self._config.url, data=body, headers=headers) as response:
                    await response.read()
                    status = response.status
            except (aiohttp.ClientError, TimeoutError) as exc:
                status, reason = 0, f"Connection failed: {type(exc).__name__}"
            else:
                reason = f"Wrong response from the webhook: {status}"
            if 200 <= status < 300:
                self.delivered += 1
                self._store.delivered(update["update_id"])
                return
            self.failed_attempts += 1
            self._store.last_webhook_error = (time.time(), reason)
            if 400 <= status < 500 and status != 429:
                client_errors += 1
                if client_errors >= self._policy.max_client_error_attempts:
                    self.dropped += 1
                    self._store.delivered(update["update_id"])
                    return
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, self._policy.max_backoff_s)
