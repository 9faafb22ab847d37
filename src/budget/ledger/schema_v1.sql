-- The ledger's schema v1 (PRAGMA user_version = 1), created in one transaction on a new file.
-- Amounts are integer picodollars (1e-12 USD), times unix milliseconds (UTC); every column is
-- described in src/budget/ledger/schema.rs.
--
-- The triggers keep running sums of `requests`, so that no cap check or report ever sums
-- `requests` over a month. What one row r (NEW or OLD) counts, written out in every trigger:
--   spent       (CASE WHEN r.state = 'reserved' THEN 0 ELSE IFNULL(r.charged, 0) END)
--               what was billed, once the row is no longer reserved
--   reserved    (CASE WHEN r.state = 'reserved' THEN r.reserved ELSE 0 END)
--               the worst case, while the row is reserved
--   tokens_out  IFNULL(r.tokens_out, 0)
--   tokens_in   IFNULL(r.tokens_in, 0)      (model_totals only)
-- Each is counted twice: for the row's project (scope = its path) and for all projects
-- (scope = ''). The rollups hold buckets one day, one hour and fifteen minutes wide
-- (86400000, 3600000 and 900000 ms: WIDTHS in sums.rs), each starting at created_at rounded
-- down to a multiple of its width (the double modulo rounds down before 1970 too).
--
-- `WHERE 1` before each ON CONFLICT is needed: in `INSERT INTO … SELECT … FROM a, b
-- ON CONFLICT …` SQLite would read ON as the join's constraint; a WHERE clause ends the FROM.

CREATE TABLE requests (
    id               INTEGER PRIMARY KEY,
    project          TEXT    NOT NULL,
    model            TEXT    NOT NULL,
    created_at       INTEGER NOT NULL,
    settled_at       INTEGER,
    state            TEXT    NOT NULL
                     CHECK (state IN ('reserved', 'settled', 'failed', 'reconciled')),
    reserved         INTEGER NOT NULL CHECK (reserved >= 0),
    charged          INTEGER CHECK (charged >= 0),
    tokens_in        INTEGER,
    tokens_out       INTEGER,
    tokens_cached    INTEGER,
    tokens_reasoning INTEGER,
    generation_id    TEXT,
    charge_source    TEXT CHECK (charge_source IN ('usage', 'generation', 'estimate')),
    owner_pid        INTEGER NOT NULL,
    owner_instance   TEXT    NOT NULL
);
CREATE INDEX requests_project_created ON requests (project, created_at);
CREATE INDEX requests_created ON requests (created_at);
CREATE INDEX requests_reserved ON requests (state) WHERE state = 'reserved';

CREATE TABLE rollups (
    scope      TEXT    NOT NULL,
    width_ms   INTEGER NOT NULL,
    bucket_ms  INTEGER NOT NULL,
    spent      INTEGER NOT NULL,
    reserved   INTEGER NOT NULL,
    tokens_out INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (scope, width_ms, bucket_ms)
) WITHOUT ROWID;
CREATE TABLE totals (
    scope      TEXT    PRIMARY KEY,
    spent      INTEGER NOT NULL,
    reserved   INTEGER NOT NULL,
    tokens_out INTEGER NOT NULL DEFAULT 0
) WITHOUT ROWID;
CREATE TABLE model_totals (
    scope      TEXT    NOT NULL,
    model      TEXT    NOT NULL,
    requests   INTEGER NOT NULL,
    tokens_in  INTEGER NOT NULL,
    tokens_out INTEGER NOT NULL,
    spent      INTEGER NOT NULL,
    reserved   INTEGER NOT NULL,
    PRIMARY KEY (scope, model)
) WITHOUT ROWID;
-- One row per warn_at notice given (cap = its config key, period_start = the period's first
-- instant), so that every process gives it once per period.
CREATE TABLE warnings (
    scope        TEXT    NOT NULL,
    cap          TEXT    NOT NULL,
    period_start INTEGER NOT NULL,
    PRIMARY KEY (scope, cap, period_start)
) WITHOUT ROWID;

