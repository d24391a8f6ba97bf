"""`tgstream dataflow` logs JSON lines with ids hashed, secrets redacted and turns correlated.

The model endpoint is a closed port, so the turn fails and logs a warning from inside the job:
that line must carry the message's ``correlation_id`` and ``update_ids``, and the chat id only
as its salted hash.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson
import pytest
from dataflow_harness import (
    FlowTopics,
    Telegram,
    TopicReader,
    answered,
    as_reply,
    flow_env,
    free_port,
    random_chat_id,
    running_dataflow,
)
from pydantic import SecretStr

from tgstream.config import Settings
from tgstream.dataflows.records import Records
from tgstream.observability.logging import correlation_id

pytestmark = pytest.mark.integration


def json_lines(text: str) -> list[dict[str, Any]]:
    return [orjson.loads(line) for line in text.splitlines() if line.startswith("{")]


def test_dataflow_logs_json_without_secrets_or_raw_ids(
    settings: Settings, topic_factory: Callable[..., str], tmp_path: Path
) -> None:
    topics = FlowTopics(
        topic_factory("msgs"), topic_factory("replies"), topic_factory("events"), topic_factory("dead")
    )
    secrets = {
        "TELEGRAM_BOT_TOKEN": f"424242:tok-{uuid.uuid4().hex}",
        "OPENAI_API_KEY": f"sk-{uuid.uuid4().hex}",
        "WEBHOOK_SECRET": f"hook-{uuid.uuid4().hex}",
        "ANALYTICS_SALT": f"salt-{uuid.uuid4().hex}",
    }
    env = flow_env(
        settings,
        topics,
        tmp_path,
        LOG_FORMAT="json",
        OPENAI_BASE_URL=f"http://127.0.0.1:{free_port()}/v1",
        LLM_MAX_RETRIES="0",
        **secrets,
    )
    telegram = Telegram(settings, topics.messages)
    replies = TopicReader(settings, topics.responses, 1)
    chat = random_chat_id()
    log_path = tmp_path / "dataflow.log"
    try:
        with running_dataflow(env, log_path):
            sent = telegram.say(chat, "hello there")
            telegram.flush()
            replies.read_until(lambda rs: len(answered(rs, chat)) >= 1, 30, as_reply)
            deadline = time.monotonic() + 10
            while '"turn.llm_failed"' not in log_path.read_text(errors="replace"):
                assert time.monotonic() < deadline, "the failed turn was never logged"
                time.sleep(0.1)
    finally:
        replies.close()

    text = log_path.read_text(errors="replace")
    lines = json_lines(text)
    events = {line.get("event") for line in lines}
    assert {"dataflow.starting", "services.opened", "turn.llm_failed"} <= events
    for name, secret in secrets.items():
        assert secret not in text, f"{name} leaked into the log"
    assert secrets["TELEGRAM_BOT_TOKEN"].partition(":")[2] not in text
    assert str(chat) not in text, "the raw chat id was logged"

    failed = next(line for line in lines if line["event"] == "turn.llm_failed")
    assert failed["level"] == "warning"
    assert failed["correlation_id"] == correlation_id([sent.update_id])
    assert failed["update_ids"] == [sent.update_id]
    assert failed["chat_id"] == Records(SecretStr(secrets["ANALYTICS_SALT"])).hash_id(chat)
