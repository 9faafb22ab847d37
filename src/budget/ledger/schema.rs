//! The ledger's schema and its migrations. The SQL is plain text, read at compile time:
//! `tables.sql` (v1's tables and indexes), `v2_to_v3.sql` (v3's columns and indexes, run on
//! every file after `tables.sql`), `triggers.sql` (the triggers that keep the running sums),
//! `v1_to_v2.sql` (drops v1's triggers), `v3_backfill.sql` (sums the new `model_totals` columns
//! of a migrated file), `v3_to_v4.sql` (v4's column, run on every file after the triggers),
//! `v4_to_v5.sql` (v5's table, run last, then `kind`'s CHECK widened in place) and
//! `rebuild.sql` (recomputes the running sums). Each older version's schema is kept, frozen, as
//! a test fixture (`tests/fixtures/ledger_schema_v1.sql` … `_v4.sql`).
//!
//! # Schema (v5)
//!
//! Users may query the file with `sqlite3`; amounts are integers in **picodollars**
//! (1e-12 USD: divide by 1e12 for dollars), times are **unix milliseconds** (UTC).
//!
//! ## `requests`: one row per request sent (or about to be sent)
//!
//! | column | meaning |
//! |---|---|
//! | `id` | row id, increasing; the handle the backend uses while the request runs |
//! | `project` | the project's canonical path (its git root, or the file's directory) |
//! | `model` | the model id asked for, e.g. `anthropic/claude-sonnet-4.5` |
//! | `created_at` | when the reservation was made; the request counts in the day/month of this instant |
//! | `settled_at` | when the row left the `reserved` state; NULL while reserved |
//! | `state` | `reserved` (in flight, or its process died before knowing the cost), `settled` (cost known from the answer), `failed` (nothing was billed), `reconciled` (cost learned later from `GET /generation`) |
//! | `reserved` | the worst case reserved before sending: what the row counts while `reserved` |
//! | `charged` | what was billed (OpenRouter's `usage.cost`); NULL until settled, 0 when failed; what the row counts once not `reserved` |
//! | `tokens_in` | prompt tokens, as reported by OpenRouter (NULL if unknown) |
//! | `tokens_out` | completion tokens, reasoning included (NULL if unknown) |
//! | `tokens_cached` | prompt tokens read from the provider's cache (NULL if unknown) |
//! | `tokens_reasoning` | reasoning tokens (NULL if unknown) |
//! | `generation_id` | OpenRouter's generation id (`gen-…`), to look the cost up later |
//! | `charge_source` | where `charged` came from: `usage` (the stream's usage chunk), `generation` (`GET /generation`), `estimate` (local tokens × price); NULL while reserved |
//! | `owner_pid` | process id of the backend that made the reservation |
//! | `owner_instance` | random id of that backend process, so a reused pid is not mistaken for it |
//! | `kind` | `edit` (`:LlmEdit`, a follow-up included), `review` (`:LlmReview`, the judge) or `ask` (`:LlmAsk`) |
//! | `prompt_bytes` | the prompt's size in UTF-8 bytes (NULL before v3), to learn a model's bytes per token |
//! | `key_id` | which key the request went through, never the key itself: `bound:<hash>` (a key made by `:LlmKey create`), `named:<name>` (one of setup's `keys`), NULL (`api_key`) |
//! | `cache_saved` | what reading `tokens_cached` from the provider's cache saved against the full prompt price (NULL if unknown) |
//! | `sent` | whether the request may have reached the server and been billed: 0 from the reservation until just before its bytes leave (1 is written and synced before they do), 0 again while waiting to retry an attempt refused before anything was generated (a 429); rows from before v4 count as 1. A `reserved` row whose process is gone is released (`failed`, 0) when 0, reconciled when 1 |
//!
//! The ledger holds no secret: no API key, no prompt, no answer.
//!
//! ## `rollups` and `totals`: running sums kept by triggers
//!
//! Cap checks must stay under a millisecond on a million rows, so no query sums `requests` over a
//! month. Triggers on `requests` keep, for every project (`scope` = its path) and for all projects
//! together (`scope` = `''`), `spent` (sum of `charged` over rows no longer `reserved`) and
//! `reserved` (sum of `reserved` over `reserved` rows) in UTC buckets of one day, one hour and
//! fifteen minutes (`width_ms`, `bucket_ms` = the bucket's start), and all-time in `totals`; both
//! also sum `tokens_out` (completion tokens, 0 where unknown) for the footprint estimate.
//!
//! ## `model_totals`: all-time figures per model, kept by triggers
//!
//! For every project (`scope` = its path) and all projects (`scope` = `''`) and every `model`:
//! `requests` (rows, whatever their state), `tokens_in`, `tokens_out`, `tokens_cached`,
//! `cache_saved` (0 where unknown), `spent` and `reserved` (counted like the rollups), so
//! `:LlmUsage` lists models without a scan.
//!
//! Because they are triggers, they stay exact even when a user edits or deletes rows with
//! `sqlite3` (e.g. to forgive a mistaken charge).
//!
//! A local day or month is summed as: whole UTC days, then whole hours, then whole quarter-hours
//! at its edges, then the rows of `requests` in whatever is left. Every time zone in use today has
//! an offset that is a multiple of 15 minutes, so the last step reads nothing, yet historical odd
//! offsets are still counted exactly.
//!
//! ## `hunk_outcomes`: what became of each hunk an edit proposed
//!
//! | column | meaning |
//! |---|---|
//! | `request_id` | the edit's row in `requests` (a follow-up is its own row) |
//! | `hunk` | the ordinal of the hunk's block in that edit's answer, 1-based, every block counted (the same block proposed again by `:LlmApply` is the same row) |
//! | `fate` | `proposed` (placed, pending), `accepted`, `rejected`, `replaced` (a follow-up replaced it) or `abandoned` (its buffer closed, or Neovim quit with it pending) |
//! | `at` | when it took that fate |
//!
//! Kept like `requests`, whatever `history_days` is: `:LlmUsage` divides a model's edit spend by
//! its accepted hunks. Hunks proposed again by `:LlmApply` have no row of their own.
//!
//! `hunk_totals` (`scope`, `model`, `proposed`, `accepted`) counts them per model for every
//! project and all projects (`scope` = `''`), kept by triggers on `hunk_outcomes` through the
//! view `hunk_deltas` (which holds nothing), so no report scans them. A hunk counts at its
//! request's project and model as they were when its row was written.
//!
//! ## `warnings`
//!
//! One row per `warn_at` notice given (`scope`, `cap` = its config key, `period_start`), so that
//! every process gives it once per period.
//!
//! ## `request_deltas` and `scope_deltas`: the triggers' inner workings (views)
//!
//! They hold nothing. The triggers on `requests` insert into `request_deltas` how a row changed
//! (its counted columns as they are now and as they were, `old_…`); its `INSTEAD OF` trigger
//! works out what to add, for the row's project and for all projects, into `scope_deltas`,
//! whose trigger adds it to `rollups`, `totals` and `model_totals`. So the rule of what a row
//! counts, and the upsert into each running sum, are each written once (`triggers.sql`).
//!
//! # Versions
//!
//! - v1: the same tables; eight triggers on `requests` that each wrote the rule out in full.
//! - v2: the triggers above. Opening a v1 file drops v1's triggers and creates v2's in the same
//!   transaction; the running sums are kept as they are (both count every row alike), not
//!   recomputed.
//! - v3: `requests` gains `kind`, `prompt_bytes`, `key_id` and `cache_saved`; `model_totals`
//!   gains `tokens_cached` and `cache_saved`, which the triggers now sum; three indexes (a
//!   model's recent rows, a key's rows, rows that are not edits). Opening a v1 or v2 file adds
//!   them in one transaction and sums `model_totals.tokens_cached` once from `requests`.
//! - v4: `requests` gains `sent`, so a request that never left is never charged, even after
//!   its process died (declined or unanswered confirmation, Neovim quit while waiting to
//!   confirm or to retry). Opening an older file adds it with 1 on every existing row: what
//!   their process did is unknown, so they are charged as before.
//! - v5: `hunk_outcomes` and `hunk_totals`, and `requests.kind` allows `ask`. The CHECK is widened by editing its
//!   text in `sqlite_master` (SQLite's documented way to loosen a CHECK), on a new file too, so
//!   both end with the same schema text.

