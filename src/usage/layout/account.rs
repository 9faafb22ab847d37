//! The float's last sections: the OpenRouter key's figures and the footprint estimate.

use super::{hl, table, Cell, Doc};
use crate::usage::json::KeyStatus;
use crate::usage::report::Figures;
use crate::usage::text::{self, Line};

impl Figures<'_> {
    /// The key's figures as the JSON carries them ([`KeyStatus::from`]): each amount is shown
    /// as its `text` there.
    pub(super) fn key_block(&self, doc: &mut Doc, w: usize) {
        let mut h = Line::default();
        h.hl("OpenRouter key", Some(hl::TITLE));
        if let Some(name) = &self.req.bound_key {
            // The key :LlmKey create bound to the project: its limit is OpenRouter's cap.
            h.push(" ").hl(&format!("({name})"), Some(hl::LABEL));
        }
        let (elsewhere_today, elsewhere_month) = self.key_elsewhere();
        match KeyStatus::from(&self.req.key_info) {
            KeyStatus::Unknown => {
                h.push("  ").hl("…", Some(hl::DIM));
                doc.push(h);
            }
            KeyStatus::Unreachable => {
                h.push("  ").hl("unreachable", Some(hl::WARN));
                doc.push(h);
            }
            KeyStatus::NotFetched => {
                h.push("  ").hl("not fetched by the CLI", Some(hl::DIM));
                doc.push(h);
            }
            KeyStatus::Known {
                label,
                usage,
                usage_daily,
                usage_monthly,
                limit,
                limit_remaining,
                limit_reset,
            } => {
                if !label.is_empty() {
                    let room = w.saturating_sub(h.cells + 2).max(8);
                    h.push("  ")
                        .hl(&text::truncate_end(&label, room), Some(hl::DIM));
                }
                doc.push(h);
                let mut l = Line::default();
                l.push("  ").left("usage", 12, Some(hl::LABEL));
                l.hl("today ", Some(hl::DIM))
                    .hl(&usage_daily.text, Some(hl::MONEY))
                    .hl(" · month ", Some(hl::DIM))
                    .hl(&usage_monthly.text, Some(hl::MONEY))
                    .hl(" · all time ", Some(hl::DIM))
                    .hl(&usage.text, Some(hl::MONEY));
                doc.push(l);
                let mut l = Line::default();
                l.push("  ").left("limit", 12, Some(hl::LABEL));
                match limit {
                    Some(lim) => {
                        l.hl(&lim.text, Some(hl::MONEY));
                        if let Some(rem) = limit_remaining {
                            let group = if rem.usd <= 0.0 {
                                hl::OVER
                            } else if rem.usd <= lim.usd * 0.2 {
                                hl::WARN
                            } else {
                                hl::MONEY
                            };
                            l.hl(" · remaining ", Some(hl::DIM))
                                .hl(&rem.text, Some(group));
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
                for (when, amount) in [("this month", elsewhere_month), ("today", elsewhere_today)]
                {
                    if let Some(x) = amount {
                        let mut l = Line::default();
                        l.push("  ")
                            .hl(
                                &format!("spent elsewhere on this key {when}: "),
                                Some(hl::WARN),
                            )
                            .hl(&x.text(2), Some(hl::MONEY))
                            .hl(" (UTC; not in this ledger)", Some(hl::DIM));
                        doc.push(l);
                    }
                }
            }
        }
    }

    pub(super) fn footprint_block(&self, doc: &mut Doc, w: usize) {
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
