//! What the backend process holds between requests.

use crate::budget::{Clock, Ledger, LedgerError, SystemClock};
use crate::settings::Config;
use crate::openrouter::catalogue::Catalogue;
use crate::openrouter::Client;
use crate::protocol::{Event, Level};
use std::collections::HashMap;
use std::sync::{Arc, Mutex, RwLock};
use tokio::sync::mpsc::UnboundedSender;
use tokio::task::AbortHandle;

pub type KeyInfoCache = HashMap<
    String,
    (
        std::time::Instant,
        Option<crate::openrouter::client::KeyData>,
    ),
>;

pub struct State {
    config: RwLock<Arc<Config>>,
    client: RwLock<Client>,
    /// Edits in flight, by the shim's id, so `cancel` can abort them.
    edits: Mutex<HashMap<u64, (i64, AbortHandle)>>,
    ui: UnboundedSender<Event>,
    /// The ledger of the current `data_dir`, opened on first use. A request in flight keeps
    /// the slot it reserved in, so a `data_dir` change never settles it in another file.
    ledger: RwLock<Arc<LedgerSlot>>,
    catalogue: tokio::sync::Mutex<Option<Arc<Catalogue>>>,
    /// Whether a background catalogue refresh is running.
    refreshing: Arc<std::sync::atomic::AtomicBool>,
    pub clock: Arc<dyn Clock>,
    /// `GET /key` figures by key source (`env:…`/`cmd:…`) and when they were fetched (`None`
    /// inside: unreachable).
    pub key_info: Mutex<KeyInfoCache>,
}

impl State {
    pub fn new(ui: UnboundedSender<Event>) -> Self {
        let config = Config::default();
        let client = Client::new(&config.base_url, &config.referer, config.connect_timeout());
        let ledger = RwLock::new(Arc::new(LedgerSlot::new(config.ledger_path())));
        State {
            config: RwLock::new(Arc::new(config)),
            client: RwLock::new(client),
            edits: Mutex::new(HashMap::new()),
            ui,
            ledger,
            catalogue: tokio::sync::Mutex::new(None),
            refreshing: Arc::new(std::sync::atomic::AtomicBool::new(false)),
            clock: Arc::new(SystemClock),
            key_info: Mutex::new(HashMap::new()),
        }
    }

    pub fn config(&self) -> Arc<Config> {
        self.config.read().map(|c| c.clone()).unwrap_or_default()
    }

    pub fn set_config(&self, config: Config) {
        let client = Client::new(&config.base_url, &config.referer, config.connect_timeout());
        let ledger_path = config.ledger_path();
        if let Ok(mut c) = self.client.write() {
            *c = client;
        }
        if let Ok(mut c) = self.config.write() {
            *c = Arc::new(config);
        }
        // Another data_dir: a new ledger slot (requests in flight keep theirs) and catalogue.
        if self.ledger_slot().path != ledger_path {
            if let Ok(mut l) = self.ledger.write() {
                *l = Arc::new(LedgerSlot::new(ledger_path));
            }
            if let Ok(mut c) = self.catalogue.try_lock() {
                *c = None;
            }
        }
    }

    pub fn client(&self) -> Client {
        self.client
            .read()
            .map(|c| c.clone())
            .unwrap_or_else(|_| Client::new("", "", std::time::Duration::from_secs(30)))
    }

    pub fn send_ui(&self, ev: Event) {
        // Fails only when the channel to Neovim is gone, i.e. we are shutting down.
        let _ = self.ui.send(ev);
    }

    pub fn notify(&self, level: Level, message: String) {
        self.send_ui(Event::Notify { level, message });
    }

    /// The ledger slot of the current `data_dir`.
    pub fn ledger_slot(&self) -> Arc<LedgerSlot> {
        self.ledger
            .read()
            .map(|l| l.clone())
            .unwrap_or_else(|_| Arc::new(LedgerSlot::new(self.config().ledger_path())))
    }

    /// Runs `f` on the current ledger in a blocking thread (SQLite waits on locks and fsyncs).
    pub async fn ledger<T, F>(&self, f: F) -> Result<T, String>
    where
        T: Send + 'static,
        F: FnOnce(&mut Ledger, &dyn Clock) -> Result<T, LedgerError> + Send + 'static,
    {
        self.ledger_slot().run(self.clock.clone(), f).await
    }

