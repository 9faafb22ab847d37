//! The spending ledger: one SQLite file (WAL mode) shared by every backend process of the user.
//!
//! # Schema (v1)
//!
//! Users may query the file with `sqlite3`; amounts are integers in **picodollars**
//! (1e-12 USD: divide by 1e12 for dollars), times are **unix milliseconds** (UTC).
//!
//! ## `requests`: one row per request sent (or about to be sent)
//!
//! | column | meaning |
//! |---|---|
//! | `id` | row id, increasing; the handle the backend uses while the request runs |
//! | `project` | the project's canonical path (its git root, or the file's directory) |
//! | `model` | the model id asked for, e.g. `anthropic/claude-sonnet-4.5` |
//! | `created_at` | when the reservation was made; the request counts in the day/month of this instant |
//! | `settled_at` | when the row left the `reserved` state; NULL while reserved |
//! | `state` | `reserved` (in flight, or its process died before knowing the cost), `settled` (cost known from the answer), `failed` (nothing was billed), `reconciled` (cost learned later from `GET /generation`) |
//! | `reserved` | the worst case reserved before sending: what the row counts while `reserved` |
//! | `charged` | what was billed (OpenRouter's `usage.cost`); NULL until settled, 0 when failed; what the row counts once not `reserved` |
//! | `tokens_in` | prompt tokens, as reported by OpenRouter (NULL if unknown) |
//! | `tokens_out` | completion tokens, reasoning included (NULL if unknown) |
//! | `tokens_cached` | prompt tokens read from the provider's cache (NULL if unknown) |
//! | `tokens_reasoning` | reasoning tokens (NULL if unknown) |
//! | `generation_id` | OpenRouter's generation id (`gen-…`), to look the cost up later |
//! | `charge_source` | where `charged` came from: `usage` (the stream's usage chunk), `generation` (`GET /generation`), `estimate` (local tokens × price); NULL while reserved |
//! | `owner_pid` | process id of the backend that made the reservation |
//! | `owner_instance` | random id of that backend process, so a reused pid is not mistaken for it |
//!
//! The ledger holds no secret: no API key, no prompt, no answer.
//!
//! ## `rollups` and `totals`: running sums kept by triggers
//!
//! Cap checks must stay under a millisecond on a million rows, so no query sums `requests` over a
//! month. Triggers on `requests` keep, for every project (`scope` = its path) and for all projects
//! together (`scope` = `''`), `spent` (sum of `charged` over rows no longer `reserved`) and
//! `reserved` (sum of `reserved` over `reserved` rows) in UTC buckets of one day, one hour and
//! fifteen minutes (`width_ms`, `bucket_ms` = the bucket's start), and all-time in `totals`; both
//! also sum `tokens_out` (completion tokens, 0 where unknown) for the footprint estimate.
//!
//! ## `model_totals`: all-time figures per model, kept by triggers
//!
//! For every project (`scope` = its path) and all projects (`scope` = `''`) and every `model`:
//! `requests` (rows, whatever their state), `tokens_in`, `tokens_out` (0 where unknown), `spent`
//! and `reserved` (counted like the rollups), so `:LlmUsage` lists models without a scan.
//!
//! Because they are triggers, they stay exact even when a user edits or deletes rows with
//! `sqlite3` (e.g. to forgive a mistaken charge).
//!
//! A local day or month is summed as: whole UTC days, then whole hours, then whole quarter-hours
//! at its edges, then the rows of `requests` in whatever is left. Every time zone in use today has
//! an offset that is a multiple of 15 minutes, so the last step reads nothing, yet historical odd
//! offsets are still counted exactly.

use std::collections::HashMap;
use std::hash::{BuildHasher, Hasher};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::Duration;

use rusqlite::{params, Connection, OptionalExtension, TransactionBehavior};

use crate::budget::clock::{day_bounds, month_bounds, unix_ms, Clock};
use crate::budget::money::{Price, Usd};

/// The ledger's file name inside `data_dir`, where the plugin and `frugal usage` look for it.
pub const LEDGER_FILE: &str = "ledger.sqlite3";

/// The schema version this code writes (`PRAGMA user_version`).
pub const SCHEMA_VERSION: i64 = 1;

/// `min_useful_tokens` when the caller has no better idea: below this an edit answer is
/// likely to be cut off, so lowering `max_tokens` further would waste money.
pub const DEFAULT_MIN_USEFUL_TOKENS: u32 = 512;

/// Some providers reject `max_tokens` below 16.
const MIN_MAX_TOKENS: u32 = 16;

/// Bucket widths of the rollups, coarsest first (day, hour, quarter-hour), in ms.
const WIDTHS: [i64; 3] = [86_400_000, 3_600_000, 900_000];

/// How long a writer waits for another process's transaction before giving up.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// A ledger row's id.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct RequestId(pub i64);

impl std::fmt::Display for RequestId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

/// What can go wrong with the ledger. None of these is a budget refusal: that is a
/// [`Decision::Refused`].
#[derive(Debug, thiserror::Error)]
pub enum LedgerError {
    /// SQLite failed (I/O, corruption, or a lock held past the busy timeout).
    #[error("ledger database error: {0}")]
    Sqlite(#[from] rusqlite::Error),
    /// The ledger's directory could not be created.
    #[error("cannot create the ledger's directory {path}: {source}")]
    Io {
        /// The directory.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The file was written by a newer frugal; refusing to touch it protects its records.
    #[error(
        "the ledger has schema v{found}, newer than this frugal knows (v{known}); update frugal"
    )]
    FutureSchema {
        /// `user_version` in the file.
        found: i64,
        /// [`SCHEMA_VERSION`].
        known: i64,
    },
    /// No row with this id.
    #[error("no request {0} in the ledger")]
    NotFound(RequestId),
    /// `settle`/`fail` on a row that is no longer `reserved` (already settled or reconciled).
    #[error("request {id} is already {state}")]
    NotReserved {
        /// The row.
        id: RequestId,
        /// Its current state.
        state: String,
    },
    /// The worst case does not even fit in 9.2 million dollars: a nonsensical prompt bound.
    #[error("the worst-case cost of this request overflows")]
    Overflow,
    /// A caller bug: empty project, negative charge, token count beyond i64.
    #[error("invalid ledger input: {0}")]
    Invalid(String),
}

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
    /// Is any cap set?
    pub fn any(&self) -> bool {
        self.per_request.is_some()
            || self.daily.is_some()
            || self.monthly.is_some()
            || self.total.is_some()
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
    /// The key in `[budget]` / `budget` / `global_budget` that sets this cap.
    pub fn config_key(self) -> &'static str {
        match self {
            CapKind::PerRequest => "per_request_usd",
            CapKind::Daily => "daily_usd",
            CapKind::Monthly => "monthly_usd",
            CapKind::Total => "total_usd",
        }
    }

    fn label(self) -> &'static str {
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
}

/// Spend for `:LlmUsage`. Each figure counts settled charges plus reservations still in flight,
/// the same way the caps do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Spend {
    /// In the local calendar day.
    pub today: Usd,
    /// In the local calendar month.
    pub month: Usd,
    /// All time.
    pub total: Usd,
    /// Of `total`, what is still only reserved (in flight or orphaned).
    pub reserved_unsettled: Usd,
}

/// Spent and reserved over a period, and the completion tokens of the same rows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct PeriodUsage {
    /// Billed (rows no longer `reserved`).
    pub spent: Usd,
    /// Still only reserved (in flight or orphaned), counted in full.
    pub reserved: Usd,
    /// Completion tokens of the period's rows (0 for rows that never reported them).
    pub tokens_out: i64,
}

