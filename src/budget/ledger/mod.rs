//! The spending ledger: one SQLite file (WAL mode) shared by every backend process of the user.
//!
//! - [`schema`]: the tables, the triggers that keep the running sums, and the migration; the
//!   SQL itself lives in plain `.sql` files next to it. Its documentation describes every column
//!   for users who query the file with `sqlite3`.
//! - [`write`]: reserve (the cap check, through the pure [`crate::budget::caps`]), settle, fail,
//!   reconcile, and the orphaned reservations of dead processes.
//! - [`forecast`]: where this month ends at the last 7 days' pace.
//! - [`outcomes`]: what became of each hunk an edit proposed (`hunk_outcomes`).
//! - [`report`]: what `:LlmUsage`, the statusline and `frugal usage` read.
//! - `sums`: how a local day or month is summed from the trigger-kept buckets.
//! - `check` (tests only): recomputes the running sums from `requests` to prove the triggers.
//! - `testkit` (tests only): what the unit tests share, a v1 ledger among it.

use std::hash::{BuildHasher, Hasher};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::Duration;

use rusqlite::Connection;

pub mod forecast;
pub mod outcomes;
pub mod report;
pub mod reviews;
mod samples;
pub mod schema;
mod sums;
pub mod write;

#[cfg(test)]
mod check;
#[cfg(test)]
mod testkit;

pub use crate::budget::caps::{CapKind, Caps, Refusal, Scope, DEFAULT_MIN_USEFUL_TOKENS};
pub use forecast::Forecast;
pub use outcomes::{HunkCounts, HunkFate, ModelHunks, Outcome};
pub use report::{DaySpend, KeySpend, ModelUsage, PeriodUsage, ProjectSpend, Spend, UsageFigures};
pub use reviews::KindSpend;
pub use schema::SCHEMA_VERSION;
pub use write::{ChargeSource, Decision, Pending, RequestKind, ReserveInput, Settlement};

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
    /// The file at the ledger's path is no longer the one open (moved, deleted or replaced).
    /// SQLite in WAL mode keeps committing to the open file unawares, out of every other
    /// process's sight, so this is checked before each use.
    #[error("the ledger file was moved or deleted while open")]
    Moved,
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

/// What kind of trouble the ledger file is in: one place classifies SQLite's errors, so every
/// message about the file (an edit's refusal, `:LlmUsage`, `:checkhealth`, `frugal usage`) says
/// what happened and what to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// Another process held the write lock past the busy timeout (`SQLITE_BUSY`/`LOCKED`).
    Locked,
    /// The file cannot be written (`SQLITE_READONLY`): its mode, its owner, a read-only mount.
    ReadOnly,
    /// The file was moved or deleted while open (`SQLITE_READONLY_DBMOVED`).
    Moved,
    /// Not a database, or damaged (`SQLITE_CORRUPT`, `SQLITE_NOTADB`).
    Corrupt,
    /// The file cannot be opened or its directory created (`SQLITE_CANTOPEN`).
    CantOpen,
    /// The disk is full (`SQLITE_FULL`).
    Full,
    /// The disk failed a read or write (`SQLITE_IOERR`).
    Io,
}

impl Fault {
    /// The fault of a SQLite error, `None` for errors that are not about the file.
    pub fn of(e: &rusqlite::Error) -> Option<Fault> {
        use rusqlite::ErrorCode as C;
        let rusqlite::Error::SqliteFailure(f, _) = e else {
            return None;
        };
        Some(match f.code {
            C::DatabaseBusy | C::DatabaseLocked => Fault::Locked,
            C::ReadOnly if f.extended_code == rusqlite::ffi::SQLITE_READONLY_DBMOVED => {
                Fault::Moved
            }
            C::ReadOnly => Fault::ReadOnly,
            C::DatabaseCorrupt | C::NotADatabase => Fault::Corrupt,
            C::CannotOpen | C::PermissionDenied => Fault::CantOpen,
            C::DiskFull => Fault::Full,
            C::SystemIoFailure => Fault::Io,
            _ => return None,
        })
    }

