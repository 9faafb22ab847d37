//! The report's figures as data: what `frugal usage --json` prints and what Neovim receives
//! with the float. The types below are the shape; serde writes each struct as an object whose
//! keys are the field names.
//!
//! Amounts of money are [`Money`] objects `{"usd": 0.0042, "picos": 4200000000, "text":
//! "$0.0042"}`: `picos` is exact (integer picodollars, 1e-12 USD, as in the ledger), `usd` is the
//! same as a float for convenience, `text` is how the report shows it. Dates are local calendar
//! dates (`"2025-06-15"`); instants are unix milliseconds.
//!
//! ```text
//! {
//!   "version": 1,
//!   "view": "project" | "all",
//!   "now": "2025-06-15T12:00:00+02:00[Europe/Paris]",   // the local time the report is for
//!   "project": "/home/me/app" | null,                     // null in the "all" view
//!   "file": {                                             // the project's .frugal.toml
//!     "path": "/home/me/app/.frugal.toml" | null,
//!     "state": "trusted" | "untrusted" | "absent" | "invalid: <message>" | "read by the CLI"
//!   },
//!   "spend": {                  // the project ("project" view) or all projects ("all" view)
//!     "today" | "month" | "total": {
//!       "start_ms": int | null, "end_ms": int | null,     // the period (null for total)
//!       "spent": Money,          // billed
//!       "reserved": Money,       // reserved by requests in flight or not yet settled
//!       "counted": Money,        // spent + reserved: what the caps count
//!       "completion_tokens": int,
//!       "cap": Money | null,     // the cap of this period that applies (null: none)
//!       "percent": int | null,   // counted / cap in whole percent, rounded down
//!       "level": "ok" | "warn" | "over" | null   // warn from warn_at (80 % if unset),
//!     },                                          // over from 100 %
//!     "per_request_cap": Money | null,
//!     "forecast": {             // this month at the last 7 days' pace, caps ignored
//!       "month_end": Money,
//!       "cap_reached_on": "2026-12-24" | null   // the day the monthly cap (the project's;
//!     }                         // the global one in "global") stops requests at that pace:
//!   },                          // null with no cap or not this month, past when reached
//!   "global": { same as "spend", for all projects against the global caps },
//!   "models": [                 // all time, by cost (descending)
//!     { "model": "anthropic/claude-sonnet-4.5", "requests": int, "tokens_in": int,
//!       "tokens_out": int, "spent": Money, "reserved": Money, "cost": Money,
//!       "tokens_cached": int,    // prompt tokens read from the provider's cache
//!       "cache_saved": Money,    // what that saved against the prompt price (gross: cache
//!                                // writes' premium is in the cost already)
//!       "hunks_proposed": int, "hunks_accepted": int,   // its edits' hunks (this scope)
//!       "cost_per_accepted_hunk": Money | null }   // its edit spend (follow-ups included)
//!   ],                           // over its accepted hunks; null when none accepted
//!   "cache": { "tokens_cached": int, "saved": Money },   // the models' sums
//!   "daily": [                  // the last 30 local days, oldest first, today last
//!     { "date": "2025-06-15", "cost": Money }
//!   ],
//!   "daily_max": { "date": "2025-06-03", "cost": Money } | null,   // null: nothing spent
//!   "reviews": {                // :LlmReview (the judge), all time, in this view's scope;
//!                               // counted in "spend" and "models" too, shown apart
//!     "requests": int, "spent": Money, "reserved": Money, "cost": Money
//!   },
//!   "projects": [               // "all" view only (empty otherwise), by total (descending)
//!     { "project": "/home/me/app", "today": Money, "month": Money, "total": Money,
//!       "reserved": Money, "requests": int }
//!   ],
//!   "key": {                    // the OpenRouter key (GET /key)
//!     "status": "known" | "unknown" | "unreachable" | "not_fetched",
//!     // only when "known":
//!     "label": string, "usage": Money, "usage_daily": Money, "usage_monthly": Money,
//!     "limit": Money | null, "limit_remaining": Money | null, "limit_reset": string | null
//!   },
//!   "key_spend": {              // the key the project's requests use, unless it is api_key
//!     "key_id": "bound:<hash>" | "named:<name>",          // as the ledger names it
//!     "bound_key": string | null,    // the name of the key :LlmKey create bound, if that one
//!     "ledger_today": Money, "ledger_month": Money,  // through it in the UTC day / month
//!     "elsewhere_today": Money | null,  // usage_daily of GET /key minus ledger_today, when
//!     "elsewhere_month": Money | null   // over $0.01 (spend the ledger does not know); same
//!   } | null,                           // for the month; null in the "all" view
//!   "footprint": {              // an estimate from completion tokens
//!     "source": string, "gco2e_per_token": float, "ml_water_per_token": float,
//!     "today" | "month" | "total": { "completion_tokens": int, "gco2e": float, "ml_water": float }
//!   }
//! }
//! ```
//!
//! Every key is always present (`null` when empty), except the `"known"`-only fields of `key`.
//! A float that is not finite (a broken `GET /key` answer) is written as `null` in JSON.
//! [`ReportData::to_pretty_json`] sorts the keys of every object, as `frugal usage --json` has
//! always printed them; the declaration order below follows the shape above instead.