impl PeriodUsage {
    /// What the caps count: spent + reserved.
    pub fn counted(&self) -> Usd {
        self.spent + self.reserved
    }
}

impl From<Amounts> for PeriodUsage {
    fn from(a: Amounts) -> Self {
        PeriodUsage {
            spent: a.spent,
            reserved: a.reserved,
            tokens_out: a.tokens_out,
        }
    }
}

/// One model's all-time figures in a scope (the `model_totals` table).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModelUsage {
    /// Model id.
    pub model: String,
    /// Rows, whatever their state (failed requests included).
    pub requests: i64,
    /// Prompt tokens (rows that reported them).
    pub tokens_in: i64,
    /// Completion tokens (rows that reported them).
    pub tokens_out: i64,
    /// Billed.
    pub spent: Usd,
    /// Still only reserved.
    pub reserved: Usd,
}

impl ModelUsage {
    fn zero(model: &str) -> ModelUsage {
        ModelUsage {
            model: model.to_string(),
            requests: 0,
            tokens_in: 0,
            tokens_out: 0,
            spent: Usd::ZERO,
            reserved: Usd::ZERO,
        }
    }

    fn is_zero(&self) -> bool {
        *self == ModelUsage::zero(&self.model)
    }

    /// What the model counts: charged if settled, else reserved (as the caps count).
    pub fn cost(&self) -> Usd {
        self.spent + self.reserved
    }
}

/// One local calendar day's spend.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DaySpend {
    /// The local date.
    pub date: jiff::civil::Date,
    /// `[start_ms, end_ms)`: the day's instants in unix ms (23 or 25 hours across DST).
    pub start_ms: i64,
    /// End of the day, exclusive.
    pub end_ms: i64,
    /// What the day's rows count.
    pub usage: PeriodUsage,
}

/// The figures of one scope for `:LlmUsage`, read in one snapshot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UsageFigures {
    /// The local calendar day.
    pub today: PeriodUsage,
    /// The local calendar month.
    pub month: PeriodUsage,
    /// All time.
    pub total: PeriodUsage,
    /// All-time per-model rows, by cost (descending), then model id.
    pub models: Vec<ModelUsage>,
    /// The last local days, oldest first, today last.
    pub daily: Vec<DaySpend>,
}

/// One project's line in the `all` view.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProjectSpend {
    /// The project's canonical path.
    pub project: String,
    /// Counted in the local calendar day.
    pub today: Usd,
    /// Counted in the local calendar month.
    pub month: Usd,
    /// Counted, all time.
    pub total: Usd,
    /// Of `total`, what is still only reserved.
    pub reserved_unsettled: Usd,
    /// Rows, all time.
    pub requests: i64,
}

/// A sum split the way a refusal reports it, with the completion tokens of the same rows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
struct Amounts {
    spent: Usd,
    reserved: Usd,
    tokens_out: i64,
}

impl Amounts {
    fn add(self, o: Amounts) -> Amounts {
        Amounts {
            spent: self.spent + o.spent,
            reserved: self.reserved + o.reserved,
            tokens_out: self.tokens_out + o.tokens_out,
        }
    }
    fn counted(self) -> Usd {
        self.spent + self.reserved
    }
}

/// A random id for this process, so that a pid reused after a crash (or a backend that
/// `exec`s itself) is not taken for the reservation's owner. `RandomState` is seeded from the
/// OS's random source once per process; the time and pid are mixed in for good measure.
pub fn process_instance() -> &'static str {
    static ID: OnceLock<String> = OnceLock::new();
    ID.get_or_init(|| {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0);
        let word = |salt: u64| {
            let mut h = std::collections::hash_map::RandomState::new().build_hasher();
            h.write_u64(salt);
            h.write_u128(nanos);
            h.write_u32(std::process::id());
            h.finish()
        };
        format!("{:016x}{:016x}", word(1), word(2))
    })
}

/// The ledger, one connection per backend process (or per thread in tests).
pub struct Ledger {
    conn: Connection,
    pid: u32,
    instance: String,
}

impl std::fmt::Debug for Ledger {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ledger")
            .field("path", &self.conn.path())
            .field("pid", &self.pid)
            .field("instance", &self.instance)
            .finish()
    }
}