    /// Whether the connection is worth keeping: after anything but a lock held elsewhere, the
    /// next use opens the file again (the user may have fixed it, or moved it aside).
    pub fn keeps_connection(self) -> bool {
        self == Fault::Locked
    }
}

impl LedgerError {
    /// The fault behind this error, if it is about the file.
    pub fn fault(&self) -> Option<Fault> {
        match self {
            LedgerError::Sqlite(e) => Fault::of(e),
            LedgerError::Io { .. } => Some(Fault::CantOpen),
            LedgerError::Moved => Some(Fault::Moved),
            _ => None,
        }
    }

    /// The error for the user: what happened to the ledger at `path` and what to do.
    pub fn explain(&self, path: &Path) -> String {
        let p = path.display();
        let dir = path
            .parent()
            .map(|d| d.display().to_string())
            .unwrap_or_default();
        let sqlite = match self {
            LedgerError::Sqlite(e) => e.to_string(),
            other => other.to_string(),
        };
        match self.fault() {
            Some(Fault::Locked) => format!(
                "the ledger {p} is locked: another process has held it for more than {} s (a \
                 frugal in another Neovim stuck in a write, or a sqlite3 shell with an open \
                 transaction; `fuser {p}` names it). Close it and try again; nothing was lost",
                BUSY_TIMEOUT.as_secs()
            ),
            Some(Fault::ReadOnly) => format!(
                "the ledger {p} cannot be written ({}), so no spending can be recorded. Make it \
                 and {dir} writable by you (e.g. chmod u+w {p}), or check that the disk is not \
                 mounted read-only",
                access(path)
            ),
            Some(Fault::Moved) => format!(
                "the ledger {p} was moved or deleted while frugal had it open. Put it back to \
                 keep its history; otherwise the next command starts a new ledger there, whose \
                 caps count from zero"
            ),
            Some(Fault::Corrupt) => format!(
                "the ledger {p} is damaged or not a ledger ({sqlite}). Move it aside (mv {p} \
                 {p}.broken, with its -wal and -shm files if any): the next command starts a new \
                 one. What is lost is the spending history it held, so today's, this month's and \
                 the total caps count from zero again (sqlite3's .recover may still read the old \
                 file)"
            ),
            Some(Fault::CantOpen) => format!(
                "cannot open the ledger {p} ({sqlite}): {dir} must be a directory you can write, \
                 and {p} a file (or absent)"
            ),
            Some(Fault::Full) => {
                format!("the disk holding the ledger {p} is full: free some space and try again")
            }
            Some(Fault::Io) => {
                format!("the ledger {p} could not be read or written ({sqlite}): check the disk")
            }
            None => format!("ledger {p}: {self}"),
        }
    }
}

/// The file's mode and owner against who we are, for a read-only ledger's message.
fn access(path: &Path) -> String {
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        match std::fs::metadata(path) {
            Ok(m) => format!(
                "mode {:04o}, owner uid {}; frugal runs as uid {}",
                m.mode() & 0o7777,
                m.uid(),
                // SAFETY: geteuid has no preconditions and cannot fail.
                unsafe { libc::geteuid() }
            ),
            Err(e) => e.to_string(),
        }
    }
    #[cfg(not(unix))]
    {
        let _ = path;
        "read-only".into()
    }
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
    /// Where it was opened, and the file found there then (device, inode).
    path: PathBuf,
    file_id: Option<(u64, u64)>,
}

