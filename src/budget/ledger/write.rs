//! Writing the ledger: a reservation checked against every cap, then its settlement (or
//! failure, or a later reconciliation), the once-per-period warning marks, and the reservations
//! whose owner process died.

use std::collections::HashMap;

use rusqlite::{params, Connection, OptionalExtension, TransactionBehavior};

use super::sums::{totals, window};
use super::{owner_gone, Ledger, LedgerError, RequestId};
use crate::budget::caps::{
    self, Ask, Budget, CapKind, Caps, Periods, Refusal, Verdict, DEFAULT_MIN_USEFUL_TOKENS,
};
use crate::budget::clock::{day_bounds, month_bounds, unix_ms, Clock};
use crate::budget::money::{Price, Usd};

/// The outcome of [`Ledger::reserve`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// Go ahead, sending exactly `max_tokens`.
    Reserved {
        /// The row to settle or fail later.
        id: RequestId,
        /// The `max_tokens` to send (maybe lower than asked).
        max_tokens: u32,
        /// What was reserved: the most this request can cost with that `max_tokens`.
        worst_case: Usd,
        /// The `max_tokens` asked for, when it had to be lowered to fit a cap.
        lowered_from: Option<u32>,
    },
    /// Do not send anything; nothing was written.
    Refused(Refusal),
}

/// What [`Ledger::reserve`] needs to know about a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReserveInput<'a> {
    /// Canonical project path.
    pub project: &'a str,
    /// Model id.
    pub model: &'a str,
    /// An upper bound on the prompt's tokens (the caller over-estimates, never under).
    pub prompt_bound_tokens: u64,
    /// The `max_tokens` the caller would like to send.
    pub max_tokens: u32,
    /// Below this, lowering `max_tokens` is pointless and the request is refused instead.
    pub min_useful_tokens: u32,
    /// The model's catalogue price.
    pub price: Price,
    /// The project's caps.
    pub project_caps: Caps,
    /// Caps over all projects together.
    pub global_caps: Caps,
    /// What the request is for.
    pub kind: RequestKind,
    /// The prompt's size in UTF-8 bytes, when known.
    pub prompt_bytes: Option<u64>,
    /// Which key the request goes through (`requests.key_id`), never the key itself.
    pub key_id: Option<&'a str>,
}

/// What a request is for (`requests.kind`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum RequestKind {
    /// `:LlmEdit`.
    #[default]
    Edit,
    /// `:LlmReview`: the judge.
    Review,
    /// `:LlmAsk`: a question answered in prose.
    Ask,
}

impl RequestKind {
    /// The value stored in `requests.kind`.
    pub fn as_str(self) -> &'static str {
        match self {
            RequestKind::Edit => "edit",
            RequestKind::Review => "review",
            RequestKind::Ask => "ask",
        }
    }
}

impl<'a> ReserveInput<'a> {
    /// An input with no caps and [`DEFAULT_MIN_USEFUL_TOKENS`]; set the caps on the result.
    pub fn new(
        project: &'a str,
        model: &'a str,
        prompt_bound_tokens: u64,
        max_tokens: u32,
        price: Price,
    ) -> Self {
        ReserveInput {
            project,
            model,
            prompt_bound_tokens,
            max_tokens,
            min_useful_tokens: DEFAULT_MIN_USEFUL_TOKENS,
            price,
            project_caps: Caps::default(),
            global_caps: Caps::default(),
            kind: RequestKind::Edit,
            prompt_bytes: None,
            key_id: None,
        }
    }

    /// The request, as the pure cap decision sees it.
    fn ask(&self) -> Ask {
        Ask {
            price: self.price,
            prompt_bound_tokens: self.prompt_bound_tokens,
            max_tokens: self.max_tokens,
            min_useful_tokens: self.min_useful_tokens,
        }
    }
}

/// Where a settled amount came from (`requests.charge_source`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ChargeSource {
    /// The stream's usage chunk (`usage.cost`): authoritative.
    Usage,
    /// `GET /generation?id=` (`total_cost`): authoritative, learned later.
    Generation,
    /// Local tokens × price: a fallback when OpenRouter never told.
    Estimate,
}

impl ChargeSource {
    fn as_str(self) -> &'static str {
        match self {
            ChargeSource::Usage => "usage",
            ChargeSource::Generation => "generation",
            ChargeSource::Estimate => "estimate",
        }
    }
}

/// The final figures of a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Settlement {
    /// What the account was charged.
    pub charged: Usd,
    /// Prompt tokens.
    pub tokens_in: Option<u64>,
    /// Completion tokens.
    pub tokens_out: Option<u64>,
    /// Cached prompt tokens.
    pub tokens_cached: Option<u64>,
    /// Reasoning tokens.
    pub tokens_reasoning: Option<u64>,
    /// What the cached prompt tokens saved against the full prompt price.
    pub cache_saved: Option<Usd>,
    /// Where `charged` came from.
    pub source: ChargeSource,
}

impl Settlement {
    /// A settlement with only the charge known.
    pub fn charged(charged: Usd, source: ChargeSource) -> Self {
        Settlement {
            charged,
            tokens_in: None,
            tokens_out: None,
            tokens_cached: None,
            tokens_reasoning: None,
            cache_saved: None,
            source,
        }
    }
}

/// A reservation whose owner process is gone: its cost must be looked up and reconciled.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pending {
    /// The row.
    pub id: RequestId,
    /// OpenRouter's generation id, if the owner learned it before dying.
    pub generation_id: Option<String>,
    /// What the row still counts.
    pub reserved: Usd,
    /// Project path.
    pub project: String,
    /// Model id.
    pub model: String,
    /// Whether it may have reached the server (`requests.sent`); never sent, it is released.
    pub sent: bool,
}