    /// The catalogue: from memory, else the disk cache, else fetched now. A stale one is
    /// returned at once while a refresh runs in the background. `None` when none can be had.
    pub async fn catalogue(self: &Arc<Self>) -> Option<Arc<Catalogue>> {
        let mut slot = self.catalogue.lock().await;
        let dir = self.config().data_dir.clone();
        if slot.is_none() {
            *slot = Catalogue::load(&dir).map(Arc::new);
        }
        match slot.as_ref() {
            Some(c) if !c.is_stale() => return Some(c.clone()),
            Some(c) => {
                let stale = c.clone();
                drop(slot);
                self.refresh_catalogue_in_background();
                return Some(stale);
            }
            None => {}
        }
        match self.fetch_catalogue().await {
            Ok(c) => {
                *slot = Some(c.clone());
                Some(c)
            }
            Err(e) => {
                tracing::warn!("model catalogue unavailable: {e}");
                None
            }
        }
    }

    /// The catalogue in memory or on disk, stale or not, without touching the network (a
    /// stale one starts a background refresh).
    pub async fn catalogue_at_hand(self: &Arc<Self>) -> Option<Arc<Catalogue>> {
        let mut slot = self.catalogue.lock().await;
        if slot.is_none() {
            *slot = Catalogue::load(&self.config().data_dir).map(Arc::new);
        }
        let c = slot.clone()?;
        drop(slot);
        if c.is_stale() {
            self.refresh_catalogue_in_background();
        }
        Some(c)
    }

    async fn fetch_catalogue(&self) -> Result<Arc<Catalogue>, String> {
        let body = self.client().models().await.map_err(|e| e.to_string())?;
        let mut c = Catalogue::parse(&body)?;
        c.fetched = Some(std::time::SystemTime::now());
        let dir = self.config().data_dir.clone();
        if let Err(e) = Catalogue::store(&dir, &body) {
            tracing::warn!("cannot cache the catalogue in {}: {e}", dir.display());
        }
        Ok(Arc::new(c))
    }

    fn refresh_catalogue_in_background(self: &Arc<Self>) {
        use std::sync::atomic::Ordering;
        if self.refreshing.swap(true, Ordering::SeqCst) {
            return;
        }
        let state = self.clone();
        tokio::spawn(async move {
            match state.fetch_catalogue().await {
                Ok(c) => *state.catalogue.lock().await = Some(c),
                Err(e) => tracing::warn!("catalogue refresh failed: {e}"),
            }
            state.refreshing.store(false, Ordering::SeqCst);
        });
    }

    /// Is an edit streaming for this buffer?
    pub fn busy(&self, buf: i64) -> bool {
        self.edits
            .lock()
            .map(|m| m.values().any(|(b, _)| *b == buf))
            .unwrap_or(false)
    }

    pub fn start_edit(&self, id: u64, buf: i64, handle: AbortHandle) {
        if let Ok(mut m) = self.edits.lock() {
            m.insert(id, (buf, handle));
        }
    }

    pub fn finish_edit(&self, id: u64) -> Option<i64> {
        self.edits
            .lock()
            .ok()
            .and_then(|mut m| m.remove(&id))
            .map(|(buf, _)| buf)
    }

    /// Aborts the edit; its buffer when it was still running.
    pub fn cancel_edit(&self, id: u64) -> Option<i64> {
        let entry = self.edits.lock().ok().and_then(|mut m| m.remove(&id));
        entry.map(|(buf, h)| {
            h.abort();
            buf
        })
    }
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
    pub async fn run<T, F>(&self, clock: Arc<dyn Clock>, f: F) -> Result<T, String>
    where
        T: Send + 'static,
        F: FnOnce(&mut Ledger, &dyn Clock) -> Result<T, LedgerError> + Send + 'static,
    {
        let conn = self.conn.clone();
        let path = self.path.clone();
        tokio::task::spawn_blocking(move || {
            let mut guard = conn
                .lock()
                .map_err(|_| "the ledger lock is poisoned".to_string())?;
            if guard.is_none() {
                let opened = Ledger::open(&path)
                    .map_err(|e| format!("cannot open the ledger {}: {e}", path.display()))?;
                *guard = Some(opened);
            }
            let Some(l) = guard.as_mut() else {
                return Err("the ledger is not open".to_string());
            };
            f(l, clock.as_ref()).map_err(|e| format!("ledger {}: {e}", path.display()))
        })
        .await
        .map_err(|e| format!("ledger task failed: {e}"))?
    }
}