impl Ledger {
    /// Opens (creating it and its directories if needed) and migrates the ledger at `path`.
    ///
    /// Settings, and why:
    /// - `journal_mode=WAL`: readers (`:LlmUsage`) never block the writer and vice versa.
    /// - `synchronous=FULL`: in WAL mode NORMAL only syncs at checkpoints, so a power loss can
    ///   drop the last committed transactions, a settled charge among them. FULL syncs the WAL
    ///   at every commit: once `settle` returns, the record survives anything short of disk loss.
    /// - `busy_timeout=5s`: another process's transaction is short (well under a millisecond);
    ///   waiting for it beats failing a request.
    pub fn open(path: impl AsRef<Path>) -> Result<Ledger, LedgerError> {
        let path = path.as_ref();
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|source| LedgerError::Io {
                path: dir.to_path_buf(),
                source,
            })?;
        }
        let mut conn = Connection::open(path)?;
        conn.busy_timeout(BUSY_TIMEOUT)?;
        // journal_mode answers with the resulting mode; a query, not an execute.
        let _mode: String = conn.query_row("PRAGMA journal_mode=WAL", [], |r| r.get(0))?;
        conn.pragma_update(None, "synchronous", "FULL")?;
        conn.set_prepared_statement_cache_capacity(32);
        migrate(&mut conn)?;
        Ok(Ledger {
            conn,
            pid: std::process::id(),
            instance: process_instance().to_string(),
        })
    }

    /// Records reservations under another owner instance id than this process's: what a
    /// backend that re-`exec`ed itself (same pid, new instance) looks like. For tests and tools.
    pub fn with_instance(mut self, instance: impl Into<String>) -> Ledger {
        self.instance = instance.into();
        self
    }

    /// The owner instance id written into reservations made through this ledger.
    pub fn instance(&self) -> &str {
        &self.instance
    }

    /// The underlying connection, for read-only reports (`:LlmUsage` per-model rows) and tests.
    pub fn connection(&self) -> &Connection {
        &self.conn
    }

    /// Checks `input`'s worst case against every cap and reserves it, all in one
    /// `BEGIN IMMEDIATE` transaction, so that concurrent processes are serialised between the
    /// check and the insert and can never pass a cap together.
    ///
    /// A free model is always reserved (at 0). When the worst case does not fit, `max_tokens` is
    /// lowered to the largest value that fits every cap, if that is still at least
    /// `min_useful_tokens` (and 16); otherwise the request is refused and nothing is written.
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
        let price = input.price;
        let wanted = input.max_tokens;

        let (max_tokens, worst_case, lowered_from) = if price.is_free() {
            (wanted, Usd::ZERO, None)
        } else {
            let fixed = price
                .worst_case(input.prompt_bound_tokens, 0)
                .ok_or(LedgerError::Overflow)?;
            let worst = price
                .worst_case(input.prompt_bound_tokens, u64::from(wanted))
                .ok_or(LedgerError::Overflow)?;
            let tightest = tightest_cap(&tx, input, &now)?;
            match tightest {
                None => (wanted, worst, None),
                Some(t) if worst <= t.headroom() => (wanted, worst, None),
                Some(t) => {
                    let room = t.headroom() - fixed;
                    let fits = if room.0 >= 0 && price.completion.0 > 0 {
                        let m = room.0 / price.completion.0;
                        u32::try_from(m).unwrap_or(u32::MAX).min(wanted)
                    } else {
                        0
                    };
                    if fits >= input.min_useful_tokens.max(MIN_MAX_TOKENS) && room.0 >= 0 {
                        let lowered = price
                            .worst_case(input.prompt_bound_tokens, u64::from(fits))
                            .ok_or(LedgerError::Overflow)?;
                        (fits, lowered, Some(wanted))
                    } else {
                        // Dropping `tx` rolls back: a refusal writes nothing.
                        return Ok(Decision::Refused(Refusal {
                            cap: t.kind,
                            scope: t.scope,
                            limit: t.limit,
                            spent: t.used.spent,
                            reserved: t.used.reserved,
                            worst_case: worst,
                        }));
                    }
                }
            }
        };

        tx.prepare_cached(
            "INSERT INTO requests (project, model, created_at, state, reserved, owner_pid, owner_instance)
             VALUES (?1, ?2, ?3, 'reserved', ?4, ?5, ?6)",
        )?
        .execute(params![
            input.project,
            input.model,
            now_ms,
            worst_case.0,
            i64::from(self.pid),
            self.instance
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
                charge_source = ?9
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
            source
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
    /// reconciled.
    pub fn orphans(&self, my_pid: u32, my_instance: &str) -> Result<Vec<Pending>, LedgerError> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT id, generation_id, reserved, project, model, owner_pid, owner_instance
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
                },
                r.get::<_, i64>(5)?,
                r.get::<_, String>(6)?,
            ))
        })?;
        let mut alive: HashMap<i64, bool> = HashMap::new();
        let mut out = Vec::new();
        for row in rows {
            let (pending, pid, instance) = row?;
            let dead = if pid == i64::from(my_pid) {
                instance != my_instance
            } else {
                !*alive.entry(pid).or_insert_with(|| pid_alive(pid))
            };
            if dead {
                out.push(pending);
            }
        }
        Ok(out)
    }

    /// Spend of one project (`Some(path)`) or of all projects (`None`), counted like the caps.
    pub fn spend(&self, project: Option<&str>, clock: &dyn Clock) -> Result<Spend, LedgerError> {
        let scope = project.unwrap_or("");
        let now = clock.now();
        // One read transaction: the four figures come from the same snapshot.
        let tx = self.conn.unchecked_transaction()?;
        let (d0, d1) = day_bounds(&now);
        let (m0, m1) = month_bounds(&now);
        let today = window(&tx, scope, d0, d1)?.counted();
        let month = window(&tx, scope, m0, m1)?.counted();
        let total = totals(&tx, scope)?;
        tx.finish()?;
        Ok(Spend {
            today,
            month,
            total: total.counted(),
            reserved_unsettled: total.reserved,
        })
    }

    /// One scope's figures for `:LlmUsage` (a project, or all projects with `None`): today,
    /// this month and all time, the per-model rows and the spend of the last `days` local
    /// calendar days (oldest first, today last), all from one read snapshot. Reads only the
    /// trigger-kept tables: its cost does not grow with the number of requests.
    pub fn usage(
        &self,
        project: Option<&str>,
        clock: &dyn Clock,
        days: usize,
    ) -> Result<UsageFigures, LedgerError> {
        let scope = project.unwrap_or("");
        let now = clock.now();
        let tx = self.conn.unchecked_transaction()?;
        let (d0, d1) = day_bounds(&now);
        let (m0, m1) = month_bounds(&now);
        let today = window(&tx, scope, d0, d1)?.into();
        let month = window(&tx, scope, m0, m1)?.into();
        let total = totals(&tx, scope)?.into();
        let models = model_rows(&tx, scope)?;
        let daily = daily_rows(&tx, scope, &now, days)?;
        tx.finish()?;
        Ok(UsageFigures {
            today,
            month,
            total,
            models,
            daily,
        })
    }

    /// All-time per-model figures of a project (`None`: all projects), by cost (descending).
    pub fn model_usage(&self, project: Option<&str>) -> Result<Vec<ModelUsage>, LedgerError> {
        model_rows(&self.conn, project.unwrap_or(""))
    }

    /// The spend of the last `days` local calendar days of a project (`None`: all projects),
    /// oldest first, today last; summed from the rollups like the daily cap.
    pub fn daily_spend(
        &self,
        project: Option<&str>,
        clock: &dyn Clock,
        days: usize,
    ) -> Result<Vec<DaySpend>, LedgerError> {
        let tx = self.conn.unchecked_transaction()?;
        let out = daily_rows(&tx, project.unwrap_or(""), &clock.now(), days)?;
        tx.finish()?;
        Ok(out)
    }

    /// Every project with its spend today, this month and all time, by total (descending),
    /// then path. Projects whose rows were all deleted are left out.
    pub fn projects(&self, clock: &dyn Clock) -> Result<Vec<ProjectSpend>, LedgerError> {
        let now = clock.now();
        let (d0, d1) = day_bounds(&now);
        let (m0, m1) = month_bounds(&now);
        let tx = self.conn.unchecked_transaction()?;
        let mut requests: HashMap<String, i64> = HashMap::new();
        {
            let mut stmt = tx.prepare_cached(
                "SELECT scope, SUM(requests) FROM model_totals WHERE scope <> '' GROUP BY scope",
            )?;
            let mut rows = stmt.query([])?;
            while let Some(r) = rows.next()? {
                requests.insert(r.get(0)?, r.get(1)?);
            }
        }
        let mut out = Vec::new();
        {
            let mut stmt = tx.prepare_cached(
                "SELECT scope, spent, reserved FROM totals WHERE scope <> '' ORDER BY scope",
            )?;
            let mut rows = stmt.query([])?;
            while let Some(r) = rows.next()? {
                let project: String = r.get(0)?;
                let spent = Usd(r.get(1)?);
                let reserved = Usd(r.get(2)?);
                let n = requests.get(&project).copied().unwrap_or(0);
                if n == 0 && spent == Usd::ZERO && reserved == Usd::ZERO {
                    continue;
                }
                out.push(ProjectSpend {
                    today: window(&tx, &project, d0, d1)?.counted(),
                    month: window(&tx, &project, m0, m1)?.counted(),
                    project,
                    total: spent + reserved,
                    reserved_unsettled: reserved,
                    requests: n,
                });
            }
        }
        tx.finish()?;
        out.sort_by(|a, b| {
            b.total
                .cmp(&a.total)
                .then_with(|| a.project.cmp(&b.project))
        });
        Ok(out)
    }

    /// Compares the rollups with sums recomputed from `requests`; returns one line per
    /// difference (empty when consistent). Slow (scans everything): for tests and
    /// `:checkhealth`, never on a request's path.
    pub fn check_rollups(&self) -> Result<Vec<String>, LedgerError> {
        let mut diffs = Vec::new();
        let mut expected = HashMap::new();
        let mut stmt = self.conn.prepare(&format!(
            "SELECT project, created_at, {SPENT_NEW}, {RESERVED_NEW}, {TOKENS_OUT_NEW}, model,
                    IFNULL(tokens_in, 0)
             FROM requests AS NEW"
        ))?;
        let mut expected_models: HashMap<(String, String), ModelUsage> = HashMap::new();
        let mut rows = stmt.query([])?;
        while let Some(r) = rows.next()? {
            let project: String = r.get(0)?;
            let at: i64 = r.get(1)?;
            let a = Amounts {
                spent: Usd(r.get(2)?),
                reserved: Usd(r.get(3)?),
                tokens_out: r.get(4)?,
            };
            let model: String = r.get(5)?;
            let tokens_in: i64 = r.get(6)?;
            for scope in [project.as_str(), ""] {
                let m = expected_models
                    .entry((scope.to_string(), model.clone()))
                    .or_insert_with(|| ModelUsage::zero(&model));
                m.requests += 1;
                m.tokens_in += tokens_in;
                m.tokens_out += a.tokens_out;
                m.spent += a.spent;
                m.reserved += a.reserved;
            }
            for scope in [project.as_str(), ""] {
                for w in WIDTHS.iter().copied().map(Some).chain([None]) {
                    let bucket = w.map(|w| at - at.rem_euclid(w));
                    let e = expected
                        .entry((scope.to_string(), w, bucket))
                        .or_insert_with(Amounts::default);
                    *e = e.add(a);
                }
            }
        }
        let mut actual = HashMap::new();
        let mut stmt = self.conn.prepare(
            "SELECT scope, width_ms, bucket_ms, spent, reserved, tokens_out FROM rollups",
        )?;
        let mut rows = stmt.query([])?;
        while let Some(r) = rows.next()? {
            let a = Amounts {
                spent: Usd(r.get(3)?),
                reserved: Usd(r.get(4)?),
                tokens_out: r.get(5)?,
            };
            actual.insert(
                (r.get::<_, String>(0)?, Some(r.get(1)?), Some(r.get(2)?)),
                a,
            );
        }
        let mut stmt = self
            .conn
            .prepare("SELECT scope, spent, reserved, tokens_out FROM totals")?;
        let mut rows = stmt.query([])?;
        while let Some(r) = rows.next()? {
            let a = Amounts {
                spent: Usd(r.get(1)?),
                reserved: Usd(r.get(2)?),
                tokens_out: r.get(3)?,
            };
            actual.insert((r.get::<_, String>(0)?, None, None), a);
        }
        for (k, e) in &expected {
            let a = actual.get(k).copied().unwrap_or_default();
            if a != *e {
                diffs.push(format!("{k:?}: rollup {a:?}, requests {e:?}"));
            }
        }
        for (k, a) in &actual {
            if !expected.contains_key(k) && *a != Amounts::default() {
                diffs.push(format!("{k:?}: rollup {a:?}, no requests"));
            }
        }
        let mut stmt = self.conn.prepare(
            "SELECT scope, model, requests, tokens_in, tokens_out, spent, reserved FROM model_totals",
        )?;
        let mut rows = stmt.query([])?;
        let mut actual_models = HashMap::new();
        while let Some(r) = rows.next()? {
            let m = model_row(r, 1)?;
            actual_models.insert((r.get::<_, String>(0)?, m.model.clone()), m);
        }
        for (k, e) in &expected_models {
            match actual_models.get(k) {
                Some(a) if a == e => {}
                a => diffs.push(format!("model_totals {k:?}: {a:?}, requests {e:?}")),
            }
        }
        for (k, a) in &actual_models {
            if !expected_models.contains_key(k) && !a.is_zero() {
                diffs.push(format!("model_totals {k:?}: {a:?}, no requests"));
            }
        }
        diffs.sort();
        Ok(diffs)
    }

    /// Recomputes the rollups from `requests`, for a ledger whose rollups were damaged by hand.
    pub fn rebuild_rollups(&mut self) -> Result<(), LedgerError> {
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        tx.execute_batch(&rebuild_sql())?;
        tx.commit()?;
        Ok(())
    }
}

