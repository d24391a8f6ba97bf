"""The writers a turn feeds, off the reply path: Redis mirror, memories with their facts, usage counts.

Each is a :class:`~tgstream.dataflows.writers.BatchWriter`; a turn only enqueues. A failing
backend costs rows (counted), never a reply.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass

import structlog

from tgstream.connectors.embeddings import Embedder
from tgstream.connectors.postgres import DatabaseError
from tgstream.dataflows import metrics
from tgstream.dataflows.items import ContextTurn
from tgstream.dataflows.writers import BatchWriter
from tgstream.state.conversation_mirror import ConversationMirror, ConversationSnapshot
from tgstream.state.facts import FactStore, NewFact
from tgstream.state.memories import MemoryStore, NewMemory
from tgstream.steps.facts import Fact, extract_facts
from tgstream.steps.memory_gate import MemoryGate

log = structlog.get_logger(__name__)

MEMORY_TEXT_CAP = 1200


@dataclass(frozen=True, slots=True)
class PendingMemory:
    chat_id: int
    user_id: int
    user_text: str
    reply: str
    importance: float | None
    facts: tuple[Fact, ...] = ()


def memory_text(user_text: str, reply: str) -> str:
    """What a remembered exchange says; the user's words first, since retrieval matches on them."""
    return f"{user_text}\n(you answered: {reply})"[:MEMORY_TEXT_CAP]


class BackgroundWriters:
    """The writers a turn feeds: the Redis mirror, the memory store and memory usage counts."""

    def __init__(
        self,
        mirror: ConversationMirror,
        embedder: Embedder,
        store: MemoryStore,
        *,
        ttl_s: float,
        gate: MemoryGate,
        facts: FactStore | None = None,
    ) -> None:
        self._mirror = mirror
        self._facts = facts
        self._gate = gate
        self._ttl_s = ttl_s
        self._embedder = embedder
        self._store = store
        self.mirror_writer: BatchWriter[tuple[int, tuple[ContextTurn, ...]]] = BatchWriter(
            "redis_mirror", self._write_mirror, max_batch=500, max_wait_s=0.05
        )
        self.memory_writer: BatchWriter[PendingMemory] = BatchWriter(
            "memory_write", self._write_memories, max_batch=64, max_wait_s=0.2
        )
        self.usage_writer: BatchWriter[tuple[int, float]] = BatchWriter(
            "memory_usage", self._store_usage, max_batch=2000, max_wait_s=1.0
        )

    def start(self) -> None:
        self.mirror_writer.start()
        self.memory_writer.start()
        self.usage_writer.start()

    def mirror(self, chat_id: int, history: tuple[ContextTurn, ...]) -> None:
        self.mirror_writer.put((chat_id, history))

    def remember(self, chat_id: int, user_id: int, user_text: str, reply: str) -> None:
        """Queue the exchange's facts, and the exchange itself if the gate finds it worth a row.

        Facts are kept even when the exchange is not: "I am vegan" scores below the gate
        (see steps/memory_gate.py) but a name the next prompt should know.
        """
        score = self._gate.importance(user_text, reply)
        metrics.MEMORY_CANDIDATES.labels("skipped" if score is None else "stored").inc()
        facts = tuple(extract_facts(user_text)) if self._facts is not None else ()
        if score is None and not facts:
            return
        self.memory_writer.put(PendingMemory(chat_id, user_id, user_text, reply, score, facts))

    def used(self, memory_ids: Sequence[int], at: float) -> None:
        """Queue recalled memories' usage; one UPDATE per batch keeps recency ranking honest."""
        for memory_id in memory_ids:
            self.usage_writer.put((memory_id, at))

    async def _store_usage(self, batch: list[tuple[int, float]]) -> None:
        await self._store.record_usage(batch)

    async def _write_mirror(self, batch: list[tuple[int, tuple[ContextTurn, ...]]]) -> None:
        latest = dict(batch)  # a chat that spoke twice in one batch needs only its last window
        now = time.time()
        for chat_id in [chat_id for chat_id, history in latest.items() if not history]:
            await self._mirror.clear(chat_id)
        snapshots = [
            ConversationSnapshot(
                chat_id,
                history,
                last_activity=history[-1].at,
                turns=len(history),
                members=tuple({uid for turn in history for uid in getattr(turn, "user_ids", ())}),
            )
            for chat_id, history in latest.items()
            if history
        ]
        await self._mirror.write_many(snapshots, now=now)
        await self._mirror.prune_active(older_than=now - self._ttl_s)

    async def _write_memories(self, batch: list[PendingMemory]) -> None:
        """Facts (one upsert) then memories (one embed, one INSERT); a fact failure keeps the memories."""
        facts = [NewFact(m.chat_id, m.user_id, fact) for m in batch for fact in m.facts]
        if facts and self._facts is not None:
            try:
                await self._facts.upsert_many(facts)
                metrics.BACKGROUND_WRITES.labels("fact_write", "ok").inc(len(facts))
            except DatabaseError as exc:
                metrics.BACKGROUND_WRITES.labels("fact_write", "failed").inc(len(facts))
                metrics.DEGRADED.labels("fact_write").inc()
                log.warning("writer.facts_failed", facts=len(facts), error=repr(exc))
        kept = [m for m in batch if m.importance is not None]
        if not kept:
            return
        vectors = await self._embedder.embed([m.user_text for m in kept])
        await self._store.add_many(
            [
                NewMemory(m.chat_id, m.user_id, memory_text(m.user_text, m.reply), vector, importance=score)
                for m, vector in zip(kept, vectors, strict=True)
                if (score := m.importance) is not None
            ]
        )

    async def close(self) -> None:
        await self.mirror_writer.close()
        await self.memory_writer.close()
        await self.usage_writer.close()
