//! Spending caps and the admission decision, as pure arithmetic: given the caps, what each
//! capped period already holds, the model's price and the request's token bounds, admit the
//! request (maybe with a lower `max_tokens`) or refuse it. No SQL here: [`Ledger::reserve`]
//! reads the figures inside its `BEGIN IMMEDIATE` transaction and calls [`decide`], so the check
//! and the insert stay atomic while the rule itself is tested with plain values.
//!
//! [`Ledger::reserve`]: crate::budget::Ledger::reserve

use crate::budget::money::{Price, Usd};

/// `min_useful_tokens` when the caller has no better idea: below this an edit answer is
/// likely to be cut off, so lowering `max_tokens` further would waste money.
pub const DEFAULT_MIN_USEFUL_TOKENS: u32 = 512;

/// Some providers reject `max_tokens` below 16.
const MIN_MAX_TOKENS: u32 = 16;

/// Spending caps; `None` means no cap of that kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Caps {
    /// The most one request's worst case may be.
    pub per_request: Option<Usd>,
    /// Spent + reserved within the local calendar day.
    pub daily: Option<Usd>,
    /// Spent + reserved within the local calendar month.
    pub monthly: Option<Usd>,
    /// Spent + reserved, all time.
    pub total: Option<Usd>,
}

impl Caps {
    /// The cap of this kind, if set: lets callers walk [`CapKind::ALL`] instead of naming
    /// every field.
    pub fn get(&self, kind: CapKind) -> Option<Usd> {
        match kind {
            CapKind::PerRequest => self.per_request,
            CapKind::Daily => self.daily,
            CapKind::Monthly => self.monthly,
            CapKind::Total => self.total,
        }
    }

    /// Each cap of `self` where set, else the one of `defaults`.
    pub fn over(self, defaults: Caps) -> Caps {
        Caps {
            per_request: self.per_request.or(defaults.per_request),
            daily: self.daily.or(defaults.daily),
            monthly: self.monthly.or(defaults.monthly),
            total: self.total.or(defaults.total),
        }
    }

    /// Is any cap set?
    pub fn any(&self) -> bool {
        CapKind::ALL.iter().any(|&k| self.get(k).is_some())
    }
}

/// Which cap a refusal is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CapKind {
    /// [`Caps::per_request`].
    PerRequest,
    /// [`Caps::daily`].
    Daily,
    /// [`Caps::monthly`].
    Monthly,
    /// [`Caps::total`].
    Total,
}

impl CapKind {
    /// Every kind, in the order ties between equally tight caps are broken.
    pub const ALL: [CapKind; 4] = [
        CapKind::PerRequest,
        CapKind::Daily,
        CapKind::Monthly,
        CapKind::Total,
    ];

    /// The key in `[budget]` / `budget` / `global_budget` that sets this cap.
    pub fn config_key(self) -> &'static str {
        match self {
            CapKind::PerRequest => "per_request_usd",
            CapKind::Daily => "daily_usd",
            CapKind::Monthly => "monthly_usd",
            CapKind::Total => "total_usd",
        }
    }

    /// The cap's name in messages: `per-request`, `daily`, `monthly`, `total`.
    pub fn label(self) -> &'static str {
        match self {
            CapKind::PerRequest => "per-request",
            CapKind::Daily => "daily",
            CapKind::Monthly => "monthly",
            CapKind::Total => "total",
        }
    }
}

/// Whose cap: the project's, or the one over all projects together.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Scope {
    /// The request's project.
    Project,
    /// All projects together (`global_budget`).
    Global,
}

/// Why a request was refused, with the figures a user needs to decide what to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    /// The cap that leaves the least room.
    pub cap: CapKind,
    /// Whose cap it is.
    pub scope: Scope,
    /// The cap.
    pub limit: Usd,
    /// Already billed in the cap's period (0 for the per-request cap).
    pub spent: Usd,
    /// Reserved by requests in flight in the cap's period (0 for the per-request cap).
    pub reserved: Usd,
    /// What this request could cost at the `max_tokens` asked for.
    pub worst_case: Usd,
}

