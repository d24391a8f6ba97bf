-- Facts about a user, one row per slot ("name", "location", "pet:dog", "likes:sushi"), so a newer
-- statement about the same slot replaces the older one instead of piling up next to it: "I moved
-- to Berlin" updates where the user lives. The replaced text is kept in previous_text, for
-- operators and for debugging the extractor. Keyed per user as well as per chat, because in a
-- group "my name is ..." is said by several people.

CREATE TABLE IF NOT EXISTS facts (
    chat_id       BIGINT NOT NULL,
    user_id       BIGINT NOT NULL,
    slot          TEXT NOT NULL,
    value         TEXT NOT NULL,
    text          TEXT NOT NULL,
    confidence    REAL NOT NULL DEFAULT 0.8 CHECK (confidence >= 0 AND confidence <= 1),
    previous_text TEXT,
    revisions     INT NOT NULL DEFAULT 1,
    created_at    TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at    TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (chat_id, user_id, slot)
);

CREATE INDEX IF NOT EXISTS idx_facts_chat_updated ON facts (chat_id, updated_at DESC);
