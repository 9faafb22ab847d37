//! What became of the hunks each edit proposed (`hunk_outcomes`, schema v5): recorded when an
//! edit's hunks are placed (`proposed`) and as each one is settled in Neovim, read by
//! `:LlmUsage` (a model's cost per accepted hunk) and `:LlmHistory` ("3/5 accepted").

use std::collections::HashMap;

use rusqlite::{params, TransactionBehavior};

use super::{owner_gone, Ledger, LedgerError, RequestId};
use crate::budget::clock::{unix_ms, Clock};
use crate::budget::Usd;

/// A hunk's fate (`hunk_outcomes.fate`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum HunkFate {
    /// Placed in its buffer, not yet settled.
    Proposed,
    /// Accepted by the user.
    Accepted,
    /// Rejected by the user.
    Rejected,
    /// Replaced by a follow-up's hunks.
    Replaced,
    /// Its buffer closed, or Neovim quit with it pending.
    Abandoned,
}

impl HunkFate {
    /// The value stored in `hunk_outcomes.fate`.
    pub fn as_str(self) -> &'static str {
        match self {
            HunkFate::Proposed => "proposed",
            HunkFate::Accepted => "accepted",
            HunkFate::Rejected => "rejected",
            HunkFate::Replaced => "replaced",
            HunkFate::Abandoned => "abandoned",
        }
    }

    /// The fate named `s` (as stored), if any.
    pub fn parse(s: &str) -> Option<HunkFate> {
        [
            HunkFate::Proposed,
            HunkFate::Accepted,
            HunkFate::Rejected,
            HunkFate::Replaced,
            HunkFate::Abandoned,
        ]
        .into_iter()
        .find(|f| f.as_str() == s)
    }
}

/// How the hunks of one request fared: `proposed` counts all of them, the others those that
/// took that fate (the rest are still pending).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct HunkCounts {
    /// Every hunk the request proposed.
    pub proposed: u32,
    /// Accepted.
    pub accepted: u32,
    /// Rejected.
    pub rejected: u32,
    /// Replaced by a follow-up.
    pub replaced: u32,
    /// Abandoned (buffer closed, Neovim quit).
    pub abandoned: u32,
}

/// A model's hunks and what its edits cost, in one scope, all time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModelHunks {
    pub model: String,
    /// Hunks its edits proposed.
    pub proposed: u32,
    /// Of those, accepted.
    pub accepted: u32,
    /// Billed for its edits (follow-ups included; reviews and asks not).
    pub edit_spent: Usd,
}

impl ModelHunks {
    /// What one accepted hunk cost: the edit spend over the accepted hunks (`None`: none).
    pub fn cost_per_accepted(&self) -> Option<Usd> {
        (self.accepted > 0).then(|| Usd(self.edit_spent.0 / i64::from(self.accepted)))
    }
}

/// One settled hunk, as the shim reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Outcome {
    /// The edit's ledger row.
    pub request: RequestId,
    /// The hunk's number in that edit, 1-based.
    pub hunk: u32,
    /// What became of it.
    pub fate: HunkFate,
}

/// Adds hunk ?2 of request ?1 as proposed at ?3, when ?1 is an edit's row and the hunk has none.
const PROPOSE: &str = "INSERT OR IGNORE INTO hunk_outcomes (request_id, hunk, fate, at)
     SELECT id, ?2, 'proposed', ?3 FROM requests WHERE id = ?1 AND kind = 'edit'";

