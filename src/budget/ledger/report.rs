//! Reading the ledger for people: `:LlmUsage`, the statusline and `frugal usage`. Every figure
//! counts settled charges plus reservations still in flight, the same way the caps do, and is
//! read from the trigger-kept tables only, so its cost does not grow with the number of
//! requests.

use std::collections::HashMap;

use rusqlite::Connection;

use super::sums::{totals, window, Amounts};
use super::{Ledger, LedgerError};
use crate::budget::clock::{day_bounds, month_bounds, Clock};
use crate::budget::money::Usd;

/// Spend for `:LlmUsage`. Each figure counts settled charges plus reservations still in flight,
/// the same way the caps do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Spend {
    /// In the local calendar day.
    pub today: Usd,
    /// In the local calendar month.
    pub month: Usd,
    /// All time.
    pub total: Usd,
    /// Of `total`, what is still only reserved (in flight or orphaned).
    pub reserved_unsettled: Usd,
}

/// Spend through one key in OpenRouter's UTC day and month ([`Ledger::key_spend_utc`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct KeySpend {
    pub today: Usd,
    pub month: Usd,
}

/// A key's spend in `[?2, ?3)`: charges, and reservations in flight in full.
const KEY_SPEND_SQL: &str = "SELECT COALESCE(SUM(CASE state WHEN 'reserved' THEN reserved \
     ELSE COALESCE(charged, 0) END), 0) FROM requests \
     WHERE key_id = ?1 AND created_at >= ?2 AND created_at < ?3";

/// Spent and reserved over a period, and the completion tokens of the same rows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct PeriodUsage {
    /// Billed (rows no longer `reserved`).
    pub spent: Usd,
    /// Still only reserved (in flight or orphaned), counted in full.
    pub reserved: Usd,
    /// Completion tokens of the period's rows (0 for rows that never reported them).
    pub tokens_out: i64,
}

impl PeriodUsage {
    /// What the caps count: spent + reserved.
    pub fn counted(&self) -> Usd {
        self.spent + self.reserved
    }
}

impl From<Amounts> for PeriodUsage {
    fn from(a: Amounts) -> Self {
        PeriodUsage {
            spent: a.spent,
            reserved: a.reserved,
            tokens_out: a.tokens_out,
        }
    }
}

/// One model's all-time figures in a scope (the `model_totals` table).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModelUsage {
    /// Model id.
    pub model: String,
    /// Rows, whatever their state (failed requests included).
    pub requests: i64,
    /// Prompt tokens (rows that reported them).
    pub tokens_in: i64,
    /// Completion tokens (rows that reported them).
    pub tokens_out: i64,
    /// Billed.
    pub spent: Usd,
    /// Still only reserved.
    pub reserved: Usd,
    /// Prompt tokens read from the provider's cache.
    pub tokens_cached: i64,
    /// What those cached tokens saved against the full prompt price.
    pub cache_saved: Usd,
}

impl ModelUsage {
    pub(super) fn zero(model: &str) -> ModelUsage {
        ModelUsage {
            model: model.to_string(),
            requests: 0,
            tokens_in: 0,
            tokens_out: 0,
            spent: Usd::ZERO,
            reserved: Usd::ZERO,
            tokens_cached: 0,
            cache_saved: Usd::ZERO,
        }
    }

    pub(super) fn is_zero(&self) -> bool {
        *self == ModelUsage::zero(&self.model)
    }

    /// What the model counts: charged if settled, else reserved (as the caps count).
    pub fn cost(&self) -> Usd {
        self.spent + self.reserved
    }
}

/// One local calendar day's spend.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DaySpend {
    /// The local date.
    pub date: jiff::civil::Date,
    /// `[start_ms, end_ms)`: the day's instants in unix ms (23 or 25 hours across DST).
    pub start_ms: i64,
    /// End of the day, exclusive.
    pub end_ms: i64,
    /// What the day's rows count.
    pub usage: PeriodUsage,
}

