//! Where this month ends at the last 7 days' pace, and the day a monthly cap would stop
//! requests (`:LlmUsage`, `spend.forecast` and `global.forecast` of `frugal usage --json`).
//! Read from the trigger-kept rollups, like every other figure of the report.

use jiff::civil::Date;
use jiff::Timestamp;

use super::sums::window;
use super::{Ledger, LedgerError};
use crate::budget::clock::{day_bounds, month_bounds, unix_ms, Clock};
use crate::budget::Usd;

/// The pace is read over this window, up to now.
pub const PACE_MS: i64 = 7 * 86_400_000;

/// A month's end at the recent pace.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Forecast {
    /// This month so far (counted like the caps) plus the last 7 days' pace until the month
    /// ends; caps ignored.
    pub month_end: Usd,
    /// The monthly cap it was measured against, if any.
    pub cap: Option<Usd>,
    /// The local day the cap stops requests at that pace: `None` with no cap or when the
    /// month ends first; a past (or today's) date when already reached.
    pub cap_reached_on: Option<Date>,
}

impl Ledger {
    /// The forecast of one project (`Some(path)`) or of all projects (`None`) against
    /// `monthly_cap`, as of `clock`'s now.
    pub fn forecast(
        &self,
        project: Option<&str>,
        monthly_cap: Option<Usd>,
        clock: &dyn Clock,
    ) -> Result<Forecast, LedgerError> {
        let scope = project.unwrap_or("");
        let now = clock.now();
        let now_ms = unix_ms(now.timestamp());
        let (m0, m1) = month_bounds(&now);
        let tx = self.conn.unchecked_transaction()?;
        let so_far = window(&tx, scope, m0, m1)?.counted();
        // The last 7 days, this very millisecond included.
        let week = window(&tx, scope, now_ms - PACE_MS, now_ms + 1)?.counted();
        let left_ms = (m1 - now_ms).max(0);
        let month_end = so_far + Usd(scaled(week.0, left_ms, PACE_MS));
        let cap_reached_on = match monthly_cap {
            None => None,
            Some(cap) if so_far >= cap => Some(reached_on(&tx, scope, &now, m0, so_far, cap)?),
            Some(_) if week <= Usd::ZERO => None,
            Some(cap) => {
                // The first millisecond at which the pace reaches the cap.
                let need = scaled_up((cap - so_far).0, PACE_MS, week.0);
                let at = now_ms.saturating_add(need);
                if at >= m1 {
                    None
                } else {
                    Timestamp::from_millisecond(at)
                        .ok()
                        .map(|t| t.to_zoned(now.time_zone().clone()).date())
                }
            }
        };
        tx.finish()?;
        Ok(Forecast {
            month_end,
            cap: monthly_cap,
            cap_reached_on,
        })
    }
}

/// The local day on which this month's spend reached `cap` (`so_far` ≥ `cap`): walking back
/// from today, the day before which the month had counted less than `cap`.
fn reached_on(
    conn: &rusqlite::Connection,
    scope: &str,
    now: &jiff::Zoned,
    month_start: i64,
    so_far: Usd,
    cap: Usd,
) -> Result<Date, LedgerError> {
    let mut day = now.clone();
    let mut before = so_far;
    loop {
        let (d0, d1) = day_bounds(&day);
        before -= window(conn, scope, d0, d1)?.counted();
        if before < cap || d0 <= month_start {
            return Ok(day.date());
        }
        match day.yesterday() {
            Ok(y) => day = y,
            Err(_) => return Ok(day.date()),
        }
    }
}

/// `a × b / c` rounded down, without overflow (`c` > 0).
fn scaled(a: i64, b: i64, c: i64) -> i64 {
    i64::try_from(i128::from(a) * i128::from(b) / i128::from(c)).unwrap_or(i64::MAX)
}

