//! The spending ledger: one SQLite file (WAL mode) shared by every backend process of the user.
//!
//! - [`schema`]: the tables, the triggers that keep the running sums, and the migration; the
//!   SQL itself lives in plain `.sql` files next to it. Its documentation describes every column
//!   for users who query the file with `sqlite3`.
//! - [`write`]: reserve (the cap check, through the pure [`crate::budget::caps`]), settle, fail,
//!   reconcile, and the orphaned reservations of dead processes.
//! - [`report`]: what `:LlmUsage`, the statusline and `frugal usage` read.
//! - `sums`: how a local day or month is summed from the trigger-kept buckets.
//! - `check` (tests only): recomputes the running sums from `requests` to prove the triggers.
//! - `testkit` (tests only): what the unit tests share, a v1 ledger among it.

use std::hash::{BuildHasher, Hasher};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::Duration;

use rusqlite::Connection;

pub mod report;
pub mod schema;
mod sums;
pub mod write;

#[cfg(test)]
mod check;
#[cfg(test)]
mod testkit;

pub use crate::budget::caps::{CapKind, Caps, Refusal, Scope, DEFAULT_MIN_USEFUL_TOKENS};
pub use report::{DaySpend, ModelUsage, PeriodUsage, ProjectSpend, Spend, UsageFigures};
pub use schema::SCHEMA_VERSION;
pub use write::{ChargeSource, Decision, Pending, ReserveInput, Settlement};

/// The ledger's file name inside `data_dir`, where the plugin and `frugal usage` look for it.
pub const LEDGER_FILE: &str = "ledger.sqlite3";

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

impl From<crate::budget::caps::Overflow> for LedgerError {
    fn from(_: crate::budget::caps::Overflow) -> Self {
        LedgerError::Overflow
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
        let mut conn = Ledger::connect(path.as_ref())?;
        schema::migrate(&mut conn)?;
        Ok(Ledger::over(conn))
    }

    /// Opens the file with the settings above, creating its directories; leaves its schema
    /// as it is.
    fn connect(path: &Path) -> Result<Connection, LedgerError> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|source| LedgerError::Io {
                path: dir.to_path_buf(),
                source,
            })?;
        }
        let conn = Connection::open(path)?;
        conn.busy_timeout(BUSY_TIMEOUT)?;
        // journal_mode answers with the resulting mode; a query, not an execute.
        let _mode: String = conn.query_row("PRAGMA journal_mode=WAL", [], |r| r.get(0))?;
        conn.pragma_update(None, "synchronous", "FULL")?;
        conn.set_prepared_statement_cache_capacity(32);
        Ok(conn)
    }

    /// The ledger of this process over `conn`.
    fn over(conn: Connection) -> Ledger {
        Ledger {
            conn,
            pid: std::process::id(),
            instance: process_instance().to_string(),
        }
    }

    /// Records reservations under another owner instance id than this process's: what a
    /// backend that re-`exec`ed itself (same pid, new instance) looks like.
    #[cfg(test)]
    pub fn with_instance(mut self, instance: impl Into<String>) -> Ledger {
        self.instance = instance.into();
        self
    }

    /// The owner instance id written into reservations made through this ledger.
    #[cfg(test)]
    pub fn instance(&self) -> &str {
        &self.instance
    }

    /// The underlying connection, for read-only reports (`:checkhealth`'s row count), the
    /// benches and tests.
    pub fn connection(&self) -> &Connection {
        &self.conn
    }
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

#[cfg(test)]
mod tests {
    use super::testkit::*;
    use super::*;

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
}
