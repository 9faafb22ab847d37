//! The conversation store: what was asked and answered per request, in `history.sqlite3`
//! beside the ledger (`data_dir`), keyed by the ledger row's id.
//!
//! A file of its own, not a table of the ledger: text is large and written after the answer,
//! and none of it may weigh on the ledger's exactness. The ledger commits with
//! `synchronous=FULL` under a write lock every process waits for; a conversation written there
//! would hold that lock (and its fsync) for kilobytes of text, and a damaged page of text
//! would be a damaged ledger. Here a corrupt or locked file only loses text: edits go on (one
//! warning), and moving the file aside starts a new one. The file holds no key (only what the
//! user typed, the model's answers and the names of files), mode 0600 like the ledger.

use crate::private::{private_dir, private_file};
use rusqlite::{params, Connection, OptionalExtension};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// The store's file name inside `data_dir`.
pub const HISTORY_FILE: &str = "history.sqlite3";

/// The schema version in `PRAGMA user_version`.
const VERSION: i64 = 1;

/// A writer waits this long for another process's transaction (text writes are short).
const BUSY_TIMEOUT: Duration = Duration::from_secs(2);

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS conversations (
    request     INTEGER PRIMARY KEY, -- the ledger's requests.id
    project     TEXT    NOT NULL,    -- the ledger's requests.project
    kind        TEXT    NOT NULL,    -- edit, review, ask
    model       TEXT    NOT NULL,
    at          INTEGER NOT NULL,    -- when it ended, unix ms
    instruction TEXT    NOT NULL,    -- the last instruction or question (the listing's)
    turns       TEXT    NOT NULL,    -- JSON [{instruction, answer}], oldest first
    files       TEXT    NOT NULL,    -- JSON [path]: context and instruction files, names only
    failure     TEXT,                -- the failed event's reason
    message     TEXT                 -- and its message
);
CREATE INDEX IF NOT EXISTS conversations_project_at ON conversations (project, at);
CREATE INDEX IF NOT EXISTS conversations_at ON conversations (at);
";

/// One exchange: what the user asked, what the model answered (Markdown).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Turn {
    pub instruction: String,
    pub answer: String,
}

/// A request's conversation, as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Conversation {
    /// The ledger row.
    pub request: i64,
    pub project: String,
    pub kind: String,
    pub model: String,
    /// Unix ms.
    pub at: i64,
    pub turns: Vec<Turn>,
    pub files: Vec<String>,
    /// The failure's reason and message, if it failed.
    pub failure: Option<(String, String)>,
}

/// What the listing needs of a stored conversation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Brief {
    pub instruction: String,
    pub failure: Option<String>,
    /// When it was written (unix ms): never before its ledger row was made, so a conversation
    /// left by another ledger file whose ids came round again is told apart.
    pub at: i64,
}