use rusqlite::{Connection, TransactionBehavior};

use super::LedgerError;

/// The schema version this code writes (`PRAGMA user_version`).
pub const SCHEMA_VERSION: i64 = 5;

/// v1's tables and indexes, created on a new (or empty) file.
const TABLES: &str = include_str!("tables.sql");

/// v3's columns and indexes; drops v2's triggers and views. Run on every file below v3, new
/// ones included, before [`TRIGGERS`].
const TO_V3: &str = include_str!("v2_to_v3.sql");

/// The views and triggers of v3 that keep the running sums.
const TRIGGERS: &str = include_str!("triggers.sql");

/// From v1 to v2: drops v1's triggers, before [`TRIGGERS`].
const DROP_V1_TRIGGERS: &str = include_str!("v1_to_v2.sql");

/// After [`TRIGGERS`] on a v1 or v2 file: sums the new `model_totals` columns.
const V3_BACKFILL: &str = include_str!("v3_backfill.sql");

/// v4's column (`requests.sent`). Run on every file below v4, new ones included, last.
const TO_V4: &str = include_str!("v3_to_v4.sql");

/// v5's table (`hunk_outcomes`). Run on every file below v5, new ones included, after
/// [`TO_V4`]; [`allow_ask`] follows it.
const TO_V5: &str = include_str!("v4_to_v5.sql");

