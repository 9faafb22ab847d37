//! The consistency checker of the trigger-kept running sums (`rollups`, `totals`,
//! `model_totals`): recomputes them from `requests` and lists every difference, and rebuilds them
//! when damaged. Slow (scans everything), so only the tests use it: the random-operations test
//! below is what guards the triggers of `triggers.sql`.

use std::collections::HashMap;

use rusqlite::TransactionBehavior;

use super::report::{model_row, ModelUsage, MODEL_COLUMNS};
use super::schema::REBUILD_SQL;
use super::sums::{Amounts, WIDTHS};
use super::{Ledger, LedgerError};
use crate::budget::money::Usd;

/// Every row of `requests` with what it counts, the way the triggers count it.
const ROW_FIGURES: &str = "
    SELECT project, created_at,
           CASE WHEN state = 'reserved' THEN 0 ELSE IFNULL(charged, 0) END,
           CASE WHEN state = 'reserved' THEN reserved ELSE 0 END,
           IFNULL(tokens_out, 0),
           model,
           IFNULL(tokens_in, 0),
           IFNULL(tokens_cached, 0),
           IFNULL(cache_saved, 0)
    FROM requests";

impl Ledger {
    /// Compares the rollups with sums recomputed from `requests`; returns one line per
    /// difference (empty when consistent). Slow (scans everything): never on a request's path.
    pub fn check_rollups(&self) -> Result<Vec<String>, LedgerError> {
        let mut diffs = Vec::new();
        let mut expected = HashMap::new();
        let mut stmt = self.conn.prepare(ROW_FIGURES)?;
        let mut expected_models: HashMap<(String, String), ModelUsage> = HashMap::new();
        let mut rows = stmt.query([])?;
        while let Some(r) = rows.next()? {
            let project: String = r.get(0)?;
            let at: i64 = r.get(1)?;
            let a = Amounts {
                spent: Usd(r.get(2)?),
                reserved: Usd(r.get(3)?),
                tokens_out: r.get(4)?,
            };
            let model: String = r.get(5)?;
            let tokens_in: i64 = r.get(6)?;
            let tokens_cached: i64 = r.get(7)?;
            let cache_saved = Usd(r.get(8)?);
            for scope in [project.as_str(), ""] {
                let m = expected_models
                    .entry((scope.to_string(), model.clone()))
                    .or_insert_with(|| ModelUsage::zero(&model));
                m.requests += 1;
                m.tokens_in += tokens_in;
                m.tokens_cached += tokens_cached;
                m.cache_saved += cache_saved;
                m.tokens_out += a.tokens_out;
                m.spent += a.spent;
                m.reserved += a.reserved;
            }
            for scope in [project.as_str(), ""] {
                for w in WIDTHS.iter().copied().map(Some).chain([None]) {
                    let bucket = w.map(|w| at - at.rem_euclid(w));
                    let e = expected
                        .entry((scope.to_string(), w, bucket))
                        .or_insert_with(Amounts::default);
                    *e = e.add(a);
                }
            }
        }
        let mut actual = HashMap::new();
        let mut stmt = self.conn.prepare(
            "SELECT scope, width_ms, bucket_ms, spent, reserved, tokens_out FROM rollups",
        )?;
        let mut rows = stmt.query([])?;
        while let Some(r) = rows.next()? {
            let a = Amounts {
                spent: Usd(r.get(3)?),
                reserved: Usd(r.get(4)?),
                tokens_out: r.get(5)?,
            };
            actual.insert(
                (r.get::<_, String>(0)?, Some(r.get(1)?), Some(r.get(2)?)),
                a,
            );
        }
        let mut stmt = self
            .conn
            .prepare("SELECT scope, spent, reserved, tokens_out FROM totals")?;
        let mut rows = stmt.query([])?;
        while let Some(r) = rows.next()? {
            let a = Amounts {
                spent: Usd(r.get(1)?),
                reserved: Usd(r.get(2)?),
                tokens_out: r.get(3)?,
            };
            actual.insert((r.get::<_, String>(0)?, None, None), a);
        }
        for (k, e) in &expected {
            let a = actual.get(k).copied().unwrap_or_default();
            if a != *e {
                diffs.push(format!("{k:?}: rollup {a:?}, requests {e:?}"));
            }
        }
        for (k, a) in &actual {
            if !expected.contains_key(k) && *a != Amounts::default() {
                diffs.push(format!("{k:?}: rollup {a:?}, no requests"));
            }
        }
        let mut stmt = self
            .conn
            .prepare(&format!("SELECT scope, {MODEL_COLUMNS} FROM model_totals"))?;
        let mut rows = stmt.query([])?;
        let mut actual_models = HashMap::new();
        while let Some(r) = rows.next()? {
            let m = model_row(r, 1)?;
            actual_models.insert((r.get::<_, String>(0)?, m.model.clone()), m);
        }
        for (k, e) in &expected_models {
            match actual_models.get(k) {
                Some(a) if a == e => {}
                a => diffs.push(format!("model_totals {k:?}: {a:?}, requests {e:?}")),
            }
        }
        for (k, a) in &actual_models {
            if !expected_models.contains_key(k) && !a.is_zero() {
                diffs.push(format!("model_totals {k:?}: {a:?}, no requests"));
            }
        }
        diffs.sort();
        Ok(diffs)
    }

    /// Recomputes the rollups from `requests`, for a ledger whose rollups were damaged by hand.
    pub fn rebuild_rollups(&mut self) -> Result<(), LedgerError> {
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        tx.execute_batch(REBUILD_SQL)?;
        tx.commit()?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::super::testkit::*;

    #[test]
    fn rollups_stay_consistent_through_random_operations() {
        let (_d, _p, mut l) = temp_ledger();
        let c = clock("2025-01-30T22:00:00+05:45[Asia/Kathmandu]");
        RandomOps::new(42).run(&mut l, &c, 600);
        assert!(rows(&l) > 100);
        assert_consistent(&l);
        // Hand edits through sqlite3 keep them consistent too (the triggers do the work).
        l.connection().execute_batch(HAND_EDITS).unwrap();
        assert_consistent(&l);
        // And damaged rollups can be rebuilt.
        l.connection()
            .execute_batch("UPDATE rollups SET spent = spent + 1; DELETE FROM totals;")
            .unwrap();
        assert!(!l.check_rollups().unwrap().is_empty());
        l.rebuild_rollups().unwrap();
        assert_consistent(&l);
    }
}