/// A cap together with what its period already holds.
struct CapState {
    kind: CapKind,
    scope: Scope,
    limit: Usd,
    used: Amounts,
}

impl CapState {
    fn headroom(&self) -> Usd {
        self.limit - self.used.counted()
    }
}

/// The cap with the least headroom among those that apply, or `None` without caps. Periods are
/// only summed for caps that are set. Ties go to the first in (project, global) × (per-request,
/// daily, monthly, total) order.
fn tightest_cap(
    conn: &Connection,
    input: &ReserveInput<'_>,
    now: &jiff::Zoned,
) -> Result<Option<CapState>, LedgerError> {
    let mut best: Option<CapState> = None;
    let mut consider = |c: CapState| {
        if best.as_ref().is_none_or(|b| c.headroom() < b.headroom()) {
            best = Some(c);
        }
    };
    for (scope, caps, key) in [
        (Scope::Project, &input.project_caps, input.project),
        (Scope::Global, &input.global_caps, ""),
    ] {
        if let Some(limit) = caps.per_request {
            consider(CapState {
                kind: CapKind::PerRequest,
                scope,
                limit,
                used: Amounts::default(),
            });
        }
        if let Some(limit) = caps.daily {
            let (a, b) = day_bounds(now);
            let used = window(conn, key, a, b)?;
            consider(CapState {
                kind: CapKind::Daily,
                scope,
                limit,
                used,
            });
        }
        if let Some(limit) = caps.monthly {
            let (a, b) = month_bounds(now);
            let used = window(conn, key, a, b)?;
            consider(CapState {
                kind: CapKind::Monthly,
                scope,
                limit,
                used,
            });
        }
        if let Some(limit) = caps.total {
            let used = totals(conn, key)?;
            consider(CapState {
                kind: CapKind::Total,
                scope,
                limit,
                used,
            });
        }
    }
    Ok(best)
}

/// Spent and reserved of `scope` (a project, or `''` for all) over rows created in
/// `[start, end)`: whole buckets from the rollups, coarsest first, the ragged edges from finer
/// buckets, and what no bucket fits exactly from `requests` itself.
fn window(conn: &Connection, scope: &str, start: i64, end: i64) -> Result<Amounts, LedgerError> {
    sum_level(conn, scope, 0, start, end)
}

fn sum_level(
    conn: &Connection,
    scope: &str,
    level: usize,
    start: i64,
    end: i64,
) -> Result<Amounts, LedgerError> {
    if start >= end {
        return Ok(Amounts::default());
    }
    let Some(&w) = WIDTHS.get(level) else {
        return raw_sum(conn, scope, start, end);
    };
    let lo = start + (w - start.rem_euclid(w)) % w;
    let hi = end - end.rem_euclid(w);
    if lo >= hi {
        return sum_level(conn, scope, level + 1, start, end);
    }
    let mid = conn
        .prepare_cached(
            "SELECT IFNULL(SUM(spent), 0), IFNULL(SUM(reserved), 0), IFNULL(SUM(tokens_out), 0)
             FROM rollups
             WHERE scope = ?1 AND width_ms = ?2 AND bucket_ms >= ?3 AND bucket_ms < ?4",
        )?
        .query_row(params![scope, w, lo, hi], amounts_row)?;
    let left = sum_level(conn, scope, level + 1, start, lo)?;
    let right = sum_level(conn, scope, level + 1, hi, end)?;
    Ok(mid.add(left).add(right))
}

fn raw_sum(conn: &Connection, scope: &str, start: i64, end: i64) -> Result<Amounts, LedgerError> {
    let sql = if scope.is_empty() {
        format!(
            "SELECT IFNULL(SUM({SPENT_NEW}), 0), IFNULL(SUM({RESERVED_NEW}), 0),
                    IFNULL(SUM({TOKENS_OUT_NEW}), 0)
             FROM requests AS NEW
             WHERE ?1 = '' AND created_at >= ?2 AND created_at < ?3"
        )
    } else {
        format!(
            "SELECT IFNULL(SUM({SPENT_NEW}), 0), IFNULL(SUM({RESERVED_NEW}), 0),
                    IFNULL(SUM({TOKENS_OUT_NEW}), 0)
             FROM requests AS NEW
             WHERE project = ?1 AND created_at >= ?2 AND created_at < ?3"
        )
    };
    Ok(conn
        .prepare_cached(&sql)?
        .query_row(params![scope, start, end], amounts_row)?)
}

