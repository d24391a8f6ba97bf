"""Facts and adapted traits reach the prompt; their outages degrade the turn but never fail it."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from typing import Any, cast

import pytest

from tgstream.config import Settings, load_settings
from tgstream.connectors.llm import Completion
from tgstream.connectors.postgres import DatabaseUnavailable
from tgstream.dataflows.items import Admitted, ContextTurn
from tgstream.dataflows.pipeline import TurnPipeline
from tgstream.dataflows.records import Records
from tgstream.dataflows.turn_writers import BackgroundWriters
from tgstream.dataflows.turns import Job
from tgstream.schemas.events import ConversationEvent, InboundMessage
from tgstream.state.adaptations import AdaptationsUnavailable
from tgstream.state.facts import NewFact
from tgstream.state.personas import BUILTIN_DEFAULT, Persona, PersonaAssignment
from tgstream.steps.breaker import CircuitBreaker
from tgstream.steps.memory_gate import MemoryGate

CHAT = 424242424242


class RecordingLlm:
    def __init__(self) -> None:
        self.prompts: list[list[dict[str, str]]] = []

    async def complete(self, messages: Sequence[Mapping[str, str]]) -> Completion:
        self.prompts.append([dict(m) for m in messages])
        return Completion("sure", 10, 1, "stop", 0.01, 1)


class Personas:
    async def resolve(self, chat_id: int) -> PersonaAssignment:
        return PersonaAssignment(chat_id=chat_id, persona=BUILTIN_DEFAULT)


class Memories:
    async def recall(self, chat_id: int, text: str) -> list[str]:
        return ["you told me about a trip to Oslo"]


class Facts:
    def __init__(self, facts: list[str] | None) -> None:
        self._facts = facts

    async def facts(self, chat_id: int) -> list[str]:
        if self._facts is None:
            raise DatabaseUnavailable("postgres is down")
        return self._facts


class Background:
    def mirror(self, chat_id: int, history: tuple[ContextTurn, ...]) -> None:
        pass

    def remember(self, chat_id: int, user_id: int, user_text: str, reply: str) -> None:
        pass


@pytest.fixture
def settings() -> Settings:
    return load_settings()


def job(text: str) -> Job:
    message = InboundMessage(
        update_id=1,
        update_kind="message",
        chat_id=CHAT,
        chat_type="private",
        user_id=CHAT,
        text=text,
        sent_at=0.0,
        received_at=0.0,
    )
    return Job(CHAT, (Admitted(message, gated_at=0.0),), ())


def pipeline(settings: Settings, llm: RecordingLlm, facts: Facts) -> TurnPipeline:
    return TurnPipeline(
        settings,
        llm=llm,
        breaker=CircuitBreaker(failure_threshold=5, reset_s=60.0),
        personas=Personas(),
        memories=Memories(),
        background=Background(),
        records=Records(settings.analytics_salt),
        facts=facts,
    )


def event_of(outputs: Sequence[object]) -> ConversationEvent:
    return next(o for o in outputs if isinstance(o, ConversationEvent))


def test_facts_come_before_memories_in_the_prompt(settings: Settings) -> None:
    llm = RecordingLlm()
    result = asyncio.run(pipeline(settings, llm, Facts(["User's name is Sam."])).run(job("hello")))
    system = llm.prompts[0][0]["content"]
    assert system.index("User's name is Sam.") < system.index("a trip to Oslo")
    assert event_of(result.outputs).memories_used == 2


def test_a_facts_outage_degrades_the_turn_but_it_is_answered(settings: Settings) -> None:
    llm = RecordingLlm()
    result = asyncio.run(pipeline(settings, llm, Facts(None)).run(job("hello")))
    event = event_of(result.outputs)
    assert "facts" in event.degraded
    assert event.event_type == "reply_out"
    assert "a trip to Oslo" in llm.prompts[0][0]["content"]


class FactSink:
    def __init__(self, fail: bool = False) -> None:
        self.fail = fail
        self.rows: list[NewFact] = []

    async def upsert_many(self, rows: Sequence[NewFact]) -> int:
        if self.fail:
            raise DatabaseUnavailable("postgres is down")
        self.rows.extend(rows)
        return len(rows)


class MemorySink:
    def __init__(self) -> None:
        self.rows: list[Any] = []

    async def add_many(self, rows: Sequence[Any]) -> list[int]:
        self.rows.extend(rows)
        return list(range(len(rows)))


class Embedder:
    async def embed(self, texts: Sequence[str]) -> list[list[float]]:
        return [[0.0, 1.0] for _ in texts]


def writers(settings: Settings, facts: FactSink, memories: MemorySink) -> BackgroundWriters:
    return BackgroundWriters(
        cast(Any, None),
        cast(Any, Embedder()),
        cast(Any, memories),
        ttl_s=60,
        gate=MemoryGate(settings.memory_min_importance),
        facts=cast(Any, facts),
    )


def test_facts_and_memories_are_written_in_one_batch(settings: Settings) -> None:
    facts, memories = FactSink(), MemorySink()
    background = writers(settings, facts, memories)
    background.remember(CHAT, 7, "I live in Reykjavik", "nice!")
    background.remember(CHAT, 7, "hi", "hello")  # neither a fact nor worth a memory
    assert background.memory_writer.pending() == 1
    asyncio.run(background.close())
    assert [(f.chat_id, f.user_id, f.fact.slot, f.fact.value) for f in facts.rows] == [
        (CHAT, 7, "location", "Reykjavik")
    ]
    assert [m.chat_id for m in memories.rows] == [CHAT]


def test_a_fact_write_failure_keeps_the_memories(settings: Settings) -> None:
    facts, memories = FactSink(fail=True), MemorySink()
    background = writers(settings, facts, memories)
    background.remember(CHAT, 7, "I live in Reykjavik", "nice!")
    asyncio.run(background.close())
    assert facts.rows == []
    assert len(memories.rows) == 1


LIGHTHOUSE = "The lighthouse on Skerry Point has been dark since the storm of 1998."
CARD = {
    "spec": "chara_card_v2",
    "data": {
        "name": "Mira",
        "character_book": {"entries": [{"keys": ["lighthouse"], "content": LIGHTHOUSE}]},
    },
}


class LorePersonas:
    async def resolve(self, chat_id: int) -> PersonaAssignment:
        persona = Persona(
            id="mira-1",
            name="Mira",
            system_prompt="You are Mira, a keeper of old stories by the sea.",
            style={"length": "medium"},
            card=CARD,
        )
        return PersonaAssignment(chat_id=chat_id, persona=persona, customizations={"nickname": "Sam"})


class Adaptations:
    def __init__(self, adapted: dict[str, Any] | None) -> None:
        self._adapted = adapted

    async def adapted(self, chat_id: int) -> dict[str, Any]:
        if self._adapted is None:
            raise AdaptationsUnavailable("redis is down")
        return self._adapted


def lore_pipeline(settings: Settings, llm: RecordingLlm, adapted: dict[str, Any] | None) -> TurnPipeline:
    return TurnPipeline(
        settings,
        llm=llm,
        breaker=CircuitBreaker(failure_threshold=5, reset_s=60.0),
        personas=LorePersonas(),
        memories=Memories(),
        background=Background(),
        records=Records(settings.analytics_salt),
        adaptations=Adaptations(adapted),
    )


def test_lore_adapted_traits_and_explicit_customizations_are_layered(settings: Settings) -> None:
    llm = RecordingLlm()
    adapted = {"conversation_style": {"length": "short"}, "nickname": "Sammy"}
    asyncio.run(lore_pipeline(settings, llm, adapted).run(job("tell me about the lighthouse")))
    asyncio.run(lore_pipeline(settings, llm, adapted).run(job("good morning")))
    triggered, quiet = llm.prompts[0][0]["content"], llm.prompts[1][0]["content"]
    assert LIGHTHOUSE in triggered
    assert LIGHTHOUSE not in quiet, "lore enters the prompt only when its key is mentioned"
    assert "short" in triggered, "the adapted style overrides the persona's base style"
    assert '"Sam"' in triggered, "the explicit nickname wins over the adapted one"
    assert "Sammy" not in triggered


def test_an_adaptations_outage_falls_back_to_the_base_persona(settings: Settings) -> None:
    llm = RecordingLlm()
    result = asyncio.run(lore_pipeline(settings, llm, None).run(job("hello")))
    assert "adaptations" in event_of(result.outputs).degraded
    assert "medium" in llm.prompts[0][0]["content"]


def test_a_fact_is_written_even_when_the_gate_skips_the_exchange(settings: Settings) -> None:
    facts, memories = FactSink(), MemorySink()
    background = writers(settings, facts, memories)
    assert MemoryGate(settings.memory_min_importance).importance("I am vegan", "ok") is None
    background.remember(CHAT, 7, "I am vegan", "ok")
    asyncio.run(background.close())
    assert [f.fact.slot for f in facts.rows] == ["diet"]
    assert memories.rows == []
