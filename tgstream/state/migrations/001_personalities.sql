-- Personas (the seed's `personalities` and `user_personalities`), plus what tgstream adds:
-- `version` (bumped on every edit, so caches can tell stale rows), `greeting` (first message in a
-- chat) and `card` (the Character Card V2 JSON a persona was imported from, kept verbatim).

CREATE TABLE IF NOT EXISTS personalities (
    id                 UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    name               VARCHAR(255) NOT NULL UNIQUE,
    description        TEXT,
    system_prompt      TEXT NOT NULL,
    personality_traits JSONB,
    conversation_style JSONB,
    knowledge_base_id  UUID,
    version            INT NOT NULL DEFAULT 1,
    greeting           TEXT,
    card               JSONB,
    created_at         TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at         TIMESTAMPTZ NOT NULL DEFAULT now()
);

CREATE INDEX IF NOT EXISTS idx_personalities_traits ON personalities USING GIN (personality_traits);

-- `/persona Sage` and `/persona sage` must find the same row, and must never find two.
CREATE UNIQUE INDEX IF NOT EXISTS idx_personalities_name_lower ON personalities (lower(name));

-- Any UPDATE bumps version and updated_at, so no writer can forget to.
CREATE OR REPLACE FUNCTION personalities_touch() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    NEW.version := OLD.version + 1;
    NEW.updated_at := now();
    RETURN NEW;
END;
$$;

DROP TRIGGER IF EXISTS personalities_touch ON personalities;
CREATE TRIGGER personalities_touch BEFORE UPDATE ON personalities
    FOR EACH ROW EXECUTE FUNCTION personalities_touch();

CREATE TABLE IF NOT EXISTS user_personalities (
    user_id        BIGINT NOT NULL,  -- Telegram user id
    chat_id        BIGINT NOT NULL,  -- Telegram chat id
    personality_id UUID NOT NULL REFERENCES personalities(id),
    customizations JSONB NOT NULL DEFAULT '{}',
    assigned_at    TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (user_id, chat_id)
);

-- The dataflow resolves a chat's persona by chat (newest assignment wins); the primary key
-- starts with user_id and cannot serve that lookup.
CREATE INDEX IF NOT EXISTS idx_user_personalities_chat ON user_personalities (chat_id, assigned_at DESC);