use serde::Serialize;

use super::report::{Figures, KeyInfo, Limits};
use super::text;
use crate::budget::ledger::{Forecast, UsageFigures};
use crate::budget::Usd;

/// The version of this shape, bumped when a field changes meaning or goes away.
pub const VERSION: u32 = 1;

/// The whole report as data.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ReportData {
    /// [`VERSION`].
    pub version: u32,
    pub view: View,
    /// The local time the report is for, with its time zone.
    pub now: String,
    /// The project's root; `None` in the `all` view.
    pub project: Option<String>,
    pub file: ProjectFile,
    /// The project ([`View::Project`]) or all projects ([`View::All`]) against the caps that
    /// apply to them.
    pub spend: Spend,
    /// All projects against the global caps.
    pub global: Spend,
    /// All time, by cost (descending).
    pub models: Vec<ModelRow>,
    /// The models' cached prompt tokens and savings, summed.
    pub cache: CacheTotals,
    /// The last 30 local days, oldest first, today last.
    pub daily: Vec<DayCost>,
    /// The dearest of those days; `None` when nothing was spent.
    pub daily_max: Option<DayCost>,
    /// `:LlmReview` (the judge), all time, in this view's scope (also counted in `spend`).
    pub reviews: Reviews,
    /// [`View::All`] only (empty otherwise), by total (descending).
    pub projects: Vec<ProjectRow>,
    /// The OpenRouter key (`GET /key`).
    pub key: KeyStatus,
    /// The key the project's requests use, when it is not `api_key`.
    pub key_spend: Option<KeySpendData>,
    pub footprint: Footprint,
}

/// One project or all of them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum View {
    Project,
    All,
}

/// The project's `.frugal.toml`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ProjectFile {
    pub path: Option<String>,
    /// `trusted` | `untrusted` | `absent` | `invalid: <message>` | `read by the CLI`.
    pub state: String,
}

/// An amount of money, exact and as shown.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Money {
    /// The amount as a float, for convenience.
    pub usd: f64,
    /// The exact amount in picodollars (1e-12 USD), as in the ledger.
    pub picos: i64,
    /// How the report shows it.
    pub text: String,
}

impl Money {
    /// An amount from the ledger.
    pub fn exact(u: Usd) -> Money {
        Money {
            usd: u.to_f64(),
            picos: u.0,
            text: u.to_string(),
        }
    }