/// Why the store could not be used.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("{0}")]
    Sqlite(#[from] rusqlite::Error),
    #[error("{0}")]
    Io(#[from] std::io::Error),
    #[error("written by a newer frugal (schema v{0})")]
    Future(i64),
    #[error("a stored conversation cannot be read: {0}")]
    Json(#[from] serde_json::Error),
}

impl StoreError {
    /// One line for the user: what is wrong with the file at `path`, and what to do.
    pub fn explain(&self, path: &Path) -> String {
        use rusqlite::ErrorCode as C;
        let p = home_short(path);
        let code = match self {
            StoreError::Sqlite(rusqlite::Error::SqliteFailure(f, _)) => Some(f.code),
            _ => None,
        };
        match code {
            Some(C::DatabaseCorrupt | C::NotADatabase) => {
                format!("history damaged (move it aside): {p}")
            }
            Some(C::DatabaseBusy | C::DatabaseLocked) => format!("history locked elsewhere: {p}"),
            Some(C::ReadOnly | C::CannotOpen | C::PermissionDenied) => {
                format!("history not writable (its mode?): {p}")
            }
            _ => format!("history unusable ({self}): {p}"),
        }
    }
}

/// `path` with the home directory as `~` (what matters of a message comes first, the file
/// last and short).
fn home_short(path: &Path) -> String {
    let home = std::env::var_os("HOME").map(PathBuf::from);
    match home.as_deref().and_then(|h| path.strip_prefix(h).ok()) {
        Some(rest) if !rest.as_os_str().is_empty() => format!("~/{}", rest.display()),
        _ => path.display().to_string(),
    }
}

/// Creates the file 0600 when absent (whatever the umask), so SQLite's `-wal` and `-shm`,
/// which take the database's mode, are private too.
fn create_private(path: &Path) -> std::io::Result<()> {
    let mut o = std::fs::OpenOptions::new();
    o.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut o, crate::private::PRIVATE_FILE);
    match o.open(path) {
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        r => r.map(drop),
    }
}

/// The store, over one connection.
pub struct Store {
    conn: Connection,
    path: PathBuf,
}

impl Store {
    /// Opens (creating it, 0600, in a 0700 directory) the store at `path`.
    pub fn open(path: &Path) -> Result<Store, StoreError> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            private_dir(dir)?;
        }
        create_private(path)?;
        for suffix in ["", "-wal", "-shm", "-journal"] {
            let mut p = path.as_os_str().to_owned();
            p.push(suffix);
            private_file(Path::new(&p))?;
        }
        let conn = Connection::open(path)?;
        conn.busy_timeout(BUSY_TIMEOUT)?;
        let _mode: String = conn.query_row("PRAGMA journal_mode=WAL", [], |r| r.get(0))?;
        // Text, not money: a power cut may lose the last conversation, never the ledger's row.
        conn.pragma_update(None, "synchronous", "NORMAL")?;
        let v: i64 = conn.query_row("PRAGMA user_version", [], |r| r.get(0))?;
        if v > VERSION {
            return Err(StoreError::Future(v));
        }
        if v < VERSION {
            conn.execute_batch(SCHEMA)?;
            conn.pragma_update(None, "user_version", VERSION)?;
        }
        Ok(Store {
            conn,
            path: path.to_path_buf(),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Writes (or replaces) a request's conversation.
    pub fn put(&self, c: &Conversation) -> Result<(), StoreError> {
        let instruction = c
            .turns
            .last()
            .map(|t| t.instruction.clone())
            .unwrap_or_default();
        let (failure, message) = match &c.failure {
            Some((r, m)) => (Some(r.as_str()), Some(m.as_str())),
            None => (None, None),
        };
        self.conn
            .prepare_cached(
                "INSERT OR REPLACE INTO conversations
                 (request, project, kind, model, at, instruction, turns, files, failure, message)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
            )?
            .execute(params![
                c.request,
                c.project,
                c.kind,
                c.model,
                c.at,
                instruction,
                serde_json::to_string(&c.turns)?,
                serde_json::to_string(&c.files)?,
                failure,
                message,
            ])?;
        Ok(())
    }

    /// A request's conversation in `project`, if its text is kept.
    pub fn get(&self, project: &str, request: i64) -> Result<Option<Conversation>, StoreError> {
        let row = self
            .conn
            .prepare_cached(
                "SELECT kind, model, at, turns, files, failure, message FROM conversations
                 WHERE request = ?1 AND project = ?2",
            )?
            .query_row(params![request, project], |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, i64>(2)?,
                    r.get::<_, String>(3)?,
                    r.get::<_, String>(4)?,
                    r.get::<_, Option<String>>(5)?,
                    r.get::<_, Option<String>>(6)?,
                ))
            })
            .optional()?;
        let Some((kind, model, at, turns, files, failure, message)) = row else {
            return Ok(None);
        };
        Ok(Some(Conversation {
            request,
            project: project.to_string(),
            kind,
            model,
            at,
            turns: serde_json::from_str(&turns)?,
            files: serde_json::from_str(&files)?,
            failure: failure.map(|f| (f, message.unwrap_or_default())),
        }))
    }

    /// The listing's part of the conversations of `requests` kept for `project`.
    pub fn briefs(
        &self,
        project: &str,
        requests: &[i64],
    ) -> Result<HashMap<i64, Brief>, StoreError> {
        let mut out = HashMap::with_capacity(requests.len());
        let mut stmt = self.conn.prepare_cached(
            "SELECT substr(instruction, 1, 200), failure, at FROM conversations
             WHERE request = ?1 AND project = ?2",
        )?;
        for &id in requests {
            let b = stmt
                .query_row(params![id, project], |r| {
                    Ok(Brief {
                        instruction: r.get(0)?,
                        failure: r.get(1)?,
                        at: r.get(2)?,
                    })
                })
                .optional()?;
            if let Some(b) = b {
                out.insert(id, b);
            }
        }
        Ok(out)
    }

    /// Deletes a request's text; whether there was any.
    pub fn delete(&self, project: &str, request: i64) -> Result<bool, StoreError> {
        let n = self.conn.execute(
            "DELETE FROM conversations WHERE request = ?1 AND project = ?2",
            params![request, project],
        )?;
        Ok(n > 0)
    }

    /// Deletes the text of every request of `project`; how many there were.
    pub fn clear(&self, project: &str) -> Result<usize, StoreError> {
        Ok(self.conn.execute(
            "DELETE FROM conversations WHERE project = ?1",
            params![project],
        )?)
    }

    /// Deletes the text older than `days` days before `now_ms` (`0`: all of it); how many.
    pub fn purge(&self, days: u32, now_ms: i64) -> Result<usize, StoreError> {
        let cutoff = now_ms.saturating_sub(i64::from(days) * 86_400_000);
        let n = if days == 0 {
            self.conn.execute("DELETE FROM conversations", [])?
        } else {
            self.conn
                .execute("DELETE FROM conversations WHERE at < ?1", params![cutoff])?
        };
        if n > 0 {
            // The text is gone from the file too, not only unlinked from the index.
            let _ = self.conn.execute_batch("PRAGMA wal_checkpoint(TRUNCATE)");
        }
        Ok(n)
    }

    /// How many conversations are kept (all projects).
    pub fn count(&self) -> Result<i64, StoreError> {
        Ok(self
            .conn
            .query_row("SELECT count(*) FROM conversations", [], |r| r.get(0))?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn conv(request: i64, project: &str, at: i64, instruction: &str) -> Conversation {
        Conversation {
            request,
            project: project.into(),
            kind: "edit".into(),
            model: "m/x".into(),
            at,
            turns: vec![Turn {
                instruction: instruction.into(),
                answer: "```\nok\n```".into(),
            }],
            files: vec!["src/a.rs".into()],
            failure: None,
        }
    }

    #[test]
    fn keeps_deletes_and_purges_text() {
        let d = tempfile::tempdir().unwrap();
        let path = d.path().join("sub").join(HISTORY_FILE);
        let s = Store::open(&path).unwrap();
        s.put(&conv(1, "/p", 1_000, "first")).unwrap();
        s.put(&conv(2, "/p", 90 * 86_400_000, "second")).unwrap();
        s.put(&conv(3, "/q", 90 * 86_400_000, "other")).unwrap();
        let got = s.get("/p", 1).unwrap().unwrap();
        assert_eq!(got, conv(1, "/p", 1_000, "first"));
        assert!(s.get("/q", 1).unwrap().is_none(), "another project's id");
        let b = s.briefs("/p", &[1, 2, 3]).unwrap();
        assert_eq!(b.len(), 2);
        assert_eq!(b[&2].instruction, "second");
        assert!(s.delete("/p", 2).unwrap());
        assert!(!s.delete("/p", 2).unwrap());
        assert_eq!(s.purge(30, 91 * 86_400_000).unwrap(), 1, "request 1 is old");
        assert_eq!(s.count().unwrap(), 1);
        assert_eq!(s.clear("/q").unwrap(), 1);
        s.put(&conv(4, "/p", 5, "x")).unwrap();
        assert_eq!(s.purge(0, 6).unwrap(), 1, "0 keeps nothing");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
    }

    #[test]
    fn a_damaged_file_is_named() {
        let d = tempfile::tempdir().unwrap();
        let path = d.path().join(HISTORY_FILE);
        std::fs::write(&path, "garbage, not sqlite; ".repeat(400)).unwrap();
        let e = Store::open(&path).err().expect("not a database");
        let m = e.explain(&path);
        assert!(m.starts_with("history damaged"), "{m}");
        assert!(m.ends_with(&format!("/{HISTORY_FILE}")), "{m}");
    }
}
