//! The float: the report's figures as lines and highlight ranges, ready for a buffer. The
//! shim only displays them, so every alignment, width and colour is decided here (with the
//! building blocks of [`super::text`]).

use super::report::{Figures, Limits};
use super::text::{self, Level, Line};
use super::FileStatus;
use crate::budget::ledger::UsageFigures;
use crate::budget::Usd;

mod account;
mod outcomes;

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
    /// The filled part of a bar below its caps' `warn_at`.
    pub const BAR_FILL: &str = "FrugalUsageBarFill";
    /// The empty part of a bar.
    pub const BAR_EMPTY: &str = "FrugalUsageBarEmpty";
    /// A cap reached (≥ 100 %): its bar's filled part and its percentage.
    pub const OVER: &str = "FrugalUsageOver";
    /// A cap nearly reached (from its `warn_at`, 80 % when unset): its bar's filled part and
    /// its percentage.
    pub const WARN: &str = "FrugalUsageWarn";
    /// Secondary text.
    pub const DIM: &str = "FrugalUsageDim";
    /// Sparkline days with spend.
    pub const SPARK: &str = "FrugalUsageSpark";
}

/// The laid-out float.
pub(super) struct Page {
    pub title: String,
    /// No trailing spaces, no newlines.
    pub lines: Vec<String>,
    /// `(line, byte col start, byte col end, group)`, 0-based, end exclusive.
    pub highlights: Vec<(usize, usize, usize, &'static str)>,
    /// The widest line in display cells.
    pub width: usize,
}

/// Lays out the report on `f`.
pub(super) fn render(f: &Figures) -> Page {
    f.page()
}

impl Figures<'_> {
    /// The target width in display cells.
    fn width(&self) -> usize {
        match self.req.width {
            0 => DEFAULT_WIDTH,
            w => w.clamp(40, 400),
        }
    }

    fn page(&self) -> Page {
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
            self.spend_block(&mut doc, "Spend", &self.figures, &self.project_limits(), w);
            outcomes::forecast_line(&mut doc, &self.forecast, self.figures.month.counted());
            if req.global_caps.any() {
                doc.blank();
                self.spend_block(
                    &mut doc,
                    "All projects (global caps)",
                    &self.global,
                    &self.global_limits(),
                    w,
                );
                outcomes::forecast_line(
                    &mut doc,
                    &self.global_forecast,
                    self.global.month.counted(),
                );
            }
        } else {
            self.spend_block(
                &mut doc,
                "Spend, all projects",
                &self.figures,
                &self.global_limits(),
                w,
            );
            outcomes::forecast_line(&mut doc, &self.forecast, self.figures.month.counted());
            doc.blank();
            self.projects_block(&mut doc, w);
        }
        doc.blank();
        self.models_block(&mut doc, w);
        self.reviews_line(&mut doc);
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
        doc.finish(title)
    }

    fn file_lines(&self, doc: &mut Doc, w: usize) {
        let req = self.req;
        let state = &req.file_state;
        let (msg, group): (String, Option<&'static str>) = match state {
            FileStatus::Trusted | FileStatus::ReadByCli => (state.text(), None),
            FileStatus::Untrusted => (
                "untrusted, ignored: open it and run :trust".into(),
                Some(hl::WARN),
            ),
            FileStatus::Absent => (
                "none (no .frugal.toml: the caps from setup() apply)".into(),
                Some(hl::DIM),
            ),
            FileStatus::Invalid(_) => (
                format!("{} (no request is sent until it is fixed)", state.text()),
                Some(hl::OVER),
            ),
        };
        let mut l = Line::default();
        l.left("File", 9, Some(hl::LABEL));
        if let Some(path) = &req.file_path {
            if *state != FileStatus::Absent {
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

    fn spend_block(
        &self,
        doc: &mut Doc,
        heading: &str,
        f: &UsageFigures,
        limits: &Limits,
        w: usize,
    ) {
        let caps = &limits.caps;
        let mut h = Line::default();
        h.hl(heading, Some(hl::TITLE));
        doc.push(h);
        let periods = self.periods(f, limits);
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
            match p.cap.zip(p.fill()) {
                Some((cap, (pct, level))) => {
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
        self.cache_line(doc, w);
        self.hunks_block(doc, w);
    }

    /// What the provider's prompt cache did, under the models; nothing when it never served a
    /// token, so the float stays quiet for models that do not cache.
    fn cache_line(&self, doc: &mut Doc, w: usize) {
        let (tokens, saved) = self.cache_totals();
        if tokens <= 0 {
            return;
        }
        let mut l = Line::default();
        l.push("  ")
            .hl("cache: ", Some(hl::LABEL))
            .push(&text::group(tokens))
            .hl(" prompt tokens read from cache", Some(hl::DIM));
        if saved > Usd::ZERO {
            let mut s = Line::default();
            s.hl("saved ", Some(hl::DIM))
                .hl(&saved.to_string(), Some(hl::MONEY));
            if l.cells + 2 + s.cells <= w {
                l.hl(", ", Some(hl::DIM));
            } else {
                doc.push(std::mem::take(&mut l));
                l.push(&" ".repeat(9));
            }
            append(&mut l, s);
        }
        doc.push(l);
    }

    /// "reviews  3 requests, $0.0040 (judge, all time)" under the models, once a review ran.
    fn reviews_line(&self, doc: &mut Doc) {
        let r = &self.reviews;
        if r.requests == 0 {
            return;
        }
        let mut l = Line::default();
        l.push("  ").left("reviews", 12, Some(hl::LABEL));
        l.push(&format!(
            "{} request{}, ",
            text::group(r.requests),
            if r.requests == 1 { "" } else { "s" }
        ));
        l.hl(&r.counted().to_string(), Some(hl::MONEY));
        l.hl(" (the judge, :LlmReview; all time)", Some(hl::DIM));
        doc.push(l);
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

    fn finish(self, title: String) -> Page {
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
        Page {
            title,
            lines,
            highlights,
            width,
        }
    }
}
