"""Memory text encrypted at rest: ciphertext in the table, plain text through the store.

A row written before the key was set stays readable, and a store without the key (or with
another key) is refused rather than handing ciphertext to the prompt.
"""

from __future__ import annotations

import random

import pytest
from cryptography.fernet import Fernet

from tgstream.connectors.postgres import Pool, connection
from tgstream.doubles.stub_content import embed
from tgstream.state.memories import MemoryStore, NewMemory
from tgstream.state.memory_admin import MemoryAdmin
from tgstream.state.memory_crypto import PREFIX, MemoryCodec, MemoryKeyError

pytestmark = [pytest.mark.integration, pytest.mark.anyio]


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


async def test_ciphertext_in_the_table_plain_text_through_the_store(pg_pool: Pool) -> None:
    chat = random.randint(10**11, 10**12)
    secret = "my sister Ada is moving to Oslo in May"
    old = "I used to live in Rome"
    codec = MemoryCodec.from_setting(Fernet.generate_key().decode())
    assert codec is not None
    plain_store = MemoryStore(pg_pool)
    sealed_store = MemoryStore(pg_pool, codec=codec)
    try:
        await plain_store.add_many([NewMemory(chat, chat, old, embed(old, plain_store.dim))])
        await sealed_store.add_many([NewMemory(chat, chat, secret, embed(secret, sealed_store.dim))])
        async with connection(pg_pool) as conn:
            cur = await conn.execute("SELECT text FROM memories WHERE chat_id = %s ORDER BY id", [chat])
            stored = [row[0] for row in await cur.fetchall()]
        assert stored[0] == old
        assert stored[1].startswith(PREFIX)
        assert "Oslo" not in stored[1]
        assert "Ada" not in stored[1]
        hits = await sealed_store.search(
            chat, embed("where is Ada moving?", sealed_store.dim), k=5, min_score=-1
        )
        assert sorted(h.text for h in hits) == sorted([old, secret])
        judged = await MemoryAdmin(pg_pool, codec=codec).unjudged(limit=1000, max_age_s=3600)
        assert secret in {m.text for m in judged}
        other = MemoryCodec.from_setting(Fernet.generate_key().decode())
        with pytest.raises(MemoryKeyError):
            await MemoryStore(pg_pool, codec=other).search(chat, embed(secret, 384), k=5, min_score=-1)
    finally:
        async with connection(pg_pool) as conn:
            await conn.execute("DELETE FROM memories WHERE chat_id = %s", [chat])


def test_a_malformed_key_is_a_clear_error() -> None:
    with pytest.raises(MemoryKeyError, match="Fernet keys"):
        MemoryCodec.from_setting("not-a-key")
    assert MemoryCodec.from_setting("  ") is None
