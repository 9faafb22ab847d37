//! `:LlmUsage` and `frugal usage`: the spend report. Rust builds it (text, highlights and the
//! same figures as JSON); the shim only puts the lines in a float.
//!
//! Every figure comes from the trigger-kept tables of the ledger (`totals`, `rollups`,
//! `model_totals`), never from a scan of `requests`, so building a report takes about as long
//! on a million requests as on ten.
//!
//! # JSON shape (`Report::json`, `frugal usage --json`)
//!
//! Amounts of money are objects `{"usd": 0.0042, "picos": 4200000000, "text": "$0.0042"}`:
//! `picos` is exact (integer picodollars, 1e-12 USD, as in the ledger), `usd` is the same as a
//! float for convenience, `text` is how the report shows it. Dates are local calendar dates
//! (`"2025-06-15"`); instants are unix milliseconds.
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
//!       "level": "ok" | "warn" | "over" | null   // warn from 80 %, over from 100 %
//!     },
//!     "per_request_cap": Money | null
//!   },
//!   "global": { same as "spend", for all projects against the global caps },
//!   "models": [                 // all time, by cost (descending)
//!     { "model": "anthropic/claude-sonnet-4.5", "requests": int, "tokens_in": int,
//!       "tokens_out": int, "spent": Money, "reserved": Money, "cost": Money }
//!   ],
//!   "daily": [                  // the last 30 local days, oldest first, today last
//!     { "date": "2025-06-15", "cost": Money }
//!   ],
//!   "daily_max": { "date": "2025-06-03", "cost": Money } | null,   // null: nothing spent
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
//!   "footprint": {              // an estimate from completion tokens
//!     "source": string, "gco2e_per_token": float, "ml_water_per_token": float,
//!     "today" | "month" | "total": { "completion_tokens": int, "gco2e": float, "ml_water": float }
//!   }
//! }
//! ```

pub mod cli;
pub mod text;

use serde_json::{json, Value};

use crate::budget::ledger::{ProjectSpend, UsageFigures};
use crate::budget::{Caps, Clock, FixedClock, Ledger, LedgerError, Usd};
use text::{Level, Line};

/// Days in the sparkline.
pub const SPARK_DAYS: usize = 30;

/// Cells of a cap's bar.
pub const BAR_WIDTH: usize = 20;

/// The width used when the caller gives 0.
pub const DEFAULT_WIDTH: usize = 72;

/// Highlight groups, all linked by the shim to defaults.
pub mod hl {
    /// Section headings.
    pub const TITLE: &str = "FrugalUsageTitle";
    /// Row labels.
    pub const LABEL: &str = "FrugalUsageLabel";
    /// Amounts of money.
    pub const MONEY: &str = "FrugalUsageMoney";
    /// The filled part of a bar below 80 %.
    pub const BAR_FILL: &str = "FrugalUsageBarFill";
    /// The empty part of a bar.
    pub const BAR_EMPTY: &str = "FrugalUsageBarEmpty";
    /// A cap reached (≥ 100 %): its bar's filled part and its percentage.
    pub const OVER: &str = "FrugalUsageOver";
    /// A cap nearly reached (≥ 80 %).
    pub const WARN: &str = "FrugalUsageWarn";
    /// Secondary text.
    pub const DIM: &str = "FrugalUsageDim";
    /// Sparkline days with spend.
    pub const SPARK: &str = "FrugalUsageSpark";
}

/// The OpenRouter key's own figures (`GET /key`), in USD as OpenRouter sends them.
#[derive(Debug, Clone, PartialEq)]
pub enum KeyInfo {
    /// Not fetched yet: shown as `…`.
    Unknown,
    /// The request failed.
    Unreachable,
    /// Not asked at all (the CLI does not call OpenRouter).
    NotFetched,
    /// OpenRouter answered.
    Known {
        /// The key's label (OpenRouter shows a masked form of the key, never the key).
        label: String,
        /// Credit limit, if any.
        limit: Option<f64>,
        /// What is left of the limit.
        limit_remaining: Option<f64>,
        /// `daily` / `weekly` / `monthly`, or none.
        limit_reset: Option<String>,
        /// All-time usage.
        usage: f64,
        /// Usage in OpenRouter's current UTC day.
        usage_daily: f64,
        /// Usage in OpenRouter's current UTC month.
        usage_monthly: f64,
    },
}