impl Ledger {
    /// Checks `input`'s worst case against every cap and reserves it, all in one
    /// `BEGIN IMMEDIATE` transaction, so that concurrent processes are serialised between the
    /// check and the insert and can never pass a cap together.
    ///
    /// A free model is always reserved (at 0). When the worst case does not fit, `max_tokens` is
    /// lowered to the largest value that fits every cap, if that is still at least
    /// `min_useful_tokens` (and 16); otherwise the request is refused and nothing is written.
    /// The rule is [`caps::decide`]; this reads the figures it needs and writes its outcome.
    pub fn reserve(
        &mut self,
        input: &ReserveInput<'_>,
        clock: &dyn Clock,
    ) -> Result<Decision, LedgerError> {
        if input.project.is_empty() {
            return Err(LedgerError::Invalid("empty project".into()));
        }
        let now = clock.now();
        let now_ms = unix_ms(now.timestamp());
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        // A free model passes whatever the caps: its periods are not even summed.
        let (project, global) = if input.price.is_free() {
            (Budget::default(), Budget::default())
        } else {
            (
                budget(&tx, input.project_caps, input.project, &now)?,
                budget(&tx, input.global_caps, "", &now)?,
            )
        };
        let (max_tokens, worst_case, lowered_from) =
            match caps::decide(&input.ask(), &project, &global)? {
                Verdict::Admit {
                    max_tokens,
                    worst_case,
                    lowered_from,
                } => (max_tokens, worst_case, lowered_from),
                // Dropping `tx` rolls back: a refusal writes nothing.
                Verdict::Refuse(r) => return Ok(Decision::Refused(r)),
            };

        tx.prepare_cached(
            "INSERT INTO requests (project, model, created_at, state, reserved, owner_pid,
                owner_instance, kind, prompt_bytes, key_id, sent)
             VALUES (?1, ?2, ?3, 'reserved', ?4, ?5, ?6, ?7, ?8, ?9, 0)",
        )?
        .execute(params![
            input.project,
            input.model,
            now_ms,
            worst_case.0,
            i64::from(self.pid),
            self.instance,
            input.kind.as_str(),
            input
                .prompt_bytes
                .map(|b| i64::try_from(b).unwrap_or(i64::MAX)),
            input.key_id,
        ])?;
        let id = RequestId(tx.last_insert_rowid());
        tx.commit()?;
        Ok(Decision::Reserved {
            id,
            max_tokens,
            worst_case,
            lowered_from,
        })
    }

    /// Records OpenRouter's generation id, so the cost can be looked up if this process dies.
    pub fn set_generation_id(
        &mut self,
        id: RequestId,
        generation_id: &str,
    ) -> Result<(), LedgerError> {
        let n = self
            .conn
            .prepare_cached("UPDATE requests SET generation_id = ?2 WHERE id = ?1")?
            .execute(params![id.0, generation_id])?;
        if n == 0 {
            return Err(LedgerError::NotFound(id));
        }
        Ok(())
    }

    /// Records that the request is about to go on the wire: from here it may be billed, and
    /// if its process dies it is reconciled, never released. Call it before the first byte
    /// leaves: the commit is synced to disk (`synchronous=FULL`) when this returns. Fails with
    /// [`LedgerError::NotReserved`] when the row was settled or released meanwhile (the process
    /// is exiting): then nothing may be sent.
    pub fn mark_sent(&mut self, id: RequestId) -> Result<(), LedgerError> {
        self.set_sent(id, true)
    }

    /// Records that the attempt on the wire was refused before anything was generated (a 429,
    /// a 401 before another key) or never connected: nothing was billed, and until it is sent
    /// again ([`Ledger::mark_sent`]) the row is released if its process dies.
    pub fn mark_unsent(&mut self, id: RequestId) -> Result<(), LedgerError> {
        self.set_sent(id, false)
    }

    fn set_sent(&mut self, id: RequestId, sent: bool) -> Result<(), LedgerError> {
        let n = self
            .conn
            .prepare_cached("UPDATE requests SET sent = ?2 WHERE id = ?1 AND state = 'reserved'")?
            .execute(params![id.0, sent])?;
        if n == 1 {
            return Ok(());
        }
        let state: Option<String> = self
            .conn
            .prepare_cached("SELECT state FROM requests WHERE id = ?1")?
            .query_row([id.0], |r| r.get(0))
            .optional()?;
        Err(match state {
            None => LedgerError::NotFound(id),
            Some(state) => LedgerError::NotReserved { id, state },
        })
    }

    /// At exit: every reservation of this process that is not on the wire is released (state
    /// `failed`, charged 0), in one transaction. Returns how many. A request marked sent stays
    /// reserved, to be reconciled at the next start.
    pub fn release_unsent(&mut self, clock: &dyn Clock) -> Result<usize, LedgerError> {
        let now_ms = unix_ms(clock.now().timestamp());
        let n = self
            .conn
            .prepare_cached(
                "UPDATE requests SET state = 'failed', charged = 0, settled_at = ?1
                 WHERE state = 'reserved' AND sent = 0 AND owner_pid = ?2
                   AND owner_instance = ?3",
            )?
            .execute(params![now_ms, i64::from(self.pid), self.instance])?;
        Ok(n)
    }

    /// At start: the reservations of dead owners ([`Ledger::orphans`]) that were never sent
    /// are released (state `failed`, charged 0: nothing can have been billed), in one
    /// transaction. Returns the orphans that may have been billed, to reconcile.
    pub fn release_orphans(
        &mut self,
        my_pid: u32,
        my_instance: &str,
        clock: &dyn Clock,
    ) -> Result<Vec<Pending>, LedgerError> {
        let (sent, unsent): (Vec<_>, Vec<_>) = self
            .orphans(my_pid, my_instance)?
            .into_iter()
            .partition(|p| p.sent);
        if !unsent.is_empty() {
            let now_ms = unix_ms(clock.now().timestamp());
            let tx = self
                .conn
                .transaction_with_behavior(TransactionBehavior::Immediate)?;
            for p in &unsent {
                // Guarded: another backend starting at once may have released it first.
                tx.prepare_cached(
                    "UPDATE requests SET state = 'failed', charged = 0, settled_at = ?2
                     WHERE id = ?1 AND state = 'reserved' AND sent = 0",
                )?
                .execute(params![p.id.0, now_ms])?;
            }
            tx.commit()?;
        }
        Ok(sent)
    }

    /// Replaces a reservation with what was actually charged (state `settled`). The rollups
    /// follow in the same transaction (by trigger), and the commit is synced to disk.
    pub fn settle(
        &mut self,
        id: RequestId,
        s: Settlement,
        clock: &dyn Clock,
    ) -> Result<(), LedgerError> {
        self.finish(id, "settled", &s, clock, true)
    }

    /// Records that the request was not billed (rejected before generation, connection refused):
    /// state `failed`, `charged` 0. Use it only when nothing can have been billed; a cancelled
    /// stream may have been (some providers bill on), so leave it reserved and reconcile it.
    pub fn fail(&mut self, id: RequestId, clock: &dyn Clock) -> Result<(), LedgerError> {
        let s = Settlement::charged(Usd::ZERO, ChargeSource::Usage);
        self.finish(id, "failed", &s, clock, true)
    }

    /// Writes the figures learned later (normally from `GET /generation`) into any row,
    /// whatever its state (an orphaned reservation, an estimate): state `reconciled`.
    pub fn reconcile(
        &mut self,
        id: RequestId,
        s: Settlement,
        clock: &dyn Clock,
    ) -> Result<(), LedgerError> {
        self.finish(id, "reconciled", &s, clock, false)
    }

    fn finish(
        &mut self,
        id: RequestId,
        state: &str,
        s: &Settlement,
        clock: &dyn Clock,
        only_reserved: bool,
    ) -> Result<(), LedgerError> {
        if s.charged.0 < 0 {
            return Err(LedgerError::Invalid(format!(
                "negative charge for request {id}"
            )));
        }
        let tok = |t: Option<u64>| -> Result<Option<i64>, LedgerError> {
            t.map(|v| i64::try_from(v).map_err(|_| LedgerError::Invalid("token count".into())))
                .transpose()
        };
        let now_ms = unix_ms(clock.now().timestamp());
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        let current: Option<String> = tx
            .prepare_cached("SELECT state FROM requests WHERE id = ?1")?
            .query_row([id.0], |r| r.get(0))
            .optional()?;
        match current {
            None => return Err(LedgerError::NotFound(id)),
            Some(cur) if only_reserved && cur != "reserved" => {
                return Err(LedgerError::NotReserved { id, state: cur });
            }
            Some(_) => {}
        }
        let source = if state == "failed" {
            None
        } else {
            Some(s.source.as_str())
        };
        tx.prepare_cached(
            "UPDATE requests SET state = ?2, charged = ?3, settled_at = ?4,
                tokens_in = ?5, tokens_out = ?6, tokens_cached = ?7, tokens_reasoning = ?8,
                charge_source = ?9, cache_saved = ?10
             WHERE id = ?1",
        )?
        .execute(params![
            id.0,
            state,
            s.charged.0,
            now_ms,
            tok(s.tokens_in)?,
            tok(s.tokens_out)?,
            tok(s.tokens_cached)?,
            tok(s.tokens_reasoning)?,
            source,
            s.cache_saved.map(|u| u.0.max(0)),
        ])?;
        tx.commit()?;
        Ok(())
    }

    /// Records that the `warn_at` notice for this cap and period was given. True the first time
    /// only, across every process sharing the ledger: one notice per period.
    pub fn warn_once(
        &mut self,
        scope: &str,
        cap: CapKind,
        period_start_ms: i64,
    ) -> Result<bool, LedgerError> {
        let n = self.conn.execute(
            "INSERT OR IGNORE INTO warnings (scope, cap, period_start) VALUES (?1, ?2, ?3)",
            params![scope, cap.config_key(), period_start_ms],
        )?;
        Ok(n == 1)
    }

    /// Reservations whose owner is gone: its pid no longer exists, or it is this process's pid
    /// under another instance id (a previous incarnation). They still count in full until
    /// released (never sent) or reconciled ([`Ledger::release_orphans`]).
    pub fn orphans(&self, my_pid: u32, my_instance: &str) -> Result<Vec<Pending>, LedgerError> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT id, generation_id, reserved, project, model, owner_pid, owner_instance, sent
             FROM requests WHERE state = 'reserved' ORDER BY id",
        )?;
        let rows = stmt.query_map([], |r| {
            Ok((
                Pending {
                    id: RequestId(r.get(0)?),
                    generation_id: r.get(1)?,
                    reserved: Usd(r.get(2)?),
                    project: r.get(3)?,
                    model: r.get(4)?,
                    sent: r.get(7)?,
                },
                r.get::<_, i64>(5)?,
                r.get::<_, String>(6)?,
            ))
        })?;
        let mut alive: HashMap<i64, bool> = HashMap::new();
        let mut out = Vec::new();
        for row in rows {
            let (pending, pid, instance) = row?;
            if owner_gone(pid, &instance, (my_pid, my_instance), &mut alive) {
                out.push(pending);
            }
        }
        Ok(out)
    }
}

