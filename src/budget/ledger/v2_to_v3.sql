-- From schema v2 (or a new file, right after tables.sql) to v3: four columns on `requests`,
-- two on `model_totals`, three indexes, and v2's views and triggers dropped so that
-- triggers.sql, run next, creates v3's (which also sum the cached tokens and their savings).
-- On a new file every statement runs on empty tables, so a new file and a migrated one end up
-- with the same schema text.

-- What the request was for: an edit (`:LlmEdit`) or a review by the judge (`:LlmReview`).
ALTER TABLE requests ADD COLUMN kind TEXT NOT NULL DEFAULT 'edit'
    CHECK (kind IN ('edit', 'review'));
-- The prompt's size in UTF-8 bytes, to learn this model's bytes per token (foresight).
ALTER TABLE requests ADD COLUMN prompt_bytes INTEGER CHECK (prompt_bytes >= 0);
-- A name for the key the request went through, never the key: `bound:<OpenRouter key hash>`
-- for a key made by `:LlmKey create`, `named:<name>` for one of setup's `keys`, NULL for
-- `api_key`.
ALTER TABLE requests ADD COLUMN key_id TEXT;
-- What reading `tokens_cached` from the cache saved against the full prompt price.
ALTER TABLE requests ADD COLUMN cache_saved INTEGER CHECK (cache_saved >= 0);

ALTER TABLE model_totals ADD COLUMN tokens_cached INTEGER NOT NULL DEFAULT 0;
ALTER TABLE model_totals ADD COLUMN cache_saved INTEGER NOT NULL DEFAULT 0;

-- A model's recent requests (foresight), a key's spend in a period (`:LlmUsage`), and the
-- few rows that are not edits (review spend).
CREATE INDEX requests_model_created ON requests (model, created_at);
CREATE INDEX requests_key_created ON requests (key_id, created_at) WHERE key_id IS NOT NULL;
CREATE INDEX requests_kind_created ON requests (kind, project, created_at) WHERE kind <> 'edit';

DROP TRIGGER IF EXISTS requests_count_insert;
DROP TRIGGER IF EXISTS requests_count_update;
DROP TRIGGER IF EXISTS requests_count_move;
DROP TRIGGER IF EXISTS requests_count_delete;
DROP TRIGGER IF EXISTS request_deltas_count;
DROP TRIGGER IF EXISTS scope_deltas_add;
DROP VIEW IF EXISTS request_deltas;
DROP VIEW IF EXISTS scope_deltas;