/// An [`Amounts`] from columns 0..3 (spent, reserved, tokens_out).
fn amounts_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<Amounts> {
    Ok(Amounts {
        spent: Usd(r.get(0)?),
        reserved: Usd(r.get(1)?),
        tokens_out: r.get(2)?,
    })
}

fn totals(conn: &Connection, scope: &str) -> Result<Amounts, LedgerError> {
    Ok(conn
        .prepare_cached("SELECT spent, reserved, tokens_out FROM totals WHERE scope = ?1")?
        .query_row([scope], amounts_row)
        .optional()?
        .unwrap_or_default())
}

/// A `model_totals` row from columns `at..at+6` (model, requests, tokens_in, tokens_out,
/// spent, reserved).
fn model_row(r: &rusqlite::Row<'_>, at: usize) -> rusqlite::Result<ModelUsage> {
    Ok(ModelUsage {
        model: r.get(at)?,
        requests: r.get(at + 1)?,
        tokens_in: r.get(at + 2)?,
        tokens_out: r.get(at + 3)?,
        spent: Usd(r.get(at + 4)?),
        reserved: Usd(r.get(at + 5)?),
    })
}

fn model_rows(conn: &Connection, scope: &str) -> Result<Vec<ModelUsage>, LedgerError> {
    let mut stmt = conn.prepare_cached(
        "SELECT model, requests, tokens_in, tokens_out, spent, reserved FROM model_totals
         WHERE scope = ?1",
    )?;
    let rows = stmt.query_map([scope], |r| model_row(r, 0))?;
    let mut out = Vec::new();
    for m in rows {
        let m = m?;
        if !m.is_zero() {
            out.push(m);
        }
    }
    out.sort_by(|a, b| b.cost().cmp(&a.cost()).then_with(|| a.model.cmp(&b.model)));
    Ok(out)
}

/// The last `days` local calendar days ending with the one holding `now`, oldest first.
fn daily_rows(
    conn: &Connection,
    scope: &str,
    now: &jiff::Zoned,
    days: usize,
) -> Result<Vec<DaySpend>, LedgerError> {
    let mut out = Vec::with_capacity(days);
    let mut z = now.clone();
    for _ in 0..days {
        let (start_ms, end_ms) = day_bounds(&z);
        out.push(DaySpend {
            date: z.date(),
            start_ms,
            end_ms,
            usage: window(conn, scope, start_ms, end_ms)?.into(),
        });
        match z.yesterday() {
            Ok(y) => z = y,
            Err(_) => break,
        }
    }
    out.reverse();
    Ok(out)
}

/// Whether a process with this pid exists. `kill(pid, 0)` sends nothing; ESRCH means no such
/// process, EPERM means it exists under another user (alive).
#[cfg(unix)]
fn pid_alive(pid: i64) -> bool {
    // pid 0 and negatives would address process groups: never a valid owner.
    let Ok(p) = libc::pid_t::try_from(pid) else {
        return false;
    };
    if p <= 0 {
        return false;
    }
    // SAFETY: kill with signal 0 only checks for existence and permission; it has no effect.
    let r = unsafe { libc::kill(p, 0) };
    r == 0 || std::io::Error::last_os_error().raw_os_error() != Some(libc::ESRCH)
}

/// Without a portable liveness check, only this process's previous instances are orphans.
#[cfg(not(unix))]
fn pid_alive(_pid: i64) -> bool {
    true
}

/// What a row (`NEW` or `OLD` in triggers) counts as spent / reserved.
const SPENT_NEW: &str = "(CASE WHEN NEW.state = 'reserved' THEN 0 ELSE IFNULL(NEW.charged, 0) END)";
const RESERVED_NEW: &str = "(CASE WHEN NEW.state = 'reserved' THEN NEW.reserved ELSE 0 END)";
/// The completion tokens a row counts (0 while unknown).
const TOKENS_OUT_NEW: &str = "IFNULL(NEW.tokens_out, 0)";
/// The prompt tokens a row counts (0 while unknown).
const TOKENS_IN_NEW: &str = "IFNULL(NEW.tokens_in, 0)";

/// An upsert adding `spent`/`reserved`/`tokens_out` (SQL expressions over `r`, i.e. `NEW` or
/// `OLD`) to the rollups and totals of `r.project` and of all projects.
fn apply_sql(r: &str, spent: &str, reserved: &str, tokens_out: &str) -> String {
    let widths = WIDTHS
        .iter()
        .map(|w| format!("SELECT {w} AS width"))
        .collect::<Vec<_>>()
        .join(" UNION ALL ");
    format!(
        "INSERT INTO rollups (scope, width_ms, bucket_ms, spent, reserved, tokens_out)
           SELECT s.scope, w.width, {r}.created_at - ((({r}.created_at % w.width) + w.width) % w.width),
                  {spent}, {reserved}, {tokens_out}
           FROM (SELECT {r}.project AS scope UNION ALL SELECT '') AS s, ({widths}) AS w
           WHERE 1
         ON CONFLICT (scope, width_ms, bucket_ms) DO UPDATE
           SET spent = spent + excluded.spent, reserved = reserved + excluded.reserved,
               tokens_out = tokens_out + excluded.tokens_out;
         INSERT INTO totals (scope, spent, reserved, tokens_out)
           SELECT s.scope, {spent}, {reserved}, {tokens_out}
           FROM (SELECT {r}.project AS scope UNION ALL SELECT '') AS s
           WHERE 1
         ON CONFLICT (scope) DO UPDATE
           SET spent = spent + excluded.spent, reserved = reserved + excluded.reserved,
               tokens_out = tokens_out + excluded.tokens_out;"
    )
}

/// An upsert adding `requests` (a row count: 1, -1 or 0) and the figures of `r` (`NEW` or
/// `OLD`, negated when `sign` is `-`) to `model_totals` for `r.project` and for all projects.
fn model_apply_sql(r: &str, requests: &str, figures: [String; 4]) -> String {
    let [tokens_in, tokens_out, spent, reserved] = figures;
    format!(
        "INSERT INTO model_totals (scope, model, requests, tokens_in, tokens_out, spent, reserved)
           SELECT s.scope, {r}.model, {requests}, {tokens_in}, {tokens_out}, {spent}, {reserved}
           FROM (SELECT {r}.project AS scope UNION ALL SELECT '') AS s
           WHERE 1
         ON CONFLICT (scope, model) DO UPDATE
           SET requests = requests + excluded.requests,
               tokens_in = tokens_in + excluded.tokens_in,
               tokens_out = tokens_out + excluded.tokens_out,
               spent = spent + excluded.spent,
               reserved = reserved + excluded.reserved;"
    )
}

/// The four per-row figures of `model_totals` for `r`, negated with `sign` = `-`.
fn model_figures(r: &str, sign: &str) -> [String; 4] {
    [TOKENS_IN_NEW, TOKENS_OUT_NEW, SPENT_NEW, RESERVED_NEW].map(|e| {
        let e = e.replace("NEW.", &format!("{r}."));
        format!("{sign}{e}")
    })
}

/// The difference NEW − OLD of the four per-row figures.
fn model_delta() -> [String; 4] {
    let new = model_figures("NEW", "");
    let old = model_figures("OLD", "");
    [0, 1, 2, 3].map(|i| format!("{} - {}", new[i], old[i]))
}

fn spent_of(r: &str) -> String {
    SPENT_NEW.replace("NEW.", &format!("{r}."))
}

fn reserved_of(r: &str) -> String {
    RESERVED_NEW.replace("NEW.", &format!("{r}."))
}

fn tokens_out_of(r: &str) -> String {
    TOKENS_OUT_NEW.replace("NEW.", &format!("{r}."))
}

