"""Long-term memory in pgvector: batched writes, and per-chat retrieval ranked in one SQL query.

Ranking. A memory's score is::

    relevance * (rf + (1 - rf) * recency) * (if + (1 - if) * importance)

with ``relevance`` the cosine similarity to the query, ``recency = 0.5 ** (age / half_life)``
where age counts from the memory's last use (or creation: a memory the conversation keeps
returning to stays fresh), and ``importance`` in [0, 1]. The floors ``rf``/``if`` (0.5 by
default) mean recency and importance can at most halve a score. The product, unlike the
weighted sum of Generative Agents, can never lift an irrelevant memory above ``min_score``
because it is recent or important: a score never exceeds its relevance.

Why an exact per-chat scan and not the HNSW index. pgvector 0.6.2 has no iterative index
scan: ``ORDER BY embedding <=> q LIMIT k`` with ``WHERE chat_id = c`` walks the graph for
``hnsw.ef_search`` (40) nearest neighbours of *all* chats and filters afterwards, so with
1000 chats it usually returns nothing. Our ORDER BY is the combined score anyway, which no
index serves. So each query takes the chat's newest ``scan_limit`` live rows through the
``(chat_id, created_at)`` btree, scores them exactly and keeps the top k. Cost grows with
the chat's memory count, not the table's; ``scan_limit`` (2000) caps it, and rows older
than that have decayed anyway (measured in ``benchmarks/memory_search.py``). So these queries
never use the HNSW index, which still costs every insert and every non-HOT update: about
5 ms of Postgres CPU per row here, against 0.7 ms with the btree alone.

One round trip for a batch: :meth:`MemoryStore.search_many` joins ``unnest`` of the batch's
(chat, embedding) pairs LATERAL to that per-chat query. The same statement bumps
``use_count``/``last_used_at`` of the returned rows through a data-modifying CTE, so usage
tracking costs no extra round trip; callers on a tight latency budget pass ``touch=False``
and batch :meth:`MemoryStore.record_usage` in the background instead. A row of another chat
can never be returned: the chat filter is inside the LATERAL subquery, before scoring.

Errors: :class:`~tgstream.connectors.postgres.DatabaseError` (``DatabaseUnavailable`` when
Postgres is down); the dataflow then answers without memories and counts it.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from psycopg.rows import dict_row

from tgstream.connectors.postgres import Pool, connection
from tgstream.state.memory_crypto import MemoryCodec

DEFAULT_DIM = 384
_MAX_TEXT = 8000


@dataclass(frozen=True, slots=True)
class Ranking:
    """How relevance, recency and importance combine (see the module docstring)."""

    half_life_s: float = 7 * 86400.0
    recency_floor: float = 0.5
    importance_floor: float = 0.5
    scan_limit: int = 2000

    def __post_init__(self) -> None:
        if self.half_life_s <= 0 or self.scan_limit < 1:
            msg = f"half_life_s must be > 0 and scan_limit >= 1, got {self.half_life_s}, {self.scan_limit}"
            raise ValueError(msg)
        if not (0 <= self.recency_floor <= 1 and 0 <= self.importance_floor <= 1):
            msg = "recency_floor and importance_floor must be within [0, 1]"
            raise ValueError(msg)

    def score(self, relevance: float, age_s: float, importance: float) -> float:
        """The SQL formula in Python, for tests and for explaining a ranking."""
        recency: float = 0.5 ** (max(age_s, 0.0) / self.half_life_s)
        rf, imf = self.recency_floor, self.importance_floor
        return relevance * (rf + (1 - rf) * recency) * (imf + (1 - imf) * importance)


@dataclass(frozen=True, slots=True)
class NewMemory:
    """A memory to store; ``created_at`` (Unix seconds) defaults to the database clock."""

    chat_id: int
    user_id: int
    text: str
    embedding: Sequence[float] | np.ndarray[Any, Any]
    importance: float = 0.5
    kind: str = "turn"
    created_at: float | None = None


@dataclass(frozen=True, slots=True)
class MemoryHit:
    id: int
    chat_id: int
    text: str
    kind: str
    score: float
    relevance: float
    importance: float
    created_at: float


_SEARCH_SQL = """
WITH query AS (
    SELECT q.ord, q.chat_id, q.embedding
    FROM unnest(%(chats)s::bigint[], %(embeddings)b::vector[]) WITH ORDINALITY AS q(chat_id, embedding, ord)
), hits AS (
    SELECT query.ord, h.*
    FROM query CROSS JOIN LATERAL (
        SELECT s.id, s.chat_id, s.text, s.kind, s.importance, s.created_at, s.relevance,
               s.relevance
                 * (%(rf)s + (1 - %(rf)s) * power(0.5, greatest(%(now)s - s.seen_at, 0) / %(half_life)s))
                 * (%(if)s + (1 - %(if)s) * s.importance) AS score
        FROM (
            SELECT m.id, m.chat_id, m.text, m.kind, m.importance::float8 AS importance,
                   extract(epoch FROM m.created_at)::float8 AS created_at,
                   extract(epoch FROM coalesce(m.last_used_at, m.created_at))::float8 AS seen_at,
                   1 - (m.embedding <=> query.embedding) AS relevance
            FROM memories m
            WHERE m.chat_id = query.chat_id AND m.deleted_at IS NULL
            ORDER BY m.created_at DESC
            LIMIT %(scan)s
        ) s
        ORDER BY score DESC
        LIMIT %(k)s
    ) h
    WHERE h.score >= %(min_score)s
), touched AS (
    UPDATE memories m
    SET use_count = m.use_count + u.uses, last_used_at = to_timestamp(%(now)s)
    FROM (SELECT id, count(*) AS uses FROM hits GROUP BY id) u
    WHERE %(touch)s AND m.id = u.id
)
SELECT * FROM hits ORDER BY ord, score DESC
"""

_INSERT_SQL = """
INSERT INTO memories (chat_id, user_id, text, embedding, importance, kind, created_at)
SELECT r.chat_id, r.user_id, r.text, r.embedding, r.importance, r.kind,
       coalesce(to_timestamp(r.created_at), now())