/// `requests.kind`'s CHECK as v3 and v4 wrote it, and as v5 widens it (to allow asks).
const KIND_CHECK: [&str; 2] = [
    "CHECK (kind IN ('edit', 'review'))",
    "CHECK (kind IN ('edit', 'review', 'ask'))",
];

/// Recomputes `rollups`, `totals` and `model_totals` from `requests`.
#[cfg(test)]
pub(super) const REBUILD_SQL: &str = include_str!("rebuild.sql");

/// Brings the file to [`SCHEMA_VERSION`] inside one immediate transaction, so two processes
/// opening a new (or old) ledger at once cannot both create (or migrate) it.
pub(super) fn migrate(conn: &mut Connection) -> Result<(), LedgerError> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let version: i64 = tx.query_row("PRAGMA user_version", [], |r| r.get(0))?;
    if version > SCHEMA_VERSION {
        return Err(LedgerError::FutureSchema {
            found: version,
            known: SCHEMA_VERSION,
        });
    }
    if version < 1 {
        tx.execute_batch(TABLES)?;
    }
    if version == 1 {
        tx.execute_batch(DROP_V1_TRIGGERS)?;
    }
    if version < 3 {
        tx.execute_batch(TO_V3)?;
        tx.execute_batch(TRIGGERS)?;
    }
    if (1..3).contains(&version) {
        tx.execute_batch(V3_BACKFILL)?;
    }
    if version < 4 {
        tx.execute_batch(TO_V4)?;
    }
    if version < 5 {
        tx.execute_batch(TO_V5)?;
        allow_ask(&tx)?;
    }
    if version < SCHEMA_VERSION {
        tx.pragma_update(None, "user_version", SCHEMA_VERSION)?;
    }
    tx.commit()?;
    Ok(())
}