fn schema_v1() -> String {
    let add_new = apply_sql(
        "NEW",
        &spent_of("NEW"),
        &reserved_of("NEW"),
        &tokens_out_of("NEW"),
    );
    let sub_old = apply_sql(
        "OLD",
        &format!("-{}", spent_of("OLD")),
        &format!("-{}", reserved_of("OLD")),
        &format!("-{}", tokens_out_of("OLD")),
    );
    let delta = apply_sql(
        "NEW",
        &format!("{} - {}", spent_of("NEW"), spent_of("OLD")),
        &format!("{} - {}", reserved_of("NEW"), reserved_of("OLD")),
        &format!("{} - {}", tokens_out_of("NEW"), tokens_out_of("OLD")),
    );
    let model_add = model_apply_sql("NEW", "1", model_figures("NEW", ""));
    let model_sub = model_apply_sql("OLD", "-1", model_figures("OLD", "-"));
    let model_delta = model_apply_sql("NEW", "0", model_delta());
    format!(
        "CREATE TABLE requests (
            id               INTEGER PRIMARY KEY,
            project          TEXT    NOT NULL,
            model            TEXT    NOT NULL,
            created_at       INTEGER NOT NULL,
            settled_at       INTEGER,
            state            TEXT    NOT NULL
                             CHECK (state IN ('reserved', 'settled', 'failed', 'reconciled')),
            reserved         INTEGER NOT NULL CHECK (reserved >= 0),
            charged          INTEGER CHECK (charged >= 0),
            tokens_in        INTEGER,
            tokens_out       INTEGER,
            tokens_cached    INTEGER,
            tokens_reasoning INTEGER,
            generation_id    TEXT,
            charge_source    TEXT CHECK (charge_source IN ('usage', 'generation', 'estimate')),
            owner_pid        INTEGER NOT NULL,
            owner_instance   TEXT    NOT NULL
        );
        CREATE INDEX requests_project_created ON requests (project, created_at);
        CREATE INDEX requests_created ON requests (created_at);
        CREATE INDEX requests_reserved ON requests (state) WHERE state = 'reserved';

        CREATE TABLE rollups (
            scope     TEXT    NOT NULL,
            width_ms  INTEGER NOT NULL,
            bucket_ms INTEGER NOT NULL,
            spent      INTEGER NOT NULL,
            reserved   INTEGER NOT NULL,
            tokens_out INTEGER NOT NULL DEFAULT 0,
            PRIMARY KEY (scope, width_ms, bucket_ms)
        ) WITHOUT ROWID;
        CREATE TABLE totals (
            scope      TEXT    PRIMARY KEY,
            spent      INTEGER NOT NULL,
            reserved   INTEGER NOT NULL,
            tokens_out INTEGER NOT NULL DEFAULT 0
        ) WITHOUT ROWID;
        CREATE TABLE model_totals (
            scope      TEXT    NOT NULL,
            model      TEXT    NOT NULL,
            requests   INTEGER NOT NULL,
            tokens_in  INTEGER NOT NULL,
            tokens_out INTEGER NOT NULL,
            spent      INTEGER NOT NULL,
            reserved   INTEGER NOT NULL,
            PRIMARY KEY (scope, model)
        ) WITHOUT ROWID;
        CREATE TABLE warnings (
            scope        TEXT    NOT NULL,
            cap          TEXT    NOT NULL,
            period_start INTEGER NOT NULL,
            PRIMARY KEY (scope, cap, period_start)
        ) WITHOUT ROWID;

        CREATE TRIGGER requests_rollup_insert AFTER INSERT ON requests BEGIN
            {add_new}
        END;
        CREATE TRIGGER requests_rollup_update
        AFTER UPDATE OF state, reserved, charged, tokens_out ON requests
        WHEN OLD.project IS NEW.project AND OLD.created_at IS NEW.created_at BEGIN
            {delta}
        END;
        CREATE TRIGGER requests_rollup_move
        AFTER UPDATE OF project, created_at ON requests
        WHEN OLD.project IS NOT NEW.project OR OLD.created_at IS NOT NEW.created_at BEGIN
            {sub_old}
            {add_new}
        END;
        CREATE TRIGGER requests_rollup_delete AFTER DELETE ON requests BEGIN
            {sub_old}
        END;

        CREATE TRIGGER requests_models_insert AFTER INSERT ON requests BEGIN
            {model_add}
        END;
        CREATE TRIGGER requests_models_update
        AFTER UPDATE OF state, reserved, charged, tokens_in, tokens_out ON requests
        WHEN OLD.project IS NEW.project AND OLD.model IS NEW.model BEGIN
            {model_delta}
        END;
        CREATE TRIGGER requests_models_move
        AFTER UPDATE OF project, model ON requests
        WHEN OLD.project IS NOT NEW.project OR OLD.model IS NOT NEW.model BEGIN
            {model_sub}
            {model_add}
        END;
        CREATE TRIGGER requests_models_delete AFTER DELETE ON requests BEGIN
            {model_sub}
        END;"
    )
}

fn rebuild_sql() -> String {
    let mut sql =
        String::from("DELETE FROM rollups; DELETE FROM totals; DELETE FROM model_totals;");
    for w in WIDTHS {
        for scope in ["project", "''"] {
            sql.push_str(&format!(
                "INSERT INTO rollups (scope, width_ms, bucket_ms, spent, reserved, tokens_out)
                 SELECT {scope}, {w}, created_at - (((created_at % {w}) + {w}) % {w}) AS b,
                        SUM({SPENT_NEW}), SUM({RESERVED_NEW}), SUM({TOKENS_OUT_NEW})
                 FROM requests AS NEW GROUP BY 1, 3;"
            ));
        }
    }
    for scope in ["project", "''"] {
        sql.push_str(&format!(
            "INSERT INTO totals (scope, spent, reserved, tokens_out)
             SELECT {scope}, SUM({SPENT_NEW}), SUM({RESERVED_NEW}), SUM({TOKENS_OUT_NEW})
             FROM requests AS NEW GROUP BY 1;
             INSERT INTO model_totals (scope, model, requests, tokens_in, tokens_out, spent, reserved)
             SELECT {scope}, model, COUNT(*), SUM({TOKENS_IN_NEW}), SUM({TOKENS_OUT_NEW}),
                    SUM({SPENT_NEW}), SUM({RESERVED_NEW})
             FROM requests AS NEW GROUP BY 1, 2;"
        ));
    }
    sql
}