impl Refusal {
    /// The full message, ending with where to raise the cap. `project_file` is the project's
    /// `.frugal.toml` when its `[budget]` applies, `None` when the user's defaults apply.
    pub fn message(&self, project_file: Option<&str>) -> String {
        let key = self.cap.config_key();
        let hint = match (self.scope, project_file) {
            (Scope::Project, Some(file)) => format!("Raise [budget] {key} in {file}"),
            (Scope::Project, None) => format!("Raise budget.{key} in your frugal setup()"),
            (Scope::Global, _) => format!("Raise global_budget.{key} in your frugal setup()"),
        };
        format!("{self}. {hint}")
    }
}

impl std::fmt::Display for Refusal {
    /// `daily cap $1.00 for this project reached: $0.97 spent, $0.02 reserved; this request
    /// could cost up to $0.05`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let whose = match self.scope {
            Scope::Project => "for this project",
            Scope::Global => "for all projects together",
        };
        if self.cap == CapKind::PerRequest {
            write!(
                f,
                "per-request cap {} {whose} is below this request's possible cost of up to {}",
                self.limit, self.worst_case
            )
        } else {
            write!(
                f,
                "{} cap {} {whose} reached: {} spent, {} reserved; this request could cost up to {}",
                self.cap.label(),
                self.limit,
                self.spent,
                self.reserved,
                self.worst_case
            )
        }
    }
}

/// What a cap's period already holds: billed, and reserved by requests still in flight.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Held {
    /// Billed (rows no longer `reserved`).
    pub spent: Usd,
    /// Reserved by requests in flight (or orphaned), counted in full.
    pub reserved: Usd,
}

impl Held {
    /// What a cap counts: spent + reserved.
    pub fn counted(self) -> Usd {
        self.spent + self.reserved
    }
}

/// What each capped period of one scope already holds. The per-request cap has no period (it
/// always holds nothing), and a period whose cap is not set need not be filled in: it is never
/// looked at.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Periods {
    /// The local calendar day.
    pub day: Held,
    /// The local calendar month.
    pub month: Held,
    /// All time.
    pub total: Held,
}

impl Periods {
    /// What the period of a cap of this kind holds.
    pub fn of(&self, kind: CapKind) -> Held {
        match kind {
            CapKind::PerRequest => Held::default(),
            CapKind::Daily => self.day,
            CapKind::Monthly => self.month,
            CapKind::Total => self.total,
        }
    }

    /// Records what the period of a cap of this kind holds (ignored for the per-request cap).
    pub fn set(&mut self, kind: CapKind, held: Held) {
        match kind {
            CapKind::PerRequest => {}
            CapKind::Daily => self.day = held,
            CapKind::Monthly => self.month = held,
            CapKind::Total => self.total = held,
        }
    }
}

/// One scope's caps together with what their periods hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Budget {
    /// The caps.
    pub caps: Caps,
    /// What each capped period holds.
    pub held: Periods,
}

/// What the decision needs to know about the request itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ask {
    /// The model's catalogue price.
    pub price: Price,
    /// An upper bound on the prompt's tokens (the caller over-estimates, never under).
    pub prompt_bound_tokens: u64,
    /// The `max_tokens` the caller would like to send.
    pub max_tokens: u32,
    /// Below this, lowering `max_tokens` is pointless and the request is refused instead.
    pub min_useful_tokens: u32,
}

/// The outcome of [`decide`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Go ahead, sending exactly `max_tokens`, and reserve `worst_case`.
    Admit {
        /// The `max_tokens` to send (maybe lower than asked).
        max_tokens: u32,
        /// The most this request can cost with that `max_tokens`.
        worst_case: Usd,
        /// The `max_tokens` asked for, when it had to be lowered to fit a cap.
        lowered_from: Option<u32>,
    },
    /// Do not send anything.
    Refuse(Refusal),
}

/// The worst case does not even fit in 9.2 million dollars: a nonsensical prompt bound.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the worst-case cost of this request overflows")]
pub struct Overflow;

/// A cap together with what its period already holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CapState {
    /// Which cap.
    pub kind: CapKind,
    /// Whose.
    pub scope: Scope,
    /// The cap.
    pub limit: Usd,
    /// What its period holds.
    pub held: Held,
}

impl CapState {
    /// How much more the period may take.
    pub fn headroom(&self) -> Usd {
        self.limit - self.held.counted()
    }
}