/// One scope's caps (of `key`: a project, or `''` for all) with what their periods hold, read
/// in the caller's transaction. Periods are only summed for caps that are set.
fn budget(
    conn: &Connection,
    caps: Caps,
    key: &str,
    now: &jiff::Zoned,
) -> Result<Budget, LedgerError> {
    let mut held = Periods::default();
    for kind in CapKind::ALL {
        if caps.get(kind).is_none() {
            continue;
        }
        let used = match kind {
            CapKind::PerRequest => continue,
            CapKind::Daily => {
                let (a, b) = day_bounds(now);
                window(conn, key, a, b)?
            }
            CapKind::Monthly => {
                let (a, b) = month_bounds(now);
                window(conn, key, a, b)?
            }
            CapKind::Total => totals(conn, key)?,
        };
        held.set(kind, used.held());
    }
    Ok(Budget { caps, held })
}

#[cfg(test)]
mod tests {
    use super::super::testkit::*;
    use super::*;
    use crate::budget::caps::Scope;
    use crate::budget::clock::FixedClock;
    use crate::budget::ledger::Spend;
    use jiff::ToSpan;
    use std::path::Path;
    use std::time::Duration;

    #[test]
    fn reserve_then_settle_records_everything() {
        let (_d, _p, mut l) = temp_ledger();
        let c = clock("2025-06-15T12:00:00+02:00[Europe/Paris]");
        let (id, max, worst, lowered) = reserved(l.reserve(&input("/p", 1000, 1000), &c).unwrap());
        assert_eq!(
            (max, worst, lowered),
            (1000, Usd::parse_decimal("0.011").unwrap(), None)
        );
        let s = l.spend(Some("/p"), &c).unwrap();
        assert_eq!(s.today, worst);
        assert_eq!(s.reserved_unsettled, worst);
        l.set_generation_id(id, "gen-123").unwrap();
        c.advance(3.seconds());
        let settlement = Settlement {
            charged: Usd::from_cost_f64(0.00095).unwrap(),
            tokens_in: Some(194),
            tokens_out: Some(2),
            tokens_cached: Some(0),
            tokens_reasoning: None,
            cache_saved: None,
            source: ChargeSource::Usage,
        };
        l.settle(id, settlement, &c).unwrap();
        let row: (String, i64, i64, i64, Option<i64>, String, String, i64) = l
            .connection()
            .query_row(
                "SELECT state, charged, tokens_in, tokens_out, tokens_reasoning, generation_id,
                        charge_source, settled_at - created_at FROM requests WHERE id = ?1",
                [id.0],
                |r| {
                    Ok((
                        r.get(0)?,
                        r.get(1)?,
                        r.get(2)?,
                        r.get(3)?,
                        r.get(4)?,
                        r.get(5)?,
                        r.get(6)?,
                        r.get(7)?,
                    ))
                },
            )
            .unwrap();
        assert_eq!(
            row,
            (
                "settled".into(),
                950_000_000,
                194,
                2,
                None,
                "gen-123".into(),
                "usage".into(),
                3000
            )
        );
        let s = l.spend(Some("/p"), &c).unwrap();
        assert_eq!(
            s,
            Spend {
                today: Usd(950_000_000),
                month: Usd(950_000_000),
                total: Usd(950_000_000),
                reserved_unsettled: Usd::ZERO
            }
        );
        assert_eq!(l.spend(None, &c).unwrap(), s);
        assert_eq!(l.spend(Some("/other"), &c).unwrap(), Spend::default());
        assert!(matches!(
            l.settle(id, settlement, &c),
            Err(LedgerError::NotReserved { .. })
        ));
        assert!(matches!(
            l.fail(id, &c),
            Err(LedgerError::NotReserved { .. })
        ));
        assert!(matches!(
            l.fail(RequestId(999), &c),
            Err(LedgerError::NotFound(_))
        ));
        assert!(matches!(
            l.set_generation_id(RequestId(999), "x"),
            Err(LedgerError::NotFound(_))
        ));

        // A failed request counts nothing.
        let (id2, ..) = reserved(l.reserve(&input("/p", 1000, 1000), &c).unwrap());
        l.fail(id2, &c).unwrap();
        assert_eq!(l.spend(Some("/p"), &c).unwrap().total, Usd(950_000_000));
        let (state, charged, src): (String, i64, Option<String>) = l
            .connection()
            .query_row(
                "SELECT state, charged, charge_source FROM requests WHERE id = ?1",
                [id2.0],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
            )
            .unwrap();
        assert_eq!((state.as_str(), charged, src), ("failed", 0, None));
        assert!(matches!(
            l.settle(id2, Settlement::charged(Usd(-1), ChargeSource::Usage), &c),
            Err(LedgerError::Invalid(_))
        ));
        assert!(matches!(
            l.reserve(&input("", 0, 16), &c),
            Err(LedgerError::Invalid(_))
        ));
        assert_consistent(&l);
    }

