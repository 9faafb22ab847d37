-- Recomputes the trigger-kept sums (rollups, totals, model_totals) from `requests`: empties
-- them, then counts every row in again through the triggers of triggers.sql, as if it had just
-- been inserted, so that the one rule written there counts it. Run inside one immediate
-- transaction.

DELETE FROM rollups;
DELETE FROM totals;
DELETE FROM model_totals;

INSERT INTO request_deltas
    (project, created_at, model, requests, state, reserved, charged, tokens_in, tokens_out,
     tokens_cached, cache_saved)
    SELECT project, created_at, model, 1, state, reserved, charged, tokens_in, tokens_out,
           tokens_cached, cache_saved
    FROM requests;
