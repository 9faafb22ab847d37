//! The budget core: exact money, the local calendar, the cap arithmetic, and the SQLite ledger
//! that keeps every request's reservation and charge so that per-project and global caps are
//! never crossed, even by several Neovim instances at once or across a crash.
//!
//! The flow for one request:
//! 1. [`Ledger::reserve`] checks the request's worst case against every cap ([`caps::decide`])
//!    and, in the same transaction, records it as `reserved` (or lowers `max_tokens`, or
//!    refuses with no write).
//! 2. Just before its bytes leave, [`Ledger::mark_sent`] records (on disk) that it may be billed.
//! 3. When the answer ends, [`Ledger::settle`] replaces the reservation with OpenRouter's
//!    `usage.cost`; [`Ledger::fail`] records that nothing was billed.
//! 4. A reservation never sent is released at exit ([`Ledger::release_unsent`]) or, if its
//!    owner died, at the next start ([`Ledger::release_orphans`]); one that may have been billed
//!    stays counted in full until [`Ledger::reconcile`] writes the figure from
//!    `GET /generation` ([`Ledger::orphans`] lists them).

pub mod caps;
pub mod clock;
pub mod foresight;
pub mod ledger;
pub mod money;

pub use caps::{CapKind, Caps, Refusal, Scope};
pub use clock::{day_bounds, month_bounds, Clock, FixedClock, SystemClock};
pub use ledger::{
    ChargeSource, Decision, HunkCounts, HunkFate, Ledger, LedgerError, Outcome, Pending, RequestId,
    RequestKind, ReserveInput, Settlement, Spend,
};
pub use money::{wire_usd, CachePrice, MoneyError, Price, Usd, WireDecimal};
