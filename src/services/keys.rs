//! The API keys of this session (a `cmd:` runs once, and again after a 401) and the `GET /key`
//! figures fetched for them. Keys bound by `:LlmKey create` are read from the data directory
//! where a request is made (`settings::bound`).

use crate::openrouter::client::KeyData;
use crate::settings::{ApiKey, KeyCache, KeyError, KeySpec};
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Instant;

/// `GET /key` figures by key source (`env:…`/`cmd:…`) and when they were fetched (`None`
/// inside: unreachable).
pub type KeyInfoCache = HashMap<String, (Instant, Option<KeyData>)>;

#[derive(Default)]
pub struct Keys {
    api: KeyCache,
    info: Mutex<KeyInfoCache>,
}

impl Keys {
    /// The key `spec` names (a `cmd:` is run the first time only).
    pub async fn get(&self, spec: &KeySpec) -> Result<ApiKey, KeyError> {
        self.api.get(spec).await
    }

    /// Forgets `key` as what `spec` gives (a 401): a `cmd:` runs again next time.
    pub async fn forget(&self, spec: &KeySpec, key: &ApiKey) {
        self.api.forget(spec, key).await
    }

    /// The `GET /key` figures cached for a key source, and when they were fetched.
    pub fn info(&self, source: &str) -> Option<(Instant, Option<KeyData>)> {
        self.info
            .lock()
            .expect("key_info lock poisoned")
            .get(source)
            .cloned()
    }

    /// Caches `GET /key` figures for a key source (`None`: unreachable).
    pub fn set_info(&self, source: String, fetched: Instant, data: Option<KeyData>) {
        self.info
            .lock()
            .expect("key_info lock poisoned")
            .insert(source, (fetched, data));
    }
}
