-- From schema v3 (or a new file, right after v2_to_v3.sql and triggers.sql) to v4: whether the
-- request may have reached the server. The triggers ignore it (a reservation counts in full
-- until settled, sent or not); it decides what happens to a row whose process is gone: released
-- when it was never sent, reconciled (charged) when it may have been billed.
-- 0: not on the wire: from the reservation until just before its bytes leave, and again while
--    waiting to retry an attempt refused before anything was generated (a 429).
-- 1: may have been billed: written (and synced) before the request's bytes leave. Rows written
--    before v4, or by hand, default to 1: their fate is unknown, so they are charged as before.
ALTER TABLE requests ADD COLUMN sent INTEGER NOT NULL DEFAULT 1 CHECK (sent IN (0, 1));
