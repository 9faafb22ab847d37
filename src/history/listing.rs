//! The `:LlmHistory` listing: the ledger's rows of a project, newest first, a page at a time
//! (keyset on `(created_at, id)` over the `requests_project_created` index, so the first page
//! of a long history costs what a short one does), joined with the store's text and each
//! request's hunk outcomes.

use super::store::Brief;
use crate::budget::{Ledger, LedgerError, Usd};
use crate::usage::text::{cells, truncate_end};
use rusqlite::params;
use std::collections::HashMap;

/// The most rows of one page.
pub const PAGE: usize = 500;

/// A ledger row of the project, as the listing needs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Row {
    pub id: i64,
    pub kind: String,
    pub model: String,
    /// Unix ms.
    pub created_at: i64,
    pub state: String,
    pub charged: Option<i64>,
    pub reserved: i64,
}

/// What became of an edit's hunks (the ledger's `hunk_outcomes`).
pub type Hunks = crate::budget::HunkCounts;

/// Where a page starts: below this `(created_at, id)`; `None`: the newest.
pub type Cursor = Option<(i64, i64)>;

/// One page of `project`'s rows, newest first, and whether older ones remain.
pub fn page(
    ledger: &Ledger,
    project: &str,
    before: Cursor,
    limit: usize,
) -> Result<(Vec<Row>, bool), LedgerError> {
    let (at, id) = before.unwrap_or((i64::MAX, i64::MAX));
    let mut stmt = ledger.connection().prepare_cached(
        "SELECT id, kind, model, created_at, state, charged, reserved FROM requests
         WHERE project = ?1 AND (created_at < ?2 OR (created_at = ?2 AND id < ?3))
         ORDER BY created_at DESC, id DESC LIMIT ?4",
    )?;
    let mut rows: Vec<Row> = stmt
        .query_map(params![project, at, id, limit as i64 + 1], |r| {
            Ok(Row {
                id: r.get(0)?,
                kind: r.get(1)?,
                model: r.get(2)?,
                created_at: r.get(3)?,
                state: r.get(4)?,
                charged: r.get(5)?,
                reserved: r.get(6)?,
            })
        })?
        .collect::<Result<_, _>>()?;
    let more = rows.len() > limit;
    rows.truncate(limit);
    Ok((rows, more))
}

/// What became of a request: `3/5 accepted`, `rejected`, `failed: stream`, `answered`…
pub fn outcome(row: &Row, brief: Option<&Brief>, hunks: Option<&Hunks>) -> String {
    if let Some(reason) = brief.and_then(|b| b.failure.as_deref()) {
        return format!("failed: {reason}");
    }
    match row.state.as_str() {
        "reserved" => return "running".into(),
        "failed" => return "failed".into(),
        _ => {}
    }
    match row.kind.as_str() {
        "review" => "reviewed".into(),
        "ask" => "answered".into(),
        _ => match hunks {
            Some(h) if h.accepted > 0 => format!("{}/{} accepted", h.accepted, h.proposed),
            Some(h) if h.rejected > 0 => "rejected".into(),
            Some(h) if h.replaced > 0 => "replaced".into(),
            Some(h) if h.abandoned > 0 => "abandoned".into(),
            Some(h) if h.proposed > 0 => format!("{} pending", h.proposed),
            _ => "done".into(),
        },
    }
}

/// The cost shown: the charge, or the reservation while it runs (`≤ $0.0300`).
pub fn cost(row: &Row) -> String {
    match row.charged {
        Some(c) => Usd(c).to_string(),
        None if row.state == "reserved" => format!("≤ {}", Usd(row.reserved)),
        None => Usd(0).to_string(),
    }
}

/// The cells of a line's columns other than the instruction (when 11, kind 6, model 18,
/// outcome 13, cost up to 9, and the spaces between).
const FIXED: usize = 11 + 6 + 18 + 13 + 9 + 5;

/// One listing line of at most `width` cells (the instruction gets what the other columns
/// leave, 12 at least): when, kind, model (its name without the vendor), the instruction's
/// start, outcome, cost.
pub fn line(
    when: &str,
    row: &Row,
    brief: Option<&Brief>,
    hunks: Option<&Hunks>,
    width: usize,
) -> String {
    let instruction = match brief {
        Some(b) => first_line(&b.instruction),
        None => "(no text kept)".to_string(),
    };
    let name = row.model.rsplit('/').next().unwrap_or(&row.model);
    let room = width.saturating_sub(FIXED).max(12);
    format!(
        "{} {} {} {} {} {}",
        pad_cells(when, 11),
        pad_cells(&row.kind, 6),
        pad_cells(&truncate_end(name, 18), 18),
        pad_cells(&truncate_end(&instruction, room), room),
        pad_cells(&outcome(row, brief, hunks), 13),
        cost(row)
    )
}

/// `s` padded with spaces to `width` cells.
fn pad_cells(s: &str, width: usize) -> String {
    let mut out = s.to_string();
    out.extend(std::iter::repeat_n(' ', width.saturating_sub(cells(s))));
    out
}

/// The first non-empty line of `s`, trimmed.
fn first_line(s: &str) -> String {
    s.lines()
        .map(str::trim)
        .find(|l| !l.is_empty())
        .unwrap_or("")
        .to_string()
}

/// The lines of one page, each with its request id.
pub fn lines(
    rows: &[Row],
    briefs: &HashMap<i64, Brief>,
    hunks: &HashMap<i64, Hunks>,
    when: impl Fn(i64) -> String,
    width: usize,
) -> Vec<(i64, String)> {
    rows.iter()
        .map(|r| {
            (
                r.id,
                line(
                    &when(r.created_at),
                    r,
                    briefs.get(&r.id),
                    hunks.get(&r.id),
                    width,
                ),
            )
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(kind: &str, state: &str, charged: Option<i64>) -> Row {
        Row {
            id: 1,
            kind: kind.into(),
            model: "vendor/model".into(),
            created_at: 0,
            state: state.into(),
            charged,
            reserved: 30_000_000_000,
        }
    }

    #[test]
    fn outcomes_read_as_the_spec_says() {
        let h = |proposed, accepted, rejected| Hunks {
            proposed,
            accepted,
            rejected,
            ..Hunks::default()
        };
        let settled = row("edit", "settled", Some(1_230_000_000));
        assert_eq!(outcome(&settled, None, Some(&h(5, 3, 2))), "3/5 accepted");
        assert_eq!(outcome(&settled, None, Some(&h(2, 0, 2))), "rejected");
        let failed = Brief {
            instruction: "x".into(),
            failure: Some("stream".into()),
            at: 0,
        };
        let f = row("edit", "reconciled", Some(5));
        assert_eq!(outcome(&f, Some(&failed), None), "failed: stream");
        assert_eq!(
            outcome(&row("review", "settled", Some(1)), None, None),
            "reviewed"
        );
        assert_eq!(cost(&settled), "$0.0012");
        assert_eq!(cost(&row("edit", "reserved", None)), "≤ $0.0300");
        let l = line("12-07 10:00", &settled, None, Some(&h(5, 3, 2)), 80);
        assert!(
            l.contains("(no text kept)") && l.ends_with("$0.0012"),
            "{l}"
        );
        assert!(l.contains(" model "), "the vendor goes: {l}");
        assert!(crate::usage::text::cells(&l) <= 80, "{l}");
    }
}