/// Widens `requests.kind`'s CHECK to allow `'ask'`, in place: SQLite cannot ALTER a CHECK, and
/// rebuilding `requests` (a million rows, its indexes and triggers) is not needed to loosen one.
/// This is SQLite's documented procedure for such a change (ALTER TABLE, "Making Other Kinds Of
/// Table Schema Changes"): edit the table's text in `sqlite_master` and bump `schema_version`
/// inside the migration's transaction. Every existing row satisfies the wider CHECK.
fn allow_ask(tx: &rusqlite::Transaction<'_>) -> Result<(), LedgerError> {
    let cookie: i64 = tx.query_row("PRAGMA schema_version", [], |r| r.get(0))?;
    tx.pragma_update(None, "writable_schema", true)?;
    let changed = tx.execute(
        "UPDATE sqlite_master SET sql = replace(sql, ?1, ?2)
         WHERE type = 'table' AND name = 'requests' AND instr(sql, ?1) > 0",
        KIND_CHECK,
    )?;
    tx.pragma_update(None, "schema_version", cookie + 1)?;
    tx.pragma_update(None, "writable_schema", false)?;
    if changed != 1 {
        return Err(LedgerError::Invalid(format!(
            "the ledger's requests table lacks `{}`: edited by hand?",
            KIND_CHECK[0]
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::super::testkit::*;
    use super::super::{Ledger, RequestKind};
    use crate::budget::clock::{Clock, FixedClock};

    /// Every row of the running sums (zero rows included), in order.
    fn sums(l: &Ledger) -> Vec<String> {
        sums_of(l, ", tokens_cached, cache_saved")
    }

    /// The running sums through the columns every version has.
    fn old_sums(l: &Ledger) -> Vec<String> {
        sums_of(l, "")
    }

    /// The running sums, with `more` (v3's) columns of `model_totals`.
    fn sums_of(l: &Ledger, more: &str) -> Vec<String> {
        let mut out = Vec::new();
        for sql in [
            "SELECT 'rollups', scope, width_ms, bucket_ms, spent, reserved, tokens_out
             FROM rollups ORDER BY 2, 3, 4",
            "SELECT 'totals', scope, spent, reserved, tokens_out FROM totals ORDER BY 2",
            &format!(
                "SELECT 'model_totals', scope, model, requests, tokens_in, tokens_out, spent,
                        reserved {more}
                 FROM model_totals ORDER BY 2, 3"
            ),
        ] {
            let mut stmt = l.connection().prepare(sql).unwrap();
            let n = stmt.column_count();
            let mut rows = stmt.query([]).unwrap();
            while let Some(r) = rows.next().unwrap() {
                let cols: Vec<String> = (0..n)
                    .map(|i| format!("{:?}", r.get_ref(i).unwrap()))
                    .collect();
                out.push(cols.join(" "));
            }
        }
        out
    }

    /// The file's tables, indexes, views and triggers with their SQL.
    fn schema(l: &Ledger) -> Vec<(String, String, Option<String>)> {
        let mut stmt = l
            .connection()
            .prepare("SELECT type, name, sql FROM sqlite_master ORDER BY type, name")
            .unwrap();
        stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
            .unwrap()
            .map(Result::unwrap)
            .collect()
    }

    /// v5's additions work on `l`: an ask is recorded, a hunk outcome too, and the CHECKs
    /// still refuse what they should.
    fn assert_v5(l: &mut Ledger, c: &dyn Clock) {
        let before = rows(l);
        let mut ask = input("/a", 0, 16);
        ask.kind = RequestKind::Ask;
        let (id, ..) = reserved(l.reserve(&ask, c).unwrap());
        let conn = l.connection();
        let kind: String = conn
            .query_row("SELECT kind FROM requests WHERE id = ?1", [id.0], |r| {
                r.get(0)
            })
            .unwrap();
        assert_eq!((kind.as_str(), rows(l)), ("ask", before + 1));
        let bad = conn.execute("UPDATE requests SET kind = 'chat' WHERE id = ?1", [id.0]);
        assert!(bad.is_err(), "kind's CHECK still refuses others");
        conn.execute(
            "INSERT INTO hunk_outcomes (request_id, hunk, fate, at) VALUES (?1, 1, 'proposed', 0)",
            [id.0],
        )
        .unwrap();
        let bad = conn.execute(
            "INSERT INTO hunk_outcomes (request_id, hunk, fate, at) VALUES (?1, 2, 'kept', 0)",
            [id.0],
        );
        assert!(bad.is_err(), "fate's CHECK refuses others");
        conn.execute_batch(&format!(
            "DELETE FROM hunk_outcomes; DELETE FROM requests WHERE id = {}",
            id.0
        ))
        .unwrap();
        let ok: String = conn
            .query_row("PRAGMA integrity_check", [], |r| r.get(0))
            .unwrap();
        assert_eq!(ok, "ok");
    }

    /// A new ledger takes asks and hunk outcomes.
    #[test]
    fn a_new_ledger_takes_asks_and_hunk_outcomes() {
        let (_d, path, mut l) = temp_ledger();
        assert_v5(&mut l, &clock("2026-12-07T12:00:00+00:00[UTC]"));
        drop(l);
        // And so does the file opened again (the widened CHECK is in the file, not the cache).
        let mut l = Ledger::open(&path).unwrap();
        assert_v5(&mut l, &clock("2026-12-07T12:00:00+00:00[UTC]"));
    }

    fn version(l: &Ledger) -> i64 {
        l.connection()
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .unwrap()
    }

    /// A v1, a v2, a v3 and a v4 ledger get the rows a new ledger made through random operations
    /// (copied through the columns they have, so their own triggers count them) and the same
    /// hand edits: their triggers keep the same sums as today's. Opening them migrates each to
    /// exactly a new file's schema with every figure kept (the cached tokens summed anew), every
    /// old reservation counted as may-have-been-sent (v4), and later writes, the newer
    /// columns and the sent marks included, keep their sums exact.
    #[test]
    fn old_ledgers_keep_every_figure_and_stay_exact() {
        for old_version in [1, 2, 3, 4] {
            let dir = tempfile::tempdir().unwrap();
            let old_path = dir.path().join("old/ledger.sqlite3");
            let old = old_ledger(&old_path, old_version);
            let (_d, new_path, mut new) = temp_ledger();
            assert_eq!((version(&old), version(&new)), (old_version, 5));
            let start = "2025-01-30T22:00:00+05:45[Asia/Kathmandu]";
            let new_clock = clock(start);
            let mut ops = RandomOps::new(7);
            ops.v3 = old_version >= 3;
            ops.v4 = false;
            ops.run(&mut new, &new_clock, 400);
            // As an old file's rows will be once migrated: each may have been sent.
            new.connection()
                .execute("UPDATE requests SET sent = 1", [])
                .unwrap();
            copy_old_columns(&new_path, &old, old_version);
            let old_clock = FixedClock::new(new_clock.now());
            for l in [&old, &new] {
                l.connection().execute_batch(HAND_EDITS).unwrap();
            }
            assert!(rows(&old) > 100);
            if old_version >= 3 {
                assert_eq!(sums(&old), sums(&new));
            }
            assert_eq!(old_sums(&old), old_sums(&new));
            let spend = |l: &Ledger| {
                [Some("/a"), Some("/z"), None].map(|p| l.spend(p, &old_clock).unwrap())
            };
            let figures = spend(&old);
            drop(old);

            let mut old = Ledger::open(&old_path).unwrap();
            assert_eq!(version(&old), 5);
            assert_eq!(schema(&old), schema(&new));
            // What an old file's reservations did is unknown: each may have been sent.
            let count = |l: &Ledger, sql: &str| -> i64 {
                l.connection().query_row(sql, [], |r| r.get(0)).unwrap()
            };
            assert_eq!(
                count(&old, "SELECT COUNT(*) FROM requests WHERE sent = 0"),
                0
            );
            assert_eq!(sums(&old), sums(&new));
            assert_eq!(spend(&old), figures);
            assert_consistent(&old);
            let cached: i64 = old
                .connection()
                .query_row("SELECT SUM(tokens_cached) FROM model_totals", [], |r| {
                    r.get(0)
                })
                .unwrap();
            assert!(cached > 0, "the cached tokens were summed anew");

            // Both go on alike; the old file's rows keep their ids, so the same operations
            // touch the same rows.
            let mut old_ops = RandomOps::new(11);
            let mut new_ops = RandomOps::new(11);
            old_ops.run(&mut old, &old_clock, 400);
            new_ops.run(&mut new, &new_clock, 400);
            for l in [&old, &new] {
                l.connection().execute_batch(HAND_EDITS).unwrap();
            }
            assert_consistent(&old);
            assert_eq!(sums(&old), sums(&new));
            let marked = "SELECT COUNT(*) FROM requests WHERE state = 'reserved' AND sent = 0";
            assert_eq!(count(&old, marked), count(&new, marked));
            assert_v5(&mut old, &old_clock);
        }
    }
}
