//! What the backend process holds between requests.

use crate::budget::{Clock, Ledger, LedgerError, Price, SystemClock, Usd};
use crate::openrouter::catalogue::Catalogue;
use crate::openrouter::Client;
use crate::protocol::{Event, Level};
use crate::settings::{Config, KeyCache};
use std::collections::HashMap;
use std::sync::{Arc, Mutex, RwLock};
use std::time::SystemTime;
use tokio::sync::mpsc::UnboundedSender;
use tokio::task::AbortHandle;

/// `GET /key` figures by key source (`env:…`/`cmd:…`) and when they were fetched (`None`
/// inside: unreachable).
pub type KeyInfoCache = HashMap<
    String,
    (
        std::time::Instant,
        Option<crate::openrouter::client::KeyData>,
    ),
>;

/// The settings in force and what is built from them. `hello` replaces the whole snapshot in
/// one assignment, so nobody sees the config of one `hello` with the client or the ledger of
/// another.
pub struct Snapshot {
    pub config: Arc<Config>,
    pub client: Client,
    /// The ledger of the config's `data_dir`, opened on first use. A request in flight keeps
    /// the slot it reserved in, so a `data_dir` change never settles it in another file.
    pub ledger: Arc<LedgerSlot>,
}

impl Snapshot {
    /// The snapshot of `config`, keeping `ledger` when it is the slot of the same file.
    fn new(config: Config, ledger: Option<&Arc<LedgerSlot>>) -> Self {
        let client = Client::new(&config.base_url, &config.referer, config.connect_timeout());
        let path = config.ledger_path();
        let ledger = match ledger {
            Some(l) if l.path == path => l.clone(),
            _ => Arc::new(LedgerSlot::new(path)),
        };
        Snapshot {
            config: Arc::new(config),
            client,
            ledger,
        }
    }
}

/// A poisoned lock means a thread panicked while holding it: a bug, not a state to run on.
/// Every lock here is taken with `.expect(…)`, never with a silent fallback (an empty config
/// or a fresh ledger slot would quietly lift caps or lose reservations).
pub struct State {
    settings: RwLock<Arc<Snapshot>>,
    /// Edits in flight, by the shim's id, so `cancel` can abort them.
    edits: Mutex<HashMap<u64, (i64, AbortHandle)>>,
    ui: UnboundedSender<Event>,
    catalogue: tokio::sync::Mutex<Option<Arc<Catalogue>>>,
    /// Whether a background catalogue refresh is running.
    refreshing: Arc<std::sync::atomic::AtomicBool>,
    /// Catalogue fetches ended so far, failed or not (see [`State::catalogue`]).
    fetches: std::sync::atomic::AtomicU64,
    /// What the catalogue's prices are worth beyond the catalogue itself.
    prices: Mutex<PriceNotes>,
    pub clock: Arc<dyn Clock>,
    key_info: Mutex<KeyInfoCache>,
    /// The API keys of this session (a `cmd:` runs once, and again after a 401).
    pub keys: KeyCache,
    /// Questions waiting on the user (`question` events).
    pub questions: crate::rpc::Questions,
    /// Models already warned about as leaving the catalogue in this session.
    leaving_warned: Mutex<std::collections::HashSet<String>>,
    /// Work nobody waits for that must still end before the process does.
    background: Arc<Background>,
}

/// A count of [`State::background`] tasks under way, and a wake-up when it falls to zero.
#[derive(Default)]
struct Background {
    running: std::sync::atomic::AtomicUsize,
    idle: tokio::sync::Notify,
}

impl State {
    pub fn new(ui: UnboundedSender<Event>) -> Self {
        State {
            settings: RwLock::new(Arc::new(Snapshot::new(Config::default(), None))),
            edits: Mutex::new(HashMap::new()),
            ui,
            catalogue: tokio::sync::Mutex::new(None),
            refreshing: Arc::new(std::sync::atomic::AtomicBool::new(false)),
            fetches: std::sync::atomic::AtomicU64::new(0),
            prices: Mutex::new(PriceNotes::default()),
            clock: Arc::new(SystemClock),
            key_info: Mutex::new(HashMap::new()),
            keys: KeyCache::default(),
            questions: crate::rpc::Questions::default(),
            leaving_warned: Mutex::new(std::collections::HashSet::new()),
            background: Arc::default(),
        }
    }

