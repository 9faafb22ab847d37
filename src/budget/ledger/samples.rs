//! A model's recent requests, for the foresight ([`crate::budget::foresight`]): what its
//! prompts' bytes came to in tokens, and how long its answers were.

use super::{Ledger, LedgerError};
use crate::budget::foresight::Sample;

impl Ledger {
    /// The latest `limit` requests of `model` (all projects: a model's tokenizer and
    /// verbosity do not depend on the repository) that reported their tokens, newest first.
    /// Walks the `requests_model_created (model, created_at)` index backwards and stops after
    /// `limit` rows, so its cost does not grow with the ledger.
    pub fn samples(&self, model: &str, limit: u32) -> Result<Vec<Sample>, LedgerError> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT prompt_bytes, tokens_in, tokens_out FROM requests INDEXED BY requests_model_created
             WHERE model = ?1 AND state IN ('settled', 'reconciled') AND tokens_out IS NOT NULL
             ORDER BY created_at DESC LIMIT ?2",
        )?;
        let to_u64 = |v: Option<i64>| v.and_then(|x| u64::try_from(x).ok());
        let rows = stmt.query_map(rusqlite::params![model, limit], |r| {
            Ok(Sample {
                prompt_bytes: to_u64(r.get(0)?),
                tokens_in: to_u64(r.get(1)?),
                tokens_out: to_u64(r.get(2)?),
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }
}

#[cfg(test)]
mod tests {
    use super::super::testkit::*;
    use super::super::{ChargeSource, Decision, ReserveInput, Settlement};
    use crate::budget::foresight::Sample;
    use jiff::ToSpan;

    #[test]
    fn a_models_latest_settled_rows_newest_first_and_bounded() {
        let c = clock("2025-06-15T12:00:00+02:00[Europe/Paris]");
        let (_d, _p, mut l) = temp_ledger();
        let reserve = |l: &mut super::Ledger, model: &str, bytes: Option<u64>| {
            let mut inp = ReserveInput::new("/p", model, 1000, 100, price());
            inp.prompt_bytes = bytes;
            c.advance(1.minute());
            match l.reserve(&inp, &c).unwrap() {
                Decision::Reserved { id, .. } => id,
                d => panic!("{d:?}"),
            }
        };
        for i in 0..5u64 {
            let id = reserve(&mut l, "m/a", Some(1000 + i));
            let s = Settlement {
                tokens_in: Some(250 + i),
                tokens_out: Some(10 * i),
                ..Settlement::charged(cents(1), ChargeSource::Usage)
            };
            l.settle(id, s, &c).unwrap();
        }
        // Another model, a failed request and one still in flight teach nothing about m/a.
        let other = reserve(&mut l, "m/b", Some(1));
        l.settle(
            other,
            Settlement {
                tokens_out: Some(1),
                ..Settlement::charged(cents(1), ChargeSource::Usage)
            },
            &c,
        )
        .unwrap();
        let failed = reserve(&mut l, "m/a", Some(7));
        l.fail(failed, &c).unwrap();
        reserve(&mut l, "m/a", Some(9));
        // A settled row without tokens (an estimate) neither.
        let bare = reserve(&mut l, "m/a", None);
        l.settle(
            bare,
            Settlement::charged(cents(1), ChargeSource::Estimate),
            &c,
        )
        .unwrap();

        let h = l.samples("m/a", 3).unwrap();
        let sample = |i: u64| Sample {
            prompt_bytes: Some(1000 + i),
            tokens_in: Some(250 + i),
            tokens_out: Some(10 * i),
        };
        assert_eq!(h, vec![sample(4), sample(3), sample(2)]);
        assert_eq!(l.samples("m/a", 200).unwrap().len(), 5);
        assert!(l.samples("m/none", 200).unwrap().is_empty());
        // The query walks the model's index.
        let plan: String = l
            .conn
            .query_row(
                "EXPLAIN QUERY PLAN SELECT prompt_bytes, tokens_in, tokens_out FROM requests INDEXED BY requests_model_created
                 WHERE model = 'x' AND state IN ('settled', 'reconciled') AND tokens_out IS NOT NULL
                 ORDER BY created_at DESC LIMIT 200",
                [],
                |r| r.get(3),
            )
            .unwrap();
        assert!(plan.contains("requests_model_created"), "{plan}");
    }
}
