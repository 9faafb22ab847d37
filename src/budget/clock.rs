//! Time for the budget: the ledger never reads the system clock itself, so tests can stand on
//! either side of midnight, of a month's end or of a DST change.

use std::sync::Mutex;

use jiff::{Span, Timestamp, ToSpan, Zoned};

/// The source of "now", in the user's time zone (daily and monthly caps follow the *local*
/// calendar, as a person reading "today" expects).
pub trait Clock: Send + Sync {
    /// The current instant in the time zone whose calendar the caps follow.
    fn now(&self) -> Zoned;
}

/// The real clock, in the system's local time zone.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Zoned {
        Zoned::now()
    }
}

/// A clock that says what it is told; for tests.
#[derive(Debug)]
pub struct FixedClock(Mutex<Zoned>);

impl FixedClock {
    /// A clock stopped at `now`.
    pub fn new(now: Zoned) -> FixedClock {
        FixedClock(Mutex::new(now))
    }

    /// Moves the clock to `now`.
    pub fn set(&self, now: Zoned) {
        *self.lock() = now;
    }

    /// Moves the clock by `span` (e.g. `5.minutes()`); saturates at jiff's range.
    pub fn advance(&self, span: Span) {
        let mut g = self.lock();
        if let Ok(next) = g.checked_add(span) {
            *g = next;
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Zoned> {
        // A panic while holding the lock cannot leave a Zoned half-written; keep going.
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl Clock for FixedClock {
    fn now(&self) -> Zoned {
        self.lock().clone()
    }
}

/// Milliseconds in 24 hours.
const DAY_MS: i64 = 86_400_000;

/// Unix milliseconds of an instant, the unit of every timestamp in the ledger.
pub fn unix_ms(ts: Timestamp) -> i64 {
    ts.as_millisecond()
}

/// `[start, end)` in unix ms of the local calendar day containing `now`.
///
/// Uses jiff's `start_of_day`, so a day is 23 or 25 hours long across a DST change and starts
/// at 01:00 where midnight does not exist.
pub fn day_bounds(now: &Zoned) -> (i64, i64) {
    let start = now.start_of_day();
    let end = now.tomorrow().and_then(|t| t.start_of_day());
    bounds(now, start, end, DAY_MS)
}

/// `[start, end)` in unix ms of the local calendar month containing `now`.
pub fn month_bounds(now: &Zoned) -> (i64, i64) {
    let first = now.first_of_month();
    let start = first
        .as_ref()
        .map_err(Clone::clone)
        .and_then(|f| f.start_of_day());
    let end = first
        .and_then(|f| f.checked_add(1.month()))
        .and_then(|f| f.start_of_day());
    bounds(now, start, end, 31 * DAY_MS)
}

/// Turns jiff's results into milliseconds. jiff only fails at the edges of its supported range
/// (years ±9999); there a window of `fallback_ms` around `now` is as good as anything.
fn bounds(
    now: &Zoned,
    start: Result<Zoned, jiff::Error>,
    end: Result<Zoned, jiff::Error>,
    fallback_ms: i64,
) -> (i64, i64) {
    let ms = unix_ms(now.timestamp());
    let s = start
        .map(|z| unix_ms(z.timestamp()))
        .unwrap_or(ms.saturating_sub(fallback_ms));
    let e = end
        .map(|z| unix_ms(z.timestamp()))
        .unwrap_or(ms.saturating_add(fallback_ms));
    (s, e)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn z(s: &str) -> Zoned {
        s.parse().unwrap()
    }

    fn ms(s: &str) -> i64 {
        unix_ms(z(s).timestamp())
    }

    #[test]
    fn plain_day_and_month() {
        let now = z("2025-03-15T13:45:00+01:00[Europe/Paris]");
        assert_eq!(
            day_bounds(&now),
            (
                ms("2025-03-15T00:00+01:00[Europe/Paris]"),
                ms("2025-03-16T00:00+01:00[Europe/Paris]")
            )
        );
        assert_eq!(
            month_bounds(&now),
            (
                ms("2025-03-01T00:00+01:00[Europe/Paris]"),
                ms("2025-04-01T00:00+02:00[Europe/Paris]")
            )
        );
    }

    #[test]
    fn dst_days_are_23_and_25_hours() {
        let spring = z("2025-03-09T12:00:00-04:00[America/New_York]");
        let (s, e) = day_bounds(&spring);
        assert_eq!(e - s, 23 * 3_600_000);
        assert_eq!(s, ms("2025-03-09T00:00-05:00[America/New_York]"));
        let fall = z("2025-11-02T12:00:00-05:00[America/New_York]");
        let (s, e) = day_bounds(&fall);
        assert_eq!(e - s, 25 * 3_600_000);
    }

    #[test]
    fn odd_offsets() {
        let kathmandu = z("2025-06-01T00:10:00+05:45[Asia/Kathmandu]");
        let (s, _) = day_bounds(&kathmandu);
        assert_eq!(s, ms("2025-05-31T18:15:00+00:00[UTC]"));
        let (ms_, _) = month_bounds(&kathmandu);
        assert_eq!(ms_, s);
    }

    #[test]
    fn fixed_clock_moves() {
        let c = FixedClock::new(z("2025-01-31T23:59:00Z[UTC]"));
        c.advance(2.minutes());
        assert_eq!(c.now(), z("2025-02-01T00:01:00Z[UTC]"));
        c.set(z("2030-01-01T00:00:00Z[UTC]"));
        assert_eq!(c.now().year(), 2030);
        let _ = SystemClock.now();
    }
}