FROM unnest(%s::bigint[], %s::bigint[], %s::text[], %b::vector[], %s::real[], %s::text[], %s::float8[])
     AS r(chat_id, user_id, text, embedding, importance, kind, created_at)
RETURNING id
"""


class MemoryStore:
    """pgvector-backed memories; one SQL statement per call, whatever the batch size."""

    def __init__(
        self,
        pool: Pool,
        *,
        dim: int = DEFAULT_DIM,
        ranking: Ranking | None = None,
        codec: MemoryCodec | None = None,
    ) -> None:
        """``codec`` encrypts text at rest (see :mod:`tgstream.state.memory_crypto`)."""
        self._pool = pool
        self._codec = codec
        self.dim = dim
        self.ranking = ranking or Ranking()

    async def add_many(self, rows: Sequence[NewMemory]) -> list[int]:
        """Insert a batch in one statement (``unnest`` of column arrays); returns the new ids."""
        if not rows:
            return []
        columns: tuple[list[Any], ...] = ([], [], [], [], [], [], [])
        for row in rows:
            values = (
                row.chat_id,
                row.user_id,
                self._sealed(self._text(row.text)),
                self._vector(row.embedding),
                self._importance(row.importance),
                row.kind,
                row.created_at,
            )
            for column, value in zip(columns, values, strict=True):
                column.append(value)
        async with connection(self._pool) as conn:
            cur = await conn.execute(_INSERT_SQL, columns)
            return [r[0] for r in await cur.fetchall()]

    async def search(
        self,
        chat_id: int,
        query_embedding: Sequence[float] | np.ndarray[Any, Any],
        *,
        k: int,
        min_score: float,
        now: float | None = None,
        touch: bool = True,
    ) -> list[MemoryHit]:
        """The chat's top-k memories scoring at least ``min_score``, best first."""
        return (
            await self.search_many(
                [(chat_id, query_embedding)], k=k, min_score=min_score, now=now, touch=touch
            )
        )[0]

    async def search_many(
        self,
        queries: Sequence[tuple[int, Sequence[float] | np.ndarray[Any, Any]]],
        *,
        k: int,
        min_score: float,
        now: float | None = None,
        touch: bool = True,
    ) -> list[list[MemoryHit]]:
        """One result list per (chat_id, embedding) query, in order, from one round trip.

        ``touch`` bumps ``use_count`` and ``last_used_at`` of what is returned; ``now``
        (Unix seconds, default the local clock) is the reference time for recency.
        """
        if not queries or k <= 0:
            return [[] for _ in queries]
        now = time.time() if now is None else now
        params = {
            "chats": [chat_id for chat_id, _ in queries],
            "embeddings": [self._vector(embedding) for _, embedding in queries],
            "rf": self.ranking.recency_floor,
            "if": self.ranking.importance_floor,
            "half_life": self.ranking.half_life_s,
            "now": now,
            "scan": self.ranking.scan_limit,
            "k": k,
            "min_score": min_score,
            "touch": touch,
        }
        results: list[list[MemoryHit]] = [[] for _ in queries]
        async with connection(self._pool) as conn, conn.cursor(row_factory=dict_row) as cur:
            await cur.execute(_SEARCH_SQL, params)
            for row in await cur.fetchall():
                results[row["ord"] - 1].append(
                    MemoryHit(
                        id=row["id"],
                        chat_id=row["chat_id"],
                        text=self._codec.open(row["text"]) if self._codec else row["text"],
                        kind=row["kind"],
                        score=row["score"],
                        relevance=row["relevance"],
                        importance=row["importance"],
                        created_at=row["created_at"],
                    )
                )
        return results

    async def record_usage(self, uses: Sequence[tuple[int, float]]) -> int:
        """Bump ``use_count``/``last_used_at`` for (memory id, used at) pairs in one statement.

        For callers that search with ``touch=False`` to keep the usage write off the turn's
        latency path and batch it in the background instead (an in-statement touch adds about
        2 ms when the update cannot be HOT and must also insert into the HNSW index).
        Returns the number of rows updated; ids deleted meanwhile are skipped.
        """
        if not uses:
            return 0
        sql = """
            UPDATE memories m
            SET use_count = m.use_count + u.uses,
                last_used_at = greatest(coalesce(m.last_used_at, to_timestamp(0)), to_timestamp(u.used_at))
            FROM (
                SELECT id, count(*) AS uses, max(used_at) AS used_at
                FROM unnest(%s::bigint[], %s::float8[]) AS x(id, used_at)
                GROUP BY id
            ) u
            WHERE m.id = u.id
        """
        async with connection(self._pool) as conn:
            cur = await conn.execute(sql, ([i for i, _ in uses], [at for _, at in uses]))
            return cur.rowcount

    async def forget_chat(self, chat_id: int) -> int:
        """Hard-delete every memory of a chat (``/forget``); returns how many were removed."""
        return await self._delete("DELETE FROM memories WHERE chat_id = %s", chat_id)

    async def forget_user(self, user_id: int) -> int:
        """Hard-delete everything a user said, in every chat (erasure requests)."""
        return await self._delete("DELETE FROM memories WHERE user_id = %s", user_id)

    async def count(self, chat_id: int) -> int:
        """Live memories of a chat, for ``/stats``."""
        async with connection(self._pool) as conn:
            cur = await conn.execute(
                "SELECT count(*) FROM memories WHERE chat_id = %s AND deleted_at IS NULL", [chat_id]
            )
            row = await cur.fetchone()
            return int(row[0]) if row else 0

    async def _delete(self, sql: str, key: int) -> int:
        async with connection(self._pool) as conn:
            cur = await conn.execute(sql, [key])
            return cur.rowcount

    def _vector(self, embedding: Sequence[float] | np.ndarray[Any, Any]) -> np.ndarray[Any, Any]:
        vector = np.asarray(embedding, dtype=np.float32)
        if vector.shape != (self.dim,):
            msg = f"embedding has shape {vector.shape}, the memories table expects ({self.dim},)"
            raise ValueError(msg)
        if not np.all(np.isfinite(vector)) or not np.any(vector):
            msg = "embedding must be finite and not all zeros (cosine distance is undefined)"
            raise ValueError(msg)
        return vector

    @staticmethod
    def _importance(value: float) -> float:
        if not (math.isfinite(value) and 0 <= value <= 1):
            msg = f"importance must be within [0, 1], got {value}"
            raise ValueError(msg)
        return value

    def _sealed(self, text: str) -> str:
        return self._codec.seal(text) if self._codec else text

    @staticmethod
    def _text(text: str) -> str:
        if not text.strip():
            msg = "a memory needs non-blank text"
            raise ValueError(msg)
        return text[:_MAX_TEXT]
