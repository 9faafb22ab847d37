//! The conversation store as a service: the slot of one `history.sqlite3` (opened on first
//! use, run in a blocking thread).

use crate::history::{Store, StoreError};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

/// Why the store could not be used: the message names the file.
#[derive(Debug, thiserror::Error)]
pub enum HistoryError {
    #[error("{0}")]
    Store(String),
    #[error("history task failed: {0}")]
    Task(#[from] tokio::task::JoinError),
}

/// One store file and its connection.
pub struct HistorySlot {
    pub path: PathBuf,
    conn: Arc<Mutex<Option<Store>>>,
}

impl HistorySlot {
    pub fn new(path: PathBuf) -> Self {
        HistorySlot {
            path,
            conn: Arc::default(),
        }
    }

    /// Runs `f` on the store in a blocking thread. A file in trouble is opened afresh next
    /// time (fixed, or moved aside).
    pub async fn run<T, F>(&self, f: F) -> Result<T, HistoryError>
    where
        T: Send + 'static,
        F: FnOnce(&Store) -> Result<T, StoreError> + Send + 'static,
    {
        let conn = self.conn.clone();
        let path = self.path.clone();
        tokio::task::spawn_blocking(move || {
            // A panic under the lock cannot leave a connection half-made: keep going.
            let mut guard = conn.lock().unwrap_or_else(|e| e.into_inner());
            let store = match guard.take() {
                Some(s) => s,
                None => Store::open(&path).map_err(|e| HistoryError::Store(e.explain(&path)))?,
            };
            let out = f(&store);
            if out.is_ok() {
                *guard = Some(store);
            }
            out.map_err(|e| HistoryError::Store(e.explain(&path)))
        })
        .await?
    }
}
