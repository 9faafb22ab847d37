//! The API keys of this session (a `cmd:` runs once, and again after a 401) and the `GET /key`
//! figures fetched for them. Keys bound by `:LlmKey create` are read from the data directory
//! where a request is made (`settings::bound`).

use crate::openrouter::client::KeyData;
use crate::settings::{ApiKey, KeyCache, KeyError, KeySpec};
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Instant;

/// `GET /key` figures by endpoint and key source (`env:…`/`cmd:…`) and when they were fetched
/// (`None` inside: unreachable).
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

    /// The `GET /key` figures cached for a key source at the endpoint `base_url`, and when they
    /// were fetched.
    pub fn info(&self, base_url: &str, source: &str) -> Option<(Instant, Option<KeyData>)> {
        self.info
            .lock()
            .expect("key_info lock poisoned")
            .get(&info_id(base_url, source))
            .cloned()
    }

    /// Caches `GET /key` figures for a key source at `base_url` (`None`: unreachable).
    pub fn set_info(
        &self,
        base_url: &str,
        source: String,
        fetched: Instant,
        data: Option<KeyData>,
    ) {
        self.info
            .lock()
            .expect("key_info lock poisoned")
            .insert(info_id(base_url, &source), (fetched, data));
    }
}

/// What `GET /key` figures are cached under: the key source and the endpoint that answered
/// (after a switch of `base_url`, another endpoint's figures are not this one's).
fn info_id(base_url: &str, source: &str) -> String {
    let endpoint = crate::openrouter::catalogue::endpoint_key(base_url);
    format!("{endpoint}\n{source}")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `GET /key` figures are another endpoint's once `base_url` changes: not shown for it.
    #[test]
    fn key_figures_are_cached_per_endpoint() {
        let keys = Keys::default();
        let at = Instant::now();
        let data = KeyData {
            usage: 4.2,
            ..Default::default()
        };
        let openrouter = crate::settings::Config::default().base_url;
        let other = "http://127.0.0.1:8080/v1";
        keys.set_info(&openrouter, "env:OPENROUTER_API_KEY".into(), at, Some(data));
        assert!(keys.info(&openrouter, "env:OPENROUTER_API_KEY").is_some());
        assert!(keys.info(other, "env:OPENROUTER_API_KEY").is_none());
        keys.set_info(other, "env:OPENROUTER_API_KEY".into(), at, None);
        let (_, back) = keys.info(&openrouter, "env:OPENROUTER_API_KEY").unwrap();
        assert_eq!(back.map(|d| d.usage), Some(4.2));
    }
}
