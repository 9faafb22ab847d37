-- From schema v1 to v2: v1's eight triggers go; triggers.sql, run next, puts v2's in their
-- place. The tables and the sums they hold stay as they are: v2 counts every row exactly as v1
-- did, so nothing is recomputed.
DROP TRIGGER IF EXISTS requests_rollup_insert;
DROP TRIGGER IF EXISTS requests_rollup_update;
DROP TRIGGER IF EXISTS requests_rollup_move;
DROP TRIGGER IF EXISTS requests_rollup_delete;
DROP TRIGGER IF EXISTS requests_models_insert;
DROP TRIGGER IF EXISTS requests_models_update;
DROP TRIGGER IF EXISTS requests_models_move;
DROP TRIGGER IF EXISTS requests_models_delete;