/// The identity of the file at `path` (device and inode), `None` when there is none.
fn file_id(path: &Path) -> Option<(u64, u64)> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        std::fs::metadata(path).ok().map(|m| (m.dev(), m.ino()))
    }
    #[cfg(not(unix))]
    {
        std::fs::metadata(path).ok().map(|_| (0, 0))
    }
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
    ///
    /// Private: its directory is created (or tightened to) 0700, the file and its `-wal`/`-shm`
    /// are tightened to 0600 before SQLite opens them (SQLite gives the `-wal` and `-shm` it
    /// creates the database's mode). The backend's umask (077) covers anything created later.
    pub fn open(path: impl AsRef<Path>) -> Result<Ledger, LedgerError> {
        let mut conn = Ledger::connect(path.as_ref())?;
        schema::migrate(&mut conn)?;
        Ok(Ledger::over(conn, path.as_ref()))
    }

    /// Opens the file with the settings above, creating its directories; leaves its schema
    /// as it is.
    fn connect(path: &Path) -> Result<Connection, LedgerError> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            crate::private::private_dir(dir).map_err(|source| LedgerError::Io {
                path: dir.to_path_buf(),
                source,
            })?;
        }
        for suffix in ["", "-wal", "-shm", "-journal"] {
            let mut p = path.as_os_str().to_owned();
            p.push(suffix);
            if let Err(e) = crate::private::private_file(Path::new(&p)) {
                tracing::warn!("cannot make {} private: {e}", Path::new(&p).display());
            }
        }
        let conn = Connection::open(path)?;
        conn.busy_timeout(BUSY_TIMEOUT)?;
        // journal_mode answers with the resulting mode; a query, not an execute.
        let _mode: String = conn.query_row("PRAGMA journal_mode=WAL", [], |r| r.get(0))?;
        conn.pragma_update(None, "synchronous", "FULL")?;
        conn.set_prepared_statement_cache_capacity(32);
        Ok(conn)
    }

    /// The ledger of this process over `conn`, the file at `path`.
    fn over(conn: Connection, path: &Path) -> Ledger {
        Ledger {
            conn,
            pid: std::process::id(),
            instance: process_instance().to_string(),
            path: path.to_path_buf(),
            file_id: file_id(path),
        }
    }

    /// Fails with [`LedgerError::Moved`] when the file at the ledger's path is no longer the
    /// one this connection has open: what it would write would be seen by no other process
    /// (SQLite notices a moved file only in rollback-journal mode, not in WAL mode).
    pub fn ensure_in_place(&self) -> Result<(), LedgerError> {
        match (self.file_id, file_id(&self.path)) {
            (Some(a), Some(b)) if a == b => Ok(()),
            _ => Err(LedgerError::Moved),
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

/// Whether the process that owns a row (`pid`, `instance`) is gone: `me`'s own pid under
/// another instance (the pid was reused), or a pid no longer alive. `alive` keeps each pid's
/// answer for the rows that follow.
pub(super) fn owner_gone(
    pid: i64,
    instance: &str,
    me: (u32, &str),
    alive: &mut std::collections::HashMap<i64, bool>,
) -> bool {
    if pid == i64::from(me.0) {
        instance != me.1
    } else {
        !*alive.entry(pid).or_insert_with(|| pid_alive(pid))
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

/// Whether a process with this pid is still running: a handle to it can be opened (access
/// denied means it runs under another user: alive) and its exit code is STILL_ACTIVE.
#[cfg(windows)]
fn pid_alive(pid: i64) -> bool {
    use windows_sys::Win32::Foundation::{
        CloseHandle, GetLastError, ERROR_ACCESS_DENIED, STILL_ACTIVE,
    };
    use windows_sys::Win32::System::Threading::{
        GetExitCodeProcess, OpenProcess, PROCESS_QUERY_LIMITED_INFORMATION,
    };
    let Ok(p) = u32::try_from(pid) else {
        return false;
    };
    if p == 0 {
        return false;
    }
    // SAFETY: OpenProcess takes plain values; a null handle means failure.
    let h = unsafe { OpenProcess(PROCESS_QUERY_LIMITED_INFORMATION, 0, p) };
    if h.is_null() {
        // SAFETY: reads this thread's last error code.
        return unsafe { GetLastError() } == ERROR_ACCESS_DENIED;
    }
    let mut code: u32 = 0;
    // SAFETY: `h` is a valid process handle opened above; `code` outlives the call.
    let ok = unsafe { GetExitCodeProcess(h, &mut code) } != 0;
    // SAFETY: `h` is ours and closed once.
    unsafe { CloseHandle(h) };
    !ok || code == STILL_ACTIVE as u32
}

/// Elsewhere, without a liveness check, only this process's previous instances are orphans.
#[cfg(not(any(unix, windows)))]
fn pid_alive(_pid: i64) -> bool {
    true
}

#[cfg(test)]
mod tests {
    use super::testkit::*;
    use super::*;

    #[test]
    fn file_faults_are_classified_and_explained() {
        let c = clock("2025-06-15T12:00:00+02:00[Europe/Paris]");
        // Locked: another connection holds the write lock past the busy timeout.
        let (_d, path, mut l) = temp_ledger();
        let holder = Connection::open(&path).unwrap();
        holder.execute_batch("BEGIN EXCLUSIVE").unwrap();
        l.conn.busy_timeout(Duration::from_millis(10)).unwrap();
        let e = l.reserve(&input("/p", 10, 10), &c).unwrap_err();
        assert_eq!(e.fault(), Some(Fault::Locked), "{e}");
        let m = e.explain(&path);
        assert!(
            m.contains("is locked") && m.contains("another process"),
            "{m}"
        );
        assert!(m.contains(&path.display().to_string()), "{m}");
        holder.execute_batch("ROLLBACK").unwrap();

        // Moved while open: SQLite (WAL) keeps writing to the moved file unawares.
        spend_settled(&mut l, "/p", cents(1), &c);
        l.ensure_in_place().unwrap();
        std::fs::rename(&path, path.with_extension("aside")).unwrap();
        assert!(l.reserve(&input("/p", 10, 10), &c).is_ok());
        let e = l.ensure_in_place().unwrap_err();
        assert_eq!(e.fault(), Some(Fault::Moved), "{e}");
        assert!(e.explain(&path).contains("moved or deleted"));
        // Replaced by another file: the same.
        std::fs::write(&path, "").unwrap();
        assert!(l.ensure_in_place().is_err());

        // Read-only: a connection that may not write.
        let (_d, path, _l) = temp_ledger();
        let ro =
            Connection::open_with_flags(&path, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY).unwrap();
        let e = LedgerError::from(ro.execute("DELETE FROM requests", []).unwrap_err());
        assert_eq!(e.fault(), Some(Fault::ReadOnly), "{e}");
        let m = e.explain(&path);
        assert!(m.contains("cannot be written (mode 0"), "{m}");
        assert!(m.contains("chmod u+w"), "{m}");

        // Not a database.
        let d = tempfile::tempdir().unwrap();
        let junk = d.path().join("ledger.sqlite3");
        std::fs::write(&junk, "not a database at all; ".repeat(300)).unwrap();
        let e = Ledger::open(&junk).unwrap_err();
        assert_eq!(e.fault(), Some(Fault::Corrupt), "{e}");
        let m = e.explain(&junk);
        assert!(m.contains("damaged") && m.contains("Move it aside"), "{m}");
        assert!(m.contains("caps count from zero"), "{m}");

        // Cannot open: the path is a directory; or its directory cannot be made.
        let dir_path = d.path().join("adir");
        std::fs::create_dir(&dir_path).unwrap();
        let e = Ledger::open(&dir_path).unwrap_err();
        assert_eq!(e.fault(), Some(Fault::CantOpen), "{e}");
        assert!(e.explain(&dir_path).starts_with("cannot open the ledger"));
        let under_file = junk.join("sub/ledger.sqlite3");
        let e = Ledger::open(&under_file).unwrap_err();
        assert_eq!(e.fault(), Some(Fault::CantOpen), "{e}");

        // Not about the file.
        assert_eq!(LedgerError::NotFound(RequestId(1)).fault(), None);
        assert!(Fault::Locked.keeps_connection());
        assert!(!Fault::Corrupt.keeps_connection());
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
}