impl Ledger {
    /// Per model with hunks in a project (`None`: every project): its hunks proposed and
    /// accepted (from the trigger-kept `hunk_totals`), and its edit spend (the model's
    /// all-time spend less what its reviews and asks were billed, read through the partial
    /// index of rows that are not edits).
    pub fn model_hunks(&self, project: Option<&str>) -> Result<Vec<ModelHunks>, LedgerError> {
        let tx = self.conn.unchecked_transaction()?;
        let mut out: Vec<ModelHunks> = Vec::new();
        {
            let mut stmt = tx.prepare_cached(
                "SELECT h.model, h.proposed, h.accepted, COALESCE(m.spent, 0)
                 FROM hunk_totals h
                 LEFT JOIN model_totals m ON m.scope = h.scope AND m.model = h.model
                 WHERE h.scope = IFNULL(?1, '') AND h.proposed > 0
                 ORDER BY h.model",
            )?;
            let rows = stmt.query_map([project], |r| {
                Ok(ModelHunks {
                    model: r.get(0)?,
                    proposed: r.get(1)?,
                    accepted: r.get(2)?,
                    edit_spent: Usd(r.get(3)?),
                })
            })?;
            for row in rows {
                out.push(row?);
            }
            let mut others = tx.prepare_cached(
                "SELECT COALESCE(SUM(CASE WHEN state = 'reserved' THEN 0
                                          ELSE COALESCE(charged, 0) END), 0)
                 FROM requests INDEXED BY requests_kind_created
                 WHERE kind <> 'edit' AND model = ?1 AND (?2 IS NULL OR project = ?2)",
            )?;
            for m in &mut out {
                let not_edits: i64 = others.query_row(params![m.model, project], |r| r.get(0))?;
                m.edit_spent = Usd(m.edit_spent.0 - not_edits);
            }
        }
        tx.finish()?;
        Ok(out)
    }

    /// The hunk counts of each request in `ids` that proposed any (requests without hunk rows
    /// are absent from the map).
    pub fn hunk_counts(&self, ids: &[i64]) -> Result<HashMap<i64, HunkCounts>, LedgerError> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT COUNT(*), SUM(fate = 'accepted'), SUM(fate = 'rejected'),
                    SUM(fate = 'replaced'), SUM(fate = 'abandoned')
             FROM hunk_outcomes WHERE request_id = ?1",
        )?;
        let mut out = HashMap::new();
        for &id in ids {
            let c = stmt.query_row([id], |r| {
                let n = |i: usize| -> rusqlite::Result<u32> {
                    Ok(r.get::<_, Option<u32>>(i)?.unwrap_or(0))
                };
                Ok(HunkCounts {
                    proposed: n(0)?,
                    accepted: n(1)?,
                    rejected: n(2)?,
                    replaced: n(3)?,
                    abandoned: n(4)?,
                })
            })?;
            if c.proposed > 0 {
                out.insert(id, c);
            }
        }
        Ok(out)
    }

    /// Records that the edit `id` placed hunks 1 to `count`, each `proposed`. Nothing is
    /// written when `id` is not an edit's row (hunks proposed again by `:LlmApply` have none),
    /// nor for a hunk already recorded. Returns how many rows were written.
    pub fn propose_hunks(
        &mut self,
        id: RequestId,
        count: u32,
        clock: &dyn Clock,
    ) -> Result<usize, LedgerError> {
        let proposed: Vec<Outcome> = (1..=count)
            .map(|hunk| Outcome {
                request: id,
                hunk,
                fate: HunkFate::Proposed,
            })
            .collect();
        self.record_outcomes(&proposed, clock)
    }

    /// Records each outcome, in one transaction: `proposed` adds the hunk's row when its
    /// request is an edit's row (else nothing: hunks proposed again by `:LlmApply`); any other
    /// fate settles a row, and is ignored for a hunk with no row. A fate once settled stays,
    /// except `abandoned`, which the shim's word overrides (a backend restarted while Neovim
    /// kept the hunk). Returns how many rows were written.
    pub fn record_outcomes(
        &mut self,
        outcomes: &[Outcome],
        clock: &dyn Clock,
    ) -> Result<usize, LedgerError> {
        let now_ms = unix_ms(clock.now().timestamp());
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        let mut n = 0;
        {
            let mut propose = tx.prepare_cached(PROPOSE)?;
            let mut settle = tx.prepare_cached(
                "UPDATE hunk_outcomes SET fate = ?3, at = ?4
                 WHERE request_id = ?1 AND hunk = ?2 AND fate IN ('proposed', 'abandoned')
                   AND fate <> ?3",
            )?;
            for o in outcomes {
                n += match o.fate {
                    HunkFate::Proposed => propose.execute(params![o.request.0, o.hunk, now_ms])?,
                    f => settle.execute(params![o.request.0, o.hunk, f.as_str(), now_ms])?,
                };
            }
        }
        tx.commit()?;
        Ok(n)
    }

    /// At exit: this process's edits' hunks still `proposed` become `abandoned` (Neovim quit
    /// with them pending). Returns how many.
    pub fn abandon_own_hunks(&mut self, clock: &dyn Clock) -> Result<usize, LedgerError> {
        let now_ms = unix_ms(clock.now().timestamp());
        let n = self
            .conn
            .prepare_cached(
                "UPDATE hunk_outcomes SET fate = 'abandoned', at = ?1
                 WHERE fate = 'proposed' AND request_id IN
                   (SELECT id FROM requests WHERE owner_pid = ?2 AND owner_instance = ?3)",
            )?
            .execute(params![now_ms, i64::from(self.pid), self.instance])?;
        Ok(n)
    }

    /// At start: hunks still `proposed` whose edit's process is gone (it died before its exit
    /// could abandon them) become `abandoned`. Returns how many.
    pub fn abandon_orphan_hunks(&mut self, clock: &dyn Clock) -> Result<usize, LedgerError> {
        let mut owners: Vec<(i64, i64, String)> = Vec::new();
        {
            let mut stmt = self.conn.prepare_cached(
                "SELECT DISTINCT r.id, r.owner_pid, r.owner_instance
                 FROM hunk_outcomes h
                 JOIN requests r ON r.id = h.request_id
                 WHERE h.fate = 'proposed'",
            )?;
            let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?;
            for row in rows {
                owners.push(row?);
            }
        }
        let mut alive: HashMap<i64, bool> = HashMap::new();
        let dead: Vec<i64> = owners
            .into_iter()
            .filter(|(_, pid, instance)| {
                owner_gone(*pid, instance, (self.pid, &self.instance), &mut alive)
            })
            .map(|(id, ..)| id)
            .collect();
        if dead.is_empty() {
            return Ok(0);
        }
        let now_ms = unix_ms(clock.now().timestamp());
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        let mut n = 0;
        {
            let mut stmt = tx.prepare_cached(
                "UPDATE hunk_outcomes SET fate = 'abandoned', at = ?2
                 WHERE request_id = ?1 AND fate = 'proposed'",
            )?;
            for id in dead {
                n += stmt.execute(params![id, now_ms])?;
            }
        }
        tx.commit()?;
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::super::testkit::*;
    use super::*;
    use crate::budget::ledger::{RequestKind, Settlement};
    use crate::budget::ChargeSource;

    fn out(request: RequestId, hunk: u32, fate: HunkFate) -> Outcome {
        Outcome {
            request,
            hunk,
            fate,
        }
    }

    /// Proposed hunks are counted per request, each fate once; unknown requests, reviews and
    /// unknown hunks write nothing; a settled fate stays, an abandoned one yields to the shim.
    #[test]
    fn hunk_counts_follow_each_fate() {
        let (_d, _p, mut l) = temp_ledger();
        let c = clock("2026-12-07T12:00:00+00:00[UTC]");
        let a = spend_settled(&mut l, "/a", cents(3), &c);
        let b = spend_settled(&mut l, "/a", cents(5), &c);
        let mut review = input("/a", 0, 16);
        review.kind = RequestKind::Review;
        let (r, ..) = reserved(l.reserve(&review, &c).unwrap());
        assert_eq!(l.propose_hunks(a, 5, &c).unwrap(), 5);
        assert_eq!(l.propose_hunks(a, 5, &c).unwrap(), 0, "once");
        let proposed = l
            .record_outcomes(&[out(b, 1, Proposed), out(b, 2, Proposed)], &c)
            .unwrap();
        assert_eq!(proposed, 2);
        assert_eq!(l.propose_hunks(r, 2, &c).unwrap(), 0, "not an edit");
        use HunkFate::*;
        assert_eq!(l.propose_hunks(RequestId(999), 2, &c).unwrap(), 0);
        let n = l
            .record_outcomes(
                &[
                    out(a, 1, Accepted),
                    out(a, 2, Accepted),
                    out(a, 3, Rejected),
                    out(a, 4, Replaced),
                    out(a, 9, Accepted),
                    out(RequestId(999), 1, Accepted),
                    out(b, 1, Abandoned),
                ],
                &c,
            )
            .unwrap();
        assert_eq!(n, 5);
        // Settled stays settled; abandoned yields to the shim's word.
        let n = l
            .record_outcomes(&[out(a, 1, Rejected), out(b, 1, Accepted)], &c)
            .unwrap();
        assert_eq!(n, 1);
        let counts = l.hunk_counts(&[a.0, b.0, r.0, 999]).unwrap();
        assert_eq!(
            counts[&a.0],
            HunkCounts {
                proposed: 5,
                accepted: 2,
                rejected: 1,
                replaced: 1,
                abandoned: 0
            }
        );
        assert_eq!(
            counts[&b.0],
            HunkCounts {
                proposed: 2,
                accepted: 1,
                ..HunkCounts::default()
            }
        );
        assert_eq!(counts.len(), 2, "no rows, no entry: {counts:?}");

        // Per model: the review's charge is not edit spend; another project is apart.
        l.settle(r, Settlement::charged(cents(4), ChargeSource::Usage), &c)
            .unwrap();
        let z = spend_settled(&mut l, "/z", cents(9), &c);
        l.propose_hunks(z, 1, &c).unwrap();
        l.record_outcomes(&[out(z, 1, Accepted)], &c).unwrap();
        let mine = ModelHunks {
            model: "test/model".into(),
            proposed: 7,
            accepted: 3,
            edit_spent: cents(8),
        };
        assert_eq!(
            l.model_hunks(Some("/a")).unwrap(),
            std::slice::from_ref(&mine)
        );
        assert_eq!(mine.cost_per_accepted(), Some(Usd(cents(8).0 / 3)));
        let all = l.model_hunks(None).unwrap();
        assert_eq!((all[0].proposed, all[0].accepted), (8, 4));
        assert_eq!(all[0].cost_per_accepted(), Some(Usd(cents(17).0 / 4)));
        // The counts follow rows deleted or moved by hand.
        l.connection()
            .execute_batch(&format!(
                "DELETE FROM hunk_outcomes WHERE request_id = {b};
                 UPDATE hunk_outcomes SET request_id = {z} WHERE request_id = {a} AND hunk = 5",
                a = a.0,
                b = b.0,
                z = z.0
            ))
            .unwrap();
        let a_now = &l.model_hunks(Some("/a")).unwrap()[0];
        assert_eq!((a_now.proposed, a_now.accepted), (4, 2));
        let all = &l.model_hunks(None).unwrap()[0];
        assert_eq!((all.proposed, all.accepted), (6, 3));
        assert_eq!(l.model_hunks(Some("/z")).unwrap()[0].proposed, 2);
        let none = ModelHunks {
            accepted: 0,
            ..mine
        };
        assert_eq!(none.cost_per_accepted(), None);
    }

    /// At exit this process's pending hunks are abandoned; at start those of dead processes,
    /// never a live one's.
    #[test]
    fn pending_hunks_of_gone_processes_are_abandoned() {
        let (_d, _p, mut l) = temp_ledger();
        let c = clock("2026-12-07T12:00:00+00:00[UTC]");
        let mine = spend_settled(&mut l, "/a", cents(1), &c);
        let dead = spend_settled(&mut l, "/a", cents(1), &c);
        let live = spend_settled(&mut l, "/a", cents(1), &c);
        for id in [mine, dead, live] {
            l.propose_hunks(id, 2, &c).unwrap();
        }
        l.record_outcomes(&[out(dead, 1, HunkFate::Accepted)], &c)
            .unwrap();
        let owner = |id: RequestId, pid: i64, inst: &str| {
            l.connection()
                .execute(
                    "UPDATE requests SET owner_pid = ?2, owner_instance = ?3 WHERE id = ?1",
                    params![id.0, pid, inst],
                )
                .unwrap();
        };
        // pid 1 is always alive; a pid beyond pid_max never is.
        owner(live, 1, "init");
        owner(dead, 99_999_999, "gone");
        assert_eq!(l.abandon_orphan_hunks(&c).unwrap(), 1);
        let abandoned = |l: &Ledger| {
            let m = l.hunk_counts(&[mine.0, dead.0, live.0]).unwrap();
            [mine, dead, live].map(|id| m[&id.0].abandoned)
        };
        assert_eq!(abandoned(&l), [0, 1, 0]);
        assert_eq!(l.abandon_own_hunks(&c).unwrap(), 2);
        assert_eq!(abandoned(&l), [2, 1, 0]);
    }
}