/// Grams of CO2e and millilitres of water per completion token, and where they come from.
#[derive(Debug, Clone, PartialEq)]
pub struct FootprintFactors {
    /// g CO2e per completion token.
    pub gco2e_per_token: f64,
    /// mL of water per completion token.
    pub ml_water_per_token: f64,
    /// Named in the report.
    pub source: String,
}

impl Default for FootprintFactors {
    /// Mistral's published life-cycle figures: 1.14 gCO2e and 45 mL of water for a 400-token
    /// answer.
    fn default() -> Self {
        FootprintFactors {
            gco2e_per_token: 1.14 / 400.0,
            ml_water_per_token: 45.0 / 400.0,
            source: "Mistral AI's life-cycle analysis of Mistral Large 2 (2025): 1.14 gCO2e \
                     and 45 mL of water for a 400-token answer"
                .into(),
        }
    }
}

/// What to report on.
#[derive(Debug, Clone, PartialEq)]
pub struct ReportRequest {
    /// The project's canonical root; ignored with `all`.
    pub project: Option<String>,
    /// Every project instead of one.
    pub all: bool,
    /// The caps that apply to this project.
    pub project_caps: Caps,
    /// The caps over all projects together.
    pub global_caps: Caps,
    /// `trusted` | `untrusted` | `absent` | `invalid: <message>`, or any other text shown as is.
    pub file_state: String,
    /// The project file's path.
    pub file_path: Option<String>,
    /// The OpenRouter key's figures.
    pub key_info: KeyInfo,
    /// Footprint factors.
    pub footprint: FootprintFactors,
    /// Target width in display cells (0: [`DEFAULT_WIDTH`]).
    pub width: usize,
}

impl Default for ReportRequest {
    fn default() -> Self {
        ReportRequest {
            project: None,
            all: true,
            project_caps: Caps::default(),
            global_caps: Caps::default(),
            file_state: "absent".into(),
            file_path: None,
            key_info: KeyInfo::Unknown,
            footprint: FootprintFactors::default(),
            width: DEFAULT_WIDTH,
        }
    }
}

/// The report: lines for a float, their highlights, and the same figures as data.
#[derive(Debug, Clone, PartialEq)]
pub struct Report {
    /// The float's title.
    pub title: String,
    /// The lines (no trailing spaces, no newlines).
    pub lines: Vec<String>,
    /// `(line, byte col start, byte col end, group)`, 0-based, end exclusive: ready for
    /// `nvim_buf_add_highlight` / `nvim_buf_set_extmark`.
    pub highlights: Vec<(usize, usize, usize, &'static str)>,
    /// The widest line in display cells.
    pub width: usize,
    /// The figures as data; see the module documentation for the shape.
    pub json: Value,
}

/// Builds the report for `req` from the ledger, as of `clock`'s now.
///
/// Fails with [`LedgerError::Invalid`] when neither a project nor `all` is given.
pub fn build(
    ledger: &Ledger,
    clock: &dyn Clock,
    req: &ReportRequest,
) -> Result<Report, LedgerError> {
    let project = if req.all {
        None
    } else {
        match req.project.as_deref() {
            Some(p) if !p.is_empty() => Some(p),
            _ => return Err(LedgerError::Invalid("no project to report on".into())),
        }
    };
    // One instant for every figure: midnight cannot pass between two of them.
    let snap = FixedClock::new(clock.now());
    let figures = ledger.usage(project, &snap, SPARK_DAYS)?;
    let global = match project {
        None => figures.clone(),
        Some(_) => ledger.usage(None, &snap, 0)?,
    };
    let projects = if req.all {
        ledger.projects(&snap)?
    } else {
        Vec::new()
    };
    let data = Data {
        now: snap.now(),
        project,
        req,
        figures,
        global,
        projects,
    };
    Ok(data.report())
}

/// Everything the text and the JSON are made of.
struct Data<'a> {
    now: jiff::Zoned,
    project: Option<&'a str>,
    req: &'a ReportRequest,
    figures: UsageFigures,
    global: UsageFigures,
    projects: Vec<ProjectSpend>,
}

