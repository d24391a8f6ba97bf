"""Everything the turn step needs at run time, opened once per process on its background loop.

Bytewax builds our operator logic on its worker threads and has no start-up hook, so the
first logic that needs the services opens them (:func:`process_services`); later calls reuse
them. Start-up is strict: a wrong URL or a database without migrations stops the process with
a clear error. After that every dependency may fail and the flow degrades (see pipeline.py).

Lifecycle: ``process_services()`` -> used by all workers of the process -> ``close()`` at exit.
"""

from __future__ import annotations

import atexit
import threading
import time
from collections.abc import Awaitable, Callable, Sequence

import structlog

from tgstream.config import Settings
from tgstream.connectors.embeddings import Embedder, EmbeddingsError, create_embedder
from tgstream.connectors.llm import LlmClient
from tgstream.connectors.postgres import open_pool_from_settings
from tgstream.connectors.redis_client import async_redis
from tgstream.dataflows.batcher import MicroBatcher
from tgstream.dataflows.command_jobs import CommandRunner
from tgstream.dataflows.event_loop import BackgroundLoop
from tgstream.dataflows.pipeline import TurnPipeline
from tgstream.dataflows.records import Records
from tgstream.dataflows.replay_guard import AnsweredIndex, load_answered
from tgstream.dataflows.runner import ProcessServices, TurnRunner
from tgstream.dataflows.turn_context import BatchedAdaptations, BatchedFacts
from tgstream.dataflows.turn_writers import BackgroundWriters
from tgstream.state.adaptations import AdaptationStore
from tgstream.state.conversation_mirror import ConversationMirror
from tgstream.state.facts import FactStore
from tgstream.state.memories import MemoryStore
from tgstream.state.memory_crypto import MemoryCodec
from tgstream.state.persona_cache import CachedPersonas
from tgstream.state.personas import Persona, PersonaAssignment, PersonaStore
from tgstream.steps.breaker import CircuitBreaker
from tgstream.steps.memory_gate import MemoryGate

log = structlog.get_logger(__name__)


UsageSink = Callable[[Sequence[int], float], None]


