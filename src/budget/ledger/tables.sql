-- The ledger's tables and indexes as schema v1 made them, created in one transaction on a new
-- file; v2 changed only the triggers, v3 adds columns and indexes (v2_to_v3.sql, run on a
-- new file right after this one), and v4 the column `sent` (v3_to_v4.sql, run last).
-- Amounts are integer picodollars (1e-12 USD), times unix milliseconds (UTC); every column is
-- described in src/budget/ledger/schema.rs.

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