    /// A dollar figure OpenRouter sent as a JSON number: `usd` as sent, `picos` as near as
    /// exact, `text` as [`text::money_f64`] shows it.
    pub fn from_f64(x: f64) -> Money {
        let exact = if x.is_finite() {
            Usd::from_cost_f64(x.abs())
                .ok()
                .map(|u| if x < 0.0 { Usd(-u.0) } else { u })
        } else {
            None
        };
        // Out of the exact range: the nearest integer, saturating (`as` maps NaN to 0).
        let picos = exact.map_or((x * 1e12).round() as i64, |u| u.0);
        Money {
            usd: x,
            picos,
            text: text::money_f64(x),
        }
    }
}

/// Spend against caps, per period.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Spend {
    pub today: PeriodSpend,
    pub month: PeriodSpend,
    pub total: PeriodSpend,
    pub per_request_cap: Option<Money>,
    /// Where this month ends at the last 7 days' pace.
    pub forecast: ForecastData,
}

/// This month's end at the last 7 days' pace (caps ignored), and the local day a monthly cap
/// stops requests at that pace.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ForecastData {
    pub month_end: Money,
    /// `YYYY-MM-DD`; `None` with no monthly cap or when the month ends first; a past date
    /// when already reached.
    pub cap_reached_on: Option<String>,
}

impl From<&Forecast> for ForecastData {
    fn from(f: &Forecast) -> ForecastData {
        ForecastData {
            month_end: Money::exact(f.month_end),
            cap_reached_on: f.cap_reached_on.map(|d| d.to_string()),
        }
    }
}

/// One period's spend against its cap.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PeriodSpend {
    /// The period's start in unix milliseconds; `None` for the total.
    pub start_ms: Option<i64>,
    /// The period's end (exclusive); `None` for the total.
    pub end_ms: Option<i64>,
    /// Billed.
    pub spent: Money,
    /// Reserved by requests in flight or not yet settled.
    pub reserved: Money,
    /// `spent + reserved`: what the caps count.
    pub counted: Money,
    pub completion_tokens: i64,
    /// The cap of this period that applies; `None`: no cap.
    pub cap: Option<Money>,
    /// `counted / cap` in whole percent, rounded down; `None` without a cap.
    pub percent: Option<u64>,
    /// `None` without a cap.
    pub level: Option<Level>,
}

/// How full a cap is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Level {
    /// Below the caps' `warn_at`.
    #[serde(rename = "ok")]
    Normal,
    /// From `warn_at` (80 % when unset).
    Warn,
    /// From 100 %.
    Over,
}

impl From<text::Level> for Level {
    fn from(l: text::Level) -> Level {
        match l {
            text::Level::Normal => Level::Normal,
            text::Level::Warn => Level::Warn,
            text::Level::Over => Level::Over,
        }
    }
}

/// One model, all time.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ModelRow {
    pub model: String,
    pub requests: i64,
    pub tokens_in: i64,
    pub tokens_out: i64,
    pub spent: Money,
    pub reserved: Money,
    /// `spent + reserved`.
    pub cost: Money,
    /// Prompt tokens read from the provider's cache.
    pub tokens_cached: i64,
    /// What reading them from the cache saved against the prompt price (0 where unknown).
    pub cache_saved: Money,
    /// Hunks its edits proposed (in this view's scope; `:LlmApply` adds none).
    pub hunks_proposed: u32,
    /// Of those, accepted.
    pub hunks_accepted: u32,
    /// Its edit spend (follow-ups included) over its accepted hunks; `None`: none accepted.
    pub cost_per_accepted_hunk: Option<Money>,
}

/// Cached prompt tokens and what they saved, over every model of the scope.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CacheTotals {
    pub tokens_cached: i64,
    pub saved: Money,
}

/// One local day's spend (counted: spent + reserved).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DayCost {
    /// `YYYY-MM-DD`.
    pub date: String,
    pub cost: Money,
}

/// What the judge's reviews cost, apart from edits.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Reviews {
    pub requests: i64,
    pub spent: Money,
    pub reserved: Money,
    /// `spent + reserved`.
    pub cost: Money,
}