class MemoryRecall:
    """Top-k memories of one chat for a text; concurrent calls share one embed and one SQL query.

    The search does not touch the rows it returns: rewriting each hit (text, embedding and all)
    into every index, the HNSW graph included, took the recall's p99 from 7 to 107 ms at 10^6
    rows. The ids go to ``on_used`` instead, which batches the usage update off the reply path.
    """

    def __init__(
        self,
        embedder: Embedder,
        store: MemoryStore,
        *,
        k: int,
        min_score: float,
        on_used: UsageSink | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._embedder = embedder
        self._store = store
        self._k = k
        self._min_score = min_score
        self._on_used = on_used
        self._clock = clock
        self._batcher: MicroBatcher[tuple[int, str], list[str]] = MicroBatcher(
            self._recall_many, max_batch=64, max_wait_s=0.001, name="memory-recall"
        )

    async def recall(self, chat_id: int, text: str) -> list[str]:
        if self._k <= 0 or not text.strip():
            return []  # a blank query cannot be embedded and matches nothing
        return await self._batcher.get((chat_id, text))

    async def _recall_many(self, queries: list[tuple[int, str]]) -> list[list[str]]:
        vectors = await self._embedder.embed([text for _, text in queries])
        pairs = [(chat_id, vector) for (chat_id, _), vector in zip(queries, vectors, strict=True)]
        now = self._clock()
        hits = await self._store.search_many(
            pairs, k=self._k, min_score=self._min_score, now=now, touch=False
        )
        if self._on_used is not None:
            used = [hit.id for chat_hits in hits for hit in chat_hits]
            if used:
                self._on_used(used, now)
        return [[hit.text for hit in chat_hits] for chat_hits in hits]


class BatchedPersonas:
    """The persona cache, with concurrent misses of many chats resolved in one SQL round trip."""

    def __init__(self, cache: CachedPersonas) -> None:
        self._cache = cache
        self._batcher: MicroBatcher[int, PersonaAssignment] = MicroBatcher(
            self._resolve_many, max_batch=128, max_wait_s=0.001, name="persona-resolve"
        )

    async def resolve(self, chat_id: int) -> PersonaAssignment:
        hit = self._cache.peek(chat_id)
        return hit if hit is not None else await self._batcher.get(chat_id)

    async def _resolve_many(self, chat_ids: list[int]) -> list[PersonaAssignment]:
        resolved = await self._cache.resolve_many(chat_ids)
        return [resolved[chat_id] for chat_id in chat_ids]

    async def assign(self, chat_id: int, user_id: int, persona_name: str) -> PersonaAssignment:
        return await self._cache.assign(chat_id, user_id, persona_name)

    async def list_personas(self) -> list[Persona]:
        return await self._cache.list_personas()


async def warm_up(embedder: Embedder) -> None:
    """Load the local model now (about 5 s, in its worker thread), not on the first user's turn.

    A model that cannot load is a deploy problem, so it stops the start-up with a clear error.
    """
    started = time.perf_counter()
    try:
        await embedder.embed(["warm-up"])
    except EmbeddingsError as exc:
        raise EmbeddingsError(f"EMBEDDINGS_BACKEND=local cannot start: {exc}") from exc
    log.info("embeddings.ready", backend="local", seconds=round(time.perf_counter() - started, 2))


async def open_services(
    settings: Settings, loop: BackgroundLoop, *, records: Records, answered: AnsweredIndex
) -> ProcessServices:
    """Connect to everything on ``loop``; raises if a dependency is misconfigured at start-up."""
    closers: list[Callable[[], Awaitable[None]]] = []
    pool = await open_pool_from_settings(settings, max_size=8)
    closers.append(pool.close)
    personas = BatchedPersonas(CachedPersonas(PersonaStore(pool), ttl_s=30.0))
    key = settings.memory_encryption_key
    store = MemoryStore(
        pool,
        dim=settings.embeddings_dim,
        codec=MemoryCodec.from_setting(key.get_secret_value() if key else None),
    )
    facts = FactStore(pool)
    embedder = create_embedder(settings)
    closers.append(embedder.aclose)
    if settings.embeddings_backend == "local":
        await warm_up(embedder)
    redis_client = async_redis(settings.redis_url)
    closers.append(redis_client.aclose)
    adaptations = AdaptationStore(redis_client)
    background = BackgroundWriters(
        ConversationMirror(redis_client, ttl_s=settings.conversation_ttl_s),
        embedder,
        store,
        ttl_s=settings.conversation_ttl_s,
        gate=MemoryGate(settings.memory_min_importance),
        facts=facts,
    )
    background.start()
    closers.append(background.close)
    llm = LlmClient.from_settings(settings)
    closers.append(llm.aclose)
    breaker = CircuitBreaker(
        failure_threshold=settings.breaker_failure_threshold, reset_s=settings.breaker_reset_s
    )
    pipeline = TurnPipeline(
        settings,
        llm=llm,
        breaker=breaker,
        personas=personas,
        memories=MemoryRecall(
            embedder,
            store,
            k=settings.memory_top_k,
            min_score=settings.memory_min_score,
            on_used=background.used,
        ),
        background=background,
        records=records,
        facts=BatchedFacts(facts),
        adaptations=BatchedAdaptations(adaptations),
    )
    commands = CommandRunner(
        personas=personas,
        memories=store,
        background=background,
        records=records,
        facts=facts,
        adaptations=adaptations,
    )
    runner = TurnRunner(
        loop,
        run_turn=pipeline.run,
        run_command=commands.run,
        records=records,
        high_water=4 * settings.llm_max_in_flight,
        answered=answered,
        context_turns=settings.context_window_turns,
        typing_after_s=settings.typing_after_s if settings.typing_actions else None,
    )
    return ProcessServices(loop, runner, closers)


_lock = threading.Lock()
_services: ProcessServices | None = None


def process_services(settings: Settings) -> ProcessServices:
    """The process's services, opened on first use (from whichever worker thread gets there first)."""
    global _services
    with _lock:
        if _services is None:
            started = time.perf_counter()
            loop = BackgroundLoop("tgstream-turns").start()
            records = Records(settings.analytics_salt)
            answered = load_answered(settings)

            async def opening() -> ProcessServices:
                return await open_services(settings, loop, records=records, answered=answered)

            try:
                _services = loop.call(opening, timeout=60.0)
            except BaseException:
                loop.stop()
                raise
            atexit.register(_services.close)
            log.info("services.opened", seconds=round(time.perf_counter() - started, 2))
        return _services
