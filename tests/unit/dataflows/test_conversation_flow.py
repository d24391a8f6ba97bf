"""The whole conversation flow in Bytewax's test runner, with in-process async stand-ins for I/O.

The LLM is a small async function (random delays, echoing its input), personas and memories
are in-memory, and sources and sinks are Bytewax's testing ones. What is real: every step of
the flow, the per-chat turn logic, the background event loop and the pipeline.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import orjson
import pytest
from bytewax.connectors.kafka import KafkaSinkMessage, KafkaSourceMessage
from bytewax.testing import TestingSink, TestingSource, run_main

from tgstream.config import Settings, load_settings
from tgstream.connectors.llm import Completion, LlmError
from tgstream.dataflows.command_jobs import CommandRunner
from tgstream.dataflows.conversation import build_flow
from tgstream.dataflows.event_loop import BackgroundLoop
from tgstream.dataflows.items import ContextTurn
from tgstream.dataflows.kafka_io import ERROR_HEADER
from tgstream.dataflows.pipeline import TurnPipeline
from tgstream.dataflows.records import Records
from tgstream.dataflows.runner import ProcessServices, TurnRunner
from tgstream.schemas.codec import encode
from tgstream.schemas.events import ConversationEvent, InboundMessage, Reply
from tgstream.state.personas import BUILTIN_DEFAULT, Persona, PersonaAssignment
from tgstream.steps.breaker import CircuitBreaker


class EchoLlm:
    """Answers "echo: <last user message>" after a random short delay; can be told to fail."""

    def __init__(self, *, fail: bool = False, seed: int = 7) -> None:
        self.fail = fail
        self.calls = 0
        self._rng = random.Random(seed)

    async def complete(self, messages: Sequence[Mapping[str, str]]) -> Completion:
        self.calls += 1
        await asyncio.sleep(self._rng.uniform(0.0, 0.02))
        if self.fail:
            raise LlmError("http_500", "injected", retryable=True)
        last = messages[-1]["content"]
        return Completion(f"echo: {last}", len(messages), 2, "stop", 0.01, 1)


class InMemoryPersonas:
    async def resolve(self, chat_id: int) -> PersonaAssignment:
        return PersonaAssignment(chat_id=chat_id, persona=BUILTIN_DEFAULT)

    async def assign(self, chat_id: int, user_id: int, persona_name: str) -> PersonaAssignment:
        return PersonaAssignment(chat_id=chat_id, persona=BUILTIN_DEFAULT, assigned_by=user_id)

    async def list_personas(self) -> list[Persona]:
        return [BUILTIN_DEFAULT]


class InMemoryMemories:
    async def recall(self, chat_id: int, text: str) -> list[str]:
        return []

    async def forget_chat(self, chat_id: int) -> int:
        return 0

    async def count(self, chat_id: int) -> int:
        return 0


class RecordingBackground:
    def __init__(self) -> None:
        self.mirrored: dict[int, tuple[ContextTurn, ...]] = {}

    def mirror(self, chat_id: int, history: tuple[ContextTurn, ...]) -> None:
        self.mirrored[chat_id] = history

    def remember(self, chat_id: int, user_id: int, user_text: str, reply: str) -> None:
        pass


@pytest.fixture
def settings() -> Settings:
    return load_settings(rate_per_minute=1000, rate_per_hour=10_000, rate_per_day=100_000)


@pytest.fixture
def loop() -> Iterator[BackgroundLoop]:
    loop = BackgroundLoop("test-turns").start()
    yield loop
    loop.stop()


def services_for(settings: Settings, loop: BackgroundLoop, llm: EchoLlm) -> ProcessServices:
    records = Records(settings.analytics_salt)
    background = RecordingBackground()
    pipeline = TurnPipeline(
        settings,
        llm=llm,
        breaker=CircuitBreaker(failure_threshold=2, reset_s=60.0, min_failure_ratio=0.0),
        personas=InMemoryPersonas(),
        memories=InMemoryMemories(),
        background=background,
        records=records,
    )
    commands = CommandRunner(
        personas=InMemoryPersonas(), memories=InMemoryMemories(), background=background, records=records
    )
    runner = TurnRunner(
        loop,
        run_turn=pipeline.run,
        run_command=commands.run,
        records=records,
        high_water=100,
        typing_after_s=None,
    )
    return ProcessServices(loop, runner)


SENTENCES = (
    "hey, how was your weekend?",
    "I finally finished that book about whales",
    "do you think it will rain tomorrow",
    "my sister is visiting next month!",
    "what should I cook tonight? pasta or curry",
)


def record(update_id: int, chat_id: int, text: str) -> KafkaSourceMessage[bytes | None, bytes | None]:
    message = InboundMessage(
        update_id=update_id,
        update_kind="message",
        chat_id=chat_id,
        chat_type="private",
        user_id=chat_id,
        first_name="Ann",
        message_id=update_id,
        text=text,
        sent_at=1000.0 + update_id,
        received_at=1000.0 + update_id,
    )
    return KafkaSourceMessage(key=str(chat_id).encode(), value=encode(message), topic="in", offset=update_id)


def run_flow(settings: Settings, services: ProcessServices, items: list[Any]) -> list[Any]:
    """Run to EOF; the gate's clock stands still, so rate windows cannot roll over mid-test."""
    kafka_out: list[tuple[str, KafkaSinkMessage[bytes | None, bytes | None]]] = []
    parquet_out: list[Any] = []
    flow = build_flow(
        settings,
        source=TestingSource(items, batch_size=7),
        kafka_sink=TestingSink(kafka_out),
        parquet_sink=TestingSink(parquet_out),
        services=services,
        clock=lambda: 1_800_000_000.0,
    )
    run_main(flow)  # type: ignore[no-untyped-call]
    decoded: list[Any] = []
    for key, message in kafka_out:
        assert key == (message.key or b"").decode(), "records are routed by their Kafka key"
        if message.topic == settings.topic_responses:
            decoded.append(Reply.model_validate(orjson.loads(message.value or b"")))
        elif message.topic == settings.topic_events:
            decoded.append(ConversationEvent.model_validate(orjson.loads(message.value or b"")))
        else:
            decoded.append(message)
    assert len(parquet_out) == sum(isinstance(d, ConversationEvent) for d in decoded)
    return decoded