    /// Runs `work` in a task of its own that nobody waits for, but that the process lets end
    /// before it exits ([`State::background_done`]): a settlement's ledger write.
    pub fn background(&self, work: impl std::future::Future<Output = ()> + Send + 'static) {
        use std::sync::atomic::Ordering;
        let bg = self.background.clone();
        bg.running.fetch_add(1, Ordering::SeqCst);
        tokio::spawn(async move {
            work.await;
            if bg.running.fetch_sub(1, Ordering::SeqCst) == 1 {
                bg.idle.notify_waiters();
            }
        });
    }

    /// Waits until no [`State::background`] task is under way.
    pub async fn background_done(&self) {
        use std::sync::atomic::Ordering;
        loop {
            let idle = self.background.idle.notified();
            tokio::pin!(idle);
            idle.as_mut().enable();
            if self.background.running.load(Ordering::SeqCst) == 0 {
                return;
            }
            idle.await;
        }
    }

    /// Whether `model` is warned about as leaving for the first time in this session (and
    /// marks it so).
    pub fn first_leaving_warning(&self, model: &str) -> bool {
        self.leaving_warned
            .lock()
            .expect("leaving_warned lock poisoned")
            .insert(model.to_string())
    }

    /// The settings in force now (a caller keeps them for the whole of what it does).
    pub fn snapshot(&self) -> Arc<Snapshot> {
        self.settings
            .read()
            .expect("settings lock poisoned")
            .clone()
    }

    pub fn config(&self) -> Arc<Config> {
        self.snapshot().config.clone()
    }

    pub fn set_config(&self, config: Config) {
        let new_dir = {
            let mut settings = self.settings.write().expect("settings lock poisoned");
            let next = Snapshot::new(config, Some(&settings.ledger));
            let new_dir = !Arc::ptr_eq(&next.ledger, &settings.ledger);
            *settings = Arc::new(next);
            new_dir
        };
        // Another data_dir: a new ledger slot (requests in flight keep theirs) and catalogue.
        if new_dir {
            if let Ok(mut c) = self.catalogue.try_lock() {
                *c = None;
            }
        }
    }

    pub fn client(&self) -> Client {
        self.snapshot().client.clone()
    }

    /// The channel to Neovim, for who sends on it without the rest of the state.
    pub fn ui_sender(&self) -> UnboundedSender<Event> {
        self.ui.clone()
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
        self.snapshot().ledger.clone()
    }

    /// Runs `f` on the current ledger in a blocking thread (SQLite waits on locks and fsyncs).
    pub async fn ledger<T, F>(&self, f: F) -> Result<T, LedgerRunError>
    where
        T: Send + 'static,
        F: FnOnce(&mut Ledger, &dyn Clock) -> Result<T, LedgerError> + Send + 'static,
    {
        self.ledger_slot().run(self.clock.clone(), f).await
    }

    /// The `GET /key` figures cached for a key source, and when they were fetched.
    pub fn key_info(
        &self,
        source: &str,
    ) -> Option<(
        std::time::Instant,
        Option<crate::openrouter::client::KeyData>,
    )> {
        self.key_info
            .lock()
            .expect("key_info lock poisoned")
            .get(&self.key_info_id(source))
            .cloned()
    }

    /// What `GET /key` figures are cached under: the key source and the endpoint that answered
    /// (after a switch of `base_url`, another endpoint's figures are not this one's).
    fn key_info_id(&self, source: &str) -> String {
        let endpoint = crate::openrouter::catalogue::endpoint_key(&self.config().base_url);
        format!("{endpoint}\n{source}")
    }

    /// Caches `GET /key` figures for a key source (`None`: unreachable).
    pub fn set_key_info(
        &self,
        source: String,
        fetched: std::time::Instant,
        data: Option<crate::openrouter::client::KeyData>,
    ) {
        self.key_info
            .lock()
            .expect("key_info lock poisoned")
            .insert(self.key_info_id(&source), (fetched, data));
    }

