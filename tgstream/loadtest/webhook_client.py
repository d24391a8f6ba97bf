"""Posting updates to the gateway the way Telegram does, retries included.

Telegram retries a webhook delivery that failed to connect or got a 5xx or 429 ("try again
later"), and gives up on other 4xx (the update is refused). The load generator does the same,
with tenacity's capped exponential backoff, so a brief gateway or Kafka hiccup shows up as
latency, and only a refusal or a persistent outage as an error.
"""

from __future__ import annotations

from collections.abc import Callable
from urllib.parse import urljoin

import aiohttp
from tenacity import AsyncRetrying, RetryError, retry_if_result, stop_after_attempt, wait_exponential

SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"  # noqa: S105 - a header name, not a secret
FAILED = 0
"""The status reported when no attempt got an HTTP answer, or every answer said "later"."""


class GatewayUnreachableError(RuntimeError):
    """The gateway's /healthz did not answer 200 before the run."""


def _retry_later(status: int) -> bool:
    return status == FAILED or status == 429 or status >= 500


class WebhookPoster:
    """POSTs update bodies to ``url`` with the secret header; ``give_up()`` stops pending retries."""

    def __init__(
        self,
        session: aiohttp.ClientSession,
        url: str,
        secret: str,
        *,
        attempts: int = 7,
        first_backoff_s: float = 0.1,
        max_backoff_s: float = 2.0,
        stopped: Callable[[], bool] = lambda: False,
    ) -> None:
        self._session = session
        self._url = url
        self._headers = {SECRET_HEADER: secret, "Content-Type": "application/json"}
        self._attempts = attempts
        self._wait = wait_exponential(multiplier=first_backoff_s, max=max_backoff_s)
        self._stopped = stopped

    async def check(self) -> None:
        health = urljoin(self._url, "/healthz")
        try:
            async with self._session.get(health) as response:
                await response.read()
                status = response.status
        except (aiohttp.ClientError, OSError) as exc:
            raise GatewayUnreachableError(f"gateway not reachable at {health}: {exc}") from exc
        if status != 200:
            raise GatewayUnreachableError(f"gateway at {health} answered {status}")

    async def _attempt(self, body: bytes) -> int:
        try:
            async with self._session.post(self._url, data=body, headers=self._headers) as response:
                await response.read()
                return response.status
        except (aiohttp.ClientError, TimeoutError):
            return FAILED

    async def post(self, body: bytes) -> int:
        """The final HTTP status: a 2xx or a refusal (4xx), or :data:`FAILED` after the retries."""
        retrying = AsyncRetrying(
            retry=retry_if_result(lambda status: _retry_later(status) and not self._stopped()),
            stop=stop_after_attempt(self._attempts),
            wait=self._wait,
        )
        try:
            status: int = await retrying(self._attempt, body)
        except RetryError:
            return FAILED
        return FAILED if _retry_later(status) else status