def test_many_chats_each_answered_in_order_with_every_update_covered_once(
    settings: Settings, loop: BackgroundLoop
) -> None:
    llm = EchoLlm()
    chats = [9_000_000_000 + i for i in range(30)]
    items = []
    sent: dict[int, list[int]] = {c: [] for c in chats}
    update_id = 0
    for round_ in range(5):
        for chat in chats:
            update_id += 1
            sent[chat].append(update_id)
            items.append(record(update_id, chat, SENTENCES[round_]))

    out = run_flow(settings, services_for(settings, loop, llm), items)

    replies = [r for r in out if isinstance(r, Reply)]
    for chat in chats:
        mine = [r for r in replies if r.chat_id == chat]
        covered = [u for r in mine for u in r.update_ids]
        assert covered == sent[chat], "every update answered once, in order"
        assert mine[-1].text.endswith(SENTENCES[-1]), "the last reply answers the last message"
    events = [e for e in out if isinstance(e, ConversationEvent)]
    assert {e.event_type for e in events} == {"reply_out"}
    assert len(events) == len(replies)
    assert llm.calls == len(replies) < len(items) + 1


def test_bad_records_become_dead_letters_with_the_reason(settings: Settings, loop: BackgroundLoop) -> None:
    bad = KafkaSourceMessage(key=b"k", value=b"{not json", topic="in", partition=0, offset=41)
    out = run_flow(settings, services_for(settings, loop, EchoLlm()), [bad, record(1, 77, "hello")])
    dead = [m for m in out if isinstance(m, KafkaSinkMessage)]
    assert len(dead) == 1
    assert dead[0].topic == settings.topic_dead_letter
    assert dead[0].value == b"{not json"
    headers = dict(dead[0].headers)
    assert headers[ERROR_HEADER].startswith(b"not JSON")
    assert [r.text for r in out if isinstance(r, Reply)] == ["echo: hello"]


def test_breaker_opens_and_answers_with_fallbacks(settings: Settings, loop: BackgroundLoop) -> None:
    llm = EchoLlm(fail=True)
    chat = 5_000
    items = []
    for i in range(4):  # a command between messages keeps each message a turn of its own
        items += [record(2 * i + 1, chat, SENTENCES[i]), record(2 * i + 2, chat, "/help")]
    out = run_flow(settings, services_for(settings, loop, llm), items)
    turns = [r for r in out if isinstance(r, Reply) and r.kind != "command"]
    assert [r.kind for r in turns] == ["fallback"] * 4
    assert llm.calls == 2, "after two failures the breaker answers without calling the model"
    events = [e for e in out if isinstance(e, ConversationEvent) and e.event_type != "command"]
    assert {e.event_type for e in events} == {"llm_error"}
    assert [e.degraded for e in events][-1] == ("llm:breaker_open",)


def test_commands_and_rate_limit_notice_once_per_window(loop: BackgroundLoop) -> None:
    settings = load_settings(rate_per_minute=3)
    chat = 31337
    items = [record(1, chat, "/help"), *[record(i, chat, SENTENCES[i % 5]) for i in range(2, 8)]]
    out = run_flow(settings, services_for(settings, loop, EchoLlm()), items)
    replies = [r for r in out if isinstance(r, Reply)]
    commands = [r for r in replies if r.kind == "command"]
    assert len(commands) == 1
    assert "/persona" in commands[0].text
    assert len([r for r in replies if r.kind == "reply"]) >= 1
    notices = [r for r in replies if r.kind == "notice"]
    assert len(notices) == 1, "one polite notice per window, not one per message"
    limited = [e for e in out if isinstance(e, ConversationEvent) and e.event_type == "rate_limited"]
    assert [e.update_ids for e in limited] == [(4,), (5,), (6,), (7,)]
    assert {e.rate_window for e in limited} == {"minute"}
