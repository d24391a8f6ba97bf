"""The adaptation job: every few minutes, adapt the persona to each recently active chat.

One round (:meth:`AdaptationJob.run_once`):

1. Chats active within ``active_window_s``, newest first, from the ``active_conversations``
   ZSET, at most ``max_chats`` (the rest wait for the next round).
2. Skip chats whose stored adaptation already reflects their latest activity, and chats with
   fewer than ``min_exchanges`` mirrored exchanges (too little to read a style from).
3. For the rest, read the mirrored context window, compute the model-free signals, ask the
   model (at most ``concurrency`` calls at once) and merge: observed < model < requested.
4. Store every result with the TTL in one pipelined write.

Off the hot path by construction: it reads the Redis mirror, never the dataflow's state, and
its model calls go through their own client. A model failure or an unusable answer still
stores the model-free adaptation; Postgres down (persona names) only makes the prompt a little
less specific. Everything is counted in Prometheus metrics.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol

import structlog
from prometheus_client import Counter, Histogram

from tgstream.connectors.llm import Completion, LlmError
from tgstream.connectors.postgres import DatabaseError
from tgstream.state.adaptations import AdaptationStore, StoredAdaptation
from tgstream.state.conversation_mirror import ConversationMirror
from tgstream.state.personas import PersonaAssignment
from tgstream.steps.adaptation import (
    AdaptationInput,
    AdaptedTraits,
    adaptation_prompt,
    exchanges_from_window,
    merge,
    observed_traits,
    parse_adaptation,
    requested_traits,
)

log = structlog.get_logger(__name__)

ROUNDS = Counter("tgstream_adaptation_rounds_total", "Adaptation rounds run")
CHATS = Counter("tgstream_adaptation_chats_total", "Chats considered by outcome", ["outcome"])
MODEL = Counter("tgstream_adaptation_model_total", "Model answers by outcome", ["outcome"])
ROUND_SECONDS = Histogram("tgstream_adaptation_round_seconds", "Duration of one adaptation round")


class Completer(Protocol):
    async def complete(self, messages: Sequence[Mapping[str, str]]) -> Completion: ...


class PersonaSource(Protocol):
    async def resolve_many(self, chat_ids: Iterable[int]) -> dict[int, PersonaAssignment]: ...


@dataclass(frozen=True, slots=True)
class AdaptationConfig:
    active_window_s: float = 3600.0
    max_chats: int = 200
    min_exchanges: int = 3
    concurrency: int = 4

    def __post_init__(self) -> None:
        if self.max_chats < 1 or self.min_exchanges < 1 or self.concurrency < 1 or self.active_window_s <= 0:
            raise ValueError("max_chats, min_exchanges and concurrency must be >= 1, active_window_s > 0")


@dataclass(slots=True)
class RoundReport:
    """What one round did, for the CLI's progress line and for tests."""

    considered: int = 0
    adapted: int = 0
    unchanged: int = 0
    too_short: int = 0
    model: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0

    def count_model(self, outcome: str) -> None:
        self.model[outcome] = self.model.get(outcome, 0) + 1
        MODEL.labels(outcome).inc()


class AdaptationJob:
    """See the module docstring; ``llm=None`` runs the model-free adaptation only."""

    def __init__(
        self,
        *,
        mirror: ConversationMirror,
        store: AdaptationStore,
        llm: Completer | None,
        personas: PersonaSource | None = None,
        config: AdaptationConfig | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._mirror = mirror
        self._store = store
        self._llm = llm
        self._personas = personas
        self._config = config or AdaptationConfig()
        self._clock = clock

    async def run_once(self) -> RoundReport:
        """One round; raises ``MirrorUnavailable`` / ``AdaptationsUnavailable`` if Redis is down."""
        started = time.perf_counter()
        report = RoundReport()
        now = self._clock()
        chats = (await self._mirror.active(since=now - self._config.active_window_s))[
            : self._config.max_chats
        ]
        report.considered = len(chats)
        existing = await self._store.get_many(chats)
        inputs: list[tuple[AdaptationInput, float]] = []
        for chat_id in chats:
            snapshot = await self._mirror.read(chat_id)
            if snapshot is None:
                continue
            activity = float(snapshot.get("last_activity") or 0.0)
            previous = existing.get(chat_id)
            if previous is not None and previous.source_activity >= activity:
                report.unchanged += 1
                continue
            exchanges = exchanges_from_window(snapshot.get("context_window") or [])
            if len(exchanges) < self._config.min_exchanges:
                report.too_short += 1
                continue
            inputs.append((AdaptationInput(chat_id, exchanges), activity))
        inputs = await self._with_personas(inputs)
        slots = asyncio.Semaphore(self._config.concurrency)

        async def adapt(item: AdaptationInput, activity: float) -> StoredAdaptation:
            async with slots:
                traits = await self.adapt(item, report)
            return StoredAdaptation(item.chat_id, traits, self._clock(), activity, item.persona_name)

        results = await asyncio.gather(*(adapt(item, activity) for item, activity in inputs))
        await self._store.put_many(results)
        report.adapted = len(results)
        report.seconds = time.perf_counter() - started
        for outcome in ("adapted", "unchanged", "too_short"):
            CHATS.labels(outcome).inc(getattr(report, outcome))
        ROUNDS.inc()
        ROUND_SECONDS.observe(report.seconds)
        return report

    async def adapt(self, item: AdaptationInput, report: RoundReport) -> AdaptedTraits:
        """The merged traits of one chat; never raises for model trouble."""
        texts = item.user_texts
        model: AdaptedTraits | None = None
        if self._llm is not None:
            messages = adaptation_prompt(
                item.exchanges, persona_name=item.persona_name, base_style=item.base_style
            )
            try:
                completion = await self._llm.complete(messages)
            except LlmError as exc:
                report.count_model(f"error_{exc.kind}")
                log.warning("adaptation.model_failed", kind=exc.kind)
            else:
                model = parse_adaptation(completion.text)
                report.count_model("parsed" if model is not None else "unusable")
        return merge(observed_traits(texts), model, requested_traits(texts))

    async def _with_personas(
        self, inputs: list[tuple[AdaptationInput, float]]
    ) -> list[tuple[AdaptationInput, float]]:
        if self._personas is None or not inputs:
            return inputs
        try:
            resolved = await self._personas.resolve_many(item.chat_id for item, _ in inputs)
        except DatabaseError as exc:
            log.warning("adaptation.personas_unavailable", error=str(exc))
            return inputs
        enriched = []
        for item, activity in inputs:
            assignment = resolved.get(item.chat_id)
            if assignment is not None:
                persona = assignment.persona
                item = AdaptationInput(item.chat_id, item.exchanges, persona.name, dict(persona.style))
            enriched.append((item, activity))
        return enriched
