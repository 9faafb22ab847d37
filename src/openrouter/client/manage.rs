//! The calls beside the chat: `/generation`, `/key`, `/models`, and warming the connection.

#[allow(unused_imports)]
use super::*;
use crate::settings::ApiKey;
use std::time::Duration;

/// `GET /generation?id=` figures (only those frugal records).
#[derive(Debug, Clone, Default, serde::Deserialize)]
pub struct Generation {
    /// Read as the decimal written, never through `f64`.
    #[serde(default, deserialize_with = "crate::budget::wire_usd")]
    pub total_cost: Option<crate::budget::Usd>,
    #[serde(default)]
    pub tokens_prompt: Option<u64>,
    #[serde(default)]
    pub tokens_completion: Option<u64>,
    #[serde(default)]
    pub native_tokens_reasoning: Option<u64>,
    #[serde(default)]
    pub native_tokens_cached: Option<u64>,
}

impl Client {
    /// `GET {path}` with the key (none for public endpoints), within `timeout`. `Ok(None)` on
    /// 404; a success body is returned as text.
    async fn get(
        &self,
        path: &str,
        query: &[(&str, &str)],
        key: Option<&ApiKey>,
        timeout: Duration,
        max_bytes: usize,
    ) -> Result<Option<(u16, String)>, ApiError> {
        let none = ApiKey::new(String::new());
        let k = key.unwrap_or(&none);
        let mut req = self
            .http
            .get(format!("{}{path}", self.base_url))
            .query(query)
            .timeout(timeout);
        if let Some(key) = key {
            req = with_key(req, key);
        }
        let resp = req.send().await.map_err(|e| transport_error(&e, k))?;
        let status = resp.status().as_u16();
        if status == 404 {
            return Ok(None);
        }
        let ok = (200..300).contains(&status);
        let max = if ok { max_bytes } else { ERROR_BODY_BYTES };
        // Read within a bound: an endless answer must not grow the memory until the timeout.
        let mut body = Vec::new();
        let mut chunks = resp.bytes_stream();
        while let Some(b) = chunks.next().await {
            let b = b.map_err(|e| transport_error(&e, k))?;
            body.extend_from_slice(&b);
            if body.len() > max {
                if !ok {
                    body.truncate(max);
                    break;
                }
                return Err(ApiError {
                    status: Some(status),
                    code: None,
                    message: format!(
                        "the answer of {path} passed {}; not read",
                        sse::mib(max as u64)
                    ),
                    upstream: None,
                    maybe_sent: false,
                    retry_after: None,
                    not_an_answer: false,
                });
            }
        }
        let text = String::from_utf8_lossy(&body).into_owned();
        if !ok {
            return Err(error_from_body(status, &text, k));
        }
        Ok(Some((status, text)))
    }

    /// Reads `{"data": …}`, naming `what` when it cannot.
    fn data<T: serde::de::DeserializeOwned>(
        status: u16,
        text: &str,
        what: &str,
    ) -> Result<T, ApiError> {
        #[derive(serde::Deserialize)]
        struct Body<T> {
            data: T,
        }
        serde_json::from_str::<Body<T>>(text)
            .map(|b| b.data)
            .map_err(|e| ApiError {
                status: Some(status),
                code: None,
                message: format!("unreadable {what}: {e}"),
                upstream: None,
                maybe_sent: false,
                retry_after: None,
                not_an_answer: false,
            })
    }

    /// Looks a generation up. `Ok(None)` on 404: OpenRouter does not know it yet (or at all).
    pub async fn generation(&self, key: &ApiKey, id: &str) -> Result<Option<Generation>, ApiError> {
        self.openrouter_only("/generation")?;
        match self
            .get(
                "/generation",
                &[("id", id)],
                Some(key),
                Duration::from_secs(10),
                SMALL_BODY_BYTES,
            )
            .await?
        {
            Some((status, text)) => Self::data(status, &text, "generation stats").map(Some),
            None => Ok(None),
        }
    }

    /// `GET /key`: the key's own usage and limit. Short timeout: it decorates `:LlmUsage`,
    /// which must never wait on it.
    pub async fn key_info(&self, key: &ApiKey, timeout: Duration) -> Result<KeyData, ApiError> {
        self.openrouter_only("/key")?;
        match self
            .get("/key", &[], Some(key), timeout, SMALL_BODY_BYTES)
            .await?
        {
            Some((status, text)) => Self::data(status, &text, "key info"),
            None => Err(error_from_body(404, "", key)),
        }
    }

    /// `path` is OpenRouter's own (`/key`, `/generation`): asked of OpenRouter only, so that no
    /// key goes to another host for it. An error, never sent, otherwise.
    fn openrouter_only(&self, path: &str) -> Result<(), ApiError> {
        if self.endpoint.is_openrouter() {
            return Ok(());
        }
        Err(ApiError {
            status: None,
            code: None,
            message: format!("{path} is OpenRouter's and base_url is not OpenRouter: not asked"),
            upstream: None,
            maybe_sent: false,
            retry_after: None,
            not_an_answer: true,
        })
    }

    /// Opens a connection to the endpoint ahead of the first request, left in the pool for
    /// it: the TLS handshake is then paid while the user types. HTTPS only (over plain HTTP,
    /// a local server, there is nothing worth warming). A `HEAD` of the public `/models`: no
    /// key, no body; whatever it answers is of no interest.
    pub async fn preconnect(&self) {
        if !self.base_url.starts_with("https://") {
            return;
        }
        let url = format!("{}/models", self.base_url);
        if let Err(e) = self
            .http
            .head(&url)
            .timeout(Duration::from_secs(15))
            .send()
            .await
        {
            tracing::info!(
                "could not open a connection ahead of time: {}",
                error_chain(&e)
            );
        }
    }

    /// `GET /models`, the raw body (the caller caches it as is). Public: sent without the key.
    pub async fn models(&self) -> Result<String, ApiError> {
        match self
            .get(
                "/models",
                &[],
                None,
                Duration::from_secs(15),
                CATALOGUE_BYTES,
            )
            .await?
        {
            Some((_, text)) => Ok(text),
            None => Err(error_from_body(404, "", &ApiKey::new(String::new()))),
        }
    }
}

/// A key's label, limit and usage: `GET /key`'s answer for the key itself, and the figures in
/// every `/keys` record ([`crate::openrouter::keys::KeyRecord`]). `label` is OpenRouter's
/// masked form of the key (`sk-or-v1-au7...890`).
#[derive(Debug, Clone, Default, PartialEq, serde::Deserialize)]
pub struct KeyData {
    #[serde(default)]
    pub label: String,
    #[serde(default)]
    pub limit: Option<f64>,
    #[serde(default)]
    pub limit_remaining: Option<f64>,
    #[serde(default)]
    pub limit_reset: Option<String>,
    #[serde(default)]
    pub usage: f64,
    #[serde(default)]
    pub usage_daily: f64,
    #[serde(default)]
    pub usage_weekly: f64,
    #[serde(default)]
    pub usage_monthly: f64,
}

/// `req` with `key` as its bearer token; none for the empty key of `api_key = false` (a server
/// that takes no key).
pub(in crate::openrouter) fn with_key(
    req: reqwest::RequestBuilder,
    key: &ApiKey,
) -> reqwest::RequestBuilder {
    if key.expose().is_empty() {
        req
    } else {
        req.bearer_auth(key.expose())
    }
}
