"""Background maintenance of memories: the rows the importance judgement has not seen yet.

Kept apart from :mod:`tgstream.state.memories` (the hot path's reads and writes) because
these statements only ever run from ``tgstream adapt run --judge-importance``.
``memories.judged_at`` (migration 006) marks rows the judge has handled, judged or not, so a
row whose batch got an unusable answer is not sent again and again.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from tgstream.connectors.postgres import Pool, connection
from tgstream.state.memory_crypto import MemoryCodec

_UNJUDGED = """
SELECT id, text, importance::float8
FROM memories
WHERE judged_at IS NULL AND deleted_at IS NULL AND kind = 'turn'
  AND created_at >= now() - make_interval(secs => %s)
ORDER BY created_at DESC, id DESC
LIMIT %s
"""

_RECORD = """
UPDATE memories m
SET importance = coalesce(r.importance, m.importance), judged_at = now()
FROM unnest(%s::bigint[], %s::real[]) AS r(id, importance)
WHERE m.id = r.id
"""


@dataclass(frozen=True, slots=True)
class UnjudgedMemory:
    id: int
    text: str
    importance: float


class MemoryAdmin:
    """One statement per call; raises ``DatabaseError`` when Postgres fails."""

    def __init__(self, pool: Pool, *, codec: MemoryCodec | None = None) -> None:
        """``codec``: the store's encryption at rest, so the judge reads plain text."""
        self._pool = pool
        self._codec = codec

    async def unjudged(self, *, limit: int, max_age_s: float) -> list[UnjudgedMemory]:
        """The newest memories not judged yet, created within ``max_age_s``."""
        async with connection(self._pool) as conn:
            cur = await conn.execute(_UNJUDGED, [max_age_s, limit])
            rows = await cur.fetchall()
        codec = self._codec
        return [UnjudgedMemory(int(i), codec.open(t) if codec else str(t), float(imp)) for i, t, imp in rows]

    async def record_judgements(self, judged: Sequence[tuple[int, float | None]]) -> int:
        """Mark these memories judged; a score replaces the importance, None keeps it. Returns rows."""
        if not judged:
            return 0
        ids = [memory_id for memory_id, _ in judged]
        scores = [score for _, score in judged]
        async with connection(self._pool) as conn:
            cur = await conn.execute(_RECORD, [ids, scores])
            return cur.rowcount