/// One project in the `all` view.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ProjectRow {
    pub project: String,
    pub today: Money,
    pub month: Money,
    pub total: Money,
    /// Reserved and not yet settled.
    pub reserved: Money,
    pub requests: i64,
}

/// The OpenRouter key's figures, tagged by `status`.
// One per report: boxing `Known` would save nothing worth a less direct shape.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum KeyStatus {
    /// Not fetched yet.
    Unknown,
    /// `GET /key` failed.
    Unreachable,
    /// Not asked (the CLI does not call OpenRouter).
    NotFetched,
    /// OpenRouter's answer.
    Known {
        label: String,
        /// All time.
        usage: Money,
        /// OpenRouter's current UTC day.
        usage_daily: Money,
        /// OpenRouter's current UTC month.
        usage_monthly: Money,
        limit: Option<Money>,
        limit_remaining: Option<Money>,
        /// `daily` / `weekly` / `monthly`; `None`: never resets.
        limit_reset: Option<String>,
    },
}

/// Spend through the project's key, from the ledger and from OpenRouter, in UTC periods.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct KeySpendData {
    /// `bound:<hash>` or `named:<name>`.
    pub key_id: String,
    /// The name of the key `:LlmKey create` bound, when that is the one.
    pub bound_key: Option<String>,
    /// The ledger's spend through the key in the UTC day.
    pub ledger_today: Money,
    /// The same in the UTC month.
    pub ledger_month: Money,
    /// `usage_daily` minus `ledger_today`, when over $0.01.
    pub elsewhere_today: Option<Money>,
    /// `usage_monthly` minus `ledger_month`, when over $0.01.
    pub elsewhere_month: Option<Money>,
}

/// The footprint estimate from completion tokens.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Footprint {
    /// Where the factors come from.
    pub source: String,
    pub gco2e_per_token: f64,
    pub ml_water_per_token: f64,
    pub today: FootprintPeriod,
    pub month: FootprintPeriod,
    pub total: FootprintPeriod,
}

/// One period's footprint.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FootprintPeriod {
    pub completion_tokens: i64,
    pub gco2e: f64,
    pub ml_water: f64,
}

impl ReportData {
    /// The data of the report on `f`.
    pub(super) fn new(f: &Figures) -> ReportData {
        let req = f.req;
        let fp = |tokens: i64| {
            let (gco2e, ml_water) = f.footprint_of(tokens);
            FootprintPeriod {
                completion_tokens: tokens,
                gco2e,
                ml_water,
            }
        };
        ReportData {
            version: VERSION,
            view: if req.all { View::All } else { View::Project },
            now: f.now.to_string(),
            project: f.project.map(str::to_string),
            file: ProjectFile {
                path: req.file_path.clone(),
                state: req.file_state.text(),
            },
            spend: spend(f, &f.figures, &f.scope_limits(), &f.forecast),
            global: spend(f, &f.global, &f.global_limits(), &f.global_forecast),
            models: f
                .figures
                .models
                .iter()
                .map(|m| {
                    let h = f.hunks_of(&m.model);
                    ModelRow {
                        hunks_proposed: h.map_or(0, |h| h.proposed),
                        hunks_accepted: h.map_or(0, |h| h.accepted),
                        cost_per_accepted_hunk: h
                            .and_then(|h| h.cost_per_accepted())
                            .map(Money::exact),
                        model: m.model.clone(),
                        requests: m.requests,
                        tokens_in: m.tokens_in,
                        tokens_out: m.tokens_out,
                        spent: Money::exact(m.spent),
                        reserved: Money::exact(m.reserved),
                        cost: Money::exact(m.cost()),
                        tokens_cached: m.tokens_cached,
                        cache_saved: Money::exact(m.cache_saved),
                    }
                })
                .collect(),
            cache: {
                let (tokens_cached, saved) = f.cache_totals();
                CacheTotals {
                    tokens_cached,
                    saved: Money::exact(saved),
                }
            },
            daily: f
                .figures
                .daily
                .iter()
                .map(|d| day_cost(d.date, d.usage.counted()))
                .collect(),
            daily_max: f.spark_max().map(|(date, cost)| day_cost(date, cost)),
            reviews: Reviews {
                requests: f.reviews.requests,
                spent: Money::exact(f.reviews.spent),
                reserved: Money::exact(f.reviews.reserved),
                cost: Money::exact(f.reviews.counted()),
            },
            projects: f
                .projects
                .iter()
                .map(|p| ProjectRow {
                    project: p.project.clone(),
                    today: Money::exact(p.today),
                    month: Money::exact(p.month),
                    total: Money::exact(p.total),
                    reserved: Money::exact(p.reserved_unsettled),
                    requests: p.requests,
                })
                .collect(),
            key: KeyStatus::from(&req.key_info),
            key_spend: match (&req.key_id, f.key_spend) {
                (Some(id), Some(ks)) => {
                    let (today, month) = f.key_elsewhere();
                    Some(KeySpendData {
                        key_id: id.clone(),
                        bound_key: req.bound_key.clone(),
                        ledger_today: Money::exact(ks.today),
                        ledger_month: Money::exact(ks.month),
                        elsewhere_today: today.map(Money::exact),
                        elsewhere_month: month.map(Money::exact),
                    })
                }
                _ => None,
            },
            footprint: Footprint {
                source: req.footprint.source.clone(),
                gco2e_per_token: req.footprint.gco2e_per_token,
                ml_water_per_token: req.footprint.ml_water_per_token,
                today: fp(f.figures.today.tokens_out),
                month: fp(f.figures.month.tokens_out),
                total: fp(f.figures.total.tokens_out),
            },
        }
    }