    #[test]
    fn every_cap_refuses_and_writes_nothing() {
        for scope in [Scope::Project, Scope::Global] {
            for kind in [
                CapKind::PerRequest,
                CapKind::Daily,
                CapKind::Monthly,
                CapKind::Total,
            ] {
                let (_d, _p, mut l) = temp_ledger();
                let c = clock("2025-06-15T12:00:00+02:00[Europe/Paris]");
                // History: 5 cents last month, 3 earlier this month, 2 today, 1 in flight today.
                c.set("2025-05-20T12:00:00+02:00[Europe/Paris]".parse().unwrap());
                spend_settled(&mut l, "/p", cents(5), &c);
                c.set("2025-06-02T12:00:00+02:00[Europe/Paris]".parse().unwrap());
                spend_settled(&mut l, "/p", cents(3), &c);
                c.set("2025-06-15T12:00:00+02:00[Europe/Paris]".parse().unwrap());
                spend_settled(&mut l, "/p", cents(2), &c);
                let (_inflight, ..) = reserved(
                    l.reserve(&ReserveInput::new("/p", "m", 10_000, 0, price()), &c)
                        .unwrap(),
                );
                let (spent, held) = match kind {
                    CapKind::PerRequest => (Usd::ZERO, Usd::ZERO),
                    CapKind::Daily => (cents(2), cents(1)),
                    CapKind::Monthly => (cents(5), cents(1)),
                    CapKind::Total => (cents(10), cents(1)),
                };
                // Room for 0.5 cents more: not for the 1.1-cent request, and lowering would
                // leave 400 tokens, below min_useful.
                let limit = spent + held + Usd(5_000_000_000);
                let mut caps = Caps::default();
                match kind {
                    CapKind::PerRequest => caps.per_request = Some(limit),
                    CapKind::Daily => caps.daily = Some(limit),
                    CapKind::Monthly => caps.monthly = Some(limit),
                    CapKind::Total => caps.total = Some(limit),
                }
                // A generous cap of the other scope must not be the one reported.
                let loose = Caps {
                    per_request: Some(cents(100)),
                    daily: Some(cents(100)),
                    monthly: Some(cents(100)),
                    total: Some(cents(100)),
                };
                let mut inp = input("/p", 1000, 1000);
                (inp.project_caps, inp.global_caps) = match scope {
                    Scope::Project => (caps, loose),
                    Scope::Global => (loose, caps),
                };
                let before = rows(&l);
                let r = refused(l.reserve(&inp, &c).unwrap());
                assert_eq!(
                    r,
                    Refusal {
                        cap: kind,
                        scope,
                        limit,
                        spent,
                        reserved: held,
                        worst_case: cents(1) + Usd(1_000_000_000),
                    },
                    "{kind:?} {scope:?}"
                );
                assert_eq!(rows(&l), before, "a refusal inserts nothing");
                let msg = r.message(Some("/p/.frugal.toml"));
                assert!(msg.contains(kind.config_key()), "{msg}");
                if kind == CapKind::Daily && scope == Scope::Project {
                    assert_eq!(
                        msg,
                        "daily cap $0.0350 for this project reached: $0.0200 spent, $0.0100 \
                         reserved; this request could cost up to $0.0110. Raise [budget] \
                         daily_usd in /p/.frugal.toml"
                    );
                }
                // With a bit more room the same request goes through.
                let more = Usd(6_000_000_000);
                let bump = |c: &mut Caps| {
                    for v in [
                        &mut c.per_request,
                        &mut c.daily,
                        &mut c.monthly,
                        &mut c.total,
                    ]
                    .into_iter()
                    .flatten()
                    {
                        *v += more;
                    }
                };
                bump(&mut inp.project_caps);
                bump(&mut inp.global_caps);
                let (_, max, ..) = reserved(l.reserve(&inp, &c).unwrap());
                assert_eq!(max, 1000);
                assert_consistent(&l);
            }
        }
    }

