"""One LLM turn, on the background event loop: enrich, build the prompt, call the model, record.

Runs entirely off the Bytewax worker thread. Every dependency may fail without costing the
user an answer:

* persona lookup failing -> the cache serves a stale or built-in persona (``degraded``);
* embeddings or memory search failing -> the turn goes ahead without memories (``degraded``);
* the LLM failing, or its circuit breaker open -> a short in-persona fallback reply at once,
  so an outage never piles up waiting tasks;
* Redis and the memory write happen afterwards, in the background writers, and cannot delay
  or fail the reply.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, TypeVar

import structlog

from tgstream.config import Settings
from tgstream.connectors.llm import Completion, LlmError
from tgstream.dataflows import metrics
from tgstream.dataflows.items import ContextTurn
from tgstream.dataflows.records import Records
from tgstream.dataflows.turn_context import FACTS_PER_TURN
from tgstream.dataflows.turns import Job, JobResult
from tgstream.schemas.events import EventType, ReplyKind
from tgstream.state.personas import PersonaAssignment
from tgstream.steps.breaker import BreakerState, CircuitBreaker, fallback_reply
from tgstream.steps.burst import merge_burst
from tgstream.steps.character_book import LoreCache
from tgstream.steps.persona_turn import remembered, turn_persona
from tgstream.steps.prompt import build_prompt
from tgstream.steps.summary import extractive_fold

log = structlog.get_logger(__name__)

T = TypeVar("T")

LORE_SCAN_TURNS = 4

BREAKER_CODES = {BreakerState.CLOSED: 0, BreakerState.HALF_OPEN: 1, BreakerState.OPEN: 2}


class Completer(Protocol):
    async def complete(self, messages: Sequence[Mapping[str, str]]) -> Completion: ...


class PersonaSource(Protocol):
    async def resolve(self, chat_id: int) -> PersonaAssignment: ...


class MemorySource(Protocol):
    async def recall(self, chat_id: int, text: str) -> list[str]: ...


class FactSource(Protocol):
    async def facts(self, chat_id: int) -> list[str]: ...


class AdaptationSource(Protocol):
    async def adapted(self, chat_id: int) -> dict[str, Any]: ...


class Background(Protocol):
    """Fire-and-forget writers: bounded queues drained in batches; they never raise."""

    def mirror(self, chat_id: int, history: tuple[ContextTurn, ...]) -> None: ...

    def remember(self, chat_id: int, user_id: int, user_text: str, reply: str) -> None: ...


def persona_mapping(assignment: PersonaAssignment) -> dict[str, Any]:
    persona = assignment.persona
    return {
        "name": persona.name,
        "system_prompt": persona.system_prompt,
        "personality_traits": dict(persona.traits),
        "conversation_style": dict(persona.style),
    }


def history_turns(history: Sequence[ContextTurn]) -> list[tuple[str, str]]:
    turns: list[tuple[str, str]] = []
    for turn in history:
        turns.append(("user", turn.user))
        turns.append(("assistant", turn.assistant))
    return turns


def slide_window(
    history: tuple[ContextTurn, ...], summary: str, turn: ContextTurn, max_turns: int
) -> tuple[tuple[ContextTurn, ...], str | None]:
    """The context window after ``turn`` and the new summary (None: unchanged).

    Exchanges that fall out of the window are folded into the rolling summary (extractive,
    microseconds), so "my dog is Biscuit" said 30 turns ago is still in the prompt.

    >>> t = [ContextTurn(f"I live in Town{i}", "ok", 0.0) for i in range(3)]
    >>> window, summary = slide_window(tuple(t[:2]), "", t[2], 2)
    >>> [x.user for x in window], summary
    (['I live in Town1', 'I live in Town2'], '- User lives in Town0.')
    >>> slide_window((), "", t[0], 2)[1] is None
    True
    """
    window = (*history, turn)
    if len(window) <= max_turns:
        return window, None
    cut = len(window) - max_turns
    dropped = [(old.user, old.assistant) for old in window[:cut]]
    return window[cut:], extractive_fold(summary or None, dropped)


@dataclass(frozen=True, slots=True)
class Enrichment:
    assignment: PersonaAssignment
    memories: list[str]
    degraded: tuple[str, ...]
    adapted: dict[str, Any] = field(default_factory=dict)


async def _nothing() -> None:
    return None


def _optional(result: T | BaseException | None, kind: str, degraded: list[str]) -> T | None:
    """The value of an optional lookup, or None after counting its failure as a degradation."""
    if isinstance(result, BaseException):
        log.warning(f"turn.{kind}_unavailable", error=repr(result))
        metrics.DEGRADED.labels(kind).inc()
        degraded.append(kind)
        return None
    return result


class TurnPipeline:
    """Turns a :class:`Job` of messages into a reply, an event and the next context window."""

    def __init__(
        self,
        settings: Settings,
        *,
        llm: Completer,
        breaker: CircuitBreaker,
        personas: PersonaSource,
        memories: MemorySource,
        background: Background,
        records: Records,
        facts: FactSource | None = None,
        adaptations: AdaptationSource | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._settings = settings
        self._llm = llm
        self._breaker = breaker
        self._personas = personas
        self._memories = memories
        self._facts = facts
        self._adaptations = adaptations
        self._remember_limit = settings.memory_top_k + FACTS_PER_TURN
        self._lore = LoreCache()
        self._background = background
        self._records = records
        self._clock = clock
        self._llm_slots = asyncio.Semaphore(settings.llm_max_in_flight)
        self._budget = max(64, settings.llm_context_tokens - settings.llm_max_tokens)

    async def enrich(self, chat_id: int, text: str) -> Enrichment:
        """Persona, memories, facts and adapted traits concurrently; failures degrade, never raise."""
        started = time.perf_counter()
        persona_result, memory_result, facts_result, adapted_result = await asyncio.gather(
            self._personas.resolve(chat_id),
            self._memories.recall(chat_id, text),
            self._facts.facts(chat_id) if self._facts else _nothing(),
            self._adaptations.adapted(chat_id) if self._adaptations else _nothing(),
            return_exceptions=True,
        )
        metrics.STAGE_DURATION.labels("enrich").observe(time.perf_counter() - started)
        degraded: list[str] = []
        if isinstance(persona_result, BaseException):
            raise persona_result  # the cache already degrades on outages; anything else is a bug
        if persona_result.degraded:
            degraded.append("persona")
        memories: list[str] = []
        if isinstance(memory_result, BaseException):
            log.warning("turn.memory_unavailable", error=repr(memory_result))
            metrics.DEGRADED.labels("memory_recall").inc()
            degraded.append("memory")
        else:
            memories = memory_result
        facts = _optional(facts_result, "facts", degraded) or []
        adapted = _optional(adapted_result, "adaptations", degraded) or {}
        if facts:
            memories = remembered(facts, memories, limit=self._remember_limit)
        return Enrichment(persona_result, memories, tuple(degraded), adapted)

    async def run(self, job: Job) -> JobResult:
        messages = [item.message for item in job.items]
        merged = merge_burst(messages)
        enrichment = await self.enrich(job.chat_id, merged.text)
        persona = enrichment.assignment.persona
        persona_view, customizations = turn_persona(
            persona_mapping(enrichment.assignment),
            explicit=enrichment.assignment.customizations,
            adapted=enrichment.adapted,
            lore=self._lore.get(persona.id, persona.version, persona.card),
            recent=[*(turn.user for turn in job.history[-LORE_SCAN_TURNS:]), merged.text],
        )
        prompt = build_prompt(
            persona_view,
            user_text=merged.text,
            budget_tokens=self._budget,
            history=history_turns(job.history),
            memories=enrichment.memories,
            customizations=customizations,
            summary=job.summary or None,
        )
        llm_started = self._clock()
        completion: Completion | None = None
        error = "breaker_open"
        if self._breaker.allow(time.monotonic()):
            try:
                async with self._llm_slots:
                    metrics.LLM_CALLS_IN_FLIGHT.inc()
                    try:
                        completion = await self._llm.complete(prompt.as_openai())
                    finally:
                        metrics.LLM_CALLS_IN_FLIGHT.dec()
                self._breaker.record_success(time.monotonic())
            except LlmError as exc:
                self._breaker.record_failure(time.monotonic())
                error = exc.kind
                log.warning("turn.llm_failed", kind=exc.kind, error=str(exc))
        metrics.BREAKER_STATE.set(BREAKER_CODES[self._breaker.state])
        llm_finished = self._clock()
        metrics.STAGE_DURATION.labels("llm").observe(llm_finished - llm_started)

        kind: ReplyKind
        event_type: EventType
        if completion is not None and completion.text:
            text, kind, event_type, outcome = completion.text, "reply", "reply_out", "reply"
            metrics.LLM_TOKENS.labels("prompt").inc(completion.prompt_tokens)
            metrics.LLM_TOKENS.labels("completion").inc(completion.completion_tokens)
        else:
            if completion is not None:
                error = "empty_reply"
            metrics.LLM_ERRORS.labels(error).inc()
            text = fallback_reply(persona.name if persona.name != "default" else None, job.chat_id)
            kind, event_type, outcome = "fallback", "llm_error", "fallback"

        reply = self._records.reply(messages, text, kind=kind, persona_id=persona.id)
        degraded = enrichment.degraded if completion is not None else (*enrichment.degraded, f"llm:{error}")
        event = self._records.event(
            event_type,
            messages,
            processed_at=min(item.gated_at for item in job.items),
            reply=reply,
            spam_score=max(item.spam_score for item in job.items),
            spam_reasons=tuple(sorted({r for item in job.items for r in item.spam_reasons})),
            memories_used=prompt.memories_used,
            prompt_tokens=completion.prompt_tokens if completion else prompt.tokens,
            completion_tokens=completion.completion_tokens if completion else 0,
            llm_ms=round(completion.latency_s * 1000, 2) if completion else None,
            degraded=degraded,
            llm_started_at=llm_started,
            llm_finished_at=llm_finished,
        )
        metrics.CONVERSATIONS.labels(outcome).inc()
        metrics.RESPONSE_DURATION.observe(max(0.0, reply.emitted_at - reply.received_at))
        if kind == "fallback":
            return JobResult((reply, event), job.history)

        history, summary = slide_window(
            job.history,
            job.summary,
            ContextTurn(merged.text, text, llm_finished, merged.user_ids),
            self._settings.context_window_turns,
        )
        self._background.mirror(job.chat_id, history)
        self._background.remember(job.chat_id, merged.user_id, merged.text, text)
        return JobResult((reply, event), history, summary)