/// The figures of one scope for `:LlmUsage`, read in one snapshot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UsageFigures {
    /// The local calendar day.
    pub today: PeriodUsage,
    /// The local calendar month.
    pub month: PeriodUsage,
    /// All time.
    pub total: PeriodUsage,
    /// All-time per-model rows, by cost (descending), then model id.
    pub models: Vec<ModelUsage>,
    /// The last local days, oldest first, today last.
    pub daily: Vec<DaySpend>,
}

/// One project's line in the `all` view.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProjectSpend {
    /// The project's canonical path.
    pub project: String,
    /// Counted in the local calendar day.
    pub today: Usd,
    /// Counted in the local calendar month.
    pub month: Usd,
    /// Counted, all time.
    pub total: Usd,
    /// Of `total`, what is still only reserved.
    pub reserved_unsettled: Usd,
    /// Rows, all time.
    pub requests: i64,
}

impl Ledger {
    /// How many requests the ledger holds (for `:checkhealth`).
    pub fn request_count(&self) -> Result<i64, LedgerError> {
        Ok(self
            .connection()
            .query_row("SELECT COUNT(*) FROM requests", [], |r| r.get(0))?)
    }

    /// Spend of one project (`Some(path)`) or of all projects (`None`), counted like the caps.
    pub fn spend(&self, project: Option<&str>, clock: &dyn Clock) -> Result<Spend, LedgerError> {
        let scope = project.unwrap_or("");
        let now = clock.now();
        // One read transaction: the four figures come from the same snapshot.
        let tx = self.conn.unchecked_transaction()?;
        let (d0, d1) = day_bounds(&now);
        let (m0, m1) = month_bounds(&now);
        let today = window(&tx, scope, d0, d1)?.counted();
        let month = window(&tx, scope, m0, m1)?.counted();
        let total = totals(&tx, scope)?;
        tx.finish()?;
        Ok(Spend {
            today,
            month,
            total: total.counted(),
            reserved_unsettled: total.reserved,
        })
    }

    /// One scope's figures for `:LlmUsage` (a project, or all projects with `None`): today,
    /// this month and all time, the per-model rows and the spend of the last `days` local
    /// calendar days (oldest first, today last), all from one read snapshot. Reads only the
    /// trigger-kept tables: its cost does not grow with the number of requests.
    pub fn usage(
        &self,
        project: Option<&str>,
        clock: &dyn Clock,
        days: usize,
    ) -> Result<UsageFigures, LedgerError> {
        let scope = project.unwrap_or("");
        let now = clock.now();
        let tx = self.conn.unchecked_transaction()?;
        let (d0, d1) = day_bounds(&now);
        let (m0, m1) = month_bounds(&now);
        let today = window(&tx, scope, d0, d1)?.into();
        let month = window(&tx, scope, m0, m1)?.into();
        let total = totals(&tx, scope)?.into();
        let models = model_rows(&tx, scope)?;
        let daily = daily_rows(&tx, scope, &now, days)?;
        tx.finish()?;
        Ok(UsageFigures {
            today,
            month,
            total,
            models,
            daily,
        })
    }

    /// Spend through one key (`requests.key_id`, e.g. `bound:<hash>`) in OpenRouter's
    /// current UTC day and UTC month (not the local periods of the caps: it is compared with
    /// `GET /key`'s `usage_daily` / `usage_monthly`, which are UTC). Settled charges plus
    /// reservations in flight in full, so a request still streaming never reads as spend made
    /// elsewhere. Reads through the index `requests_key_created`.
    pub fn key_spend_utc(&self, key_id: &str, clock: &dyn Clock) -> Result<KeySpend, LedgerError> {
        let utc = clock.now().with_time_zone(jiff::tz::TimeZone::UTC);
        let (d0, d1) = day_bounds(&utc);
        let (m0, m1) = month_bounds(&utc);
        let tx = self.conn.unchecked_transaction()?;
        let sum = |start: i64, end: i64| -> Result<Usd, LedgerError> {
            Ok(Usd(tx.query_row(
                KEY_SPEND_SQL,
                rusqlite::params![key_id, start, end],
                |r| r.get(0),
            )?))
        };
        let out = KeySpend {
            today: sum(d0, d1)?,
            month: sum(m0, m1)?,
        };
        tx.finish()?;
        Ok(out)
    }