/// The cap with the least headroom among those set, or `None` without caps. Ties go to the
/// first in (project, global) × [`CapKind::ALL`] order.
pub fn tightest_cap(project: &Budget, global: &Budget) -> Option<CapState> {
    let mut best: Option<CapState> = None;
    for (scope, budget) in [(Scope::Project, project), (Scope::Global, global)] {
        for kind in CapKind::ALL {
            let Some(limit) = budget.caps.get(kind) else {
                continue;
            };
            let c = CapState {
                kind,
                scope,
                limit,
                held: budget.held.of(kind),
            };
            if best.as_ref().is_none_or(|b| c.headroom() < b.headroom()) {
                best = Some(c);
            }
        }
    }
    best
}

/// Checks the request's worst case against every cap of both scopes.
///
/// A free model is always admitted (at 0). When the worst case does not fit, `max_tokens` is
/// lowered to the largest value that fits every cap, if that is still at least
/// `min_useful_tokens` (and 16); otherwise the request is refused.
pub fn decide(ask: &Ask, project: &Budget, global: &Budget) -> Result<Verdict, Overflow> {
    let price = ask.price;
    let wanted = ask.max_tokens;
    if price.is_free() {
        return Ok(Verdict::Admit {
            max_tokens: wanted,
            worst_case: Usd::ZERO,
            lowered_from: None,
        });
    }
    let fixed = price
        .worst_case(ask.prompt_bound_tokens, 0)
        .ok_or(Overflow)?;
    let worst = price
        .worst_case(ask.prompt_bound_tokens, u64::from(wanted))
        .ok_or(Overflow)?;
    let admit = |max_tokens, worst_case, lowered_from| Verdict::Admit {
        max_tokens,
        worst_case,
        lowered_from,
    };
    let t = match tightest_cap(project, global) {
        None => return Ok(admit(wanted, worst, None)),
        Some(t) if worst <= t.headroom() => return Ok(admit(wanted, worst, None)),
        Some(t) => t,
    };
    let room = t.headroom() - fixed;
    let fits = if room.0 >= 0 && price.completion.0 > 0 {
        let m = room.0 / price.completion.0;
        u32::try_from(m).unwrap_or(u32::MAX).min(wanted)
    } else {
        0
    };
    if fits >= ask.min_useful_tokens.max(MIN_MAX_TOKENS) && room.0 >= 0 {
        let lowered = price
            .worst_case(ask.prompt_bound_tokens, u64::from(fits))
            .ok_or(Overflow)?;
        Ok(admit(fits, lowered, Some(wanted)))
    } else {
        Ok(Verdict::Refuse(Refusal {
            cap: t.kind,
            scope: t.scope,
            limit: t.limit,
            spent: t.held.spent,
            reserved: t.held.reserved,
            worst_case: worst,
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Cents, exactly.
    fn cents(c: i64) -> Usd {
        Usd(c * 10_000_000_000)
    }

    /// $1e-6 per prompt token, $1e-5 per completion token: 1000 + 1000 tokens cost $0.011.
    fn price() -> Price {
        Price {
            prompt: Usd(1_000_000),
            completion: Usd(10_000_000),
            request: Usd::ZERO,
        }
    }

    /// 1000 prompt tokens ($0.001) and up to 1000 completion tokens ($0.01).
    fn ask() -> Ask {
        Ask {
            price: price(),
            prompt_bound_tokens: 1000,
            max_tokens: 1000,
            min_useful_tokens: 256,
        }
    }

    const WORST: Usd = Usd(11_000_000_000);

    fn only(kind: CapKind, limit: Usd, held: Held) -> Budget {
        let mut b = Budget::default();
        match kind {
            CapKind::PerRequest => b.caps.per_request = Some(limit),
            CapKind::Daily => b.caps.daily = Some(limit),
            CapKind::Monthly => b.caps.monthly = Some(limit),
            CapKind::Total => b.caps.total = Some(limit),
        }
        b.held.set(kind, held);
        b
    }

    fn held(spent: Usd, reserved: Usd) -> Held {
        Held { spent, reserved }
    }

    fn admit(max_tokens: u32, worst_case: Usd, lowered_from: Option<u32>) -> Verdict {
        Verdict::Admit {
            max_tokens,
            worst_case,
            lowered_from,
        }
    }

    /// A spend near the limit of the money type (an endpoint reporting an absurd cost) still
    /// fills the cap: never wraps around into room.
    #[test]
    fn a_spend_at_the_limit_of_the_money_type_never_wraps_into_room() {
        for (spent, reserved) in [
            (Usd(i64::MAX - 5), cents(1)),
            (cents(1), Usd(i64::MAX)),
            (Usd(i64::MAX), Usd(i64::MAX)),
        ] {
            for kind in [CapKind::Daily, CapKind::Monthly, CapKind::Total] {
                let b = only(kind, cents(100), held(spent, reserved));
                let v = decide(&ask(), &b, &Budget::default()).unwrap();
                assert!(matches!(v, Verdict::Refuse(_)), "{kind:?}: {v:?}");
                let v = decide(&ask(), &Budget::default(), &b).unwrap();
                assert!(matches!(v, Verdict::Refuse(_)), "global {kind:?}: {v:?}");
            }
        }
    }

    #[test]
    fn caps_get_and_any_follow_every_kind() {
        assert!(!Caps::default().any());
        for kind in CapKind::ALL {
            let b = only(kind, cents(7), Held::default());
            assert!(b.caps.any(), "{kind:?}");
            for other in CapKind::ALL {
                let want = (other == kind).then_some(cents(7));
                assert_eq!(b.caps.get(other), want, "{kind:?} / {other:?}");
            }
        }
        let mut p = Periods::default();
        p.set(CapKind::PerRequest, held(cents(1), cents(1)));
        assert_eq!(p.of(CapKind::PerRequest), Held::default());
    }

    /// Every cap kind, in either scope: refused when the worst case does not fit (and lowering
    /// would leave too little), admitted untouched when it does. The other scope has a loose cap
    /// of every kind, never the one reported.
    #[test]
    fn every_cap_kind_in_every_scope() {
        let loose = Budget {
            caps: Caps {
                per_request: Some(cents(100)),
                daily: Some(cents(100)),
                monthly: Some(cents(100)),
                total: Some(cents(100)),
            },
            held: Periods::default(),
        };
        // (kind, what its period holds)
        let table = [
            (CapKind::PerRequest, Held::default()),
            (CapKind::Daily, held(cents(2), cents(1))),
            (CapKind::Monthly, held(cents(5), cents(1))),
            (CapKind::Total, held(cents(10), cents(1))),
        ];
        for scope in [Scope::Project, Scope::Global] {
            for (kind, h) in table {
                // Room for 0.5 cents: not the 1.1-cent worst case, and lowering would leave
                // 400 tokens, below min_useful (512).
                let limit = h.counted() + Usd(5_000_000_000);
                let tight = only(kind, limit, h);
                let (p, g) = match scope {
                    Scope::Project => (tight, loose),
                    Scope::Global => (loose, tight),
                };
                let mut a = ask();
                a.min_useful_tokens = DEFAULT_MIN_USEFUL_TOKENS;
                assert_eq!(
                    decide(&a, &p, &g),
                    Ok(Verdict::Refuse(Refusal {
                        cap: kind,
                        scope,
                        limit,
                        spent: h.spent,
                        reserved: h.reserved,
                        worst_case: WORST,
                    })),
                    "{kind:?} {scope:?}"
                );
                // With room for the whole worst case, nothing is lowered.
                let roomy = only(kind, h.counted() + WORST, h);
                let (p, g) = match scope {
                    Scope::Project => (roomy, loose),
                    Scope::Global => (loose, roomy),
                };
                assert_eq!(
                    decide(&a, &p, &g),
                    Ok(admit(1000, WORST, None)),
                    "{kind:?} {scope:?}"
                );
            }
        }
    }

    #[test]
    fn the_tightest_cap_is_chosen_and_ties_go_first() {
        let both = |p: Budget, g: Budget| tightest_cap(&p, &g).map(|t| (t.scope, t.kind));
        let mut p = Budget::default();
        p.caps.daily = Some(cents(10));
        p.held.day = held(cents(6), cents(1)); // 3 cents of room
        p.caps.monthly = Some(cents(50));
        p.held.month = held(cents(48), Usd::ZERO); // 2 cents
        p.caps.total = Some(cents(100)); // nothing held: 100 cents
        let mut g = Budget::default();
        g.caps.per_request = Some(cents(4)); // 4 cents
        g.caps.daily = Some(cents(20));
        g.held.day = held(cents(17), Usd::ZERO); // 3 cents
        type Case = (Budget, Budget, Option<(Scope, CapKind)>);
        // (project, global, expected)
        let table: [Case; 5] = [
            (Budget::default(), Budget::default(), None),
            (p, g, Some((Scope::Project, CapKind::Monthly))),
            (g, p, Some((Scope::Global, CapKind::Monthly))),
            // Equal room (3 cents): the project's daily cap comes first.
            (
                Budget {
                    caps: Caps {
                        monthly: None,
                        ..p.caps
                    },
                    ..p
                },
                g,
                Some((Scope::Project, CapKind::Daily)),
            ),
            // Equal room within a scope: per-request before daily.
            (
                Budget::default(),
                Budget {
                    caps: Caps {
                        per_request: Some(cents(3)),
                        ..g.caps
                    },
                    ..g
                },
                Some((Scope::Global, CapKind::PerRequest)),
            ),
        ];
        for (i, (p, g, want)) in table.into_iter().enumerate() {
            assert_eq!(both(p, g), want, "case {i}");
        }
        // The decision reports that cap's figures: 4.1 cents do not fit in 2, and the 1900
        // tokens that would are below min_useful.
        let a = Ask {
            max_tokens: 4000,
            min_useful_tokens: 2000,
            ..ask()
        };
        let Ok(Verdict::Refuse(r)) = decide(&a, &p, &g) else {
            panic!("expected a refusal");
        };
        assert_eq!(
            (r.scope, r.cap, r.limit, r.spent, r.reserved),
            (
                Scope::Project,
                CapKind::Monthly,
                cents(50),
                cents(48),
                Usd::ZERO
            )
        );
    }

    #[test]
    fn a_free_model_is_always_admitted_at_zero() {
        let spent = Budget {
            caps: Caps {
                per_request: Some(Usd::ZERO),
                daily: Some(cents(1)),
                monthly: Some(cents(1)),
                total: Some(cents(1)),
            },
            held: Periods {
                day: held(cents(5), Usd::ZERO),
                month: held(cents(5), Usd::ZERO),
                total: held(cents(5), cents(3)),
            },
        };
        let free = Ask {
            price: Price::default(),
            prompt_bound_tokens: 100_000,
            max_tokens: 8000,
            min_useful_tokens: DEFAULT_MIN_USEFUL_TOKENS,
        };
        // (prompt bound, max_tokens)
        for (prompt, max) in [(100_000, 8000), (u64::MAX, u32::MAX), (0, 0)] {
            let a = Ask {
                prompt_bound_tokens: prompt,
                max_tokens: max,
                ..free
            };
            assert_eq!(
                decide(&a, &spent, &spent),
                Ok(admit(max, Usd::ZERO, None)),
                "{prompt} / {max}"
            );
        }
        // The same request at a price is refused.
        let paid = Ask {
            price: price(),
            ..free
        };
        assert!(matches!(
            decide(&paid, &spent, &spent),
            Ok(Verdict::Refuse(_))
        ));
    }

    /// Lowering `max_tokens`: (cap kind, room left after what is held, min_useful,
    /// expected `max_tokens` or `None` for a refusal).
    #[test]
    fn max_tokens_is_lowered_to_fit_or_refused() {
        let prompt = Usd(1_000_000_000); // 1000 prompt tokens at $1e-6
        let per_token = Usd(10_000_000);
        let table: [(CapKind, Usd, u32, Option<u32>); 9] = [
            // 0.5 cents of output: 500 tokens.
            (
                CapKind::Daily,
                prompt + Usd(500 * 10_000_000),
                256,
                Some(500),
            ),
            // A remainder rounds down.
            (CapKind::PerRequest, Usd(1_999_999_999), 16, Some(99)),
            // Room for exactly min_useful: fits.
            (
                CapKind::Monthly,
                prompt + Usd(511 * 10_000_000),
                511,
                Some(511),
            ),
            // One token short of min_useful: refused.
            (CapKind::Monthly, prompt + Usd(511 * 10_000_000), 512, None),
            (CapKind::Total, prompt + Usd(511 * 10_000_000), 512, None),
            // Never below 16 tokens, whatever min_useful says.
            (CapKind::PerRequest, prompt + Usd(15 * 10_000_000), 0, None),
            (
                CapKind::PerRequest,
                prompt + Usd(16 * 10_000_000),
                0,
                Some(16),
            ),
            // The prompt alone above the cap.
            (CapKind::PerRequest, Usd(999_999_999), 0, None),
            // A cap already crossed by what is held.
            (CapKind::Daily, Usd(-1), 0, None),
        ];
        for (i, (kind, room, min_useful, want)) in table.into_iter().enumerate() {
            let h = match kind {
                CapKind::PerRequest => Held::default(),
                _ => held(cents(2), cents(1)),
            };
            let b = only(kind, h.counted() + room, h);
            let a = Ask {
                max_tokens: 4000,
                min_useful_tokens: min_useful,
                ..ask()
            };
            let got = decide(&a, &b, &Budget::default()).unwrap();
            match want {
                Some(m) => {
                    let worst = prompt + Usd(per_token.0 * i64::from(m));
                    assert_eq!(got, admit(m, worst, Some(4000)), "case {i}");
                    // What is reserved fits the cap.
                    assert!(worst <= room, "case {i}");
                }
                None => {
                    let Verdict::Refuse(r) = got else {
                        panic!("case {i}: expected a refusal, got {got:?}");
                    };
                    assert_eq!((r.cap, r.scope), (kind, Scope::Project), "case {i}");
                    assert_eq!((r.spent, r.reserved), (h.spent, h.reserved), "case {i}");
                    assert_eq!(r.worst_case, prompt + Usd(per_token.0 * 4000), "case {i}");
                }
            }
        }
    }

    /// Exactly at the cap: a worst case equal to the room is admitted untouched, one picodollar
    /// more is lowered; a period already exactly at its cap refuses.
    #[test]
    fn exactly_at_the_cap() {
        // (room, expected)
        let table: [(Usd, Verdict); 3] = [
            (WORST, admit(1000, WORST, None)),
            (
                WORST - Usd(1),
                admit(999, WORST - Usd(10_000_000), Some(1000)),
            ),
            (
                Usd::ZERO,
                Verdict::Refuse(Refusal {
                    cap: CapKind::Daily,
                    scope: Scope::Global,
                    limit: cents(3),
                    spent: cents(2),
                    reserved: cents(1),
                    worst_case: WORST,
                }),
            ),
        ];
        for (room, want) in table {
            let h = held(cents(2), cents(1));
            let g = only(CapKind::Daily, h.counted() + room, h);
            assert_eq!(decide(&ask(), &Budget::default(), &g), Ok(want), "{room:?}");
        }
    }

    #[test]
    fn no_caps_admits_the_whole_worst_case_and_overflow_is_an_error() {
        assert_eq!(
            decide(&ask(), &Budget::default(), &Budget::default()),
            Ok(admit(1000, WORST, None))
        );
        let huge = Ask {
            prompt_bound_tokens: u64::MAX,
            ..ask()
        };
        assert_eq!(
            decide(&huge, &Budget::default(), &Budget::default()),
            Err(Overflow)
        );
    }

    #[test]
    fn refusal_messages_name_the_cap_and_where_to_raise_it() {
        let r = Refusal {
            cap: CapKind::Daily,
            scope: Scope::Project,
            limit: Usd(35_000_000_000),
            spent: cents(2),
            reserved: cents(1),
            worst_case: WORST,
        };
        assert_eq!(
            r.message(Some("/p/.frugal.toml")),
            "daily cap $0.0350 for this project reached: $0.0200 spent, $0.0100 reserved; this \
             request could cost up to $0.0110. Raise [budget] daily_usd in /p/.frugal.toml"
        );
        assert!(r
            .message(None)
            .ends_with("Raise budget.daily_usd in your frugal setup()"));
        let g = Refusal {
            cap: CapKind::PerRequest,
            scope: Scope::Global,
            ..r
        };
        assert!(g.to_string().starts_with("per-request cap"));
        assert!(g
            .message(Some("/p/.frugal.toml"))
            .ends_with("Raise global_budget.per_request_usd in your frugal setup()"));
        for kind in CapKind::ALL {
            let m = Refusal { cap: kind, ..r }.message(None);
            assert!(m.contains(kind.config_key()), "{m}");
        }
    }
}
