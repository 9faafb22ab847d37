//! The ledger's schema and its migration. The SQL is plain text in `schema_v1.sql` (tables,
//! indexes, triggers) and `rebuild.sql` (recomputing the running sums), read at compile time.
//!
//! # Schema (v1)
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

use rusqlite::{Connection, TransactionBehavior};

use super::LedgerError;

/// The schema version this code writes (`PRAGMA user_version`).
pub const SCHEMA_VERSION: i64 = 1;

/// Schema v1: every table, index and trigger, created on a new (or empty) file.
const SCHEMA_V1: &str = include_str!("schema_v1.sql");

/// Recomputes `rollups`, `totals` and `model_totals` from `requests`.
#[cfg(test)]
pub(super) const REBUILD_SQL: &str = include_str!("rebuild.sql");

/// Brings the file to [`SCHEMA_VERSION`] inside one immediate transaction, so two processes
/// opening a new ledger at once cannot both create it.
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
        tx.execute_batch(SCHEMA_V1)?;
    }
    if version < SCHEMA_VERSION {
        tx.pragma_update(None, "user_version", SCHEMA_VERSION)?;
    }
    tx.commit()?;
    Ok(())
}