    /// The catalogue: from memory, else the disk cache, else fetched now. A stale one is
    /// returned at once while a refresh runs in the background; one past
    /// [`MAX_AGE`](crate::openrouter::catalogue::MAX_AGE), or one a charge proved wrong, is
    /// fetched again first (and returned as it is when that fails: the gate decides what it is
    /// still good for). `None` when none can be had.
    ///
    /// One fetch at a time, and its outcome is shared: a caller that waited for the slot while
    /// a fetch ran (the start-up warm-up's, another edit's) takes what that fetch left, even a
    /// failure, rather than send a second request at once.
    pub async fn catalogue(self: &Arc<Self>) -> Option<Arc<Catalogue>> {
        use std::sync::atomic::Ordering;
        let fetches = self.fetches.load(Ordering::SeqCst);
        let mut slot = self.catalogue.lock().await;
        let cfg = self.config();
        let url = cfg.base_url.as_str();
        // Another endpoint's (base_url changed): never priced from it.
        if slot.as_ref().is_none_or(|c| !c.is_for(url)) {
            *slot = Catalogue::load(&cfg.data_dir, url).map(Arc::new);
        }
        let refetch = self.notes().refetch;
        match slot.as_ref() {
            Some(c) if refetch || c.is_too_old(SystemTime::now()) => {}
            Some(c) if !c.is_stale() => return Some(c.clone()),
            Some(c) => {
                let stale = c.clone();
                drop(slot);
                self.refresh_catalogue_in_background();
                return Some(stale);
            }
            None => {}
        }
        if self.fetches.load(Ordering::SeqCst) != fetches {
            return slot.clone().filter(|c| c.is_for(url));
        }
        match self.fetch_catalogue().await {
            Ok(c) if c.is_for(url) => {
                *slot = Some(c.clone());
                Some(c)
            }
            Ok(_) => None,
            Err(e) => {
                tracing::warn!("model catalogue unavailable: {e}");
                slot.clone()
            }
        }
    }

    /// The catalogue in memory or on disk, stale or not, without touching the network (a
    /// stale one starts a background refresh). Without waiting either: while a fetch holds
    /// the slot (the start-up warm-up's), there is none at hand.
    pub async fn catalogue_at_hand(self: &Arc<Self>) -> Option<Arc<Catalogue>> {
        let mut slot = self.catalogue.try_lock().ok()?;
        let cfg = self.config();
        if slot.as_ref().is_none_or(|c| !c.is_for(&cfg.base_url)) {
            *slot = Catalogue::load(&cfg.data_dir, &cfg.base_url).map(Arc::new);
        }
        let c = slot.clone()?;
        drop(slot);
        if c.is_stale() {
            self.refresh_catalogue_in_background();
        }
        Some(c)
    }

    /// Fetches and caches the catalogue; the outcome is noted for the gate (a failure's
    /// message names why prices are unknown; a success clears a pending refetch).
    async fn fetch_catalogue(&self) -> Result<Arc<Catalogue>, String> {
        let fetched = self.fetch_catalogue_body().await;
        self.fetches
            .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let mut notes = self.notes();
        match &fetched {
            Ok(_) => {
                notes.fetch_error = None;
                notes.refetch = false;
            }
            Err(e) => notes.fetch_error = Some(e.clone()),
        }
        fetched
    }

    async fn fetch_catalogue_body(&self) -> Result<Arc<Catalogue>, String> {
        let settings = self.snapshot();
        let body = settings.client.models().await.map_err(|e| e.to_string())?;
        let mut c = Catalogue::parse(&body)?;
        c.fetched = Some(SystemTime::now());
        let url = &settings.config.base_url;
        c.endpoint = crate::openrouter::catalogue::endpoint_key(url);
        let dir = &settings.config.data_dir;
        if let Err(e) = Catalogue::store(dir, url, &body) {
            tracing::warn!("cannot cache the catalogue in {}: {e}", dir.display());
        }
        Ok(Arc::new(c))
    }

    /// At `hello`, in the background: the catalogue loaded, and fetched when there is none
    /// or it is too old (refreshed when stale), and a connection to the endpoint opened, so
    /// that the first edit waits for neither the catalogue's download nor the TLS handshake.
    /// An edit that comes meanwhile waits for the same fetch (see [`State::catalogue`]). Only
    /// the public catalogue is asked for: no key is sent.
    pub fn warm_up(self: &Arc<Self>) {
        use std::sync::atomic::Ordering;
        let state = self.clone();
        tokio::spawn(async move {
            let fetches = state.fetches.load(Ordering::SeqCst);
            state.catalogue().await;
            // A fetch (or a refresh under way) opened the connection already.
            if state.fetches.load(Ordering::SeqCst) == fetches
                && !state.refreshing.load(Ordering::SeqCst)
            {
                state.client().preconnect().await;
            }
        });
    }

    fn refresh_catalogue_in_background(self: &Arc<Self>) {
        use std::sync::atomic::Ordering;
        if self.refreshing.swap(true, Ordering::SeqCst) {
            return;
        }
        let state = self.clone();
        tokio::spawn(async move {
            match state.fetch_catalogue().await {
                // Kept only while it is still the endpoint's (base_url may have changed).
                Ok(c) if c.is_for(&state.config().base_url) => {
                    *state.catalogue.lock().await = Some(c)
                }
                Ok(_) => {}
                Err(e) => tracing::warn!("catalogue refresh failed: {e}"),
            }
            state.refreshing.store(false, Ordering::SeqCst);
        });
    }

