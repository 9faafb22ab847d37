//! What a report is about ([`ReportRequest`]) and the figures it shows, read from the ledger;
//! [`build`] reads them once and hands them to [`super::layout`] (the float) and
//! [`super::json`] (the same figures as data).
//!
//! Every figure comes from the trigger-kept tables of the ledger (`totals`, `rollups`,
//! `model_totals`), never from a scan of `requests`, so building a report takes about as long
//! on a million requests as on ten. The one exception, review spend, reads only the review
//! rows, through a partial index that holds nothing else.

use super::{json, layout, text};
use crate::budget::ledger::{
    Forecast, KeySpend, KindSpend, ModelHunks, PeriodUsage, ProjectSpend, UsageFigures,
};
use crate::budget::{Caps, Clock, FixedClock, Ledger, LedgerError, RequestKind, Usd};

/// Days in the sparkline.
pub const SPARK_DAYS: usize = 30;

/// The fraction of a cap (in thousandths) from which its bar warns when the user set no
/// `warn_at`: 80 %.
pub const DEFAULT_WARN_AT_MILLI: u32 = 800;

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
    /// The project's `warn_at` in thousandths of a cap (`None`: [`DEFAULT_WARN_AT_MILLI`]);
    /// its bars warn from there, as the notice does.
    pub project_warn_at_milli: Option<u32>,
    /// The same for the global caps.
    pub global_warn_at_milli: Option<u32>,
    /// How the project file was found.
    pub file_state: FileStatus,
    /// The project file's path.
    pub file_path: Option<String>,
    /// The OpenRouter key's figures.
    pub key_info: KeyInfo,
    /// The ledger's name of the key the project's requests use (`bound:<hash>`,
    /// `named:<name>`; `None`: `api_key`), to tell spend on it that the ledger does not know.
    pub key_id: Option<String>,
    /// The name of the key bound by `:LlmKey create` (`frugal: app`), when that is the one.
    pub bound_key: Option<String>,
    /// Footprint factors.
    pub footprint: FootprintFactors,
    /// Target width in display cells (0: [`super::DEFAULT_WIDTH`]).
    pub width: usize,
}

/// The project file as the report shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FileStatus {
    Absent,
    Untrusted,
    Trusted,
    /// `frugal usage` read it itself (its user is the file's user: no trust prompt).
    ReadByCli,
    /// Malformed or unreadable: no request is sent for the project until it is fixed.
    Invalid(String),
}

impl FileStatus {
    /// The state as the JSON and the float word it.
    pub fn text(&self) -> String {
        match self {
            FileStatus::Absent => "absent".into(),
            FileStatus::Untrusted => "untrusted".into(),
            FileStatus::Trusted => "trusted".into(),
            FileStatus::ReadByCli => "read by the CLI".into(),
            FileStatus::Invalid(why) => format!("invalid: {why}"),
        }
    }
}

impl From<&crate::settings::FileState> for FileStatus {
    fn from(s: &crate::settings::FileState) -> Self {
        use crate::settings::FileState;
        match s {
            FileState::Absent => FileStatus::Absent,
            FileState::Untrusted => FileStatus::Untrusted,
            FileState::Trusted => FileStatus::Trusted,
            FileState::Invalid(e) => FileStatus::Invalid(e.to_string()),
        }
    }
}

impl Default for ReportRequest {
    fn default() -> Self {
        ReportRequest {
            project: None,
            all: true,
            project_caps: Caps::default(),
            global_caps: Caps::default(),
            project_warn_at_milli: None,
            global_warn_at_milli: None,
            file_state: FileStatus::Absent,
            file_path: None,
            key_info: KeyInfo::Unknown,
            key_id: None,
            bound_key: None,
            footprint: FootprintFactors::default(),
            width: layout::DEFAULT_WIDTH,
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
    /// The figures as data; [`super::json`] documents the shape.
    pub data: json::ReportData,
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
    let reviews = ledger.kind_spend(RequestKind::Review, project)?;
    let asks = ledger.kind_spend(RequestKind::Ask, project)?;
    // Spend through the project's key in OpenRouter's UTC periods (one indexed sum each).
    let key_spend = match (&req.key_id, project) {
        (Some(id), Some(_)) => Some(ledger.key_spend_utc(id, &snap)?),
        _ => None,
    };
    // Hunk outcomes per model: one pass over `hunk_outcomes` (rows only for edits' hunks).
    let hunks = ledger.model_hunks(project)?;
    let scope_cap = if req.all {
        req.global_caps.monthly
    } else {
        req.project_caps.monthly
    };
    let forecast = ledger.forecast(project, scope_cap, &snap)?;
    // The `all` view's forecast is the global one already (every project, the global cap).
    let global_forecast = match project {
        None => forecast,
        Some(_) => ledger.forecast(None, req.global_caps.monthly, &snap)?,
    };
    let figures = Figures {
        key_spend,
        hunks,
        forecast,
        global_forecast,
        now: snap.now(),
        project,
        req,
        figures,
        global,
        projects,
        reviews,
        asks,
    };
    let page = layout::render(&figures);
    Ok(Report {
        title: page.title,
        lines: page.lines,
        highlights: page.highlights,
        width: page.width,
        data: json::ReportData::new(&figures),
    })
}

/// Everything the float and the data are made of, read at one instant.
pub(super) struct Figures<'a> {
    /// The local time the report is for.
    pub now: jiff::Zoned,
    /// The project reported on; `None` in the `all` view.
    pub project: Option<&'a str>,
    pub req: &'a ReportRequest,
    /// The project's figures, or every project's in the `all` view (with the sparkline).
    pub figures: UsageFigures,
    /// Every project's figures, against the global caps.
    pub global: UsageFigures,
    /// One row per project, in the `all` view only.
    pub projects: Vec<ProjectSpend>,
    /// What `:LlmReview` (the judge) cost in the scope, all time: counted in the figures above
    /// too, shown apart.
    pub reviews: KindSpend,
    /// What `:LlmAsk` cost in the scope, all time: counted in the figures above too, shown
    /// apart.
    pub asks: KindSpend,
    /// The ledger's spend through the project's key ([`ReportRequest::key_id`]) in the UTC
    /// day and month.
    pub key_spend: Option<KeySpend>,
    /// Per model with hunks in the scope: proposed, accepted, edit spend.
    pub hunks: Vec<ModelHunks>,
    /// Where [`Figures::figures`]' month ends at the last 7 days' pace, against the scope's
    /// monthly cap.
    pub forecast: Forecast,
    /// The same for all projects against the global monthly cap.
    pub global_forecast: Forecast,
}

/// Below this, a difference between OpenRouter's usage of a key and the ledger's is rounding
/// or timing, not spend made elsewhere: $0.01.
pub const ELSEWHERE_MIN: Usd = Usd(10_000_000_000);

impl Figures<'_> {
    /// Spend on the project's key that the ledger does not know (another machine, another
    /// tool): `GET /key`'s `usage_daily` / `usage_monthly` minus the ledger's spend through the
    /// key in the same UTC period, each only when over [`ELSEWHERE_MIN`].
    pub fn key_elsewhere(&self) -> (Option<Usd>, Option<Usd>) {
        let (
            Some(ours),
            KeyInfo::Known {
                usage_daily,
                usage_monthly,
                ..
            },
        ) = (self.key_spend, &self.req.key_info)
        else {
            return (None, None);
        };
        let over = |server: f64, ledger: Usd| {
            let server = Usd::from_cost_f64(server).ok()?;
            let d = Usd(server.0.checked_sub(ledger.0)?);
            (d > ELSEWHERE_MIN).then_some(d)
        };
        (
            over(*usage_daily, ours.today),
            over(*usage_monthly, ours.month),
        )
    }
}