/// Brings the file to [`SCHEMA_VERSION`] inside one immediate transaction, so two processes
/// opening a new ledger at once cannot both create it.
fn migrate(conn: &mut Connection) -> Result<(), LedgerError> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let version: i64 = tx.query_row("PRAGMA user_version", [], |r| r.get(0))?;
    if version > SCHEMA_VERSION {
        return Err(LedgerError::FutureSchema {
            found: version,
            known: SCHEMA_VERSION,
        });
    }
    if version < 1 {
        tx.execute_batch(&schema_v1())?;
    }
    if version < SCHEMA_VERSION {
        tx.pragma_update(None, "user_version", SCHEMA_VERSION)?;
    }
    tx.commit()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::budget::clock::FixedClock;
    use jiff::{ToSpan, Zoned};
    use std::path::PathBuf;

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

    fn temp_ledger() -> (tempfile::TempDir, PathBuf, Ledger) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("nested/dir/ledger.sqlite3");
        let ledger = Ledger::open(&path).unwrap();
        (dir, path, ledger)
    }

    fn clock(s: &str) -> FixedClock {
        FixedClock::new(s.parse::<Zoned>().unwrap())
    }

    fn input<'a>(project: &'a str, prompt: u64, max: u32) -> ReserveInput<'a> {
        ReserveInput::new(project, "test/model", prompt, max, price())
    }

    fn rows(l: &Ledger) -> i64 {
        l.connection()
            .query_row("SELECT COUNT(*) FROM requests", [], |r| r.get(0))
            .unwrap()
    }

    fn reserved(d: Decision) -> (RequestId, u32, Usd, Option<u32>) {
        match d {
            Decision::Reserved {
                id,
                max_tokens,
                worst_case,
                lowered_from,
            } => (id, max_tokens, worst_case, lowered_from),
            Decision::Refused(r) => panic!("refused: {r}"),
        }
    }

    fn refused(d: Decision) -> Refusal {
        match d {
            Decision::Refused(r) => r,
            other => panic!("expected a refusal, got {other:?}"),
        }
    }

    /// Reserves and settles a request costing exactly `charged`.
    fn spend_settled(l: &mut Ledger, project: &str, charged: Usd, c: &dyn Clock) -> RequestId {
        let (id, ..) = reserved(l.reserve(&input(project, 0, 16), c).unwrap());
        l.settle(id, Settlement::charged(charged, ChargeSource::Usage), c)
            .unwrap();
        id
    }

    fn assert_consistent(l: &Ledger) {
        let diffs = l.check_rollups().unwrap();
        assert!(diffs.is_empty(), "rollups differ: {diffs:#?}");
    }

    /// A tiny deterministic generator: tests must be reproducible and take no extra crate.
    struct Rng(u64);
    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0
        }
        fn below(&mut self, n: u64) -> u64 {
            self.next() % n
        }
    }

    #[test]
    fn migrates_an_empty_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ledger.sqlite3");
        std::fs::File::create(&path).unwrap();
        let l = Ledger::open(&path).unwrap();
        let v: i64 = l
            .connection()
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .unwrap();
        assert_eq!(v, SCHEMA_VERSION);
        let mode: String = l
            .connection()
            .query_row("PRAGMA journal_mode", [], |r| r.get(0))
            .unwrap();
        assert_eq!(mode, "wal");
        let sync: i64 = l
            .connection()
            .query_row("PRAGMA synchronous", [], |r| r.get(0))
            .unwrap();
        assert_eq!(sync, 2, "FULL");
        assert_eq!(rows(&l), 0);
        drop(l);
        // Reopening an up-to-date ledger changes nothing.
        let mut l = Ledger::open(&path).unwrap();
        let c = clock("2025-06-15T12:00:00+02:00[Europe/Paris]");
        spend_settled(&mut l, "/p", cents(1), &c);
        drop(l);
        let l = Ledger::open(&path).unwrap();
        assert_eq!(rows(&l), 1);
        l.connection()
            .pragma_update(None, "user_version", 99)
            .unwrap();
        drop(l);
        assert!(matches!(
            Ledger::open(&path),
            Err(LedgerError::FutureSchema { found: 99, .. })
        ));
    }

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
    fn day_and_month_boundaries_follow_the_local_calendar() {
        let (_d, _p, mut l) = temp_ledger();
        let tz = "[America/New_York]";
        let at = |s: &str| -> Zoned { format!("{s}{tz}").parse().unwrap() };
        let c = FixedClock::new(at("2025-01-31T23:59:00-05:00"));
        spend_settled(&mut l, "/p", cents(7), &c);
        // 04:59 UTC on Feb 1st: still January here.
        assert_eq!(l.spend(Some("/p"), &c).unwrap().today, cents(7));
        c.set(at("2025-02-01T00:01:00-05:00"));
        let s = l.spend(Some("/p"), &c).unwrap();
        assert_eq!(
            (s.today, s.month, s.total),
            (Usd::ZERO, Usd::ZERO, cents(7))
        );
        let mut inp = input("/p", 1000, 1000);
        inp.project_caps.daily = Some(cents(2));
        inp.project_caps.monthly = Some(cents(2));
        reserved(l.reserve(&inp, &c).unwrap());

        // DST: 2025-03-09 has 23 hours in New York.
        c.set(at("2025-03-08T23:59:59.999-05:00"));
        spend_settled(&mut l, "/dst", cents(1), &c);
        c.set(at("2025-03-09T00:00:00-05:00"));
        spend_settled(&mut l, "/dst", cents(2), &c);
        c.set(at("2025-03-09T03:30:00-04:00"));
        spend_settled(&mut l, "/dst", cents(4), &c);
        c.set(at("2025-03-09T23:59:59.999-04:00"));
        spend_settled(&mut l, "/dst", cents(8), &c);
        c.set(at("2025-03-10T00:00:00-04:00"));
        spend_settled(&mut l, "/dst", cents(16), &c);
        c.set(at("2025-03-09T12:00:00-04:00"));
        let s = l.spend(Some("/dst"), &c).unwrap();
        assert_eq!(s.today, cents(14));
        assert_eq!(s.month, cents(31));
        c.set(at("2025-03-10T00:00:00-04:00"));
        assert_eq!(l.spend(Some("/dst"), &c).unwrap().today, cents(16));

        // Offsets of :45 and of odd seconds (local mean time, 1900) are exact too.
        for (zone, noon) in [
            ("Asia/Kathmandu", "2025-06-15T12:00:00+05:45"),
            ("Europe/Amsterdam", "1900-06-15T12:00:00+00:19:32"),
        ] {
            let noon: Zoned = format!("{noon}[{zone}]").parse().unwrap();
            let (start, end) = day_bounds(&noon);
            let project = format!("/{zone}");
            let mut expect = Usd::ZERO;
            for (k, ms) in [start - 1, start, end - 1, end].into_iter().enumerate() {
                let when = jiff::Timestamp::from_millisecond(ms)
                    .unwrap()
                    .to_zoned(noon.time_zone().clone());
                c.set(when);
                let amount = cents(1 << k);
                spend_settled(&mut l, &project, amount, &c);
                if k == 1 || k == 2 {
                    expect += amount;
                }
            }
            c.set(noon);
            assert_eq!(l.spend(Some(&project), &c).unwrap().today, expect, "{zone}");
        }
        assert_consistent(&l);
    }

    #[test]
    fn window_sums_match_naive_sums() {
        let (_d, _p, mut l) = temp_ledger();
        let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
        let base = 1_750_000_000_000i64;
        let c = clock("2025-06-15T12:00:00+00:00[UTC]");
        for _ in 0..400 {
            let at = base + rng.below(40 * 86_400_000) as i64;
            c.set(
                jiff::Timestamp::from_millisecond(at)
                    .unwrap()
                    .to_zoned(jiff::tz::TimeZone::UTC),
            );
            let project = ["/a", "/b", "/c"][rng.below(3) as usize];
            let (id, ..) = reserved(
                l.reserve(&input(project, rng.below(5000), 500), &c)
                    .unwrap(),
            );
            if rng.below(3) > 0 {
                let charged = Usd(rng.below(20_000_000_000) as i64);
                l.settle(id, Settlement::charged(charged, ChargeSource::Usage), &c)
                    .unwrap();
            }
        }
        for _ in 0..300 {
            let a = base - 86_400_000 + rng.below(42 * 86_400_000) as i64;
            // Windows of any length, aligned to nothing in particular, some to 15 min.
            let len = rng.below(35 * 86_400_000) as i64;
            let (a, b) = if rng.below(2) == 0 {
                (a - a % 900_000, a - a % 900_000 + len - len % 900_000)
            } else {
                (a, a + len)
            };
            for scope in ["/a", "/b", ""] {
                let fast = window(l.connection(), scope, a, b).unwrap();
                let naive = raw_sum(l.connection(), scope, a, b).unwrap();
                assert_eq!(fast, naive, "{scope} [{a}, {b})");
            }
        }
    }

    #[test]
    fn rollups_stay_consistent_through_random_operations() {
        let (_d, _p, mut l) = temp_ledger();
        let mut rng = Rng(42);
        let c = clock("2025-01-30T22:00:00+05:45[Asia/Kathmandu]");
        let mut open: Vec<RequestId> = Vec::new();
        for step in 0..600 {
            c.advance((rng.below(180) as i64).minutes());
            match rng.below(10) {
                0..=4 => {
                    let project = ["/a", "/b", "/c", "/d"][rng.below(4) as usize];
                    let mut inp = input(project, rng.below(20_000), 200 + rng.below(4000) as u32);
                    inp.min_useful_tokens = 64;
                    inp.project_caps.daily = Some(cents(20));
                    inp.global_caps.monthly = Some(cents(150));
                    if let Decision::Reserved { id, .. } = l.reserve(&inp, &c).unwrap() {
                        open.push(id);
                    }
                }
                5..=7 if !open.is_empty() => {
                    let id = open.swap_remove(rng.below(open.len() as u64) as usize);
                    let charged = Usd(rng.below(30_000_000_000) as i64);
                    l.settle(id, Settlement::charged(charged, ChargeSource::Usage), &c)
                        .unwrap();
                }
                8 if !open.is_empty() => {
                    let id = open.swap_remove(rng.below(open.len() as u64) as usize);
                    l.fail(id, &c).unwrap();
                }
                _ => {
                    // Reconcile anything, settled or not.
                    let id = RequestId(1 + rng.below(step + 1) as i64);
                    let charged = Usd(rng.below(10_000_000_000) as i64);
                    let s = Settlement::charged(charged, ChargeSource::Generation);
                    match l.reconcile(id, s, &c) {
                        Ok(()) => open.retain(|o| *o != id),
                        Err(LedgerError::NotFound(_)) => {}
                        Err(e) => panic!("{e}"),
                    }
                }
            }
        }
        assert!(rows(&l) > 100);
        assert_consistent(&l);
        // Hand edits through sqlite3 keep them consistent too (the triggers do the work).
        l.connection()
            .execute_batch(
                "DELETE FROM requests WHERE id % 7 = 0;
                 UPDATE requests SET created_at = created_at - 3600000 WHERE id % 5 = 0;
                 UPDATE requests SET project = '/z' WHERE id % 11 = 0;",
            )
            .unwrap();
        assert_consistent(&l);
        // And damaged rollups can be rebuilt.
        l.connection()
            .execute_batch("UPDATE rollups SET spent = spent + 1; DELETE FROM totals;")
            .unwrap();
        assert!(!l.check_rollups().unwrap().is_empty());
        l.rebuild_rollups().unwrap();
        assert_consistent(&l);
    }

    #[test]
    fn usage_figures_follow_models_tokens_and_days() {
        let (_d, _p, mut l) = temp_ledger();
        let c = clock("2025-06-15T12:00:00+02:00[Europe/Paris]");
        let mut add =
            |project: &str, model: &str, charged: Option<i64>, out: u64, c: &FixedClock| {
                let mut inp = input(project, 100, 100);
                inp.model = model;
                let (id, ..) = reserved(l.reserve(&inp, c).unwrap());
                if let Some(ch) = charged {
                    let mut s = Settlement::charged(cents(ch), ChargeSource::Usage);
                    s.tokens_in = Some(1000);
                    s.tokens_out = Some(out);
                    l.settle(id, s, c).unwrap();
                }
            };
        add("/a", "m/cheap", Some(1), 10, &c);
        add("/a", "m/dear", Some(5), 20, &c);
        add("/a", "m/cheap", None, 0, &c); // in flight: reserved 100 × 1e-6 + 100 × 1e-5 = $0.0011
        add("/b", "m/cheap", Some(2), 40, &c);
        c.set("2025-06-14T23:59:00+02:00[Europe/Paris]".parse().unwrap());
        add("/a", "m/cheap", Some(3), 80, &c);
        c.set("2025-05-31T23:59:00+02:00[Europe/Paris]".parse().unwrap());
        add("/a", "m/dear", Some(7), 160, &c);
        c.set("2025-06-15T12:00:00+02:00[Europe/Paris]".parse().unwrap());

        let u = l.usage(Some("/a"), &c, 30).unwrap();
        let inflight = Usd(1_100_000_000);
        assert_eq!(u.today.spent, cents(6));
        assert_eq!(u.today.reserved, inflight);
        assert_eq!(u.today.tokens_out, 30);
        assert_eq!(u.month.counted(), cents(9) + inflight);
        assert_eq!(u.month.tokens_out, 110);
        assert_eq!(u.total.counted(), cents(16) + inflight);
        assert_eq!(u.total.tokens_out, 270);
        let models: Vec<_> = u
            .models
            .iter()
            .map(|m| {
                (
                    m.model.as_str(),
                    m.requests,
                    m.tokens_in,
                    m.tokens_out,
                    m.cost(),
                )
            })
            .collect();
        assert_eq!(
            models,
            vec![
                ("m/dear", 2, 2000, 180, cents(12)),
                ("m/cheap", 3, 2000, 90, cents(4) + inflight),
            ]
        );
        assert_eq!(u.daily.len(), 30);
        assert_eq!(u.daily[29].date, jiff::civil::date(2025, 6, 15));
        assert_eq!(u.daily[29].usage.counted(), cents(6) + inflight);
        assert_eq!(u.daily[28].usage.counted(), cents(3));
        assert_eq!(u.daily[14].date, jiff::civil::date(2025, 5, 31));
        assert_eq!(u.daily[14].usage.counted(), cents(7));
        assert_eq!(u.daily[0].date, jiff::civil::date(2025, 5, 17));

        let all = l.usage(None, &c, 1).unwrap();
        assert_eq!(all.total.counted(), cents(18) + inflight);
        let counts: Vec<_> = all.models.iter().map(|m| m.requests).collect();
        assert_eq!(counts, vec![2, 4]);

        let p = l.projects(&c).unwrap();
        assert_eq!(p.len(), 2);
        assert_eq!((p[0].project.as_str(), p[0].requests), ("/a", 5));
        assert_eq!(p[0].today, cents(6) + inflight);
        assert_eq!(p[0].month, cents(9) + inflight);
        assert_eq!(p[0].reserved_unsettled, inflight);
        assert_eq!((p[1].project.as_str(), p[1].total), ("/b", cents(2)));
        assert_consistent(&l);

        // Hand edits move model rows and tokens too; a project emptied by hand disappears.
        l.connection()
            .execute_batch(
                "UPDATE requests SET model = 'm/renamed' WHERE model = 'm/dear';
                 UPDATE requests SET tokens_in = 5 WHERE project = '/a';
                 UPDATE requests SET tokens_out = tokens_out + 1 WHERE project = '/a';
                 DELETE FROM requests WHERE project = '/b';",
            )
            .unwrap();
        assert_consistent(&l);
        assert_eq!(l.projects(&c).unwrap().len(), 1);
        let m = l.model_usage(Some("/a")).unwrap();
        assert_eq!(m[0].model, "m/renamed");
        assert_eq!(m[0].tokens_in, 10);
        assert!(l.model_usage(Some("/b")).unwrap().is_empty());
        l.connection()
            .execute_batch("DELETE FROM model_totals; UPDATE totals SET tokens_out = 0;")
            .unwrap();
        assert!(!l.check_rollups().unwrap().is_empty());
        l.rebuild_rollups().unwrap();
        assert_consistent(&l);
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
