"""python-telegram-bot's ``Bot``, pointed at TELEGRAM_API_URL, with a pooled HTTP client.

PTB builds method URLs as ``{base_url}{token}/{method}``; we pass ``{TELEGRAM_API_URL}/bot`` so
the same code talks to api.telegram.org or to ``tgstream fake-telegram``. Two request objects,
as PTB itself uses: one for ordinary calls (a pool sized for the sender's concurrency) and one for
``getUpdates``, whose long poll must never wait behind, or hold up, a send.
"""

from __future__ import annotations

import telegram
from telegram.error import RetryAfter

from tgstream.config import Settings
from tgstream.connectors.telegram_request import AiohttpRequest


def make_bot(
    settings: Settings,
    *,
    pool_size: int = 64,
    read_timeout_s: float = 10.0,
    connect_timeout_s: float = 5.0,
    long_poll_timeout_s: float = 30.0,
) -> telegram.Bot:
    """A Bot for ``settings``; use it as ``async with`` so its HTTP clients are opened and closed."""
    request = AiohttpRequest(
        pool_size=pool_size,
        read_timeout_s=read_timeout_s,
        connect_timeout_s=connect_timeout_s,
        pool_timeout_s=read_timeout_s,
    )
    updates_request = AiohttpRequest(
        pool_size=1, read_timeout_s=long_poll_timeout_s + 10.0, connect_timeout_s=connect_timeout_s
    )
    return telegram.Bot(
        settings.telegram_bot_token.get_secret_value(),
        base_url=f"{settings.telegram_api_url}/bot",
        request=request,
        get_updates_request=updates_request,
    )


def retry_after_seconds(exc: RetryAfter) -> float:
    """PTB gives ``retry_after`` as int seconds or, when opted in, as a timedelta."""
    value = exc.retry_after
    return float(value) if isinstance(value, int | float) else value.total_seconds()
