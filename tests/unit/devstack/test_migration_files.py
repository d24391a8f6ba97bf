from __future__ import annotations

from tgstream.state.migrate import load_migrations


def test_migrations_are_numbered_without_gaps_and_load_in_order() -> None:
    migrations = load_migrations()

    assert [m.version for m in migrations] == list(range(1, len(migrations) + 1))
    assert {"personalities", "memories"} <= {m.name.split("_", 1)[-1] for m in migrations} | {
        m.name for m in migrations
    }


def test_memories_use_384_dim_vectors_with_an_hnsw_cosine_index() -> None:
    sql = next(m.sql for m in load_migrations() if "memories" in m.name)

    assert "vector(384)" in sql
    assert "USING hnsw (embedding vector_cosine_ops)" in sql
    assert "(chat_id, created_at)" in sql


def test_seeded_personas_never_overwrite_operator_edits() -> None:
    seeds = [m for m in load_migrations() if "INSERT INTO personalities" in m.sql]

    assert seeds
    assert all("ON CONFLICT DO NOTHING" in m.sql for m in seeds)
    assert any("'default'" in m.sql for m in seeds)
