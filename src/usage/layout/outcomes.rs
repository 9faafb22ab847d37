//! The float's figures of issue 18: what a model's accepted hunks cost, and where the month
//! ends at the recent pace.

use super::{hl, table, Cell, Doc};
use crate::budget::ledger::Forecast;
use crate::budget::Usd;
use crate::usage::report::Figures;
use crate::usage::text::Line;

impl Figures<'_> {
    /// Per model whose edits proposed hunks: how many were accepted, and what one accepted hunk
    /// cost (its edit spend over them). A table of its own: beside the model columns it would
    /// not fit 80 cells.
    pub(super) fn hunks_block(&self, doc: &mut Doc, w: usize) {
        let rows: Vec<Vec<Cell>> = self
            .figures
            .models
            .iter()
            .filter_map(|m| self.hunks_of(&m.model))
            .filter(|h| h.proposed > 0)
            .map(|h| {
                let pct = u64::from(h.accepted) * 100 / u64::from(h.proposed);
                vec![
                    Cell::plain(&h.model),
                    Cell::plain(&format!("{}/{}", h.accepted, h.proposed)),
                    Cell::plain(&format!("{pct}%")),
                    match h.cost_per_accepted() {
                        Some(c) => Cell::money(c),
                        None => Cell::plain("-"),
                    },
                ]
            })
            .collect();
        if rows.is_empty() {
            return;
        }
        table(
            doc,
            &["Hunks accepted", "hunks", "share", "per accepted"],
            rows,
            w,
            false,
            "",
        );
    }
}

/// `at this pace ~$12.40 this month — the $10.00 cap stops requests around Dec 24` under a
/// spend block, once the month or the last 7 days saw spend; `month` is the month so far (a
/// cap it already reached "has stopped requests since" that day).
pub(super) fn forecast_line(doc: &mut Doc, f: &Forecast, month: Usd) {
    if f.month_end <= Usd::ZERO {
        return;
    }
    let mut l = Line::default();
    l.push("  ")
        .hl("at this pace ", Some(hl::DIM))
        .hl(&format!("~{}", f.month_end.text(2)), Some(hl::MONEY))
        .hl(" this month", Some(hl::DIM));
    let day = |d: jiff::civil::Date| d.strftime("%b %-d").to_string();
    match (f.cap, f.cap_reached_on) {
        (Some(cap), Some(d)) => {
            let when = if month >= cap {
                format!(" cap has stopped requests since {}", day(d))
            } else {
                format!(" cap stops requests around {}", day(d))
            };
            l.hl(" — the ", Some(hl::DIM))
                .hl(&cap.text(2), Some(hl::MONEY))
                .hl(&when, Some(hl::WARN));
        }
        (Some(cap), None) => {
            l.hl(", within the ", Some(hl::DIM))
                .hl(&cap.text(2), Some(hl::MONEY))
                .hl(" cap", Some(hl::DIM));
        }
        _ => {}
    }
    doc.push(l);
}
