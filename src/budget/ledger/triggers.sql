-- The triggers of schema v3 and v4 (v4 added a column they ignore) that keep the running sums
-- of `requests` in `rollups`, `totals` and `model_totals` (tables.sql), so that no cap check or
-- report ever sums `requests` over a month. Created after the tables on a new file, or in
-- place of v1's triggers (v1_to_v2.sql) on a v1 file, and in place of v2's (v2_to_v3.sql): they
-- keep the same sums, and also sum the cached tokens and what they saved into model_totals.
--
-- They work in three steps, so that each rule is written once:
--   1. The triggers on `requests` say how a row changed, into the view `request_deltas`: its
--      figures as they are now (NULL when deleted) and as they were (`old_…`, NULL when
--      inserted), at one project, instant and model. An update that moves a row to another
--      project, instant or model takes it out of the old ones and puts it into the new ones.
--   2. Its trigger turns that into what to add: what the row counts now minus what it counted
--      (a NULL side counts nothing), once for its project (scope = its path) and once for all
--      projects (scope = ''), into the view `scope_deltas`. What a row counts:
--        requests    1 (whatever its state; model_totals only)
--        spent       what was billed (IFNULL(charged, 0)), once the row is no longer reserved
--        reserved    the worst case (`reserved`), while the row is reserved
--        tokens_out  IFNULL(tokens_out, 0)
--        tokens_in   IFNULL(tokens_in, 0)      (model_totals only)
--        tokens_cached, cache_saved  likewise   (model_totals only)
--   3. Its trigger adds that to the scope's buckets one day, one hour and fifteen minutes wide
--      (86400000, 3600000 and 900000 ms: WIDTHS in sums.rs) that hold created_at, each
--      starting at created_at rounded down to a multiple of its width (the double modulo
--      rounds down before 1970 too), to its `totals`, and to its `model_totals` row.
-- Both views hold nothing: an INSERT into them only runs their INSTEAD OF trigger.
--
-- `WHERE 1` before ON CONFLICT is needed: in `INSERT INTO … SELECT … FROM a ON CONFLICT …`
-- SQLite would read ON as a join constraint; a WHERE clause ends the FROM.

-- How one row of `requests` changed; `requests` is 1 (it came in), 0 or -1 (it went out).
CREATE VIEW request_deltas
    (project, created_at, model, requests,
     state, reserved, charged, tokens_in, tokens_out, tokens_cached, cache_saved,
     old_state, old_reserved, old_charged, old_tokens_in, old_tokens_out, old_tokens_cached,
     old_cache_saved) AS
    SELECT NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL,
           NULL, NULL, NULL, NULL
    WHERE 0;