    /// All-time per-model figures of a project (`None`: all projects), by cost (descending).
    #[cfg(test)]
    pub fn model_usage(&self, project: Option<&str>) -> Result<Vec<ModelUsage>, LedgerError> {
        model_rows(&self.conn, project.unwrap_or(""))
    }

    /// Every project with its spend today, this month and all time, by total (descending),
    /// then path. Projects whose rows were all deleted are left out.
    pub fn projects(&self, clock: &dyn Clock) -> Result<Vec<ProjectSpend>, LedgerError> {
        let now = clock.now();
        let (d0, d1) = day_bounds(&now);
        let (m0, m1) = month_bounds(&now);
        let tx = self.conn.unchecked_transaction()?;
        let mut requests: HashMap<String, i64> = HashMap::new();
        {
            let mut stmt = tx.prepare_cached(
                "SELECT scope, SUM(requests) FROM model_totals WHERE scope <> '' GROUP BY scope",
            )?;
            let mut rows = stmt.query([])?;
            while let Some(r) = rows.next()? {
                requests.insert(r.get(0)?, r.get(1)?);
            }
        }
        let mut out = Vec::new();
        {
            let mut stmt = tx.prepare_cached(
                "SELECT scope, spent, reserved FROM totals WHERE scope <> '' ORDER BY scope",
            )?;
            let mut rows = stmt.query([])?;
            while let Some(r) = rows.next()? {
                let project: String = r.get(0)?;
                let spent = Usd(r.get(1)?);
                let reserved = Usd(r.get(2)?);
                let n = requests.get(&project).copied().unwrap_or(0);
                if n == 0 && spent == Usd::ZERO && reserved == Usd::ZERO {
                    continue;
                }
                out.push(ProjectSpend {
                    today: window(&tx, &project, d0, d1)?.counted(),
                    month: window(&tx, &project, m0, m1)?.counted(),
                    project,
                    total: spent + reserved,
                    reserved_unsettled: reserved,
                    requests: n,
                });
            }
        }
        tx.finish()?;
        out.sort_by(|a, b| {
            b.total
                .cmp(&a.total)
                .then_with(|| a.project.cmp(&b.project))
        });
        Ok(out)
    }
}

/// A `model_totals` row from columns `at..at+8` ([`MODEL_COLUMNS`]: model, requests,
/// tokens_in, tokens_out, spent, reserved, tokens_cached, cache_saved).
pub(super) fn model_row(r: &rusqlite::Row<'_>, at: usize) -> rusqlite::Result<ModelUsage> {
    Ok(ModelUsage {
        model: r.get(at)?,
        requests: r.get(at + 1)?,
        tokens_in: r.get(at + 2)?,
        tokens_out: r.get(at + 3)?,
        spent: Usd(r.get(at + 4)?),
        reserved: Usd(r.get(at + 5)?),
        tokens_cached: r.get(at + 6)?,
        cache_saved: Usd(r.get(at + 7)?),
    })
}

/// The columns of `model_totals` that [`model_row`] reads, in its order.
pub(super) const MODEL_COLUMNS: &str =
    "model, requests, tokens_in, tokens_out, spent, reserved, tokens_cached, cache_saved";

