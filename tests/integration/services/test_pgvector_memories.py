"""The migrated `memories` table answers nearest-neighbour queries scoped to one chat."""

from __future__ import annotations

import random

import psycopg
import pytest
from pgvector.psycopg import register_vector

from tgstream.config import Settings
from tgstream.doubles.stub_content import embed
from tgstream.state.migrate import migrate

pytestmark = pytest.mark.integration


def _vec(text: str) -> str:
    return "[" + ",".join(f"{x:.6f}" for x in embed(text, 384)) + "]"


def test_nearest_memory_is_found_only_within_its_chat(settings: Settings) -> None:
    migrate(settings.database_url)
    chat, other_chat = random.randrange(10**11, 10**12), random.randrange(10**11, 10**12)
    planted = "my cat Miso loves tuna and naps in the sun"
    rows = [
        (chat, planted),
        (chat, "I work as a nurse on night shifts"),
        (chat, "favourite band is Radiohead"),
        (other_chat, "my cat Miso loves tuna and naps in the sun!"),
        (other_chat, "cat Miso tuna"),
    ]
    with psycopg.connect(settings.database_url, autocommit=True) as conn:
        register_vector(conn)
        try:
            with conn.cursor() as cur:
                cur.executemany(
                    "INSERT INTO memories (chat_id, user_id, text, embedding) "
                    "VALUES (%s, %s, %s, %s::vector)",
                    [(c, c, text, _vec(text)) for c, text in rows],
                )
            found = conn.execute(
                "SELECT chat_id, text FROM memories WHERE chat_id = %s AND deleted_at IS NULL "
                "ORDER BY embedding <=> %s::vector LIMIT 2",
                (chat, _vec("what food does Miso the cat like?")),
            ).fetchall()
        finally:
            conn.execute("DELETE FROM memories WHERE chat_id = ANY(%s)", ([chat, other_chat],))

    assert found[0] == (chat, planted)
    assert all(chat_id == chat for chat_id, _ in found)
