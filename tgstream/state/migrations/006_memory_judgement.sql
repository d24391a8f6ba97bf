-- The optional LLM importance judgement (`tgstream adapt run --judge-importance`) runs off the hot
-- path over memories stored since its last round. judged_at marks the rows it has seen (judged,
-- or given up on because the model's answer was unusable), so no row is sent twice.

ALTER TABLE memories ADD COLUMN IF NOT EXISTS judged_at TIMESTAMPTZ;

CREATE INDEX IF NOT EXISTS idx_memories_unjudged ON memories (created_at DESC)
    WHERE judged_at IS NULL AND deleted_at IS NULL;
