"""A memory written in one conversation is recalled after /reset cleared the context window.

It runs once per embeddings backend: ``openai`` (the stub's ``/v1/embeddings``) and ``local``
(MiniLM in the dataflow process, the default in production).

The stub's reply only echoes the last user message, so this test runs its own copy of the stub
(the same app, in-process) with a middleware that records every chat request: the prompt of
the turn after /reset must carry the memory in its system message.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import orjson
import psycopg
import pytest
from aiohttp import web
from dataflow_harness import FlowTopics, Telegram, TopicReader, answered, as_reply, flow_env, random_chat_id
from dataflow_harness import running_dataflow as running

from tgstream.config import Settings
from tgstream.dataflows.event_loop import BackgroundLoop
from tgstream.doubles.llm_stub import create_app
from tgstream.doubles.stub_behaviour import BehaviourConfig

pytestmark = pytest.mark.integration


class RecordingStub:
    """The OpenAI stub on a free port, remembering the messages of each chat completion request."""

    def __init__(self) -> None:
        self.prompts: list[list[dict[str, Any]]] = []
        self._loop = BackgroundLoop("recording-stub").start()
        self._runner: web.AppRunner | None = None
        self.url = self._loop.call(self._start, timeout=10)

    async def _start(self) -> str:
        @web.middleware
        async def record(
            request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
        ) -> web.StreamResponse:
            if request.path.endswith("/chat/completions"):
                self.prompts.append(orjson.loads(await request.read())["messages"])
            return await handler(request)

        app = create_app(BehaviourConfig(latency_ms=20))
        app.middlewares.append(record)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        return f"http://127.0.0.1:{self._runner.addresses[0][1]}/v1"

    def close(self) -> None:
        if self._runner is not None:
            self._loop.call(self._runner.cleanup, timeout=10)
        self._loop.stop()


@pytest.fixture
def stub() -> Iterator[RecordingStub]:
    stub = RecordingStub()
    yield stub
    stub.close()


def memories_of(settings: Settings, chat_id: int) -> int:
    with psycopg.connect(settings.database_url, connect_timeout=5) as conn:
        row = conn.execute("SELECT count(*) FROM memories WHERE chat_id = %s", [chat_id]).fetchone()
    return int(row[0]) if row else 0


@pytest.mark.parametrize("backend", ["openai", "local"])
def test_planted_memory_is_recalled_after_reset(
    backend: str,
    settings: Settings,
    topic_factory: Callable[..., str],
    tmp_path: Path,
    stub: RecordingStub,
) -> None:
    topics = FlowTopics(
        topic_factory("msgs"), topic_factory("replies"), topic_factory("events"), topic_factory("dead")
    )
    telegram = Telegram(settings, topics.messages)
    replies = TopicReader(settings, topics.responses, 1)
    chat = random_chat_id()
    env = flow_env(settings, topics, tmp_path, OPENAI_BASE_URL=stub.url, EMBEDDINGS_BASE_URL=stub.url)
    env["EMBEDDINGS_BACKEND"] = backend
    try:
        with running(env, tmp_path / "dataflow.log"):
            telegram.say(chat, "Remember this: my cat is called Whiskers")
            telegram.flush()
            replies.read_until(lambda rs: len(answered(rs, chat)) >= 1, 30, as_reply)
            deadline = time.monotonic() + 20
            while memories_of(settings, chat) == 0:
                assert time.monotonic() < deadline, "the exchange was never stored as a memory"
                time.sleep(0.2)

            telegram.say(chat, "/reset")
            telegram.say(chat, "what is my cat called?")
            telegram.flush()
            replies.read_until(lambda rs: len(answered(rs, chat)) >= 3, 30, as_reply)
    finally:
        replies.close()

    _first, reset, question = answered(replies.records, chat)
    assert reset.kind == "command"
    assert question.text.endswith("what is my cat called? [turn 1]"), "the context window was cleared"
    prompt = next(p for p in stub.prompts if p[-1]["content"] == "what is my cat called?")
    assert [m["role"] for m in prompt] == ["system", "user"]
    assert "Whiskers" in prompt[0]["content"], "the memory reached the prompt after /reset"


def facts_of(settings: Settings, chat_id: int) -> list[str]:
    with psycopg.connect(settings.database_url, connect_timeout=5) as conn:
        rows = conn.execute("SELECT text FROM facts WHERE chat_id = %s", [chat_id]).fetchall()
    return [row[0] for row in rows]


def test_a_stated_fact_reaches_later_prompts_until_forget(
    settings: Settings, topic_factory: Callable[..., str], tmp_path: Path, stub: RecordingStub
) -> None:
    topics = FlowTopics(
        topic_factory("msgs"), topic_factory("replies"), topic_factory("events"), topic_factory("dead")
    )
    telegram = Telegram(settings, topics.messages)
    replies = TopicReader(settings, topics.responses, 1)
    chat = random_chat_id()
    env = flow_env(settings, topics, tmp_path, OPENAI_BASE_URL=stub.url, EMBEDDINGS_BASE_URL=stub.url)
    env["EMBEDDINGS_BACKEND"] = "openai"
    try:
        with running(env, tmp_path / "dataflow.log"):
            telegram.say(chat, "I live in Reykjavik")
            telegram.flush()
            replies.read_until(lambda rs: len(answered(rs, chat)) >= 1, 30, as_reply)
            deadline = time.monotonic() + 20
            while not facts_of(settings, chat):
                assert time.monotonic() < deadline, "the fact was never stored"
                time.sleep(0.2)
            stored = facts_of(settings, chat)

            telegram.say(chat, "where do I live?")
            telegram.say(chat, "/forget")
            telegram.say(chat, "where do I live now?")
            telegram.flush()
            replies.read_until(lambda rs: len(answered(rs, chat)) >= 4, 30, as_reply)
    finally:
        replies.close()

    assert len(stored) == 1
    assert "Reykjavik" in stored[0]
    before = next(p for p in stub.prompts if p[-1]["content"] == "where do I live?")
    assert stored[0] in before[0]["content"], "the fact line is in the system prompt"
    after = next(p for p in stub.prompts if p[-1]["content"] == "where do I live now?")
    assert "Reykjavik" not in after[0]["content"], "/forget removed facts and memories"
    assert facts_of(settings, chat) == []
