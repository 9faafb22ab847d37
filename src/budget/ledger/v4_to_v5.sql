-- From schema v4 (or a new file, right after v3_to_v4.sql) to v5: the fate of every hunk an
-- edit proposed, so that `:LlmUsage` can tell what a model costs per change kept. Kept like
-- `requests` (never pruned by `history_days`). `requests.kind` also allows 'ask' from v5: that
-- CHECK is widened in place by schema.rs (SQLite cannot ALTER a CHECK), on a new file too, so a
-- new file and a migrated one end up with the same schema text.
--
-- One row per hunk of an edit: `hunk` is the ordinal of its block in the edit's answer
-- (1-based, every block counted), `fate` what became of it: 'proposed' (placed in the buffer, not yet settled),
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

-- Running counts of `hunk_outcomes` per model, for every project (`scope` = its path) and for
-- all projects (`scope` = ''), kept by the triggers below, so that `:LlmUsage` reads a model's
-- share of accepted hunks without a scan. A hunk counts at its request's project and model as
-- they are when the hunk's row is written (moving a request by hand does not move its hunks'
-- counts); a hunk of no request counts nowhere.
CREATE TABLE hunk_totals (
    scope    TEXT    NOT NULL,
    model    TEXT    NOT NULL,
    proposed INTEGER NOT NULL,
    accepted INTEGER NOT NULL,
    PRIMARY KEY (scope, model)
) WITHOUT ROWID;

-- What to add for one request's hunk (its `proposed` 1 or -1, `accepted` 1, 0 or -1); holds
-- nothing, its INSTEAD OF trigger adds it for the request's project and for all projects.
CREATE VIEW hunk_deltas (request_id, proposed, accepted) AS SELECT NULL, NULL, NULL WHERE 0;

CREATE TRIGGER hunk_deltas_add INSTEAD OF INSERT ON hunk_deltas BEGIN
    INSERT INTO hunk_totals (scope, model, proposed, accepted)
        SELECT s.scope, r.model, NEW.proposed, NEW.accepted
        FROM requests AS r
        JOIN (SELECT project AS scope FROM requests WHERE id = NEW.request_id
              UNION ALL SELECT '') AS s
        WHERE r.id = NEW.request_id
    ON CONFLICT (scope, model) DO UPDATE
        SET proposed = proposed + excluded.proposed, accepted = accepted + excluded.accepted;
END;

CREATE TRIGGER hunk_outcomes_count_insert AFTER INSERT ON hunk_outcomes BEGIN
    INSERT INTO hunk_deltas VALUES (NEW.request_id, 1, NEW.fate = 'accepted');
END;

CREATE TRIGGER hunk_outcomes_count_update AFTER UPDATE OF request_id, fate ON hunk_outcomes
BEGIN
    INSERT INTO hunk_deltas VALUES
        (OLD.request_id, -1, -(OLD.fate = 'accepted')),
        (NEW.request_id, 1, NEW.fate = 'accepted');
END;

CREATE TRIGGER hunk_outcomes_count_delete AFTER DELETE ON hunk_outcomes BEGIN
    INSERT INTO hunk_deltas VALUES (OLD.request_id, -1, -(OLD.fate = 'accepted'));
END;