fn model_rows(conn: &Connection, scope: &str) -> Result<Vec<ModelUsage>, LedgerError> {
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {MODEL_COLUMNS} FROM model_totals WHERE scope = ?1"
    ))?;
    let rows = stmt.query_map([scope], |r| model_row(r, 0))?;
    let mut out = Vec::new();
    for m in rows {
        let m = m?;
        if !m.is_zero() {
            out.push(m);
        }
    }
    out.sort_by(|a, b| b.cost().cmp(&a.cost()).then_with(|| a.model.cmp(&b.model)));
    Ok(out)
}

/// The last `days` local calendar days ending with the one holding `now`, oldest first.
fn daily_rows(
    conn: &Connection,
    scope: &str,
    now: &jiff::Zoned,
    days: usize,
) -> Result<Vec<DaySpend>, LedgerError> {
    let mut out = Vec::with_capacity(days);
    let mut z = now.clone();
    for _ in 0..days {
        let (start_ms, end_ms) = day_bounds(&z);
        out.push(DaySpend {
            date: z.date(),
            start_ms,
            end_ms,
            usage: window(conn, scope, start_ms, end_ms)?.into(),
        });
        match z.yesterday() {
            Ok(y) => z = y,
            Err(_) => break,
        }
    }
    out.reverse();
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::super::testkit::*;
    use super::*;
    use crate::budget::clock::FixedClock;
    use crate::budget::{ChargeSource, Settlement};
    use jiff::Zoned;

    #[test]
    fn key_spend_counts_utc_periods_through_the_index() {
        let (_d, _p, mut l) = temp_ledger();
        // 20:00 in New York on Jan 31st is already February 1st in UTC.
        let c = FixedClock::new(
            "2025-01-31T20:00:00-05:00[America/New_York]"
                .parse()
                .unwrap(),
        );
        let mut through = |key: Option<&str>, amount: Usd, c: &FixedClock| {
            let mut inp = input("/p", 10, 100);
            inp.key_id = key;
            let (id, ..) = reserved(l.reserve(&inp, c).unwrap());
            l.settle(id, Settlement::charged(amount, ChargeSource::Usage), c)
                .unwrap();
        };
        through(Some("bound:h1"), cents(5), &c);
        through(Some("bound:h2"), cents(100), &c);
        through(None, cents(100), &c);
        c.set(
            "2025-01-31T18:00:00-05:00[America/New_York]"
                .parse()
                .unwrap(),
        );
        through(Some("bound:h1"), cents(7), &c);
        c.set(
            "2025-02-01T10:00:00-05:00[America/New_York]"
                .parse()
                .unwrap(),
        );
        let s = l.key_spend_utc("bound:h1", &c).unwrap();
        // The 20:00 request was on Jan 31st locally but Feb 1st in UTC: it counts; the 18:00
        // one (23:00 UTC, January) does not.
        assert_eq!(s.today, cents(5));
        assert_eq!(s.month, cents(5));
        // A request in flight counts in full.
        let mut inp = input("/p", 0, 100);
        inp.key_id = Some("bound:h1");
        let (_, _, worst, _) = reserved(l.reserve(&inp, &c).unwrap());
        assert_eq!(
            l.key_spend_utc("bound:h1", &c).unwrap().today,
            cents(5) + worst
        );
        assert_eq!(
            l.key_spend_utc("bound:none", &c).unwrap(),
            KeySpend::default()
        );
        let plan: String = l
            .connection()
            .query_row(
                &format!("EXPLAIN QUERY PLAN {KEY_SPEND_SQL}"),
                rusqlite::params!["bound:h1", 0, 1],
                |r| r.get(3),
            )
            .unwrap();
        assert!(plan.contains("requests_key_created"), "{plan}");
    }

    #[test]
    fn day_and_month_boundaries_follow_the_local_calendar() {
        let (_d, _p, mut l) = temp_ledger();
        let tz = "[America/New_York]";
        let at = |s: &str| -> Zoned { format!("{s}{tz}").parse().unwrap() };
        let c = FixedClock::new(at("2025-01-31T23:59:00-05:00"));
        spend_settled(&mut l, "/p", cents(7), &c);
        // 04:59 UTC on Feb 1st: still January here.
        assert_eq!(l.spend(Some("/p"), &c).unwrap().today, cents(7));
        c.set(at("2025-02-01T00:01:00-05:00"));
        let s = l.spend(Some("/p"), &c).unwrap();
        assert_eq!(
            (s.today, s.month, s.total),
            (Usd::ZERO, Usd::ZERO, cents(7))
        );
        let mut inp = input("/p", 1000, 1000);
        inp.project_caps.daily = Some(cents(2));
        inp.project_caps.monthly = Some(cents(2));
        reserved(l.reserve(&inp, &c).unwrap());

        // DST: 2025-03-09 has 23 hours in New York.
        c.set(at("2025-03-08T23:59:59.999-05:00"));
        spend_settled(&mut l, "/dst", cents(1), &c);
        c.set(at("2025-03-09T00:00:00-05:00"));
        spend_settled(&mut l, "/dst", cents(2), &c);
        c.set(at("2025-03-09T03:30:00-04:00"));
        spend_settled(&mut l, "/dst", cents(4), &c);
        c.set(at("2025-03-09T23:59:59.999-04:00"));
        spend_settled(&mut l, "/dst", cents(8), &c);
        c.set(at("2025-03-10T00:00:00-04:00"));
        spend_settled(&mut l, "/dst", cents(16), &c);
        c.set(at("2025-03-09T12:00:00-04:00"));
        let s = l.spend(Some("/dst"), &c).unwrap();
        assert_eq!(s.today, cents(14));
        assert_eq!(s.month, cents(31));
        c.set(at("2025-03-10T00:00:00-04:00"));
        assert_eq!(l.spend(Some("/dst"), &c).unwrap().today, cents(16));

        // Offsets of :45 and of odd seconds (local mean time, 1900) are exact too.
        for (zone, noon) in [
            ("Asia/Kathmandu", "2025-06-15T12:00:00+05:45"),
            ("Europe/Amsterdam", "1900-06-15T12:00:00+00:19:32"),
        ] {
            let noon: Zoned = format!("{noon}[{zone}]").parse().unwrap();
            let (start, end) = day_bounds(&noon);
            let project = format!("/{zone}");
            let mut expect = Usd::ZERO;
            for (k, ms) in [start - 1, start, end - 1, end].into_iter().enumerate() {
                let when = jiff::Timestamp::from_millisecond(ms)
                    .unwrap()
                    .to_zoned(noon.time_zone().clone());
                c.set(when);
                let amount = cents(1 << k);
                spend_settled(&mut l, &project, amount, &c);
                if k == 1 || k == 2 {
                    expect += amount;
                }
            }
            c.set(noon);
            assert_eq!(l.spend(Some(&project), &c).unwrap().today, expect, "{zone}");
        }
        assert_consistent(&l);
    }

    #[test]
    fn usage_figures_follow_models_tokens_and_days() {
        let (_d, _p, mut l) = temp_ledger();
        let c = clock("2025-06-15T12:00:00+02:00[Europe/Paris]");
        let mut add =
            |project: &str, model: &str, charged: Option<i64>, out: u64, c: &FixedClock| {
                let mut inp = input(project, 100, 100);
                inp.model = model;
                let (id, ..) = reserved(l.reserve(&inp, c).unwrap());
                if let Some(ch) = charged {
                    let mut s = Settlement::charged(cents(ch), ChargeSource::Usage);
                    s.tokens_in = Some(1000);
                    s.tokens_out = Some(out);
                    l.settle(id, s, c).unwrap();
                }
            };
        add("/a", "m/cheap", Some(1), 10, &c);
        add("/a", "m/dear", Some(5), 20, &c);
        add("/a", "m/cheap", None, 0, &c); // in flight: reserved 100 × 1e-6 + 100 × 1e-5 = $0.0011
        add("/b", "m/cheap", Some(2), 40, &c);
        c.set("2025-06-14T23:59:00+02:00[Europe/Paris]".parse().unwrap());
        add("/a", "m/cheap", Some(3), 80, &c);
        c.set("2025-05-31T23:59:00+02:00[Europe/Paris]".parse().unwrap());
        add("/a", "m/dear", Some(7), 160, &c);
        c.set("2025-06-15T12:00:00+02:00[Europe/Paris]".parse().unwrap());

        let u = l.usage(Some("/a"), &c, 30).unwrap();
        let inflight = Usd(1_100_000_000);
        assert_eq!(u.today.spent, cents(6));
        assert_eq!(u.today.reserved, inflight);
        assert_eq!(u.today.tokens_out, 30);
        assert_eq!(u.month.counted(), cents(9) + inflight);
        assert_eq!(u.month.tokens_out, 110);
        assert_eq!(u.total.counted(), cents(16) + inflight);
        assert_eq!(u.total.tokens_out, 270);
        let models: Vec<_> = u
            .models
            .iter()
            .map(|m| {
                (
                    m.model.as_str(),
                    m.requests,
                    m.tokens_in,
                    m.tokens_out,
                    m.cost(),
                )
            })
            .collect();
        assert_eq!(
            models,
            vec![
                ("m/dear", 2, 2000, 180, cents(12)),
                ("m/cheap", 3, 2000, 90, cents(4) + inflight),
            ]
        );
        assert_eq!(u.daily.len(), 30);
        assert_eq!(u.daily[29].date, jiff::civil::date(2025, 6, 15));
        assert_eq!(u.daily[29].usage.counted(), cents(6) + inflight);
        assert_eq!(u.daily[28].usage.counted(), cents(3));
        assert_eq!(u.daily[14].date, jiff::civil::date(2025, 5, 31));
        assert_eq!(u.daily[14].usage.counted(), cents(7));
        assert_eq!(u.daily[0].date, jiff::civil::date(2025, 5, 17));

        let all = l.usage(None, &c, 1).unwrap();
        assert_eq!(all.total.counted(), cents(18) + inflight);
        let counts: Vec<_> = all.models.iter().map(|m| m.requests).collect();
        assert_eq!(counts, vec![2, 4]);

        let p = l.projects(&c).unwrap();
        assert_eq!(p.len(), 2);
        assert_eq!((p[0].project.as_str(), p[0].requests), ("/a", 5));
        assert_eq!(p[0].today, cents(6) + inflight);
        assert_eq!(p[0].month, cents(9) + inflight);
        assert_eq!(p[0].reserved_unsettled, inflight);
        assert_eq!((p[1].project.as_str(), p[1].total), ("/b", cents(2)));
        assert_consistent(&l);

        // Hand edits move model rows and tokens too; a project emptied by hand disappears.
        l.connection()
            .execute_batch(
                "UPDATE requests SET model = 'm/renamed' WHERE model = 'm/dear';
                 UPDATE requests SET tokens_in = 5 WHERE project = '/a';
                 UPDATE requests SET tokens_out = tokens_out + 1 WHERE project = '/a';
                 DELETE FROM requests WHERE project = '/b';",
            )
            .unwrap();
        assert_consistent(&l);
        assert_eq!(l.projects(&c).unwrap().len(), 1);
        let m = l.model_usage(Some("/a")).unwrap();
        assert_eq!(m[0].model, "m/renamed");
        assert_eq!(m[0].tokens_in, 10);
        assert!(l.model_usage(Some("/b")).unwrap().is_empty());
        l.connection()
            .execute_batch("DELETE FROM model_totals; UPDATE totals SET tokens_out = 0;")
            .unwrap();
        assert!(!l.check_rollups().unwrap().is_empty());
        l.rebuild_rollups().unwrap();
        assert_consistent(&l);
    }
}
