-- Recomputes the trigger-kept sums (rollups, totals, model_totals) from `requests`, counting
-- every row as the triggers of schema_v1.sql do. Run inside one immediate transaction.

DELETE FROM rollups;
DELETE FROM totals;
DELETE FROM model_totals;

-- Buckets of one day, per project, then for all projects.
INSERT INTO rollups (scope, width_ms, bucket_ms, spent, reserved, tokens_out)
SELECT project, 86400000,
       created_at - (((created_at % 86400000) + 86400000) % 86400000) AS bucket,
       SUM(CASE WHEN state = 'reserved' THEN 0 ELSE IFNULL(charged, 0) END),
       SUM(CASE WHEN state = 'reserved' THEN reserved ELSE 0 END),
       SUM(IFNULL(tokens_out, 0))
FROM requests GROUP BY 1, 3;
INSERT INTO rollups (scope, width_ms, bucket_ms, spent, reserved, tokens_out)
SELECT '', 86400000,
       created_at - (((created_at % 86400000) + 86400000) % 86400000) AS bucket,
       SUM(CASE WHEN state = 'reserved' THEN 0 ELSE IFNULL(charged, 0) END),
       SUM(CASE WHEN state = 'reserved' THEN reserved ELSE 0 END),
       SUM(IFNULL(tokens_out, 0))
FROM requests GROUP BY 1, 3;

-- Buckets of one hour, per project, then for all projects.
INSERT INTO rollups (scope, width_ms, bucket_ms, spent, reserved, tokens_out)
SELECT project, 3600000,
       created_at - (((created_at % 3600000) + 3600000) % 3600000) AS bucket,
       SUM(CASE WHEN state = 'reserved' THEN 0 ELSE IFNULL(charged, 0) END),
       SUM(CASE WHEN state = 'reserved' THEN reserved ELSE 0 END),
       SUM(IFNULL(tokens_out, 0))
FROM requests GROUP BY 1, 3;
INSERT INTO rollups (scope, width_ms, bucket_ms, spent, reserved, tokens_out)
SELECT '', 3600000,
       created_at - (((created_at % 3600000) + 3600000) % 3600000) AS bucket,
       SUM(CASE WHEN state = 'reserved' THEN 0 ELSE IFNULL(charged, 0) END),
       SUM(CASE WHEN state = 'reserved' THEN reserved ELSE 0 END),
       SUM(IFNULL(tokens_out, 0))
FROM requests GROUP BY 1, 3;

-- Buckets of fifteen minutes, per project, then for all projects.
INSERT INTO rollups (scope, width_ms, bucket_ms, spent, reserved, tokens_out)
SELECT project, 900000,
       created_at - (((created_at % 900000) + 900000) % 900000) AS bucket,
       SUM(CASE WHEN state = 'reserved' THEN 0 ELSE IFNULL(charged, 0) END),
       SUM(CASE WHEN state = 'reserved' THEN reserved ELSE 0 END),
       SUM(IFNULL(tokens_out, 0))
FROM requests GROUP BY 1, 3;
INSERT INTO rollups (scope, width_ms, bucket_ms, spent, reserved, tokens_out)
SELECT '', 900000,
       created_at - (((created_at % 900000) + 900000) % 900000) AS bucket,
       SUM(CASE WHEN state = 'reserved' THEN 0 ELSE IFNULL(charged, 0) END),
       SUM(CASE WHEN state = 'reserved' THEN reserved ELSE 0 END),
       SUM(IFNULL(tokens_out, 0))
FROM requests GROUP BY 1, 3;

-- All time and per model, per project.
INSERT INTO totals (scope, spent, reserved, tokens_out)
SELECT project,
       SUM(CASE WHEN state = 'reserved' THEN 0 ELSE IFNULL(charged, 0) END),
       SUM(CASE WHEN state = 'reserved' THEN reserved ELSE 0 END),
       SUM(IFNULL(tokens_out, 0))
FROM requests GROUP BY 1;
INSERT INTO model_totals (scope, model, requests, tokens_in, tokens_out, spent, reserved)
SELECT project, model, COUNT(*),
       SUM(IFNULL(tokens_in, 0)),
       SUM(IFNULL(tokens_out, 0)),
       SUM(CASE WHEN state = 'reserved' THEN 0 ELSE IFNULL(charged, 0) END),
       SUM(CASE WHEN state = 'reserved' THEN reserved ELSE 0 END)
FROM requests GROUP BY 1, 2;

-- All time and per model, for all projects.
INSERT INTO totals (scope, spent, reserved, tokens_out)
SELECT '',
       SUM(CASE WHEN state = 'reserved' THEN 0 ELSE IFNULL(charged, 0) END),
       SUM(CASE WHEN state = 'reserved' THEN reserved ELSE 0 END),
       SUM(IFNULL(tokens_out, 0))
FROM requests GROUP BY 1;
INSERT INTO model_totals (scope, model, requests, tokens_in, tokens_out, spent, reserved)
SELECT '', model, COUNT(*),
       SUM(IFNULL(tokens_in, 0)),
       SUM(IFNULL(tokens_out, 0)),
       SUM(CASE WHEN state = 'reserved' THEN 0 ELSE IFNULL(charged, 0) END),
       SUM(CASE WHEN state = 'reserved' THEN reserved ELSE 0 END)
FROM requests GROUP BY 1, 2;
