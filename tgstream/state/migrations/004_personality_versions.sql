-- Persona history: every version a persona has had, so an edit can be inspected, diffed and
-- exported again. Written by a trigger, like the version bump in 001, so no writer can forget;
-- the BEFORE UPDATE trigger of 001 has already bumped NEW.version when this AFTER trigger runs.

CREATE TABLE IF NOT EXISTS personality_versions (
    personality_id     UUID NOT NULL REFERENCES personalities(id) ON DELETE CASCADE,
    version            INT NOT NULL,
    name               VARCHAR(255) NOT NULL,
    description        TEXT,
    system_prompt      TEXT NOT NULL,
    personality_traits JSONB,
    conversation_style JSONB,
    greeting           TEXT,
    card               JSONB,
    recorded_at        TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (personality_id, version)
);

CREATE OR REPLACE FUNCTION personalities_record_version() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO personality_versions
        (personality_id, version, name, description, system_prompt, personality_traits,
         conversation_style, greeting, card)
    VALUES
        (NEW.id, NEW.version, NEW.name, NEW.description, NEW.system_prompt, NEW.personality_traits,
         NEW.conversation_style, NEW.greeting, NEW.card)
    ON CONFLICT (personality_id, version) DO NOTHING;
    RETURN NULL;
END;
$$;

DROP TRIGGER IF EXISTS personalities_record_version ON personalities;
CREATE TRIGGER personalities_record_version AFTER INSERT OR UPDATE ON personalities
    FOR EACH ROW EXECUTE FUNCTION personalities_record_version();

-- Personas that existed before this migration start their history at their current version.
INSERT INTO personality_versions
    (personality_id, version, name, description, system_prompt, personality_traits,
     conversation_style, greeting, card, recorded_at)
SELECT id, version, name, description, system_prompt, personality_traits, conversation_style,
       greeting, card, updated_at
FROM personalities
ON CONFLICT (personality_id, version) DO NOTHING;
