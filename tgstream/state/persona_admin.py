"""Operator writes on personas: add (versioned), history, export, and customization edits.

Reads for the hot path stay in :mod:`tgstream.state.personas`; this module is for the
``tgstream persona`` commands, which are rare and may take a few statements.

Versioning: adding a persona whose name exists (case-insensitively) updates it only when
something actually changed, in one ``INSERT .. ON CONFLICT .. DO UPDATE .. WHERE IS DISTINCT
FROM`` statement. The trigger of migration 001 then bumps ``version``, and the trigger of
migration 004 records the new version in ``personality_versions``; re-adding an unchanged file
is a no-op that keeps the version, so ``persona add personas/`` can run on every deploy.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from psycopg.rows import dict_row
from psycopg.types.json import Jsonb

from tgstream.connectors.postgres import Pool, connection
from tgstream.schemas.persona_card import CardData, CharacterCardV2, parse_card
from tgstream.schemas.persona_file import EXTENSION_KEY
from tgstream.state.personas import PersonaNotFound
from tgstream.steps.card_prompt import PersonaRow

AddAction = Literal["created", "updated", "unchanged"]

_UPSERT = """
INSERT INTO personalities AS p
    (name, description, system_prompt, personality_traits, conversation_style, greeting, card)
VALUES (%(name)s, %(description)s, %(system_prompt)s, %(traits)s, %(style)s, %(greeting)s, %(card)s)
ON CONFLICT ((lower(name))) DO UPDATE SET
    name = EXCLUDED.name,
    description = EXCLUDED.description,
    system_prompt = EXCLUDED.system_prompt,
    personality_traits = EXCLUDED.personality_traits,
    conversation_style = EXCLUDED.conversation_style,
    greeting = EXCLUDED.greeting,
    card = EXCLUDED.card
WHERE (p.name, p.description, p.system_prompt, p.personality_traits, p.conversation_style,
       p.greeting, p.card)
      IS DISTINCT FROM
      (EXCLUDED.name, EXCLUDED.description, EXCLUDED.system_prompt, EXCLUDED.personality_traits,
       EXCLUDED.conversation_style, EXCLUDED.greeting, EXCLUDED.card)
RETURNING p.id::text AS id, p.version, (p.xmax = 0) AS inserted
"""

_VERSION_COLUMNS = (
    "v.version, v.name, v.description, v.system_prompt, v.personality_traits, v.conversation_style, "
    "v.greeting, v.card, v.recorded_at"
)


@dataclass(frozen=True, slots=True)
class AddResult:
    name: str
    id: str
    version: int
    action: AddAction


@dataclass(frozen=True, slots=True)
class PersonaVersion:
    """One recorded version of a persona, as stored at the time."""

    version: int
    name: str
    description: str
    system_prompt: str
    traits: Mapping[str, Any]
    style: Mapping[str, Any]
    greeting: str | None
    card: Mapping[str, Any] | None
    recorded_at: datetime

    def as_card(self) -> CharacterCardV2:
        """The stored card, or one built from the columns for personas that never had a card.

        The built card puts the persona's one-line description in ``creator_notes`` (not part
        of the prompt) and its prompt in ``system_prompt``, so importing it again composes the
        very same system prompt.
        """
        if self.card:
            return parse_card(self.card)
        extension = {k: dict(v) for k, v in (("traits", self.traits), ("style", self.style)) if v}
        data = CardData(
            name=self.name,
            creator_notes=self.description,
            system_prompt=self.system_prompt,
            first_mes=self.greeting or "",
            extensions={EXTENSION_KEY: extension} if extension else {},
        )
        return CharacterCardV2(data=data)


def _version(row: Mapping[str, Any]) -> PersonaVersion:
    return PersonaVersion(
        version=row["version"],
        name=row["name"],
        description=row["description"] or "",
        system_prompt=row["system_prompt"],
        traits=row["personality_traits"] or {},
        style=row["conversation_style"] or {},
        greeting=row["greeting"],
        card=row["card"],
        recorded_at=row["recorded_at"],
    )


class PersonaAdmin:
    """Persona writes for operators; raises ``DatabaseError`` on Postgres failures."""

    def __init__(self, pool: Pool) -> None:
        self._pool = pool

    async def add(self, row: PersonaRow) -> AddResult:
        """Create the persona, or update it (new version) if its content changed."""
        params = {
            "name": row.name,
            "description": row.description,
            "system_prompt": row.system_prompt,
            "traits": Jsonb(row.traits),
            "style": Jsonb(row.style),
            "greeting": row.greeting,
            "card": Jsonb(row.card),
        }
        rows = await self._fetch(_UPSERT, params)
        if rows:
            action: AddAction = "created" if rows[0]["inserted"] else "updated"
            return AddResult(row.name, rows[0]["id"], rows[0]["version"], action)
        current = await self._fetch(
            "SELECT id::text AS id, version FROM personalities WHERE lower(name) = lower(%s)", [row.name]
        )
        if not current:  # deleted between the two statements
            raise PersonaNotFound(f"persona {row.name!r} vanished while being added; add it again")
        return AddResult(row.name, current[0]["id"], current[0]["version"], "unchanged")

    async def history(self, name: str) -> list[PersonaVersion]:
        """Every recorded version, newest first; raises ``PersonaNotFound``."""
        sql = f"""
            SELECT {_VERSION_COLUMNS}
            FROM personality_versions v JOIN personalities p ON p.id = v.personality_id
            WHERE lower(p.name) = lower(%s)
            ORDER BY v.version DESC
        """
        rows = await self._fetch(sql, [name])
        if not rows:
            raise PersonaNotFound(f"no persona named {name!r}")
        return [_version(r) for r in rows]

    async def version(self, name: str, version: int | None = None) -> PersonaVersion:
        """The current version (the live row), or an older one from the history."""
        if version is None:
            sql = """
                SELECT version, name, description, system_prompt, personality_traits,
                       conversation_style, greeting, card, updated_at AS recorded_at
                FROM personalities WHERE lower(name) = lower(%s)
            """
            rows = await self._fetch(sql, [name])
        else:
            sql = f"""
                SELECT {_VERSION_COLUMNS}
                FROM personality_versions v JOIN personalities p ON p.id = v.personality_id
                WHERE lower(p.name) = lower(%s) AND v.version = %s
            """
            rows = await self._fetch(sql, [name, version])
        if not rows:
            what = f"version {version} of persona" if version is not None else "persona"
            raise PersonaNotFound(f"no {what} named {name!r}")
        return _version(rows[0])

    async def customizations(self, chat_id: int, user_id: int) -> dict[str, Any] | None:
        """The customizations of this user's assignment in this chat, or None without one."""
        rows = await self._fetch(
            "SELECT customizations FROM user_personalities WHERE chat_id = %s AND user_id = %s",
            [chat_id, user_id],
        )
        return dict(rows[0]["customizations"] or {}) if rows else None

    async def assignment_counts(self) -> dict[str, int]:
        """How many chats each persona is explicitly assigned to, by persona name."""
        rows = await self._fetch(
            """
            SELECT p.name, count(DISTINCT up.chat_id) AS chats
            FROM personalities p LEFT JOIN user_personalities up ON up.personality_id = p.id
            GROUP BY p.name
            """,
            None,
        )
        return {r["name"]: int(r["chats"]) for r in rows}

    async def _fetch(self, sql: str, params: Any) -> list[dict[str, Any]]:
        async with connection(self._pool) as conn, conn.cursor(row_factory=dict_row) as cur:
            await cur.execute(sql, params)
            return await cur.fetchall() if cur.description else []
