//! The `warn_at` notices: once per period, when spend crosses a fraction of a cap.

use crate::budget::CapKind;
use crate::protocol::Level;
use crate::services::{LedgerHandle, Ui};
use crate::settings::BudgetCaps;

/// Tells the user, once per period, when spend crosses `warn_at` of a cap.
pub(super) async fn warn_if_crossed(
    ledger: &LedgerHandle,
    ui: &Ui,
    project: &str,
    pb: &BudgetCaps,
    gb: &BudgetCaps,
) {
    for (scope, budget, whose) in [(project, pb, "this project's"), ("", gb, "the global")] {
        let Some(milli) = budget.warn_at_milli else {
            continue;
        };
        let scope_s = scope.to_string();
        let b = *budget;
        let res = ledger
            .run(move |l, clock| {
                let now = clock.now();
                let spend = l.spend(
                    if scope_s.is_empty() {
                        None
                    } else {
                        Some(&scope_s)
                    },
                    clock,
                )?;
                let mut crossed = Vec::new();
                for (kind, cap, used, start) in [
                    (
                        CapKind::Daily,
                        b.caps.daily,
                        spend.today,
                        crate::budget::day_bounds(&now).0,
                    ),
                    (
                        CapKind::Monthly,
                        b.caps.monthly,
                        spend.month,
                        crate::budget::month_bounds(&now).0,
                    ),
                    (CapKind::Total, b.caps.total, spend.total, 0),
                ] {
                    let Some(cap) = cap else { continue };
                    if cap.0 > 0
                        && (used.0 as i128) * 1000 >= (cap.0 as i128) * (milli as i128)
                        && l.warn_once(&scope_s, kind, start)?
                    {
                        crossed.push((kind, cap, used));
                    }
                }
                Ok(crossed)
            })
            .await;
        match res {
            Ok(crossed) => {
                for (kind, cap, used) in crossed {
                    let pct = (used.0 as f64 / cap.0 as f64 * 100.0).floor();
                    ui.notify(
                        Level::Warn,
                        format!(
                            "{pct}% of {whose} {} cap used: {used} of {cap}",
                            kind.label()
                        ),
                    );
                }
            }
            Err(e) => tracing::warn!("{e}"),
        }
    }
}