/// A set of caps and the fraction of them from which their bars warn.
#[derive(Debug, Clone, Copy)]
pub(super) struct Limits {
    pub caps: Caps,
    pub warn_at_milli: u32,
}

/// One period (today, this month, total): its usage against its cap.
pub(super) struct Period {
    /// The period's row label in the float.
    pub label: &'static str,
    pub usage: PeriodUsage,
    pub cap: Option<Usd>,
    pub warn_at_milli: u32,
    /// Start and end in unix milliseconds (`None` for the total).
    pub bounds: Option<(i64, i64)>,
}

impl Period {
    /// How full the cap is (whole percent and level); `None` without a cap.
    pub fn fill(&self) -> Option<(u64, text::Level)> {
        self.cap
            .map(|cap| text::percent(self.usage.counted(), cap, self.warn_at_milli))
    }
}

impl Figures<'_> {
    /// The hunk figures of `model`, if its edits proposed any in the scope.
    pub fn hunks_of(&self, model: &str) -> Option<&ModelHunks> {
        self.hunks.iter().find(|h| h.model == model)
    }

    /// The project's caps and `warn_at`.
    pub fn project_limits(&self) -> Limits {
        Limits {
            caps: self.req.project_caps,
            warn_at_milli: self
                .req
                .project_warn_at_milli
                .unwrap_or(DEFAULT_WARN_AT_MILLI),
        }
    }

    /// The global caps and `warn_at`.
    pub fn global_limits(&self) -> Limits {
        Limits {
            caps: self.req.global_caps,
            warn_at_milli: self
                .req
                .global_warn_at_milli
                .unwrap_or(DEFAULT_WARN_AT_MILLI),
        }
    }

    /// What [`Figures::figures`] is measured against: the project's limits, or the global ones
    /// in the `all` view.
    pub fn scope_limits(&self) -> Limits {
        if self.req.all {
            self.global_limits()
        } else {
            self.project_limits()
        }
    }

    /// Today, this month and the total of `f` against `limits`.
    pub fn periods(&self, f: &UsageFigures, limits: &Limits) -> [Period; 3] {
        let day = crate::budget::day_bounds(&self.now);
        let month = crate::budget::month_bounds(&self.now);
        let caps = &limits.caps;
        let period = |label, usage, cap, bounds| Period {
            label,
            usage,
            cap,
            warn_at_milli: limits.warn_at_milli,
            bounds,
        };
        [
            period("today", f.today, caps.daily, Some(day)),
            period("this month", f.month, caps.monthly, Some(month)),
            period("total", f.total, caps.total, None),
        ]
    }

    /// The sparkline's dearest day, if anything was spent.
    pub fn spark_max(&self) -> Option<(jiff::civil::Date, Usd)> {
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

    /// Prompt tokens read from the provider's cache, all time in scope, and what that saved
    /// (the sum of the model rows).
    pub fn cache_totals(&self) -> (i64, Usd) {
        self.figures
            .models
            .iter()
            .fold((0, Usd::ZERO), |(t, u), m| {
                (t + m.tokens_cached, u + m.cache_saved)
            })
    }

    /// Grams of CO2e and millilitres of water for `tokens` completion tokens.
    pub fn footprint_of(&self, tokens: i64) -> (f64, f64) {
        let f = &self.req.footprint;
        let t = tokens.max(0) as f64;
        (t * f.gco2e_per_token, t * f.ml_water_per_token)
    }
}