    #[test]
    fn lowers_max_tokens_to_fit() {
        let (_d, _p, mut l) = temp_ledger();
        let c = clock("2025-06-15T12:00:00+02:00[Europe/Paris]");
        spend_settled(&mut l, "/p", cents(2), &c);
        let mut inp = input("/p", 1000, 4000);
        inp.min_useful_tokens = 256;
        // 0.6 cents left after 2: 0.1 for the prompt, 0.5 for 500 output tokens.
        inp.project_caps.daily = Some(cents(2) + Usd(6_000_000_000));
        let (id, max, worst, lowered) = reserved(l.reserve(&inp, &c).unwrap());
        assert_eq!((max, lowered), (500, Some(4000)));
        assert_eq!(worst, Usd(6_000_000_000));
        // The day is now exactly at its cap: nothing more fits...
        let r = refused(l.reserve(&inp, &c).unwrap());
        assert_eq!(
            (r.cap, r.spent, r.reserved),
            (CapKind::Daily, cents(2), worst)
        );
        // ...until the answer turns out cheaper.
        l.settle(
            id,
            Settlement::charged(Usd(1_000_000_000), ChargeSource::Usage),
            &c,
        )
        .unwrap();
        let (_, max, _, lowered) = reserved(l.reserve(&inp, &c).unwrap());
        assert_eq!((max, lowered), (400, Some(4000)));

        // The per-request cap lowers too, a remainder rounds down.
        let mut inp = input("/q", 1000, 4000);
        inp.min_useful_tokens = 16;
        inp.global_caps.per_request = Some(Usd(1_999_999_999));
        let (_, max, worst, _) = reserved(l.reserve(&inp, &c).unwrap());
        assert_eq!((max, worst), (99, Usd(1_990_000_000)));
        assert_consistent(&l);
    }