-- A new row: add what it counts.
CREATE TRIGGER requests_rollup_insert AFTER INSERT ON requests BEGIN
    INSERT INTO rollups (scope, width_ms, bucket_ms, spent, reserved, tokens_out)
        SELECT s.scope, w.width,
               NEW.created_at - (((NEW.created_at % w.width) + w.width) % w.width),
               (CASE WHEN NEW.state = 'reserved' THEN 0 ELSE IFNULL(NEW.charged, 0) END),
               (CASE WHEN NEW.state = 'reserved' THEN NEW.reserved ELSE 0 END),
               IFNULL(NEW.tokens_out, 0)
        FROM (SELECT NEW.project AS scope UNION ALL SELECT '') AS s,
             (SELECT 86400000 AS width UNION ALL SELECT 3600000 AS width
              UNION ALL SELECT 900000 AS width) AS w
        WHERE 1
    ON CONFLICT (scope, width_ms, bucket_ms) DO UPDATE
        SET spent = spent + excluded.spent, reserved = reserved + excluded.reserved,
            tokens_out = tokens_out + excluded.tokens_out;
    INSERT INTO totals (scope, spent, reserved, tokens_out)
        SELECT s.scope,
               (CASE WHEN NEW.state = 'reserved' THEN 0 ELSE IFNULL(NEW.charged, 0) END),
               (CASE WHEN NEW.state = 'reserved' THEN NEW.reserved ELSE 0 END),
               IFNULL(NEW.tokens_out, 0)
        FROM (SELECT NEW.project AS scope UNION ALL SELECT '') AS s
        WHERE 1
    ON CONFLICT (scope) DO UPDATE
        SET spent = spent + excluded.spent, reserved = reserved + excluded.reserved,
            tokens_out = tokens_out + excluded.tokens_out;
END;

-- A row whose figures changed in place (settled, failed, reconciled, edited): add the
-- difference, in the same buckets (its project and created_at did not change).
CREATE TRIGGER requests_rollup_update
AFTER UPDATE OF state, reserved, charged, tokens_out ON requests
WHEN OLD.project IS NEW.project AND OLD.created_at IS NEW.created_at BEGIN
    INSERT INTO rollups (scope, width_ms, bucket_ms, spent, reserved, tokens_out)
        SELECT s.scope, w.width,
               NEW.created_at - (((NEW.created_at % w.width) + w.width) % w.width),
               (CASE WHEN NEW.state = 'reserved' THEN 0 ELSE IFNULL(NEW.charged, 0) END)
                 - (CASE WHEN OLD.state = 'reserved' THEN 0 ELSE IFNULL(OLD.charged, 0) END),
               (CASE WHEN NEW.state = 'reserved' THEN NEW.reserved ELSE 0 END)
                 - (CASE WHEN OLD.state = 'reserved' THEN OLD.reserved ELSE 0 END),
               IFNULL(NEW.tokens_out, 0)
                 - IFNULL(OLD.tokens_out, 0)
        FROM (SELECT NEW.project AS scope UNION ALL SELECT '') AS s,
             (SELECT 86400000 AS width UNION ALL SELECT 3600000 AS width
              UNION ALL SELECT 900000 AS width) AS w
        WHERE 1
    ON CONFLICT (scope, width_ms, bucket_ms) DO UPDATE
        SET spent = spent + excluded.spent, reserved = reserved + excluded.reserved,
            tokens_out = tokens_out + excluded.tokens_out;
    INSERT INTO totals (scope, spent, reserved, tokens_out)
        SELECT s.scope,
               (CASE WHEN NEW.state = 'reserved' THEN 0 ELSE IFNULL(NEW.charged, 0) END)
                 - (CASE WHEN OLD.state = 'reserved' THEN 0 ELSE IFNULL(OLD.charged, 0) END),
               (CASE WHEN NEW.state = 'reserved' THEN NEW.reserved ELSE 0 END)
                 - (CASE WHEN OLD.state = 'reserved' THEN OLD.reserved ELSE 0 END),
               IFNULL(NEW.tokens_out, 0)
                 - IFNULL(OLD.tokens_out, 0)
        FROM (SELECT NEW.project AS scope UNION ALL SELECT '') AS s
        WHERE 1
    ON CONFLICT (scope) DO UPDATE
        SET spent = spent + excluded.spent, reserved = reserved + excluded.reserved,
            tokens_out = tokens_out + excluded.tokens_out;
