//! Summing a period without scanning `requests`: a local day or month is read as whole UTC days,
//! then whole hours, then whole quarter-hours of the trigger-kept `rollups` at its edges, then
//! the rows of `requests` in whatever is left. Every time zone in use today has an offset that is
//! a multiple of 15 minutes, so the last step reads nothing, yet historical odd offsets are still
//! counted exactly.

use rusqlite::{params, Connection, OptionalExtension};

use super::LedgerError;
use crate::budget::caps::Held;
use crate::budget::money::Usd;

/// Bucket widths of the rollups, coarsest first (day, hour, quarter-hour), in ms. The triggers
/// in `triggers.sql` write exactly these widths (`check_rollups` compares them).
pub(super) const WIDTHS: [i64; 3] = [86_400_000, 3_600_000, 900_000];

/// A sum split the way a refusal reports it, with the completion tokens of the same rows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(super) struct Amounts {
    pub spent: Usd,
    pub reserved: Usd,
    pub tokens_out: i64,
}

impl Amounts {
    pub fn add(self, o: Amounts) -> Amounts {
        Amounts {
            spent: self.spent + o.spent,
            reserved: self.reserved + o.reserved,
            tokens_out: self.tokens_out + o.tokens_out,
        }
    }

    pub fn counted(self) -> Usd {
        self.spent + self.reserved
    }

    /// What a cap counts of these rows.
    pub fn held(self) -> Held {
        Held {
            spent: self.spent,
            reserved: self.reserved,
        }
    }
}

/// Spent and reserved of `scope` (a project, or `''` for all) over rows created in
/// `[start, end)`: whole buckets from the rollups, coarsest first, the ragged edges from finer
/// buckets, and what no bucket fits exactly from `requests` itself.
pub(super) fn window(
    conn: &Connection,
    scope: &str,
    start: i64,
    end: i64,
) -> Result<Amounts, LedgerError> {
    sum_level(conn, scope, 0, start, end)
}

fn sum_level(
    conn: &Connection,
    scope: &str,
    level: usize,
    start: i64,
    end: i64,
) -> Result<Amounts, LedgerError> {
    if start >= end {
        return Ok(Amounts::default());
    }
    let Some(&w) = WIDTHS.get(level) else {
        return raw_sum(conn, scope, start, end);
    };
    let lo = start + (w - start.rem_euclid(w)) % w;
    let hi = end - end.rem_euclid(w);
    if lo >= hi {
        return sum_level(conn, scope, level + 1, start, end);
    }
    let mid = conn
        .prepare_cached(
            "SELECT IFNULL(SUM(spent), 0), IFNULL(SUM(reserved), 0), IFNULL(SUM(tokens_out), 0)
             FROM rollups
             WHERE scope = ?1 AND width_ms = ?2 AND bucket_ms >= ?3 AND bucket_ms < ?4",
        )?
        .query_row(params![scope, w, lo, hi], amounts_row)?;
    let left = sum_level(conn, scope, level + 1, start, lo)?;
    let right = sum_level(conn, scope, level + 1, hi, end)?;
    Ok(mid.add(left).add(right))
}

/// The rows of all projects created in `[?2, ?3)`, summed the way the triggers count them
/// (`?1` is `''`).
const RAW_SUM_ALL: &str = "
    SELECT IFNULL(SUM(CASE WHEN state = 'reserved' THEN 0 ELSE IFNULL(charged, 0) END), 0),
           IFNULL(SUM(CASE WHEN state = 'reserved' THEN reserved ELSE 0 END), 0),
           IFNULL(SUM(IFNULL(tokens_out, 0)), 0)
    FROM requests
    WHERE ?1 = '' AND created_at >= ?2 AND created_at < ?3";

/// The rows of project `?1` created in `[?2, ?3)`, summed the way the triggers count them.
const RAW_SUM_PROJECT: &str = "
    SELECT IFNULL(SUM(CASE WHEN state = 'reserved' THEN 0 ELSE IFNULL(charged, 0) END), 0),
           IFNULL(SUM(CASE WHEN state = 'reserved' THEN reserved ELSE 0 END), 0),
           IFNULL(SUM(IFNULL(tokens_out, 0)), 0)
    FROM requests
    WHERE project = ?1 AND created_at >= ?2 AND created_at < ?3";

/// Sums `requests` itself over `[start, end)`: the slow path, for what no bucket fits.
pub(super) fn raw_sum(
    conn: &Connection,
    scope: &str,
    start: i64,
    end: i64,
) -> Result<Amounts, LedgerError> {
    let sql = if scope.is_empty() {
        RAW_SUM_ALL
    } else {
        RAW_SUM_PROJECT
    };
    Ok(conn
        .prepare_cached(sql)?
        .query_row(params![scope, start, end], amounts_row)?)
}

/// An [`Amounts`] from columns 0..3 (spent, reserved, tokens_out).
fn amounts_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<Amounts> {
    Ok(Amounts {
        spent: Usd(r.get(0)?),
        reserved: Usd(r.get(1)?),
        tokens_out: r.get(2)?,
    })
}

/// All-time figures of `scope` (a project, or `''` for all), from `totals`.
pub(super) fn totals(conn: &Connection, scope: &str) -> Result<Amounts, LedgerError> {
    Ok(conn
        .prepare_cached("SELECT spent, reserved, tokens_out FROM totals WHERE scope = ?1")?
        .query_row([scope], amounts_row)
        .optional()?
        .unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use super::super::testkit::*;
    use super::*;
    use crate::budget::{ChargeSource, Settlement};

    #[test]
    fn window_sums_match_naive_sums() {
        let (_d, _p, mut l) = temp_ledger();
        let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
        let base = 1_750_000_000_000i64;
        let c = clock("2025-06-15T12:00:00+00:00[UTC]");
        for _ in 0..400 {
            let at = base + rng.below(40 * 86_400_000) as i64;
            c.set(
                jiff::Timestamp::from_millisecond(at)
                    .unwrap()
                    .to_zoned(jiff::tz::TimeZone::UTC),
            );
            let project = ["/a", "/b", "/c"][rng.below(3) as usize];
            let (id, ..) = reserved(
                l.reserve(&input(project, rng.below(5000), 500), &c)
                    .unwrap(),
            );
            if rng.below(3) > 0 {
                let charged = Usd(rng.below(20_000_000_000) as i64);
                l.settle(id, Settlement::charged(charged, ChargeSource::Usage), &c)
                    .unwrap();
            }
        }
        for _ in 0..300 {
            let a = base - 86_400_000 + rng.below(42 * 86_400_000) as i64;
            // Windows of any length, aligned to nothing in particular, some to 15 min.
            let len = rng.below(35 * 86_400_000) as i64;
            let (a, b) = if rng.below(2) == 0 {
                (a - a % 900_000, a - a % 900_000 + len - len % 900_000)
            } else {
                (a, a + len)
            };
            for scope in ["/a", "/b", ""] {
                let fast = window(l.connection(), scope, a, b).unwrap();
                let naive = raw_sum(l.connection(), scope, a, b).unwrap();
                assert_eq!(fast, naive, "{scope} [{a}, {b})");
            }
        }
    }
}