-- What to add to the sums of one scope (a project's path, or '' for all projects).
CREATE VIEW scope_deltas
    (scope, created_at, model, requests, tokens_in, tokens_out, tokens_cached, cache_saved,
     spent, reserved) AS
    SELECT NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL WHERE 0;

-- Step 1. Only the columns counted or bucketed on matter to an update.
CREATE TRIGGER requests_count_insert AFTER INSERT ON requests BEGIN
    INSERT INTO request_deltas
        (project, created_at, model, requests,
         state, reserved, charged, tokens_in, tokens_out, tokens_cached, cache_saved)
    VALUES (NEW.project, NEW.created_at, NEW.model, 1,
            NEW.state, NEW.reserved, NEW.charged, NEW.tokens_in, NEW.tokens_out,
            NEW.tokens_cached, NEW.cache_saved);
END;

-- Settled, failed, reconciled or edited in place: one change, at the same buckets.
CREATE TRIGGER requests_count_update
AFTER UPDATE OF state, reserved, charged, tokens_in, tokens_out, tokens_cached, cache_saved
ON requests
WHEN OLD.project IS NEW.project AND OLD.created_at IS NEW.created_at
     AND OLD.model IS NEW.model BEGIN
    INSERT INTO request_deltas VALUES
        (NEW.project, NEW.created_at, NEW.model, 0,
         NEW.state, NEW.reserved, NEW.charged, NEW.tokens_in, NEW.tokens_out,
         NEW.tokens_cached, NEW.cache_saved,
         OLD.state, OLD.reserved, OLD.charged, OLD.tokens_in, OLD.tokens_out,
         OLD.tokens_cached, OLD.cache_saved);
END;

-- Moved by hand to another project, instant or model: out of the old, into the new.
CREATE TRIGGER requests_count_move
AFTER UPDATE OF project, created_at, model ON requests
WHEN OLD.project IS NOT NEW.project OR OLD.created_at IS NOT NEW.created_at
     OR OLD.model IS NOT NEW.model BEGIN
    INSERT INTO request_deltas VALUES
        (OLD.project, OLD.created_at, OLD.model, -1,
         NULL, NULL, NULL, NULL, NULL, NULL, NULL,
         OLD.state, OLD.reserved, OLD.charged, OLD.tokens_in, OLD.tokens_out,
         OLD.tokens_cached, OLD.cache_saved),
        (NEW.project, NEW.created_at, NEW.model, 1,
         NEW.state, NEW.reserved, NEW.charged, NEW.tokens_in, NEW.tokens_out,
         NEW.tokens_cached, NEW.cache_saved,
         NULL, NULL, NULL, NULL, NULL, NULL, NULL);
END;

-- Deleted by hand (e.g. to forgive a mistaken charge).
CREATE TRIGGER requests_count_delete AFTER DELETE ON requests BEGIN
    INSERT INTO request_deltas
        (project, created_at, model, requests,
         old_state, old_reserved, old_charged, old_tokens_in, old_tokens_out,
         old_tokens_cached, old_cache_saved)
    VALUES (OLD.project, OLD.created_at, OLD.model, -1,
            OLD.state, OLD.reserved, OLD.charged, OLD.tokens_in, OLD.tokens_out,
            OLD.tokens_cached, OLD.cache_saved);
END;

-- Step 2: what the row counts now minus what it counted, for its project and for all.
CREATE TRIGGER request_deltas_count INSTEAD OF INSERT ON request_deltas BEGIN
    INSERT INTO scope_deltas
        (scope, created_at, model, requests, tokens_in, tokens_out, tokens_cached, cache_saved,
         spent, reserved)
        SELECT s.scope, NEW.created_at, NEW.model, NEW.requests,
               IFNULL(NEW.tokens_in, 0) - IFNULL(NEW.old_tokens_in, 0),
               IFNULL(NEW.tokens_out, 0) - IFNULL(NEW.old_tokens_out, 0),
               IFNULL(NEW.tokens_cached, 0) - IFNULL(NEW.old_tokens_cached, 0),
               IFNULL(NEW.cache_saved, 0) - IFNULL(NEW.old_cache_saved, 0),
               (CASE WHEN NEW.state = 'reserved' THEN 0 ELSE IFNULL(NEW.charged, 0) END)
                 - (CASE WHEN NEW.old_state = 'reserved' THEN 0
                         ELSE IFNULL(NEW.old_charged, 0) END),
               (CASE WHEN NEW.state = 'reserved' THEN NEW.reserved ELSE 0 END)
                 - (CASE WHEN NEW.old_state = 'reserved' THEN NEW.old_reserved ELSE 0 END)
        FROM (SELECT NEW.project AS scope UNION ALL SELECT '') AS s;
END;

-- Step 3: add it to every sum of the scope.
CREATE TRIGGER scope_deltas_add INSTEAD OF INSERT ON scope_deltas BEGIN
    INSERT INTO rollups (scope, width_ms, bucket_ms, spent, reserved, tokens_out)
        SELECT NEW.scope, w.width,
               NEW.created_at - (((NEW.created_at % w.width) + w.width) % w.width),
               NEW.spent, NEW.reserved, NEW.tokens_out
        FROM (SELECT 86400000 AS width UNION ALL SELECT 3600000 UNION ALL SELECT 900000) AS w
        WHERE 1
    ON CONFLICT (scope, width_ms, bucket_ms) DO UPDATE
        SET spent = spent + excluded.spent, reserved = reserved + excluded.reserved,
            tokens_out = tokens_out + excluded.tokens_out;
    INSERT INTO totals (scope, spent, reserved, tokens_out)
        VALUES (NEW.scope, NEW.spent, NEW.reserved, NEW.tokens_out)
    ON CONFLICT (scope) DO UPDATE
        SET spent = spent + excluded.spent, reserved = reserved + excluded.reserved,
            tokens_out = tokens_out + excluded.tokens_out;
    INSERT INTO model_totals
        (scope, model, requests, tokens_in, tokens_out, spent, reserved, tokens_cached,
         cache_saved)
        VALUES (NEW.scope, NEW.model, NEW.requests, NEW.tokens_in, NEW.tokens_out, NEW.spent,
                NEW.reserved, NEW.tokens_cached, NEW.cache_saved)
    ON CONFLICT (scope, model) DO UPDATE
        SET requests = requests + excluded.requests,
            tokens_in = tokens_in + excluded.tokens_in,
            tokens_out = tokens_out + excluded.tokens_out,
            tokens_cached = tokens_cached + excluded.tokens_cached,
            cache_saved = cache_saved + excluded.cache_saved,
            spent = spent + excluded.spent,
            reserved = reserved + excluded.reserved;
END;
