"""One turn through the real local model (SmolLM2 served by llama.cpp), not the stub."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from dataflow_harness import FlowTopics, Telegram, TopicReader, answered, as_reply, flow_env, random_chat_id
from dataflow_harness import running_dataflow as running

from tgstream.config import Settings

pytestmark = [pytest.mark.integration, pytest.mark.llm]


def test_one_turn_against_the_local_model(
    settings: Settings, topic_factory: Callable[..., str], tmp_path: Path
) -> None:
    topics = FlowTopics(
        topic_factory("msgs"), topic_factory("replies"), topic_factory("events"), topic_factory("dead")
    )
    telegram = Telegram(settings, topics.messages)
    replies = TopicReader(settings, topics.responses, 1)
    chat = random_chat_id()
    env = flow_env(
        settings, topics, tmp_path, OPENAI_BASE_URL=settings.openai_base_url, LLM_MODEL=settings.llm_model
    )
    try:
        with running(env, tmp_path / "dataflow.log"):
            telegram.say(chat, "Hi! What's a good name for a goldfish?")
            telegram.flush()
            replies.read_until(lambda rs: len(answered(rs, chat)) >= 1, 120, as_reply)
    finally:
        replies.close()
    reply = answered(replies.records, chat)[0]
    assert reply.kind == "reply", f"the model did not answer: {reply.text!r}"
    assert reply.text.strip()
    assert "You said:" not in reply.text, "that was the stub, not the model"