END;

-- A row moved to another project or instant (by hand): take the old row out of its buckets,
-- put the new one in its own.
CREATE TRIGGER requests_rollup_move
AFTER UPDATE OF project, created_at ON requests
WHEN OLD.project IS NOT NEW.project OR OLD.created_at IS NOT NEW.created_at BEGIN
    INSERT INTO rollups (scope, width_ms, bucket_ms, spent, reserved, tokens_out)
        SELECT s.scope, w.width,
               OLD.created_at - (((OLD.created_at % w.width) + w.width) % w.width),
               -(CASE WHEN OLD.state = 'reserved' THEN 0 ELSE IFNULL(OLD.charged, 0) END),
               -(CASE WHEN OLD.state = 'reserved' THEN OLD.reserved ELSE 0 END),
               -IFNULL(OLD.tokens_out, 0)
        FROM (SELECT OLD.project AS scope UNION ALL SELECT '') AS s,
             (SELECT 86400000 AS width UNION ALL SELECT 3600000 AS width
              UNION ALL SELECT 900000 AS width) AS w
        WHERE 1
    ON CONFLICT (scope, width_ms, bucket_ms) DO UPDATE
        SET spent = spent + excluded.spent, reserved = reserved + excluded.reserved,
            tokens_out = tokens_out + excluded.tokens_out;
    INSERT INTO totals (scope, spent, reserved, tokens_out)
        SELECT s.scope,
               -(CASE WHEN OLD.state = 'reserved' THEN 0 ELSE IFNULL(OLD.charged, 0) END),
               -(CASE WHEN OLD.state = 'reserved' THEN OLD.reserved ELSE 0 END),
               -IFNULL(OLD.tokens_out, 0)
        FROM (SELECT OLD.project AS scope UNION ALL SELECT '') AS s
        WHERE 1
    ON CONFLICT (scope) DO UPDATE
        SET spent = spent + excluded.spent, reserved = reserved + excluded.reserved,
            tokens_out = tokens_out + excluded.tokens_out;

    INSERT INTO rollups (scope, width_ms, bucket_ms, spent, reserved, tokens_out)
        SELECT s.scope, w.width,
               NEW.created_at - (((NEW.created_at % w.width) + w.width) % w.width),
               (CASE WHEN NEW.state = 'reserved' THEN 0 ELSE IFNULL(NEW.charged, 0) END),
               (CASE WHEN NEW.state = 'reserved' THEN NEW.reserved ELSE 0 END),
               IFNULL(NEW.tokens_out, 0)
        FROM (SELECT NEW.project AS scope UNION ALL SELECT '') AS s,
             (SELECT 86400000 AS width UNION ALL SELECT 3600000 AS width
              UNION ALL SELECT 900000 AS width) AS w
        WHERE 1
    ON CONFLICT (scope, width_ms, bucket_ms) DO UPDATE
        SET spent = spent + excluded.spent, reserved = reserved + excluded.reserved,
            tokens_out = tokens_out + excluded.tokens_out;
    INSERT INTO totals (scope, spent, reserved, tokens_out)
        SELECT s.scope,
               (CASE WHEN NEW.state = 'reserved' THEN 0 ELSE IFNULL(NEW.charged, 0) END),
               (CASE WHEN NEW.state = 'reserved' THEN NEW.reserved ELSE 0 END),
               IFNULL(NEW.tokens_out, 0)
        FROM (SELECT NEW.project AS scope UNION ALL SELECT '') AS s
        WHERE 1
    ON CONFLICT (scope) DO UPDATE
        SET spent = spent + excluded.spent, reserved = reserved + excluded.reserved,
            tokens_out = tokens_out + excluded.tokens_out;
