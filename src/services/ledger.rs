//! The ledger as a service: the slot of one ledger file (opened on first use, run in a blocking
//! thread), the handle a ticket keeps (its slot, the clock, and the background writes the
//! process waits for before it exits).

use crate::budget::{Clock, Ledger, LedgerError};
use std::sync::{Arc, Mutex};

/// What a request in flight needs of the ledger: the slot it reserved in (even if `data_dir`
/// changes meanwhile), the clock, and the count of writes nobody waits for.
#[derive(Clone)]
pub struct LedgerHandle {
    pub slot: Arc<LedgerSlot>,
    pub clock: Arc<dyn Clock>,
    pub background: Arc<Background>,
}

impl LedgerHandle {
    /// Runs `f` on this ledger in a blocking thread (SQLite waits on locks and fsyncs).
    pub async fn run<T, F>(&self, f: F) -> Result<T, LedgerRunError>
    where
        T: Send + 'static,
        F: FnOnce(&mut Ledger, &dyn Clock) -> Result<T, LedgerError> + Send + 'static,
    {
        self.slot.run(self.clock.clone(), f).await
    }
}

/// A count of [`Background::spawn`] tasks under way, and a wake-up when it falls to zero.
#[derive(Default)]
pub struct Background {
    running: std::sync::atomic::AtomicUsize,
    idle: tokio::sync::Notify,
}

impl Background {
    /// Runs `work` in a task of its own that nobody waits for, but that the process lets end
    /// before it exits ([`Background::done`]): a settlement's ledger write.
    pub fn spawn(self: &Arc<Self>, work: impl std::future::Future<Output = ()> + Send + 'static) {
        use std::sync::atomic::Ordering;
        let bg = self.clone();
        bg.running.fetch_add(1, Ordering::SeqCst);
        tokio::spawn(async move {
            work.await;
            if bg.running.fetch_sub(1, Ordering::SeqCst) == 1 {
                bg.idle.notify_waiters();
            }
        });
    }

    /// Waits until no [`Background::spawn`] task is under way.
    pub async fn done(&self) {
        use std::sync::atomic::Ordering;
        loop {
            let idle = self.idle.notified();
            tokio::pin!(idle);
            idle.as_mut().enable();
            if self.running.load(Ordering::SeqCst) == 0 {
                return;
            }
            idle.await;
        }
    }
}

/// Why the ledger could not be used (the messages name the file and say what to do).
#[derive(Debug, thiserror::Error)]
pub enum LedgerRunError {
    #[error("{}", .source.explain(.path))]
    Open {
        path: std::path::PathBuf,
        source: LedgerError,
    },
    #[error("{}", .source.explain(.path))]
    Ledger {
        path: std::path::PathBuf,
        source: LedgerError,
    },
    /// The blocking task panicked (a poisoned ledger lock is one such bug) or was cancelled.
    #[error("ledger task failed: {0}")]
    Task(#[from] tokio::task::JoinError),
}

/// One ledger file and its connection, opened on first use.
pub struct LedgerSlot {
    pub path: std::path::PathBuf,
    conn: Arc<Mutex<Option<Ledger>>>,
}

impl LedgerSlot {
    pub fn new(path: std::path::PathBuf) -> Self {
        LedgerSlot {
            path,
            conn: Arc::new(Mutex::new(None)),
        }
    }

    /// Runs `f` on this ledger in a blocking thread.
    pub async fn run<T, F>(&self, clock: Arc<dyn Clock>, f: F) -> Result<T, LedgerRunError>
    where
        T: Send + 'static,
        F: FnOnce(&mut Ledger, &dyn Clock) -> Result<T, LedgerError> + Send + 'static,
    {
        let conn = self.conn.clone();
        let path = self.path.clone();
        tokio::task::spawn_blocking(move || {
            let mut guard = conn.lock().expect("ledger lock poisoned");
            let ledger = match guard.take() {
                Some(l) => l,
                None => Ledger::open(&path).map_err(|source| LedgerRunError::Open {
                    path: path.clone(),
                    source,
                })?,
            };
            let ledger = guard.insert(ledger);
            // The file still at its path, or nothing is done in a file no one else sees.
            ledger
                .ensure_in_place()
                .and_then(|()| f(ledger, clock.as_ref()))
                .map_err(|source| {
                    // A file in trouble is opened afresh next time (fixed or moved aside).
                    if source.fault().is_some_and(|f| !f.keeps_connection()) {
                        *guard = None;
                    }
                    LedgerRunError::Ledger { path, source }
                })
        })
        .await?
    }
}