    #[test]
    fn refuses_when_even_min_useful_does_not_fit() {
        let (_d, _p, mut l) = temp_ledger();
        let c = clock("2025-06-15T12:00:00+02:00[Europe/Paris]");
        let mut inp = input("/p", 1000, 4000);
        // Room for 511 output tokens after the prompt.
        inp.project_caps.monthly = Some(Usd(1_000_000_000 + 511 * 10_000_000));
        let r = refused(l.reserve(&inp, &c).unwrap());
        assert_eq!(r.cap, CapKind::Monthly);
        assert_eq!(rows(&l), 0);
        inp.min_useful_tokens = 511;
        let (_, max, ..) = reserved(l.reserve(&inp, &c).unwrap());
        assert_eq!(max, 511);
        // Never below 16 tokens, whatever min_useful says.
        let mut inp = input("/r", 1000, 4000);
        inp.min_useful_tokens = 0;
        inp.project_caps.per_request = Some(Usd(1_000_000_000 + 15 * 10_000_000));
        refused(l.reserve(&inp, &c).unwrap());
        // A prompt alone above the cap.
        inp.project_caps.per_request = Some(Usd(999_999_999));
        let r = refused(l.reserve(&inp, &c).unwrap());
        assert_eq!(r.cap, CapKind::PerRequest);
        assert!(r.to_string().starts_with("per-request cap"));
        assert_eq!(rows(&l), 1);
    }

    #[test]
    fn global_cap_spans_projects() {
        let (_d, _p, mut l) = temp_ledger();
        let c = clock("2025-06-15T12:00:00+02:00[Europe/Paris]");
        spend_settled(&mut l, "/a", cents(3), &c);
        let mut inp = input("/b", 1000, 1000);
        inp.project_caps.daily = Some(cents(100));
        inp.global_caps.daily = Some(cents(4));
        let (_, max, ..) = reserved(l.reserve(&inp, &c).unwrap());
        assert_eq!(max, 900, "0.9 cents of output fit in the cent left");
        let r = refused(l.reserve(&inp, &c).unwrap());
        assert_eq!(
            (r.scope, r.cap, r.spent),
            (Scope::Global, CapKind::Daily, cents(3))
        );
        assert!(r
            .message(None)
            .ends_with("Raise global_budget.daily_usd in your frugal setup()"));
        // The project's own spend is only its own.
        assert_eq!(l.spend(Some("/a"), &c).unwrap().today, cents(3));
        assert_eq!(l.spend(None, &c).unwrap().today, cents(4));
    }

    #[test]
    fn free_models_pass_at_a_cap() {
        let (_d, _p, mut l) = temp_ledger();
        let c = clock("2025-06-15T12:00:00+02:00[Europe/Paris]");
        spend_settled(&mut l, "/p", cents(5), &c);
        let caps = Caps {
            per_request: Some(Usd::ZERO),
            daily: Some(cents(1)),
            monthly: Some(cents(1)),
            total: Some(cents(1)),
        };
        let mut inp = ReserveInput::new("/p", "x/free:free", 100_000, 8000, Price::default());
        inp.project_caps = caps;
        inp.global_caps = caps;
        let (id, max, worst, lowered) = reserved(l.reserve(&inp, &c).unwrap());
        assert_eq!((max, worst, lowered), (8000, Usd::ZERO, None));
        l.settle(id, Settlement::charged(Usd::ZERO, ChargeSource::Usage), &c)
            .unwrap();
        inp.price = price();
        refused(l.reserve(&inp, &c).unwrap());
    }

    #[test]
    fn orphans_are_reservations_of_dead_owners() {
        let (_d, path, mut l) = temp_ledger();
        let c = clock("2025-06-15T12:00:00+02:00[Europe/Paris]");
        let me = std::process::id();
        let (mine, ..) = reserved(l.reserve(&input("/p", 1000, 100), &c).unwrap());
        // A previous incarnation of this very process (same pid, other instance).
        let mut old = Ledger::open(&path).unwrap().with_instance("previous");
        let (stale, ..) = reserved(old.reserve(&input("/p", 1000, 100), &c).unwrap());
        old.set_generation_id(stale, "gen-stale").unwrap();
        // A process that has exited.
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let dead_pid = child.id();
        child.wait().unwrap();
        let (dead, ..) = reserved(l.reserve(&input("/q", 1000, 100), &c).unwrap());
        l.connection()
            .execute(
                "UPDATE requests SET owner_pid = ?2, owner_instance = 'x' WHERE id = ?1",
                params![dead.0, dead_pid],
            )
            .unwrap();
        // A live process of another instance (pid 1 always exists) is not an orphan.
        let (live, ..) = reserved(l.reserve(&input("/q", 1000, 100), &c).unwrap());
        l.connection()
            .execute(
                "UPDATE requests SET owner_pid = 1, owner_instance = 'init' WHERE id = ?1",
                [live.0],
            )
            .unwrap();
        // Settled rows never are.
        spend_settled(&mut old, "/p", cents(1), &c);

        let found = l.orphans(me, l.instance()).unwrap();
        let ids: Vec<_> = found.iter().map(|p| p.id).collect();
        assert_eq!(ids, vec![stale, dead]);
        assert_eq!(found[0].generation_id.as_deref(), Some("gen-stale"));
        assert_eq!(found[0].reserved, Usd(2_000_000_000));
        assert_eq!(
            (found[1].project.as_str(), found[1].model.as_str()),
            ("/q", "test/model")
        );
        assert!(!ids.contains(&mine));

        let before = l.spend(Some("/p"), &c).unwrap();
        let mut s = Settlement::charged(Usd(500_000_000), ChargeSource::Generation);
        s.tokens_in = Some(900);
        l.reconcile(stale, s, &c).unwrap();
        let after = l.spend(Some("/p"), &c).unwrap();
        assert_eq!(before.total - after.total, Usd(1_500_000_000));
        let state: String = l
            .connection()
            .query_row("SELECT state FROM requests WHERE id = ?1", [stale.0], |r| {
                r.get(0)
            })
            .unwrap();
        assert_eq!(state, "reconciled");
        assert_eq!(l.orphans(me, l.instance()).unwrap().len(), 1);
        assert_consistent(&l);
    }

