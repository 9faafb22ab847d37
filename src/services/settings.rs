//! The settings in force (the last `hello`'s config) and what is built from them: the client
//! and the ledger slot of its `data_dir`.

use super::history::HistorySlot;
use super::ledger::{Background, LedgerHandle, LedgerRunError, LedgerSlot};
use crate::budget::{Clock, Ledger, LedgerError, SystemClock};
use crate::openrouter::Client;
use crate::settings::Config;
use std::sync::{Arc, RwLock};

/// The settings in force and what is built from them. `hello` replaces the whole snapshot in
/// one assignment, so nobody sees the config of one `hello` with the client or the ledger of
/// another.
pub struct Snapshot {
    pub config: Arc<Config>,
    pub client: Client,
    /// The ledger of the config's `data_dir`, opened on first use. A request in flight keeps
    /// the slot it reserved in, so a `data_dir` change never settles it in another file.
    pub ledger: Arc<LedgerSlot>,
    /// The conversation store beside the ledger (`:LlmHistory`), opened on first use.
    pub history: Arc<HistorySlot>,
}

impl Snapshot {
    /// The snapshot of `config`, keeping `ledger` when it is the slot of the same file.
    fn new(
        config: Config,
        ledger: Option<&Arc<LedgerSlot>>,
        history: Option<&Arc<HistorySlot>>,
    ) -> Self {
        let client = Client::new(&config.base_url, &config.referer, config.connect_timeout());
        let path = config.ledger_path();
        let ledger = match ledger {
            Some(l) if l.path == path => l.clone(),
            _ => Arc::new(LedgerSlot::new(path)),
        };
        let path = config.data_dir.join(crate::history::HISTORY_FILE);
        let history = match history {
            Some(h) if h.path == path => h.clone(),
            _ => Arc::new(HistorySlot::new(path)),
        };
        Snapshot {
            config: Arc::new(config),
            client,
            ledger,
            history,
        }
    }
}

/// The settings service. A poisoned lock means a thread panicked while holding it: a bug, not
/// a state to run on; it is taken with `.expect(…)`, never with a silent fallback (an empty
/// config or a fresh ledger slot would quietly lift caps or lose reservations).
pub struct Settings {
    snapshot: RwLock<Arc<Snapshot>>,
    clock: Arc<dyn Clock>,
    /// Work nobody waits for that must still end before the process does.
    background: Arc<Background>,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            snapshot: RwLock::new(Arc::new(Snapshot::new(Config::default(), None, None))),
            clock: Arc::new(SystemClock),
            background: Arc::default(),
        }
    }
}

impl Settings {
    /// The settings in force now (a caller keeps them for the whole of what it does).
    pub fn snapshot(&self) -> Arc<Snapshot> {
        self.snapshot
            .read()
            .expect("settings lock poisoned")
            .clone()
    }

    pub fn config(&self) -> Arc<Config> {
        self.snapshot().config.clone()
    }

    pub fn client(&self) -> Client {
        self.snapshot().client.clone()
    }

    pub fn clock(&self) -> Arc<dyn Clock> {
        self.clock.clone()
    }

    /// Puts `config` in force; `true` when its `data_dir` is another (a new ledger slot:
    /// requests in flight keep theirs; what was cached of the old directory is stale).
    pub fn set_config(&self, config: Config) -> bool {
        let mut settings = self.snapshot.write().expect("settings lock poisoned");
        let next = Snapshot::new(config, Some(&settings.ledger), Some(&settings.history));
        let new_dir = !Arc::ptr_eq(&next.ledger, &settings.ledger);
        *settings = Arc::new(next);
        new_dir
    }

    /// The handle of the current `data_dir`'s ledger.
    pub fn ledger(&self) -> LedgerHandle {
        LedgerHandle {
            slot: self.snapshot().ledger.clone(),
            clock: self.clock.clone(),
            background: self.background.clone(),
        }
    }

    /// Runs `f` on the current ledger in a blocking thread (SQLite waits on locks and fsyncs).
    pub async fn with_ledger<T, F>(&self, f: F) -> Result<T, LedgerRunError>
    where
        T: Send + 'static,
        F: FnOnce(&mut Ledger, &dyn Clock) -> Result<T, LedgerError> + Send + 'static,
    {
        self.ledger().run(f).await
    }

    /// Waits until no background ledger write is under way (before the process exits).
    pub async fn background_done(&self) {
        self.background.done().await
    }
}
