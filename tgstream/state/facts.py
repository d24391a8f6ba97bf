"""Facts about users in Postgres (``facts``, migration 005): upsert by slot, read per chat.

A newer fact about a slot replaces the older one in place (``previous_text`` keeps the replaced
line and ``revisions`` counts changes), so the prompt never carries "lives in Lyon" next to
"lives in Berlin". Restating the same value only refreshes ``updated_at`` and the confidence
(the higher of the two), which keeps a repeated fact near the top of :meth:`FactStore.for_chats`.

Every call is one statement whatever the batch size (``unnest`` of column arrays, LATERAL per
chat), so the dataflow's background writer can flush facts with the memories it writes.
Errors: :class:`~tgstream.connectors.postgres.DatabaseError` (``DatabaseUnavailable`` when
Postgres is down).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from psycopg.rows import dict_row

from tgstream.connectors.postgres import Pool, connection
from tgstream.steps.facts import Fact

_UPSERT = """
INSERT INTO facts AS f (chat_id, user_id, slot, value, text, confidence, created_at, updated_at)
SELECT r.chat_id, r.user_id, r.slot, r.value, r.text, r.confidence, clock_timestamp(), clock_timestamp()
FROM unnest(%s::bigint[], %s::bigint[], %s::text[], %s::text[], %s::text[], %s::real[])
     AS r(chat_id, user_id, slot, value, text, confidence)
ON CONFLICT (chat_id, user_id, slot) DO UPDATE SET
    value = EXCLUDED.value,
    text = EXCLUDED.text,
    confidence = CASE WHEN f.value = EXCLUDED.value THEN greatest(f.confidence, EXCLUDED.confidence)
                      ELSE EXCLUDED.confidence END,
    previous_text = CASE WHEN f.value = EXCLUDED.value THEN f.previous_text ELSE f.text END,
    revisions = f.revisions + CASE WHEN f.value = EXCLUDED.value THEN 0 ELSE 1 END,
    updated_at = EXCLUDED.updated_at
RETURNING 1
"""

_FOR_CHATS = """
SELECT w.chat_id, x.text
FROM unnest(%s::bigint[]) AS w(chat_id)
CROSS JOIN LATERAL (
    SELECT f.text, f.updated_at
    FROM facts f
    WHERE f.chat_id = w.chat_id
    ORDER BY f.updated_at DESC, f.slot
    LIMIT %s
) x
ORDER BY w.chat_id, x.updated_at DESC
"""


@dataclass(frozen=True, slots=True)
class NewFact:
    """A fact to store for one user in one chat."""

    chat_id: int
    user_id: int
    fact: Fact


@dataclass(frozen=True, slots=True)
class StoredFact:
    chat_id: int
    user_id: int
    slot: str
    value: str
    text: str
    confidence: float
    previous_text: str | None
    revisions: int


class FactStore:
    """One SQL statement per call; see the module docstring."""

    def __init__(self, pool: Pool) -> None:
        self._pool = pool

    async def upsert_many(self, rows: Sequence[NewFact]) -> int:
        """Store a batch; a later row for the same (chat, user, slot) wins. Returns rows written.

        Duplicates are folded here because one INSERT .. ON CONFLICT statement may not touch
        the same row twice.
        """
        latest: dict[tuple[int, int, str], NewFact] = {}
        for row in rows:
            key = (row.chat_id, row.user_id, row.fact.slot)
            latest.pop(key, None)
            latest[key] = row
        if not latest:
            return 0
        columns: tuple[list[object], ...] = ([], [], [], [], [], [])
        for row in latest.values():
            values = (
                row.chat_id,
                row.user_id,
                row.fact.slot,
                row.fact.value,
                row.fact.text,
                row.fact.confidence,
            )
            for column, value in zip(columns, values, strict=True):
                column.append(value)
        async with connection(self._pool) as conn:
            cur = await conn.execute(_UPSERT, columns)
            return len(await cur.fetchall())

    async def for_chats(self, chat_ids: Iterable[int], *, limit: int = 12) -> dict[int, list[str]]:
        """The newest ``limit`` fact lines of each chat (every user in it), in one round trip."""
        wanted = sorted(set(chat_ids))
        found: dict[int, list[str]] = {chat_id: [] for chat_id in wanted}
        if not wanted or limit <= 0:
            return found
        async with connection(self._pool) as conn:
            cur = await conn.execute(_FOR_CHATS, [wanted, limit])
            for chat_id, text in await cur.fetchall():
                found[chat_id].append(text)
        return found

    async def list_chat(self, chat_id: int) -> list[StoredFact]:
        """Everything stored for a chat, for operators and tests."""
        async with connection(self._pool) as conn, conn.cursor(row_factory=dict_row) as cur:
            await cur.execute(
                "SELECT chat_id, user_id, slot, value, text, confidence, previous_text, revisions"
                " FROM facts WHERE chat_id = %s ORDER BY slot, user_id",
                [chat_id],
            )
            return [StoredFact(**row) for row in await cur.fetchall()]

    async def forget_chat(self, chat_id: int) -> int:
        """Delete a chat's facts (``/forget``); returns how many."""
        async with connection(self._pool) as conn:
            cur = await conn.execute("DELETE FROM facts WHERE chat_id = %s", [chat_id])
            return cur.rowcount

    async def forget_user(self, user_id: int) -> int:
        """Delete a user's facts in every chat (erasure requests)."""
        async with connection(self._pool) as conn:
            cur = await conn.execute("DELETE FROM facts WHERE user_id = %s", [user_id])
            return cur.rowcount