END;

-- A deleted row (by hand, e.g. to forgive a mistaken charge): take it out.
CREATE TRIGGER requests_rollup_delete AFTER DELETE ON requests BEGIN
    INSERT INTO rollups (scope, width_ms, bucket_ms, spent, reserved, tokens_out)
        SELECT s.scope, w.width,
               OLD.created_at - (((OLD.created_at % w.width) + w.width) % w.width),
               -(CASE WHEN OLD.state = 'reserved' THEN 0 ELSE IFNULL(OLD.charged, 0) END),
               -(CASE WHEN OLD.state = 'reserved' THEN OLD.reserved ELSE 0 END),
               -IFNULL(OLD.tokens_out, 0)
        FROM (SELECT OLD.project AS scope UNION ALL SELECT '') AS s,
             (SELECT 86400000 AS width UNION ALL SELECT 3600000 AS width
              UNION ALL SELECT 900000 AS width) AS w
        WHERE 1
    ON CONFLICT (scope, width_ms, bucket_ms) DO UPDATE
        SET spent = spent + excluded.spent, reserved = reserved + excluded.reserved,
            tokens_out = tokens_out + excluded.tokens_out;
    INSERT INTO totals (scope, spent, reserved, tokens_out)
        SELECT s.scope,
               -(CASE WHEN OLD.state = 'reserved' THEN 0 ELSE IFNULL(OLD.charged, 0) END),
               -(CASE WHEN OLD.state = 'reserved' THEN OLD.reserved ELSE 0 END),
               -IFNULL(OLD.tokens_out, 0)
        FROM (SELECT OLD.project AS scope UNION ALL SELECT '') AS s
        WHERE 1
    ON CONFLICT (scope) DO UPDATE
        SET spent = spent + excluded.spent, reserved = reserved + excluded.reserved,
            tokens_out = tokens_out + excluded.tokens_out;
END;

-- The same four cases for model_totals, which also counts rows (requests) and prompt tokens,
-- and whose buckets are (project, model) instead of (project, instant).
CREATE TRIGGER requests_models_insert AFTER INSERT ON requests BEGIN
    INSERT INTO model_totals (scope, model, requests, tokens_in, tokens_out, spent, reserved)
        SELECT s.scope, NEW.model, 1,
               IFNULL(NEW.tokens_in, 0),
               IFNULL(NEW.tokens_out, 0),
               (CASE WHEN NEW.state = 'reserved' THEN 0 ELSE IFNULL(NEW.charged, 0) END),
               (CASE WHEN NEW.state = 'reserved' THEN NEW.reserved ELSE 0 END)
        FROM (SELECT NEW.project AS scope UNION ALL SELECT '') AS s
        WHERE 1
    ON CONFLICT (scope, model) DO UPDATE
        SET requests = requests + excluded.requests,
            tokens_in = tokens_in + excluded.tokens_in,
            tokens_out = tokens_out + excluded.tokens_out,
            spent = spent + excluded.spent,
            reserved = reserved + excluded.reserved;
END;