fn money(u: Usd) -> Value {
    json!({ "usd": u.to_f64(), "picos": u.0, "text": u.to_string() })
}

fn money_opt(u: Option<Usd>) -> Value {
    u.map_or(Value::Null, money)
}

fn money_f64(x: f64) -> Value {
    let picos = (x * 1e12).round();
    let exact = if x.is_finite() {
        Usd::from_cost_f64(x.abs())
            .ok()
            .map(|u| if x < 0.0 { Usd(-u.0) } else { u })
    } else {
        None
    };
    match exact {
        Some(u) => json!({ "usd": x, "picos": u.0, "text": text::money_f64(x) }),
        None => json!({ "usd": x, "picos": picos as i64, "text": text::money_f64(x) }),
    }
}

fn level_str(l: Level) -> &'static str {
    match l {
        Level::Normal => "ok",
        Level::Warn => "warn",
        Level::Over => "over",
    }
}

/// One period row: label, usage, cap.
struct Period {
    key: &'static str,
    label: &'static str,
    usage: crate::budget::ledger::PeriodUsage,
    cap: Option<Usd>,
    bounds: Option<(i64, i64)>,
}

impl Data<'_> {
    fn width(&self) -> usize {
        match self.req.width {
            0 => DEFAULT_WIDTH,
            w => w.clamp(40, 400),
        }
    }

    fn periods(&self, f: &UsageFigures, caps: &Caps) -> [Period; 3] {
        let day = crate::budget::day_bounds(&self.now);
        let month = crate::budget::month_bounds(&self.now);
        [
            Period {
                key: "today",
                label: "today",
                usage: f.today,
                cap: caps.daily,
                bounds: Some(day),
            },
            Period {
                key: "month",
                label: "this month",
                usage: f.month,
                cap: caps.monthly,
                bounds: Some(month),
            },
            Period {
                key: "total",
                label: "total",
                usage: f.total,
                cap: caps.total,
                bounds: None,
            },
        ]
    }

    fn spend_json(&self, f: &UsageFigures, caps: &Caps) -> Value {
        let mut obj = serde_json::Map::new();
        for p in self.periods(f, caps) {
            let counted = p.usage.counted();
            let pl = p.cap.map(|c| text::percent(counted, c));
            obj.insert(
                p.key.into(),
                json!({
                    "start_ms": p.bounds.map(|b| b.0),
                    "end_ms": p.bounds.map(|b| b.1),
                    "spent": money(p.usage.spent),
                    "reserved": money(p.usage.reserved),
                    "counted": money(counted),
                    "completion_tokens": p.usage.tokens_out,
                    "cap": money_opt(p.cap),
                    "percent": pl.map(|x| x.0),
                    "level": pl.map(|x| level_str(x.1)),
                }),
            );
        }
        obj.insert("per_request_cap".into(), money_opt(caps.per_request));
        Value::Object(obj)
    }

    fn spark_max(&self) -> Option<(jiff::civil::Date, Usd)> {
        let mut best: Option<(jiff::civil::Date, Usd)> = None;
        for d in &self.figures.daily {
            let v = d.usage.counted();
            // The latest day wins a tie: the most recent is the most useful to name.
            if v > Usd::ZERO && best.is_none_or(|b| v >= b.1) {
                best = Some((d.date, v));
            }
        }
        best
    }

    fn footprint_of(&self, tokens: i64) -> (f64, f64) {
        let f = &self.req.footprint;
        let t = tokens.max(0) as f64;
        (t * f.gco2e_per_token, t * f.ml_water_per_token)
    }

    fn json(&self) -> Value {
        let req = self.req;
        let scope_caps = if req.all {
            &req.global_caps
        } else {
            &req.project_caps
        };
        let models: Vec<Value> = self
            .figures
            .models
            .iter()
            .map(|m| {
                json!({
                    "model": m.model,
                    "requests": m.requests,
                    "tokens_in": m.tokens_in,
                    "tokens_out": m.tokens_out,
                    "spent": money(m.spent),
                    "reserved": money(m.reserved),
                    "cost": money(m.cost()),
                })
            })
            .collect();
        let daily: Vec<Value> = self
            .figures
            .daily
            .iter()
            .map(|d| json!({ "date": d.date.to_string(), "cost": money(d.usage.counted()) }))
            .collect();
        let projects: Vec<Value> = self
            .projects
            .iter()
            .map(|p| {
                json!({
                    "project": p.project,
                    "today": money(p.today),
                    "month": money(p.month),
                    "total": money(p.total),
                    "reserved": money(p.reserved_unsettled),
                    "requests": p.requests,
                })
            })
            .collect();
        let key = match &req.key_info {
            KeyInfo::Unknown => json!({ "status": "unknown" }),
            KeyInfo::Unreachable => json!({ "status": "unreachable" }),
            KeyInfo::NotFetched => json!({ "status": "not_fetched" }),
            KeyInfo::Known {
                label,
                limit,
                limit_remaining,
                limit_reset,
                usage,
                usage_daily,
                usage_monthly,
            } => json!({
                "status": "known",
                "label": label,
                "usage": money_f64(*usage),
                "usage_daily": money_f64(*usage_daily),
                "usage_monthly": money_f64(*usage_monthly),
                "limit": limit.map_or(Value::Null, money_f64),
                "limit_remaining": limit_remaining.map_or(Value::Null, money_f64),
                "limit_reset": limit_reset,
            }),
        };
        let fp = |tokens: i64| {
            let (g, ml) = self.footprint_of(tokens);
            json!({ "completion_tokens": tokens, "gco2e": g, "ml_water": ml })
        };
        json!({
            "version": 1,
            "view": if req.all { "all" } else { "project" },
            "now": self.now.to_string(),
            "project": self.project,
            "file": { "path": req.file_path, "state": req.file_state },
            "spend": self.spend_json(&self.figures, scope_caps),
            "global": self.spend_json(&self.global, &req.global_caps),
            "models": models,
            "daily": daily,
            "daily_max": self.spark_max().map(|(d, v)| json!({ "date": d.to_string(), "cost": money(v) })),
            "projects": projects,
            "key": key,
            "footprint": {
                "source": req.footprint.source,
                "gco2e_per_token": req.footprint.gco2e_per_token,
                "ml_water_per_token": req.footprint.ml_water_per_token,
                "today": fp(self.figures.today.tokens_out),
                "month": fp(self.figures.month.tokens_out),
                "total": fp(self.figures.total.tokens_out),
            },
        })
    }

    fn report(&self) -> Report {
        let mut doc = Doc::default();
        let w = self.width();
        let req = self.req;
        if let Some(project) = self.project {
            let mut l = Line::default();
            l.left("Project", 9, Some(hl::LABEL))
                .push(&text::truncate_start(project, w.saturating_sub(9).max(10)));
            doc.push(l);
            self.file_lines(&mut doc, w);
            doc.blank();
            self.spend_block(&mut doc, "Spend", &self.figures, &req.project_caps, w);
            if req.global_caps.any() {
                doc.blank();
                self.spend_block(
                    &mut doc,
                    "All projects (global caps)",
                    &self.global,
                    &req.global_caps,
                    w,
                );
            }
        } else {
            self.spend_block(
                &mut doc,
                "Spend, all projects",
                &self.figures,
                &req.global_caps,
                w,
            );
            doc.blank();
            self.projects_block(&mut doc, w);
        }
        doc.blank();
        self.models_block(&mut doc, w);
        doc.blank();
        self.spark_block(&mut doc, w);
        doc.blank();
        self.key_block(&mut doc, w);
        doc.blank();
        self.footprint_block(&mut doc, w);
        let title = match self.project {
            Some(p) => {
                let name = std::path::Path::new(p)
                    .file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_else(|| p.to_string());
                format!("frugal usage: {name}")
            }
            None => "frugal usage: all projects".into(),
        };
        doc.finish(title, self.json())
    }

    fn file_lines(&self, doc: &mut Doc, w: usize) {
        let req = self.req;
        let state = req.file_state.as_str();
        let (msg, group): (String, Option<&'static str>) = match state {
            "trusted" => ("trusted".into(), None),
            "untrusted" => (
                "untrusted, ignored: open it and run :trust".into(),
                Some(hl::WARN),
            ),
            "absent" => (
                "none (no .frugal.toml: the caps from setup() apply)".into(),
                Some(hl::DIM),
            ),
            s if s.starts_with("invalid") => (
                format!("{s} (no request is sent until it is fixed)"),
                Some(hl::OVER),
            ),
            s => (s.to_string(), None),
        };
        let mut l = Line::default();
        l.left("File", 9, Some(hl::LABEL));
        if let Some(path) = &req.file_path {
            if state != "absent" {
                l.push(&text::truncate_start(path, w.saturating_sub(9).max(10)));
                doc.push(l);
                l = Line::default();
                l.push(&" ".repeat(9));
            }
        }
        let mut first = true;
        for part in text::wrap(&msg, w.saturating_sub(9).max(20)) {
            if !first {
                l = Line::default();
                l.push(&" ".repeat(9));
            }
            first = false;
            l.hl(&part, group);
            doc.push(std::mem::take(&mut l));
        }
    }

    fn spend_block(&self, doc: &mut Doc, heading: &str, f: &UsageFigures, caps: &Caps, w: usize) {
        let mut h = Line::default();
        h.hl(heading, Some(hl::TITLE));
        doc.push(h);
        let periods = self.periods(f, caps);
        let mw = periods
            .iter()
            .flat_map(|p| {
                [
                    Some(p.usage.counted().to_string()),
                    p.cap.map(|c| c.to_string()),
                ]
            })
            .flatten()
            .chain([f.total.reserved.to_string()])
            .chain(caps.per_request.map(|c| c.to_string()))
            .map(|s| text::cells(&s))
            .max()
            .unwrap_or(5);
        // 2 + 12 label + money + "  of " + money + "  " + bar + " " + 4 pct.
        let fixed = 2 + 12 + mw + 5 + mw + 2 + 1 + 5;
        let bar = w.saturating_sub(fixed).clamp(8, BAR_WIDTH);
        for p in &periods {
            let counted = p.usage.counted();
            let mut l = Line::default();
            l.push("  ").left(p.label, 12, Some(hl::LABEL));
            l.right(&counted.to_string(), mw, Some(hl::MONEY));
            match p.cap {
                Some(cap) => {
                    let (pct, level) = text::percent(counted, cap);
                    let fill = text::bar_fill(counted, cap, bar);
                    let fill_group = match level {
                        Level::Normal => hl::BAR_FILL,
                        Level::Warn => hl::WARN,
                        Level::Over => hl::OVER,
                    };
                    let pct_group = match level {
                        Level::Normal => None,
                        Level::Warn => Some(hl::WARN),
                        Level::Over => Some(hl::OVER),
                    };
                    l.hl("  of ", Some(hl::DIM));
                    l.right(&cap.to_string(), mw, Some(hl::MONEY));
                    l.push("  ");
                    l.hl(&"█".repeat(fill), Some(fill_group));
                    l.hl(&"░".repeat(bar - fill), Some(hl::BAR_EMPTY));
                    l.push(" ").right(&format!("{pct}%"), 4, pct_group);
                }
                None => {
                    l.hl("  no cap", Some(hl::DIM));
                }
            }
            doc.push(l);
        }
        if let Some(cap) = caps.per_request {
            let mut l = Line::default();
            l.push("  ").left("per request", 12, Some(hl::LABEL));
            l.right("", mw, None);
            l.hl("  cap ", Some(hl::DIM))
                .hl(&cap.to_string(), Some(hl::MONEY));
            doc.push(l);
        }
        if f.total.reserved > Usd::ZERO {
            let mut l = Line::default();
            l.push("  ").left("reserved", 12, Some(hl::LABEL));
            l.right(&f.total.reserved.to_string(), mw, Some(hl::MONEY));
            l.hl(
                "  in flight or not yet settled (counted above)",
                Some(hl::DIM),
            );
            doc.push(l);
        }
    }

    fn projects_block(&self, doc: &mut Doc, w: usize) {
        let rows: Vec<Vec<Cell>> = self
            .projects
            .iter()
            .map(|p| {
                vec![
                    Cell::plain(&p.project),
                    Cell::money(p.today),
                    Cell::money(p.month),
                    Cell::money(p.total),
                    Cell::plain(&text::group(p.requests)),
                ]
            })
            .collect();
        table(
            doc,
            &["Projects", "today", "this month", "total", "requests"],
            rows,
            w,
            true,
            "no requests yet",
        );
    }

    fn models_block(&self, doc: &mut Doc, w: usize) {
        let rows: Vec<Vec<Cell>> = self
            .figures
            .models
            .iter()
            .map(|m| {
                vec![
                    Cell::plain(&m.model),
                    Cell::plain(&text::group(m.requests)),
                    Cell::plain(&text::group(m.tokens_in)),
                    Cell::plain(&text::group(m.tokens_out)),
                    Cell::money(m.cost()),
                ]
            })
            .collect();
        table(
            doc,
            &[
                "Models (all time)",
                "requests",
                "prompt",
                "completion",
                "cost",
            ],
            rows,
            w,
            false,
            "no requests yet",
        );
    }

    fn spark_block(&self, doc: &mut Doc, w: usize) {
        let daily = &self.figures.daily;
        let mut h = Line::default();
        h.hl(&format!("Last {} days", daily.len()), Some(hl::TITLE));
        if let (Some(first), Some(last)) = (daily.first(), daily.last()) {
            h.hl(&format!("  {} – {}", first.date, last.date), Some(hl::DIM));
        }
        doc.push(h);
        let max = self.spark_max();
        let mut l = Line::default();
        l.push("  ");
        for d in daily {
            let v = d.usage.counted();
            let c = text::spark(v, max.map_or(Usd::ZERO, |m| m.1));
            let group = if v > Usd::ZERO { hl::SPARK } else { hl::DIM };
            l.hl(c.encode_utf8(&mut [0; 4]), Some(group));
        }
        let note = match max {
            Some((date, v)) => {
                let mut n = Line::default();
                n.hl("max ", Some(hl::DIM))
                    .hl(&v.to_string(), Some(hl::MONEY))
                    .hl(&format!(" on {date}"), Some(hl::DIM));
                n
            }
            None => {
                let mut n = Line::default();
                n.hl("nothing spent", Some(hl::DIM));
                n
            }
        };
        if l.cells + 2 + note.cells <= w {
            l.push("  ");
            append(&mut l, note);
            doc.push(l);
        } else {
            doc.push(l);
            let mut l2 = Line::default();
            l2.push("  ");
            append(&mut l2, note);
            doc.push(l2);
        }
    }

    fn key_block(&self, doc: &mut Doc, w: usize) {
        let mut h = Line::default();
        h.hl("OpenRouter key", Some(hl::TITLE));
        match &self.req.key_info {
            KeyInfo::Unknown => {
                h.push("  ").hl("…", Some(hl::DIM));
                doc.push(h);
            }
            KeyInfo::Unreachable => {
                h.push("  ").hl("unreachable", Some(hl::WARN));
                doc.push(h);
            }
            KeyInfo::NotFetched => {
                h.push("  ").hl("not fetched by the CLI", Some(hl::DIM));
                doc.push(h);
            }
            KeyInfo::Known {
                label,
                limit,
                limit_remaining,
                limit_reset,
                usage,
                usage_daily,
                usage_monthly,
            } => {
                if !label.is_empty() {
                    let room = w.saturating_sub(h.cells + 2).max(8);
                    h.push("  ")
                        .hl(&text::truncate_end(label, room), Some(hl::DIM));
                }
                doc.push(h);
                let mut l = Line::default();
                l.push("  ").left("usage", 12, Some(hl::LABEL));
                l.hl("today ", Some(hl::DIM))
                    .hl(&text::money_f64(*usage_daily), Some(hl::MONEY))
                    .hl(" · month ", Some(hl::DIM))
                    .hl(&text::money_f64(*usage_monthly), Some(hl::MONEY))
                    .hl(" · all time ", Some(hl::DIM))
                    .hl(&text::money_f64(*usage), Some(hl::MONEY));
                doc.push(l);
                let mut l = Line::default();
                l.push("  ").left("limit", 12, Some(hl::LABEL));
                match limit {
                    Some(lim) => {
                        l.hl(&text::money_f64(*lim), Some(hl::MONEY));
                        if let Some(rem) = limit_remaining {
                            let group = if *rem <= 0.0 {
                                hl::OVER
                            } else if *rem <= lim * 0.2 {
                                hl::WARN
                            } else {
                                hl::MONEY
                            };
                            l.hl(" · remaining ", Some(hl::DIM))
                                .hl(&text::money_f64(*rem), Some(group));
                        }
                        let reset = match limit_reset.as_deref() {
                            Some(r) if !r.is_empty() => format!(" · resets {r}"),
                            _ => " · never resets".into(),
                        };
                        l.hl(&reset, Some(hl::DIM));
                    }
                    None => {
                        l.hl("none", Some(hl::DIM));
                    }
                }
                doc.push(l);
            }
        }
    }

    fn footprint_block(&self, doc: &mut Doc, w: usize) {
        let f = &self.figures;
        let periods = [f.today.tokens_out, f.month.tokens_out, f.total.tokens_out];
        let fps = periods.map(|t| self.footprint_of(t));
        let rows = vec![
            std::iter::once(Cell::plain("completion tokens"))
                .chain(periods.iter().map(|t| Cell::plain(&text::group(*t))))
                .collect(),
            std::iter::once(Cell::plain("CO2e"))
                .chain(
                    fps.iter()
                        .map(|(g, _)| Cell::plain(&format!("{} g", text::quantity(*g)))),
                )
                .collect(),
            std::iter::once(Cell::plain("water"))
                .chain(
                    fps.iter()
                        .map(|(_, ml)| Cell::plain(&format!("{} mL", text::quantity(*ml)))),
                )
                .collect(),
        ];
        table(
            doc,
            &["Footprint (estimate)", "today", "this month", "total"],
            rows,
            w,
            false,
            "",
        );
        for part in text::wrap(
            &format!("factors: {}", self.req.footprint.source),
            w.saturating_sub(2).max(20),
        ) {
            let mut l = Line::default();
            l.push("  ").hl(&part, Some(hl::DIM));
            doc.push(l);
        }
    }
}

