"""End to end through every process: a user writes at the local Bot API server, Telegram-style
webhook delivery reaches the gateway, the dataflow answers in persona (OpenAI stub), and the
sender's reply is received back by the Bot API server, in order, once."""

from __future__ import annotations

import asyncio
import re
import uuid
from typing import Any

import psycopg
import pytest
import telegram

from tgstream.config import Settings
from tgstream.doubles.stub_content import persona_tag
from tgstream.doubles.telegram_api import FakeTelegramControl
from tgstream.loadtest.stack import StackOptions, running_stack
from tgstream.state.personas import DEFAULT_PERSONA

pytestmark = [pytest.mark.integration, pytest.mark.slow, pytest.mark.anyio]


def default_persona_tag(settings: Settings) -> str:
    with psycopg.connect(settings.database_url) as conn:
        row = conn.execute(
            "SELECT system_prompt FROM personalities WHERE name = %s", (DEFAULT_PERSONA,)
        ).fetchone()
    assert row is not None, "the default persona is seeded by `tgstream db migrate`"
    return persona_tag([{"role": "system", "content": row[0]}])


async def test_user_message_gets_an_in_persona_reply_at_the_bot_api(
    chat_ids: Any,
    eventually: Any,
) -> None:
    options = StackOptions(run_id=f"edges-e2e-{uuid.uuid4().hex[:8]}", stub_latency_ms=50)
    with running_stack(options) as stack:
        settings = stack.settings
        tag = default_persona_tag(settings)
        async with (
            telegram.Bot(
                settings.telegram_bot_token.get_secret_value(), base_url=f"{stack.telegram_url}/bot"
            ) as bot,
            FakeTelegramControl(stack.telegram_url) as control,
        ):
            assert await bot.set_webhook(
                stack.webhook_url, secret_token=settings.webhook_secret.get_secret_value()
            )
            chats = chat_ids(3)
            lines = ["hello there", "what a day"]
            for line in lines:
                await control.send_user_messages([{"chat_id": c, "text": f"{line} {c}"} for c in chats])
                await asyncio.sleep(1.5)  # a second turn, not a burst merged with the first

            async def answered() -> bool:
                return len(await control.sent(kind="message")) >= len(chats) * len(lines)

            await eventually(answered, 90)
            await asyncio.sleep(1.0)
            sent = await control.sent(kind="message")
    assert len(sent) == len(chats) * len(lines), "each message answered exactly once"
    prefix = re.escape(f"[{tag}] ") if tag else ""
    for chat in chats:
        texts = [r["visible_text"] for r in sent if r["chat_id"] == chat]
        for turn, (line, text) in enumerate(zip(lines, texts, strict=True), start=1):
            assert re.fullmatch(f"{prefix}You said: {re.escape(f'{line} {chat}')} \\[turn {turn}\\]", text), (
                text
            )