CREATE TRIGGER requests_models_update
AFTER UPDATE OF state, reserved, charged, tokens_in, tokens_out ON requests
WHEN OLD.project IS NEW.project AND OLD.model IS NEW.model BEGIN
    INSERT INTO model_totals (scope, model, requests, tokens_in, tokens_out, spent, reserved)
        SELECT s.scope, NEW.model, 0,
               IFNULL(NEW.tokens_in, 0)
                 - IFNULL(OLD.tokens_in, 0),
               IFNULL(NEW.tokens_out, 0)
                 - IFNULL(OLD.tokens_out, 0),
               (CASE WHEN NEW.state = 'reserved' THEN 0 ELSE IFNULL(NEW.charged, 0) END)
                 - (CASE WHEN OLD.state = 'reserved' THEN 0 ELSE IFNULL(OLD.charged, 0) END),
               (CASE WHEN NEW.state = 'reserved' THEN NEW.reserved ELSE 0 END)
                 - (CASE WHEN OLD.state = 'reserved' THEN OLD.reserved ELSE 0 END)
        FROM (SELECT NEW.project AS scope UNION ALL SELECT '') AS s
        WHERE 1
    ON CONFLICT (scope, model) DO UPDATE
        SET requests = requests + excluded.requests,
            tokens_in = tokens_in + excluded.tokens_in,
            tokens_out = tokens_out + excluded.tokens_out,
            spent = spent + excluded.spent,
            reserved = reserved + excluded.reserved;
END;

CREATE TRIGGER requests_models_move
AFTER UPDATE OF project, model ON requests
WHEN OLD.project IS NOT NEW.project OR OLD.model IS NOT NEW.model BEGIN
    INSERT INTO model_totals (scope, model, requests, tokens_in, tokens_out, spent, reserved)
        SELECT s.scope, OLD.model, -1,
               -IFNULL(OLD.tokens_in, 0),
               -IFNULL(OLD.tokens_out, 0),
               -(CASE WHEN OLD.state = 'reserved' THEN 0 ELSE IFNULL(OLD.charged, 0) END),
               -(CASE WHEN OLD.state = 'reserved' THEN OLD.reserved ELSE 0 END)
        FROM (SELECT OLD.project AS scope UNION ALL SELECT '') AS s
        WHERE 1
    ON CONFLICT (scope, model) DO UPDATE
        SET requests = requests + excluded.requests,
            tokens_in = tokens_in + excluded.tokens_in,
            tokens_out = tokens_out + excluded.tokens_out,
            spent = spent + excluded.spent,
            reserved = reserved + excluded.reserved;

    INSERT INTO model_totals (scope, model, requests, tokens_in, tokens_out, spent, reserved)
        SELECT s.scope, NEW.model, 1,
               IFNULL(NEW.tokens_in, 0),
               IFNULL(NEW.tokens_out, 0),
               (CASE WHEN NEW.state = 'reserved' THEN 0 ELSE IFNULL(NEW.charged, 0) END),
               (CASE WHEN NEW.state = 'reserved' THEN NEW.reserved ELSE 0 END)
        FROM (SELECT NEW.project AS scope UNION ALL SELECT '') AS s
        WHERE 1
    ON CONFLICT (scope, model) DO UPDATE
        SET requests = requests + excluded.requests,
            tokens_in = tokens_in + excluded.tokens_in,
            tokens_out = tokens_out + excluded.tokens_out,
            spent = spent + excluded.spent,
            reserved = reserved + excluded.reserved;
END;

CREATE TRIGGER requests_models_delete AFTER DELETE ON requests BEGIN
    INSERT INTO model_totals (scope, model, requests, tokens_in, tokens_out, spent, reserved)
        SELECT s.scope, OLD.model, -1,
               -IFNULL(OLD.tokens_in, 0),
               -IFNULL(OLD.tokens_out, 0),
               -(CASE WHEN OLD.state = 'reserved' THEN 0 ELSE IFNULL(OLD.charged, 0) END),
               -(CASE WHEN OLD.state = 'reserved' THEN OLD.reserved ELSE 0 END)
        FROM (SELECT OLD.project AS scope UNION ALL SELECT '') AS s
        WHERE 1
    ON CONFLICT (scope, model) DO UPDATE
        SET requests = requests + excluded.requests,
            tokens_in = tokens_in + excluded.tokens_in,
            tokens_out = tokens_out + excluded.tokens_out,
            spent = spent + excluded.spent,
            reserved = reserved + excluded.reserved;
END;
