-- After v2_to_v3.sql and triggers.sql on a v1 or v2 file: the new `model_totals` columns start
-- at 0, so they are summed once from `requests` (v2 already recorded `tokens_cached`; nothing
-- recorded `cache_saved`, which stays 0).
UPDATE model_totals SET tokens_cached = (
    SELECT IFNULL(SUM(r.tokens_cached), 0) FROM requests AS r
    WHERE r.model = model_totals.model
      AND (model_totals.scope = '' OR r.project = model_totals.scope)
);
