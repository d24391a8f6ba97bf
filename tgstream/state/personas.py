"""Personas in Postgres: which character the bot plays in a chat.

A chat has one persona: the most recent row of ``user_personalities`` for that chat, or the
persona named ``default`` when there is none. In a private chat the only user is the chat, so
this is "the user's persona"; in a group, whoever ran ``/persona`` last chose for everyone,
because the bot answers in one voice that all members read. ``user_id`` is still stored, to
tell who chose. The ``customizations`` JSON of that row travels with the persona; applying
it to the prompt is the prompt builder's job.

Every lookup the dataflow makes is batched: :meth:`PersonaStore.resolve_many` answers any
number of chats in one round trip. The read path goes through
:class:`tgstream.state.persona_cache.CachedPersonas`.

Needs an index on ``user_personalities (chat_id, assigned_at DESC)``: the primary key starts
with ``user_id`` and cannot serve a lookup by chat.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from psycopg.rows import dict_row
from psycopg.types.json import Jsonb

from tgstream.connectors.postgres import Pool, connection

DEFAULT_PERSONA = "default"
_MAX_SEEN = 1000

_PERSONA_COLUMNS = (
    "p.id::text AS id, p.name, p.description, p.system_prompt, p.personality_traits, "
    "p.conversation_style, p.version, p.greeting, p.card"
)


class PersonaNotFound(LookupError):
    """No persona has that name (or the ``default`` persona was never seeded)."""


@dataclass(frozen=True, slots=True)
class Persona:
    """One row of ``personalities``; the mappings are shared between cached readers: never mutate."""

    id: str
    name: str
    system_prompt: str
    description: str = ""
    traits: Mapping[str, Any] = field(default_factory=dict)
    style: Mapping[str, Any] = field(default_factory=dict)
    version: int = 1
    greeting: str | None = None
    card: Mapping[str, Any] | None = None


@dataclass(frozen=True, slots=True)
class PersonaAssignment:
    """A chat's persona with the customizations of its assignment.

    ``assigned_by`` is None when the chat fell back to the default persona. ``degraded`` is
    set by the cache when it served a stale or built-in value because Postgres failed.
    """

    chat_id: int
    persona: Persona
    customizations: Mapping[str, Any] = field(default_factory=dict)
    assigned_by: int | None = None
    degraded: bool = False


BUILTIN_DEFAULT = Persona(
    id="00000000-0000-0000-0000-000000000000",
    name=DEFAULT_PERSONA,
    system_prompt=(
        "You are a warm, curious companion chatting on Telegram. Keep replies short and kind, "
        "ask a follow-up question now and then, and never claim to be human."
    ),
    description="Built-in fallback used only while the persona database is unreachable.",
)


def _persona(row: Mapping[str, Any]) -> Persona:
    return Persona(
        id=row["id"],
        name=row["name"],
        system_prompt=row["system_prompt"],
        description=row["description"] or "",
        traits=row["personality_traits"] or {},
        style=row["conversation_style"] or {},
        version=row["version"] or 1,
        greeting=row["greeting"],
        card=row["card"],
    )


class PersonaStore:
    """Reads and assigns personas; every method is one SQL statement on a pooled connection.

    Raises :class:`~tgstream.connectors.postgres.DatabaseError` (or its ``Unavailable``
    subclass) when Postgres fails, and :class:`PersonaNotFound` for an unknown name.
    """

    def __init__(self, pool: Pool, *, default_name: str = DEFAULT_PERSONA) -> None:
        self._pool = pool
        self.default_name = default_name
        self._seen: dict[tuple[str, int], Persona] = {}

    async def get_by_id(self, persona_id: str) -> Persona:
        rows = await self._fetch(
            f"SELECT {_PERSONA_COLUMNS} FROM personalities p WHERE p.id::text = %s", [persona_id]
        )
        if not rows:
            raise PersonaNotFound(f"no persona with id {persona_id}")
        return _persona(rows[0])

    async def get_by_name(self, name: str) -> Persona:
        """Case-insensitive, so ``/persona Luna`` finds ``luna``."""
        sql = f"SELECT {_PERSONA_COLUMNS} FROM personalities p WHERE lower(p.name) = lower(%s)"
        rows = await self._fetch(sql, [name])
        if not rows:
            raise PersonaNotFound(f"no persona named {name!r}")
        return _persona(rows[0])

    async def list_personas(self) -> list[Persona]:
        rows = await self._fetch(f"SELECT {_PERSONA_COLUMNS} FROM personalities p ORDER BY p.name", None)
        return [_persona(r) for r in rows]

    async def resolve(self, chat_id: int) -> PersonaAssignment:
        return (await self.resolve_many([chat_id]))[chat_id]

    async def resolve_many(self, chat_ids: Iterable[int]) -> dict[int, PersonaAssignment]:
        """Every chat's persona; chats without an assignment get the default.

        One round trip returns (chat, persona id, version, customizations); persona rows are
        fetched only for (id, version) pairs this store has not seen, so a batch of 500 chats
        does not parse 500 copies of the same prompt (p50 13 ms -> 5 ms for 500 chats,
        benchmarks/persona_resolve.py).
        """
        wanted = sorted(set(chat_ids))
        if not wanted:
            return {}
        sql = """
            SELECT w.chat_id, l.user_id AS assigned_by, l.customizations, p.id::text AS id, p.version
            FROM unnest(%(chats)s::bigint[]) AS w(chat_id)
            LEFT JOIN LATERAL (
                SELECT up.user_id, up.personality_id, up.customizations
                FROM user_personalities up
                WHERE up.chat_id = w.chat_id
                ORDER BY up.assigned_at DESC
                LIMIT 1
            ) l ON true
            JOIN personalities p ON p.id = coalesce(
                l.personality_id,
                (SELECT d.id FROM personalities d WHERE d.name = %(default)s)
            )
        """
        rows = await self._fetch(sql, {"chats": wanted, "default": self.default_name})
        if len(rows) != len(wanted):
            raise PersonaNotFound(f"the {self.default_name!r} persona is missing; run `tgstream db migrate`")
        unseen = {row["id"] for row in rows if (row["id"], row["version"]) not in self._seen}
        if unseen:
            if len(self._seen) > _MAX_SEEN:
                self._seen.clear()
            sql = f"SELECT {_PERSONA_COLUMNS} FROM personalities p WHERE p.id::text = ANY(%s)"
            for row in await self._fetch(sql, [list(unseen)]):
                fetched = _persona(row)
                self._seen[(fetched.id, fetched.version)] = fetched
        resolved = {}
        newer: dict[str, Persona] = {}
        for row in rows:
            persona = self._seen.get((row["id"], row["version"])) or newer.get(row["id"])
            if persona is None:  # edited between our two statements: take the newer row
                persona = newer[row["id"]] = await self.get_by_id(row["id"])
            resolved[row["chat_id"]] = PersonaAssignment(
                chat_id=row["chat_id"],
                persona=persona,
                customizations=row["customizations"] or {},
                assigned_by=row["assigned_by"],
            )
        return resolved

    async def assign(
        self,
        chat_id: int,
        user_id: int,
        persona_name: str,
        customizations: Mapping[str, Any] | None = None,
    ) -> PersonaAssignment:
        """Make ``persona_name`` the chat's persona; customizations are kept unless given."""
        sql = f"""
            WITH chosen AS (
                SELECT p.id FROM personalities p WHERE lower(p.name) = lower(%(name)s) LIMIT 1
            ), upserted AS (
                INSERT INTO user_personalities AS up
                    (user_id, chat_id, personality_id, customizations, assigned_at)
                SELECT %(user)s, %(chat)s, chosen.id,
                       coalesce(%(custom)s::jsonb, '{{}}'::jsonb), clock_timestamp()
                FROM chosen
                ON CONFLICT (user_id, chat_id) DO UPDATE SET
                    personality_id = EXCLUDED.personality_id,
                    customizations = coalesce(%(custom)s::jsonb, up.customizations),
                    assigned_at = EXCLUDED.assigned_at
                RETURNING up.personality_id, up.customizations
            )
            SELECT u.customizations, {_PERSONA_COLUMNS}
            FROM upserted u JOIN personalities p ON p.id = u.personality_id
        """
        params = {
            "name": persona_name,
            "user": user_id,
            "chat": chat_id,
            "custom": Jsonb(dict(customizations)) if customizations is not None else None,
        }
        rows = await self._fetch(sql, params)
        if not rows:
            raise PersonaNotFound(f"no persona named {persona_name!r}")
        row = rows[0]
        return PersonaAssignment(
            chat_id=chat_id,
            persona=_persona(row),
            customizations=row["customizations"] or {},
            assigned_by=user_id,
        )

    async def _fetch(self, sql: str, params: Any) -> list[dict[str, Any]]:
        async with connection(self._pool) as conn, conn.cursor(row_factory=dict_row) as cur:
            await cur.execute(sql, params)
            return await cur.fetchall()
