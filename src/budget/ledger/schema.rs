//! The ledger's schema and its migrations. The SQL is plain text, read at compile time:
//! `tables.sql` (tables and indexes, the same since v1), `triggers.sql` (the triggers that keep
//! the running sums), `v1_to_v2.sql` (drops v1's triggers) and `rebuild.sql` (recomputes the
//! running sums). v1's schema file is kept, frozen, as a test fixture
//! (`tests/fixtures/ledger_schema_v1.sql`).
//!
//! # Schema (v2)
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
//! `requests` (rows, whatever their state), `tokens_in`, `tokens_out` (0 where unknown), `spent`
//! and `reserved` (counted like the rollups), so `:LlmUsage` lists models without a scan.
//!
//! Because they are triggers, they stay exact even when a user edits or deletes rows with
//! `sqlite3` (e.g. to forgive a mistaken charge).
//!
//! A local day or month is summed as: whole UTC days, then whole hours, then whole quarter-hours
//! at its edges, then the rows of `requests` in whatever is left. Every time zone in use today has
//! an offset that is a multiple of 15 minutes, so the last step reads nothing, yet historical odd
//! offsets are still counted exactly.
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

use rusqlite::{Connection, TransactionBehavior};

use super::LedgerError;

/// The schema version this code writes (`PRAGMA user_version`).
pub const SCHEMA_VERSION: i64 = 2;

/// Every table and index (the same in v1 and v2), created on a new (or empty) file.
const TABLES: &str = include_str!("tables.sql");

/// The views and triggers of v2 that keep the running sums.
const TRIGGERS: &str = include_str!("triggers.sql");

/// From v1 to v2: drops v1's triggers, before [`TRIGGERS`].
const DROP_V1_TRIGGERS: &str = include_str!("v1_to_v2.sql");

/// Recomputes `rollups`, `totals` and `model_totals` from `requests`.
#[cfg(test)]
pub(super) const REBUILD_SQL: &str = include_str!("rebuild.sql");

/// Brings the file to [`SCHEMA_VERSION`] inside one immediate transaction, so two processes
/// opening a new (or v1) ledger at once cannot both create (or migrate) it.
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
    if version < 2 {
        tx.execute_batch(TRIGGERS)?;
    }
    if version < SCHEMA_VERSION {
        tx.pragma_update(None, "user_version", SCHEMA_VERSION)?;
    }
    tx.commit()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::super::testkit::*;
    use super::super::Ledger;

    /// Every row of the running sums (zero rows included), in order.
    fn sums(l: &Ledger) -> Vec<String> {
        let mut out = Vec::new();
        for sql in [
            "SELECT 'rollups', scope, width_ms, bucket_ms, spent, reserved, tokens_out
             FROM rollups ORDER BY 2, 3, 4",
            "SELECT 'totals', scope, spent, reserved, tokens_out FROM totals ORDER BY 2",
            "SELECT 'model_totals', scope, model, requests, tokens_in, tokens_out, spent, reserved
             FROM model_totals ORDER BY 2, 3",
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

    fn version(l: &Ledger) -> i64 {
        l.connection()
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .unwrap()
    }

    /// A v1 ledger and a new one go through the same operations: v1's triggers and v2's keep
    /// the same sums to the row; opening the v1 file migrates it to exactly a new file's schema
    /// with every figure kept, and later writes keep its sums exact.
    #[test]
    fn a_v1_ledger_keeps_every_figure_and_stays_exact() {
        let dir = tempfile::tempdir().unwrap();
        let old_path = dir.path().join("v1/ledger.sqlite3");
        let mut old = v1_ledger(&old_path);
        let (_d, _p, mut new) = temp_ledger();
        assert_eq!((version(&old), version(&new)), (1, 2));
        let start = "2025-01-30T22:00:00+05:45[Asia/Kathmandu]";
        let (old_clock, new_clock) = (clock(start), clock(start));
        let (mut old_ops, mut new_ops) = (RandomOps::new(7), RandomOps::new(7));
        old_ops.run(&mut old, &old_clock, 400);
        new_ops.run(&mut new, &new_clock, 400);
        for l in [&old, &new] {
            l.connection().execute_batch(HAND_EDITS).unwrap();
        }
        assert!(rows(&old) > 100);
        assert_consistent(&old);
        let kept = sums(&old);
        assert_eq!(kept, sums(&new));
        let spend =
            |l: &Ledger| [Some("/a"), Some("/z"), None].map(|p| l.spend(p, &old_clock).unwrap());
        let figures = spend(&old);
        drop(old);

        let mut old = Ledger::open(&old_path).unwrap();
        assert_eq!(version(&old), 2);
        assert_eq!(schema(&old), schema(&new));
        assert_eq!(sums(&old), kept);
        assert_eq!(spend(&old), figures);
        assert_consistent(&old);

        old_ops.run(&mut old, &old_clock, 400);
        new_ops.run(&mut new, &new_clock, 400);
        for l in [&old, &new] {
            l.connection().execute_batch(HAND_EDITS).unwrap();
        }
        assert_consistent(&old);
        assert_eq!(sums(&old), sums(&new));
    }
}
