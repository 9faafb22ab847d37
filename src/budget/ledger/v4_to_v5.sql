-- From schema v4 (or a new file, right after v3_to_v4.sql) to v5: the fate of every hunk an
-- edit proposed, so that `:LlmUsage` can tell what a model costs per change kept. Kept like
-- `requests` (never pruned by `history_days`). `requests.kind` also allows 'ask' from v5: that
-- CHECK is widened in place by schema.rs (SQLite cannot ALTER a CHECK), on a new file too, so a
-- new file and a migrated one end up with the same schema text.
--
-- One row per hunk of an edit: `hunk` is its number in the edit's answer (1-based, in answer
-- order), `fate` what became of it: 'proposed' (placed in the buffer, not yet settled),
-- 'accepted', 'rejected', 'replaced' (a follow-up replaced it) or 'abandoned' (its buffer
-- closed, or Neovim quit with it pending), `at` when it took that fate (unix ms). A follow-up
-- is its own request with its own hunks.
CREATE TABLE hunk_outcomes (
    request_id INTEGER NOT NULL REFERENCES requests (id),
    hunk       INTEGER NOT NULL CHECK (hunk >= 1),
    fate       TEXT    NOT NULL
               CHECK (fate IN ('proposed', 'accepted', 'rejected', 'replaced', 'abandoned')),
    at         INTEGER NOT NULL,
    PRIMARY KEY (request_id, hunk)
) WITHOUT ROWID;
-- Hunks still pending, to abandon those whose process is gone.
CREATE INDEX hunk_outcomes_proposed ON hunk_outcomes (request_id) WHERE fate = 'proposed';