    /// Pretty-printed JSON with the keys of every object sorted, as `frugal usage --json`
    /// prints it (going through [`serde_json::Value`], whose objects keep their keys sorted).
    pub fn to_pretty_json(&self) -> serde_json::Result<String> {
        serde_json::to_string_pretty(&serde_json::to_value(self)?)
    }
}

fn day_cost(date: jiff::civil::Date, cost: Usd) -> DayCost {
    DayCost {
        date: date.to_string(),
        cost: Money::exact(cost),
    }
}

/// `u` against `limits`, period by period.
fn spend(f: &Figures, u: &UsageFigures, limits: &Limits, forecast: &Forecast) -> Spend {
    let [today, month, total] = f.periods(u, limits).map(|p| {
        let counted = p.usage.counted();
        let fill = p.fill();
        PeriodSpend {
            start_ms: p.bounds.map(|b| b.0),
            end_ms: p.bounds.map(|b| b.1),
            spent: Money::exact(p.usage.spent),
            reserved: Money::exact(p.usage.reserved),
            counted: Money::exact(counted),
            completion_tokens: p.usage.tokens_out,
            cap: p.cap.map(Money::exact),
            percent: fill.map(|x| x.0),
            level: fill.map(|x| x.1.into()),
        }
    });
    Spend {
        today,
        month,
        total,
        per_request_cap: limits.caps.per_request.map(Money::exact),
        forecast: forecast.into(),
    }
}

impl From<&KeyInfo> for KeyStatus {
    fn from(k: &KeyInfo) -> KeyStatus {
        match k {
            KeyInfo::Unknown => KeyStatus::Unknown,
            KeyInfo::Unreachable => KeyStatus::Unreachable,
            KeyInfo::NotFetched => KeyStatus::NotFetched,
            KeyInfo::Known {
                label,
                limit,
                limit_remaining,
                limit_reset,
                usage,
                usage_daily,
                usage_monthly,
            } => KeyStatus::Known {
                label: label.clone(),
                usage: Money::from_f64(*usage),
                usage_daily: Money::from_f64(*usage_daily),
                usage_monthly: Money::from_f64(*usage_monthly),
                limit: limit.map(Money::from_f64),
                limit_remaining: limit_remaining.map(Money::from_f64),
                limit_reset: limit_reset.clone(),
            },
        }
    }
}