    fn notes(&self) -> std::sync::MutexGuard<'_, PriceNotes> {
        self.prices.lock().expect("price notes lock poisoned")
    }

    /// Why the last fetch of the catalogue failed (cleared by the next success), and the
    /// models listed free that were charged in this session.
    pub fn price_notes(&self) -> (Option<String>, Vec<(String, Usd)>) {
        let n = self.notes();
        let charged = n.charged_while_free.iter().map(|(m, c)| (m.clone(), *c));
        (n.fetch_error.clone(), charged.collect())
    }

    /// A request was charged more than the worst case reserved for it at `believed`, the
    /// catalogue's price: that price is wrong. The charge is in the ledger already (it counts
    /// against every cap); here the catalogue is fetched again at once (the next request waits
    /// for it), the user is told, and a model listed free stays refused under a cap for this
    /// session while the catalogue still lists it free (its only bound, `max_price` 0, did not
    /// hold).
    pub fn charged_above_reserved(
        self: &Arc<Self>,
        model: &str,
        believed: Price,
        charged: Usd,
        reserved: Usd,
    ) {
        tracing::warn!(%model, %charged, %reserved, "charged more than the worst case reserved");
        let message = {
            let mut notes = self.notes();
            notes.refetch = true;
            if believed.is_free() {
                let max = notes
                    .charged_while_free
                    .entry(model.to_string())
                    .or_default();
                *max = (*max).max(charged);
                format!("{model} is listed as free in the model catalogue, yet this request was charged {charged}. The charge counts against your caps; the catalogue is being fetched again, and under a cap {model} is refused while it is still listed free")
            } else {
                format!("{model} was charged {charged}, more than the worst case of {reserved} reserved at its catalogue price. The charge counts against your caps; the catalogue is being fetched again")
            }
        };
        self.notify(Level::Warn, message);
        let state = self.clone();
        tokio::spawn(async move {
            state.catalogue().await;
        });
    }

    fn edits(&self) -> std::sync::MutexGuard<'_, HashMap<u64, (i64, AbortHandle)>> {
        self.edits.lock().expect("edits lock poisoned")
    }

    pub fn start_edit(&self, id: u64, buf: i64, handle: AbortHandle) {
        self.edits().insert(id, (buf, handle));
    }

    pub fn finish_edit(&self, id: u64) -> Option<i64> {
        self.edits().remove(&id).map(|(buf, _)| buf)
    }

    /// Aborts the edit; its buffer when it was still running.
    pub fn cancel_edit(&self, id: u64) -> Option<i64> {
        let entry = self.edits().remove(&id);
        entry.map(|(buf, h)| {
            h.abort();
            buf
        })
    }
}

/// What is known about the catalogue's prices besides the catalogue.
#[derive(Debug, Default)]
struct PriceNotes {
    /// Why the last fetch failed (`None` after a success).
    fetch_error: Option<String>,
    /// A charge proved a price wrong: fetch the catalogue again before it is used.
    refetch: bool,
    /// Models listed free that were charged in this session, with the largest charge.
    charged_while_free: HashMap<String, Usd>,
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

#[cfg(test)]
mod tests {
    use super::*;

    /// `GET /key` figures are another endpoint's once `base_url` changes: not shown for it.
    #[test]
    fn key_figures_are_cached_per_endpoint() {
        let (tx, _rx) = tokio::sync::mpsc::unbounded_channel();
        let state = State::new(tx);
        let at = std::time::Instant::now();
        let data = crate::openrouter::client::KeyData {
            usage: 4.2,
            ..Default::default()
        };
        state.set_key_info("env:OPENROUTER_API_KEY".into(), at, Some(data));
        assert!(state.key_info("env:OPENROUTER_API_KEY").is_some());
        state.set_config(Config {
            base_url: "http://127.0.0.1:8080/v1".into(),
            ..Config::default()
        });
        assert!(state.key_info("env:OPENROUTER_API_KEY").is_none());
        state.set_key_info("env:OPENROUTER_API_KEY".into(), at, None);
        state.set_config(Config::default());
        let (_, back) = state.key_info("env:OPENROUTER_API_KEY").unwrap();
        assert_eq!(back.map(|d| d.usage), Some(4.2));
    }
}
