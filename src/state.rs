//! What the backend process holds between requests.

use crate::config::Config;
use crate::openrouter::Client;
use crate::ui::UiEvent;
use std::collections::HashMap;
use std::sync::{Arc, Mutex, RwLock};
use tokio::sync::mpsc::UnboundedSender;
use tokio::task::AbortHandle;

pub struct State {
    config: RwLock<Arc<Config>>,
    client: RwLock<Client>,
    /// Edits in flight, by the shim's id, so `cancel` can abort them.
    edits: Mutex<HashMap<u64, (i64, AbortHandle)>>,
    ui: UnboundedSender<UiEvent>,
}

impl State {
    pub fn new(ui: UnboundedSender<UiEvent>) -> Self {
        let config = Config::default();
        let client = Client::new(&config.base_url, &config.referer, config.connect_timeout());
        State {
            config: RwLock::new(Arc::new(config)),
            client: RwLock::new(client),
            edits: Mutex::new(HashMap::new()),
            ui,
        }
    }

    pub fn config(&self) -> Arc<Config> {
        self.config.read().map(|c| c.clone()).unwrap_or_default()
    }

    pub fn set_config(&self, config: Config) {
        let client = Client::new(&config.base_url, &config.referer, config.connect_timeout());
        if let Ok(mut c) = self.client.write() {
            *c = client;
        }
        if let Ok(mut c) = self.config.write() {
            *c = Arc::new(config);
        }
    }

    pub fn client(&self) -> Client {
        self.client
            .read()
            .map(|c| c.clone())
            .unwrap_or_else(|_| Client::new("", "", std::time::Duration::from_secs(30)))
    }

    pub fn send_ui(&self, ev: UiEvent) {
        // Fails only when the channel to Neovim is gone, i.e. we are shutting down.
        let _ = self.ui.send(ev);
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

    /// Aborts the edit; true when it was still running.
    pub fn cancel_edit(&self, id: u64) -> Option<i64> {
        let entry = self.edits.lock().ok().and_then(|mut m| m.remove(&id));
        entry.map(|(buf, h)| {
            h.abort();
            buf
        })
    }
}