/// Appends `other` (text and highlights) to `l`.
fn append(l: &mut Line, other: Line) {
    let base = l.text.len();
    l.text.push_str(&other.text);
    l.cells += other.cells;
    l.hl.extend(
        other
            .hl
            .into_iter()
            .map(|(a, b, g)| (a + base, b + base, g)),
    );
}

/// A table cell.
struct Cell {
    text: String,
    group: Option<&'static str>,
}

impl Cell {
    fn plain(s: &str) -> Cell {
        Cell {
            text: s.to_string(),
            group: None,
        }
    }
    fn money(u: Usd) -> Cell {
        Cell {
            text: u.to_string(),
            group: Some(hl::MONEY),
        }
    }
}

/// A table: the first column left-aligned and cut to fit `w` (from the start for paths), the
/// others right-aligned, two spaces apart. `headers[0]` is the section's heading.
fn table(
    doc: &mut Doc,
    headers: &[&str],
    rows: Vec<Vec<Cell>>,
    w: usize,
    cut_start: bool,
    empty: &str,
) {
    let n = headers.len();
    let mut widths: Vec<usize> = headers.iter().map(|h| text::cells(h)).collect();
    for r in &rows {
        for (i, c) in r.iter().enumerate().take(n) {
            widths[i] = widths[i].max(text::cells(&c.text));
        }
    }
    // The first column (after an indent of 2) gets what is left, at least 17 cells; the
    // heading spans the indent too, and gets a line of its own when even that is too narrow.
    widths[0] = 0;
    for r in &rows {
        if let Some(c) = r.first() {
            widths[0] = widths[0].max(text::cells(&c.text));
        }
    }
    let rest: usize = widths[1..].iter().map(|x| x + 2).sum();
    let wanted = widths[0].max(text::cells(headers[0]).saturating_sub(2));
    let name_w = wanted.min(w.saturating_sub(rest + 2).max(17));
    let mut h = Line::default();
    if text::cells(headers[0]) > name_w + 2 {
        h.hl(headers[0], Some(hl::TITLE));
        doc.push(std::mem::take(&mut h));
        h.push(&" ".repeat(name_w + 2));
    } else {
        h.left(headers[0], name_w + 2, Some(hl::TITLE));
    }
    for (i, head) in headers.iter().enumerate().skip(1) {
        h.push("  ").right(head, widths[i], Some(hl::DIM));
    }
    doc.push(h);
    if rows.is_empty() && !empty.is_empty() {
        let mut l = Line::default();
        l.push("  ").hl(empty, Some(hl::DIM));
        doc.push(l);
    }
    for r in rows {
        let mut l = Line::default();
        let mut cells = r.into_iter();
        if let Some(first) = cells.next() {
            let t = if cut_start {
                text::truncate_start(&first.text, name_w)
            } else {
                text::truncate_end(&first.text, name_w)
            };
            l.push("  ").left(&t, name_w, first.group);
        }
        for (i, c) in cells.enumerate() {
            l.push("  ").right(&c.text, widths[i + 1], c.group);
        }
        doc.push(l);
    }
}

/// Lines being assembled.
#[derive(Default)]
struct Doc {
    lines: Vec<Line>,
}

impl Doc {
    fn push(&mut self, l: Line) {
        self.lines.push(l);
    }

    fn blank(&mut self) {
        self.lines.push(Line::default());
    }

    fn finish(self, title: String, json: Value) -> Report {
        let mut lines = Vec::with_capacity(self.lines.len());
        let mut highlights = Vec::new();
        let mut width = 0;
        for (i, mut l) in self.lines.into_iter().enumerate() {
            let trimmed = l.text.trim_end_matches(' ').len();
            if trimmed < l.text.len() {
                l.cells -= l.text.len() - trimmed;
                l.text.truncate(trimmed);
            }
            for (a, b, g) in l.hl {
                let b = b.min(trimmed);
                if a < b {
                    highlights.push((i, a, b, g));
                }
            }
            width = width.max(l.cells);
            lines.push(l.text);
        }
        Report {
            title,
            lines,
            highlights,
            width,
            json,
        }
    }
}

#[cfg(test)]
mod tests;