    fn state_of(l: &Ledger, id: RequestId) -> (String, Option<i64>, bool) {
        l.connection()
            .query_row(
                "SELECT state, charged, sent FROM requests WHERE id = ?1",
                [id.0],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
            )
            .unwrap()
    }

    /// A reservation starts unsent; marked sent before it leaves, back to unsent after an
    /// unbilled refusal (a 429). At exit, this process's unsent reservations are released and
    /// its sent ones kept; other processes' rows are not touched.
    #[test]
    fn unsent_reservations_are_released_at_exit_and_sent_ones_kept() {
        let (_d, path, mut l) = temp_ledger();
        let c = clock("2025-06-15T12:00:00+02:00[Europe/Paris]");
        let r = |l: &mut Ledger| reserved(l.reserve(&input("/p", 1000, 100), &c).unwrap()).0;
        let waiting = r(&mut l);
        let on_wire = r(&mut l);
        l.mark_sent(on_wire).unwrap();
        let retrying = r(&mut l);
        l.mark_sent(retrying).unwrap();
        l.mark_unsent(retrying).unwrap();
        let mut other = Ledger::open(&path).unwrap().with_instance("other");
        let others = r(&mut other);
        assert_eq!(state_of(&l, waiting), ("reserved".into(), None, false));
        let before = l.spend(Some("/p"), &c).unwrap();
        assert_eq!(before.reserved_unsettled, Usd(4 * 2_000_000_000));

        assert_eq!(l.release_unsent(&c).unwrap(), 2);
        for id in [waiting, retrying] {
            assert_eq!(state_of(&l, id), ("failed".into(), Some(0), false));
        }
        assert_eq!(state_of(&l, on_wire), ("reserved".into(), None, true));
        assert_eq!(state_of(&l, others), ("reserved".into(), None, false));
        assert_eq!(
            l.spend(Some("/p"), &c).unwrap().reserved_unsettled,
            Usd(2 * 2_000_000_000)
        );
        // Released first, a request may no longer be marked sent: it must not leave.
        assert!(matches!(
            l.mark_sent(waiting),
            Err(LedgerError::NotReserved { .. })
        ));
        assert!(matches!(
            l.mark_sent(RequestId(999)),
            Err(LedgerError::NotFound(_))
        ));
        assert_eq!(l.release_unsent(&c).unwrap(), 0);
        assert_consistent(&l);
    }

    /// At start, the orphans never sent are released, those that may have been billed are
    /// returned to be reconciled; the live process's rows stay as they are.
    #[test]
    fn orphans_never_sent_are_released_at_start_and_the_others_reconciled() {
        let (_d, path, mut l) = temp_ledger();
        let c = clock("2025-06-15T12:00:00+02:00[Europe/Paris]");
        let me = std::process::id();
        let mut old = Ledger::open(&path).unwrap().with_instance("previous");
        let r = |l: &mut Ledger| reserved(l.reserve(&input("/p", 1000, 100), &c).unwrap()).0;
        let asked = r(&mut old);
        let cut = r(&mut old);
        old.mark_sent(cut).unwrap();
        old.set_generation_id(cut, "gen-cut").unwrap();
        let silent = r(&mut old);
        old.mark_sent(silent).unwrap();
        let rate_limited = r(&mut old);
        old.mark_sent(rate_limited).unwrap();
        old.mark_unsent(rate_limited).unwrap();
        let mine = r(&mut l);
        // A row written before v4 (or by hand) counts as sent.
        let legacy = r(&mut old);
        old.connection()
            .execute("UPDATE requests SET sent = 1 WHERE id = ?1", [legacy.0])
            .unwrap();

        let all: Vec<_> = l.orphans(me, l.instance()).unwrap();
        assert_eq!(all.len(), 5);
        let instance = l.instance().to_string();
        let left = l.release_orphans(me, &instance, &c).unwrap();
        let ids: Vec<_> = left.iter().map(|p| p.id).collect();
        assert_eq!(ids, vec![cut, silent, legacy]);
        assert!(left.iter().all(|p| p.sent));
        assert_eq!(left[0].generation_id.as_deref(), Some("gen-cut"));
        for id in [asked, rate_limited] {
            assert_eq!(state_of(&l, id), ("failed".into(), Some(0), false));
        }
        for id in [cut, silent, legacy] {
            assert_eq!(state_of(&l, id).0, "reserved");
        }
        assert_eq!(state_of(&l, mine), ("reserved".into(), None, false));
        // Again (another backend starting): the same left, nothing released twice.
        assert_eq!(l.release_orphans(me, &instance, &c).unwrap(), left);
        assert_consistent(&l);
    }

    // ---- concurrency ----------------------------------------------------------------------

    const CHILD_ENV: &str = "FRUGAL_LEDGER_RACE_CHILD";
    const RACE_CAP_CENTS: i64 = 300;
    const RACE_PROJECT: &str = "/race";

    /// The fixed instant every racer uses, so that midnight cannot pass during the test.
    fn race_clock() -> FixedClock {
        clock("2025-06-15T12:00:00+00:00[UTC]")
    }