/// `a × b / c` rounded up (`a`, `b` ≥ 0, `c` > 0).
fn scaled_up(a: i64, b: i64, c: i64) -> i64 {
    let (a, b, c) = (i128::from(a), i128::from(b), i128::from(c));
    i64::try_from((a * b + c - 1) / c).unwrap_or(i64::MAX)
}

#[cfg(test)]
mod tests {
    use super::super::testkit::*;
    use super::*;

    fn date(s: &str) -> Option<Date> {
        Some(s.parse().unwrap())
    }

    /// Known rows, a fixed clock: the month's end at the last 7 days' pace and the day each
    /// cap is reached, exactly; a cap already passed gives the day it was passed; no cap, no
    /// pace or a cap beyond the month's end give none; each project apart from all.
    #[test]
    fn forecast_at_the_last_7_days_pace() {
        let (_d, _p, mut l) = temp_ledger();
        let tz = "[Europe/Paris]";
        let at = |s: &str| clock(&format!("{s}{tz}"));
        // Dec 2026: $1.00 on Dec 2 (outside the week before Dec 10 noon), then $0.70 a day
        // for the 7 days Dec 3 .. Dec 9 at noon: $4.90 in the week.
        spend_settled(&mut l, "/a", cents(100), &at("2026-12-02T09:00:00+01:00"));
        for day in 3..=9 {
            let c = at(&format!("2026-12-{day:02}T12:00:00+01:00"));
            spend_settled(&mut l, "/a", cents(70), &c);
        }
        // Another project's spend counts for all projects only.
        spend_settled(&mut l, "/b", cents(200), &at("2026-12-09T13:00:00+01:00"));
        let now = at("2026-12-10T12:00:00+01:00");
        // So far $5.90; left: 21.5 days (Dec 10 noon to Jan 1 midnight, Paris) at $0.70 a
        // day = $15.05; $20.95 at the month's end.
        let f = l.forecast(Some("/a"), None, &now).unwrap();
        assert_eq!(f.month_end, Usd(20_950_000_000_000));
        assert_eq!(f.cap_reached_on, None);
        // A $10 cap: $4.10 left at $0.70 a day is 5.857 days: Dec 16 at 8:34.
        let f = l.forecast(Some("/a"), Some(cents(1000)), &now).unwrap();
        assert_eq!(f.cap_reached_on, date("2026-12-16"));
        assert_eq!(f.cap, Some(cents(1000)));
        // A cap the pace does not reach this month.
        let f = l.forecast(Some("/a"), Some(cents(2100)), &now).unwrap();
        assert_eq!(f.cap_reached_on, None);
        // Already passed: $3.00 was reached on Dec 5 ($1.00 + 3 × $0.70 = $3.10).
        let f = l.forecast(Some("/a"), Some(cents(300)), &now).unwrap();
        assert_eq!(f.cap_reached_on, date("2026-12-05"));
        // Reached exactly by the first row: its day.
        let f = l.forecast(Some("/a"), Some(cents(100)), &now).unwrap();
        assert_eq!(f.cap_reached_on, date("2026-12-02"));
        // All projects: $7.90 so far, $6.90 in the week: + 21.5 × $6.90 / 7.
        let all = l.forecast(None, Some(cents(1000)), &now).unwrap();
        assert_eq!(all.month_end, Usd(7_900_000_000_000 + 21_192_857_142_857));
        // $2.10 left at $0.9857 a day: 2.13 days, Dec 12.
        assert_eq!(all.cap_reached_on, date("2026-12-12"));
        // No spend in the last 7 days: the month ends where it is; no cap date.
        let later = at("2026-12-20T12:00:00+01:00");
        let f = l.forecast(Some("/a"), Some(cents(1000)), &later).unwrap();
        assert_eq!((f.month_end, f.cap_reached_on), (cents(590), None));
        // A new month starts from nothing.
        let jan = at("2027-01-02T12:00:00+01:00");
        let f = l.forecast(Some("/a"), Some(cents(1)), &jan).unwrap();
        assert_eq!((f.month_end, f.cap_reached_on), (Usd::ZERO, None));
    }
}
