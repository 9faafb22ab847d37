//! The model catalogue as a service: the listing in memory, on disk, or fetched (one fetch at
//! a time, its outcome shared), refreshed in the background when stale, warmed up at `hello`;
//! always the listing of the `base_url` in force (one cache file per endpoint; after a switch of
//! `base_url` by an in-process `setup()`, another endpoint's listing is neither used nor kept);
//! and what the session learnt about its prices (a failed fetch, a charge that proved a price
//! wrong) and its leaving models, worded for the user.

use super::settings::Settings;
use super::ui::Ui;
use crate::budget::{Price, Usd};
use crate::openrouter::catalogue::Catalogue as Listing;
use crate::protocol::Level;
use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

pub struct Catalogue {
    settings: Arc<Settings>,
    ui: Arc<Ui>,
    slot: tokio::sync::Mutex<Option<Arc<Listing>>>,
    /// Whether a background refresh is running.
    refreshing: std::sync::atomic::AtomicBool,
    /// Fetches ended so far, failed or not (see [`Catalogue::get`]).
    fetches: std::sync::atomic::AtomicU64,
    /// What the catalogue's prices are worth beyond the catalogue itself.
    prices: Mutex<PriceNotes>,
    /// Models already warned about as leaving the catalogue in this session.
    leaving_warned: Mutex<HashSet<String>>,
}

impl Catalogue {
    pub fn new(settings: Arc<Settings>, ui: Arc<Ui>) -> Self {
        Catalogue {
            settings,
            ui,
            slot: tokio::sync::Mutex::new(None),
            refreshing: std::sync::atomic::AtomicBool::new(false),
            fetches: std::sync::atomic::AtomicU64::new(0),
            prices: Mutex::new(PriceNotes::default()),
            leaving_warned: Mutex::new(HashSet::new()),
        }
    }

    /// Another `data_dir` is in force: the listing in memory is dropped (read again from the
    /// new directory) unless a fetch holds it now.
    pub fn forget(&self) {
        if let Ok(mut c) = self.slot.try_lock() {
            *c = None;
        }
    }

    /// The first request of the session with a model that leaves the catalogue within
    /// [`crate::openrouter::catalogue::LEAVING_WITHIN_DAYS`] days warns, naming the date and
    /// the alternatives.
    pub fn warn_if_leaving(&self, listing: &Listing, model: &str) {
        let today = crate::openrouter::catalogue::utc_date(SystemTime::now());
        if let Some(message) = listing.leaving_notice(model, today) {
            let first = self
                .leaving_warned
                .lock()
                .expect("leaving_warned lock poisoned")
                .insert(model.to_string());
            if first {
                self.ui.notify(Level::Warn, message);
            }
        }
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
    pub async fn get(self: &Arc<Self>) -> Option<Arc<Listing>> {
        use std::sync::atomic::Ordering;
        let fetches = self.fetches.load(Ordering::SeqCst);
        let mut slot = self.slot.lock().await;
        let cfg = self.settings.config();
        let url = cfg.base_url.as_str();
        // Another endpoint's (base_url changed): never priced from it.
        if slot.as_ref().is_none_or(|c| !c.is_for(url)) {
            *slot = Listing::load(&cfg.data_dir, url).map(Arc::new);
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
    pub async fn at_hand(self: &Arc<Self>) -> Option<Arc<Listing>> {
        let mut slot = self.slot.try_lock().ok()?;
        let cfg = self.settings.config();
        if slot.as_ref().is_none_or(|c| !c.is_for(&cfg.base_url)) {
            *slot = Listing::load(&cfg.data_dir, &cfg.base_url).map(Arc::new);
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
    async fn fetch_catalogue(&self) -> Result<Arc<Listing>, String> {
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

    async fn fetch_catalogue_body(&self) -> Result<Arc<Listing>, String> {
        let settings = self.settings.snapshot();
        let body = settings.client.models().await.map_err(|e| e.to_string())?;
        let mut c = Listing::parse(&body)?;
        c.fetched = Some(SystemTime::now());
        let url = &settings.config.base_url;
        c.endpoint = crate::openrouter::catalogue::endpoint_key(url);
        let dir = &settings.config.data_dir;
        if let Err(e) = Listing::store(dir, url, &body) {
            tracing::warn!("cannot cache the catalogue in {}: {e}", dir.display());
        }
        Ok(Arc::new(c))
    }

    /// At `hello`, in the background: the catalogue loaded, and fetched when there is none
    /// or it is too old (refreshed when stale), and a connection to the endpoint opened, so
    /// that the first edit waits for neither the catalogue's download nor the TLS handshake.
    /// An edit that comes meanwhile waits for the same fetch (see [`Catalogue::get`]). Only
    /// the public catalogue is asked for: no key is sent.
    pub fn warm_up(self: &Arc<Self>) {
        use std::sync::atomic::Ordering;
        let me = self.clone();
        tokio::spawn(async move {
            let fetches = me.fetches.load(Ordering::SeqCst);
            me.get().await;
            // A fetch (or a refresh under way) opened the connection already.
            if me.fetches.load(Ordering::SeqCst) == fetches && !me.refreshing.load(Ordering::SeqCst)
            {
                me.settings.client().preconnect().await;
            }
        });
    }

    fn refresh_catalogue_in_background(self: &Arc<Self>) {
        use std::sync::atomic::Ordering;
        if self.refreshing.swap(true, Ordering::SeqCst) {
            return;
        }
        let me = self.clone();
        tokio::spawn(async move {
            match me.fetch_catalogue().await {
                // Kept only while it is still the endpoint's (base_url may have changed).
                Ok(c) if c.is_for(&me.settings.config().base_url) => {
                    *me.slot.lock().await = Some(c)
                }
                Ok(_) => {}
                Err(e) => tracing::warn!("catalogue refresh failed: {e}"),
            }
            me.refreshing.store(false, Ordering::SeqCst);
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
        self.ui.notify(Level::Warn, message);
        let me = self.clone();
        tokio::spawn(async move {
            me.get().await;
        });
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