    /// Reserves and settles random requests against the daily cap, checking after every
    /// reservation that the day's spent + reserved stays within it. Returns (reserved, refused).
    fn race(mut l: Ledger, seed: u64, iterations: u32) -> (u32, u32) {
        let c = race_clock();
        let mut rng = Rng(seed | 1);
        let cap = cents(RACE_CAP_CENTS);
        let (mut ok, mut no) = (0, 0);
        for _ in 0..iterations {
            // Pace the racers so that threads and processes interleave.
            std::thread::sleep(Duration::from_micros(300));
            let mut inp = input(
                RACE_PROJECT,
                500 + rng.below(5000),
                100 + rng.below(2500) as u32,
            );
            inp.min_useful_tokens = 64;
            inp.project_caps.daily = Some(cap);
            inp.global_caps.total = Some(cap);
            match l.reserve(&inp, &c).unwrap() {
                Decision::Reserved { id, worst_case, .. } => {
                    ok += 1;
                    let s = l.spend(Some(RACE_PROJECT), &c).unwrap();
                    assert!(s.today <= cap, "daily cap crossed: {} > {cap}", s.today);
                    if rng.below(10) == 0 {
                        l.fail(id, &c).unwrap();
                    } else {
                        let charged = Usd(rng.below(worst_case.0 as u64 + 1) as i64);
                        l.settle(id, Settlement::charged(charged, ChargeSource::Usage), &c)
                            .unwrap();
                    }
                }
                Decision::Refused(r) => {
                    no += 1;
                    assert!(r.spent + r.reserved <= cap);
                }
            }
        }
        (ok, no)
    }

    /// Not a test by itself: the body of the child processes of
    /// [`threads_and_processes_never_cross_a_cap`], which re-runs this test binary with only
    /// this test selected and the ledger's path in the environment.
    #[test]
    fn race_child_process() {
        let Ok(path) = std::env::var(CHILD_ENV) else {
            return;
        };
        let seed: u64 = std::env::var("FRUGAL_LEDGER_RACE_SEED")
            .unwrap()
            .parse()
            .unwrap();
        let mut l = Ledger::open(&path).unwrap();
        // One reservation this process dies with, as a killed backend would: an orphan later.
        let mut inp = input(RACE_PROJECT, 100, 64);
        inp.project_caps.daily = Some(cents(RACE_CAP_CENTS));
        reserved(l.reserve(&inp, &race_clock()).unwrap());
        // Say we are ready, then start together with the parent's threads.
        std::fs::write(Path::new(&path).with_extension(format!("ready{seed}")), b"").unwrap();
        let go = Path::new(&path).with_extension("go");
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        while !go.exists() {
            assert!(std::time::Instant::now() < deadline, "never told to go");
            std::thread::sleep(Duration::from_millis(1));
        }
        race(l, seed, 150);
    }

    #[test]
    fn threads_and_processes_never_cross_a_cap() {
        let (_d, path, l) = temp_ledger();
        let test_name = format!(
            "{}::race_child_process",
            module_path!()
                .split_once("::")
                .map_or(module_path!(), |(_, rest)| rest)
        );
        let children: Vec<_> = (0..2u64)
            .map(|i| {
                std::process::Command::new(std::env::current_exe().unwrap())
                    .args([test_name.as_str(), "--exact", "--test-threads=1", "--quiet"])
                    .env(CHILD_ENV, &path)
                    .env("FRUGAL_LEDGER_RACE_SEED", (1000 + i).to_string())
                    .stdout(std::process::Stdio::null())
                    .spawn()
                    .unwrap()
            })
            .collect();
        let barrier = std::sync::Arc::new(std::sync::Barrier::new(4));
        let threads: Vec<_> = (0..3u64)
            .map(|i| {
                let l = Ledger::open(&path).unwrap();
                let barrier = barrier.clone();
                std::thread::spawn(move || {
                    barrier.wait();
                    race(l, 7 + i, 150)
                })
            })
            .collect();
        // Wait until both children are ready, then release everyone.
        let deadline = std::time::Instant::now() + Duration::from_secs(60);
        while !(0..2u64).all(|i| path.with_extension(format!("ready{}", 1000 + i)).exists()) {
            assert!(
                std::time::Instant::now() < deadline,
                "children never got ready"
            );
            std::thread::sleep(Duration::from_millis(1));
        }
        std::fs::write(path.with_extension("go"), b"").unwrap();
        barrier.wait();
        let mut reserved_total = 0;
        let mut refused_total = 0;
        for t in threads {
            let (ok, no) = t.join().expect("a racing thread failed");
            reserved_total += ok;
            refused_total += no;
        }
        let mut child_pids = Vec::new();
        for mut child in children {
            child_pids.push(child.id());
            assert!(child.wait().unwrap().success(), "a racing process failed");
        }
        assert!(
            reserved_total > 10 && refused_total > 10,
            "{reserved_total} / {refused_total}"
        );

        let c = race_clock();
        let cap = cents(RACE_CAP_CENTS);
        let s = l.spend(Some(RACE_PROJECT), &c).unwrap();
        assert!(s.today <= cap && s.total <= cap, "{s:?}");
        // The cap was actually contended for: less than one request's worst case is left.
        assert!(cap - s.today < cents(4), "{s:?}");
        let processes: i64 = l
            .connection()
            .query_row("SELECT COUNT(DISTINCT owner_pid) FROM requests", [], |r| {
                r.get(0)
            })
            .unwrap();
        assert_eq!(processes, 3, "the children wrote too");
        // Each child left one reservation open when it exited: an orphan now.
        let orphans = l.orphans(std::process::id(), l.instance()).unwrap();
        assert_eq!(orphans.len(), 2, "{orphans:?}");
        for o in &orphans {
            let pid: i64 = l
                .connection()
                .query_row(
                    "SELECT owner_pid FROM requests WHERE id = ?1",
                    [o.id.0],
                    |r| r.get(0),
                )
                .unwrap();
            assert!(child_pids.contains(&(pid as u32)));
        }
        assert_consistent(&l);
    }
}
