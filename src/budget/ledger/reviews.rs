//! Review spend: what `:LlmReview` (the judge) cost, apart from edits. Reviews are few, so
//! they are summed from their `requests` rows through the partial index
//! `requests_kind_created (kind, project, created_at) WHERE kind <> 'edit'`, which holds only
//! the rows that are not edits: the cost follows the number of reviews, not of requests.

use rusqlite::OptionalExtension;

use super::{Ledger, LedgerError, RequestKind};
use crate::budget::money::Usd;

/// All-time figures of one kind of request (reviews) in a project or in all of them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct KindSpend {
    /// Rows, whatever their state (as the per-model rows count them).
    pub requests: i64,
    /// Billed.
    pub spent: Usd,
    /// Still only reserved (in flight or not yet reconciled), counted in full.
    pub reserved: Usd,
}

impl KindSpend {
    /// What the caps count: spent + reserved.
    pub fn counted(&self) -> Usd {
        self.spent + self.reserved
    }
}

/// The sums; `kind <> 'edit'` is written out so that SQLite sees the query implies the partial
/// index's condition (it matches that term literally).
const SUMS: &str = "SELECT COUNT(*),
        COALESCE(SUM(CASE WHEN state = 'reserved' THEN 0 ELSE COALESCE(charged, 0) END), 0),
        COALESCE(SUM(CASE WHEN state = 'reserved' THEN reserved ELSE 0 END), 0)
    FROM requests INDEXED BY requests_kind_created
    WHERE kind <> 'edit' AND kind = ?1";

impl Ledger {
    /// All-time spend on requests of `kind` (not [`RequestKind::Edit`]: edits are the bulk,
    /// counted by the trigger-kept tables) for a project, or for all projects with `None`.
    pub fn kind_spend(
        &self,
        kind: RequestKind,
        project: Option<&str>,
    ) -> Result<KindSpend, LedgerError> {
        if kind == RequestKind::Edit {
            return Err(LedgerError::Invalid(
                "edits are summed from the rollups, not from their rows".into(),
            ));
        }
        let conn = self.connection();
        let row = |r: &rusqlite::Row<'_>| {
            Ok(KindSpend {
                requests: r.get(0)?,
                spent: Usd(r.get(1)?),
                reserved: Usd(r.get(2)?),
            })
        };
        let found = match project {
            Some(p) => conn
                .prepare_cached(&format!("{SUMS} AND project = ?2"))?
                .query_row(rusqlite::params![kind.as_str(), p], row)
                .optional()?,
            None => conn
                .prepare_cached(SUMS)?
                .query_row([kind.as_str()], row)
                .optional()?,
        };
        Ok(found.unwrap_or_default())
    }
}

#[cfg(test)]
mod tests {
    use super::super::testkit::*;
    use super::*;
    use crate::budget::{ChargeSource, Settlement};

    #[test]
    fn reviews_are_summed_apart_from_edits_per_project() {
        let (_d, _p, mut l) = temp_ledger();
        let c = clock("2025-06-15T12:00:00+02:00[Europe/Paris]");
        spend_settled(&mut l, "/a", cents(50), &c);
        let review = |l: &mut Ledger, project: &str| {
            let mut i = input(project, 100, 100);
            i.kind = RequestKind::Review;
            reserved(l.reserve(&i, &c).unwrap()).0
        };
        let r1 = review(&mut l, "/a");
        l.settle(r1, Settlement::charged(cents(2), ChargeSource::Usage), &c)
            .unwrap();
        let r2 = review(&mut l, "/a");
        let _in_flight = r2;
        let r3 = review(&mut l, "/b");
        l.settle(r3, Settlement::charged(cents(1), ChargeSource::Usage), &c)
            .unwrap();

        let a = l.kind_spend(RequestKind::Review, Some("/a")).unwrap();
        assert_eq!(a.requests, 2);
        assert_eq!(a.spent, cents(2));
        assert!(a.reserved > Usd::ZERO, "the one in flight counts in full");
        assert_eq!(a.counted(), a.spent + a.reserved);
        let all = l.kind_spend(RequestKind::Review, None).unwrap();
        assert_eq!(all.requests, 3);
        assert_eq!(all.spent, cents(3));
        let none = l.kind_spend(RequestKind::Review, Some("/c")).unwrap();
        assert_eq!(none, KindSpend::default());
        assert!(l.kind_spend(RequestKind::Edit, None).is_err());
    }

    #[test]
    fn the_sums_read_the_partial_index() {
        // `INDEXED BY` already makes a query the index cannot serve fail to prepare; the plan
        // says so too.
        let (_d, _p, l) = temp_ledger();
        for (sql, params) in [
            (SUMS.to_string(), vec!["review"]),
            (format!("{SUMS} AND project = ?2"), vec!["review", "/a"]),
        ] {
            let mut st = l
                .connection()
                .prepare(&format!("EXPLAIN QUERY PLAN {sql}"))
                .unwrap();
            let plan: Vec<String> = st
                .query_map(rusqlite::params_from_iter(params), |r| {
                    r.get::<_, String>(3)
                })
                .unwrap()
                .map(Result::unwrap)
                .collect();
            assert!(
                plan.iter().any(|d| d.contains("requests_kind_created")),
                "{plan:?}"
            );
        }
    }
}
