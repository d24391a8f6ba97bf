-- Long-term memory: one row per remembered text, embedded for similarity search with pgvector.
--
-- How the chat filter and the HNSW index interact (pgvector 0.6.2, bundled with pgserver):
-- an `ORDER BY embedding <=> $q LIMIT k` query with `WHERE chat_id = $c` may use the HNSW index,
-- which returns the `hnsw.ef_search` (default 40) nearest rows over ALL chats; the chat filter is
-- applied afterwards. 0.6.2 has no iterative index scan (that arrived in 0.8), so when other chats
-- crowd the neighbourhood a query can return fewer than k rows, or none, although the chat has
-- memories. It never returns another chat's rows: the WHERE clause still holds.
-- A reader that needs k rows for sure either raises `SET LOCAL hnsw.ef_search` (up to 1000), or
-- steers the planner to the (chat_id, created_at) btree and computes exact distances over that
-- chat's rows only (e.g. order by `embedding <=> $q` inside a CTE filtered by chat_id): cheap,
-- because one chat holds hundreds of memories, not millions.

CREATE EXTENSION IF NOT EXISTS vector;

CREATE TABLE IF NOT EXISTS memories (
    id           BIGSERIAL PRIMARY KEY,
    chat_id      BIGINT NOT NULL,
    user_id      BIGINT,
    text         TEXT NOT NULL,
    embedding    vector(384),
    importance   REAL NOT NULL DEFAULT 0.5 CHECK (importance >= 0 AND importance <= 1),
    use_count    INT NOT NULL DEFAULT 0,
    kind         TEXT NOT NULL DEFAULT 'turn',
    created_at   TIMESTAMPTZ NOT NULL DEFAULT now(),
    last_used_at TIMESTAMPTZ,
    deleted_at   TIMESTAMPTZ
);

CREATE INDEX IF NOT EXISTS idx_memories_embedding_hnsw
    ON memories USING hnsw (embedding vector_cosine_ops);

CREATE INDEX IF NOT EXISTS idx_memories_chat_created ON memories (chat_id, created_at);
