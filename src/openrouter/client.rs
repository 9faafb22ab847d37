//! HTTP to OpenRouter (or any OpenAI-compatible endpoint): one streamed chat completion.

use super::sse::{self, ChatEvent};
use crate::settings::ApiKey;
use futures::Stream;
use serde::Serialize;
use std::time::Duration;

/// The request body of `POST /chat/completions`.
#[derive(Debug, Clone, Serialize)]
pub struct ChatRequest {
    pub model: String,
    pub messages: Vec<Message>,
    pub stream: bool,
    /// Always sent: it bounds the answer's cost.
    pub max_tokens: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub temperature: Option<f64>,
    /// OpenRouter's routing preferences (`max_price`, `data_collection`, …): only ever set for
    /// an OpenRouter `base_url` (see [`super::Endpoint`]).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub provider: Option<crate::gate::policy::Provider>,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Message {
    pub role: &'static str,
    pub content: String,
}

/// A failure before the stream started: a status with OpenRouter's error body, or no answer.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{}", self.describe())]
pub struct ApiError {
    /// HTTP status; `None` when the endpoint could not be reached.
    pub status: Option<u16>,
    pub code: Option<String>,
    pub message: String,
    /// `metadata.error_type` when OpenRouter gives it.
    pub error_type: Option<String>,
    /// The request may have reached the server without our seeing an answer (a reset or a
    /// timeout after sending): it may be billed, so its reservation must not be released.
    pub maybe_sent: bool,
}

impl ApiError {
    fn describe(&self) -> String {
        let hint = match self.status {
            None => " (is base_url right and the network up?)",
            Some(401) => " (the API key is wrong or disabled)",
            Some(402) => " (out of credits, or the key's own limit)",
            Some(429) => " (rate limited: try again shortly)",
            Some(503) => " (no provider meets the routing requirements)",
            _ => "",
        };
        match self.status {
            Some(s) => format!("OpenRouter answered {s}: {}{hint}", self.message),
            None => format!("OpenRouter unreachable: {}{hint}", self.message),
        }
    }
}

#[derive(Clone)]
pub struct Client {
    http: reqwest::Client,
    base_url: String,
    referer: String,
    /// Attribution headers go to OpenRouter only.
    endpoint: super::Endpoint,
}

impl Client {
    pub fn new(base_url: &str, referer: &str, connect_timeout: Duration) -> Self {
        let http = reqwest::Client::builder()
            .connect_timeout(connect_timeout)
            // Keep-alive comments arrive every few seconds while a provider thinks; a stream
            // silent for this long is dead.
            .read_timeout(Duration::from_secs(120))
            .user_agent(concat!("frugal.nvim/", env!("CARGO_PKG_VERSION")))
            .build()
            .unwrap_or_default();
        Client {
            http,
            base_url: base_url.trim_end_matches('/').to_string(),
            referer: referer.to_string(),
            endpoint: super::Endpoint::of(base_url),
        }
    }

    /// Sends the request and, once the answer's headers arrived with a success status, returns
    /// the generation id header (if any) and the decoded event stream. Dropping the stream closes
    /// the connection, which is how a cancel reaches the server.
    pub async fn stream_chat(
        &self,
        key: &ApiKey,
        body: &ChatRequest,
    ) -> Result<(Option<String>, impl Stream<Item = ChatEvent>), ApiError> {
        let mut req = self
            .http
            .post(format!("{}/chat/completions", self.base_url))
            .bearer_auth(key.expose());
        if self.endpoint.is_openrouter() {
            req = req
                .header("HTTP-Referer", &self.referer)
                .header("X-OpenRouter-Title", "frugal.nvim")
                .header("X-Title", "frugal.nvim");
        }
        let resp = req
            .header("Accept", "text/event-stream")
            .json(body)
            .send()
            .await
            .map_err(|e| transport_error(&e, key))?;
        let status = resp.status();
        if !status.is_success() {
            let text = resp.text().await.unwrap_or_default();
            return Err(error_from_body(status.as_u16(), &text, key));
        }
        let gen_id = resp
            .headers()
            .get("x-generation-id")
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        Ok((gen_id, sse::decode(resp.bytes_stream())))
    }
}

/// `GET /generation?id=` figures (only those frugal records).
#[derive(Debug, Clone, Default, serde::Deserialize)]
pub struct Generation {
    #[serde(default)]
    pub total_cost: Option<f64>,
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
    ) -> Result<Option<(u16, String)>, ApiError> {
        let none = ApiKey::new(String::new());
        let k = key.unwrap_or(&none);
        let mut req = self
            .http
            .get(format!("{}{path}", self.base_url))
            .query(query)
            .timeout(timeout);
        if let Some(key) = key {
            req = req.bearer_auth(key.expose());
        }
        let resp = req.send().await.map_err(|e| transport_error(&e, k))?;
        let status = resp.status().as_u16();
        if status == 404 {
            return Ok(None);
        }
        let text = resp.text().await.map_err(|e| transport_error(&e, k))?;
        if !(200..300).contains(&status) {
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
                error_type: None,
                maybe_sent: false,
            })
    }

    /// Looks a generation up. `Ok(None)` on 404: OpenRouter does not know it yet (or at all).
    pub async fn generation(&self, key: &ApiKey, id: &str) -> Result<Option<Generation>, ApiError> {
        match self
            .get(
                "/generation",
                &[("id", id)],
                Some(key),
                Duration::from_secs(10),
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
        match self.get("/key", &[], Some(key), timeout).await? {
            Some((status, text)) => Self::data(status, &text, "key info"),
            None => Err(error_from_body(404, "", key)),
        }
    }

    /// `GET /models`, the raw body (the caller caches it as is). Public: sent without the key.
    pub async fn models(&self) -> Result<String, ApiError> {
        match self
            .get("/models", &[], None, Duration::from_secs(15))
            .await?
        {
            Some((_, text)) => Ok(text),
            None => Err(error_from_body(404, "", &ApiKey::new(String::new()))),
        }
    }
}

/// `GET /key` figures. `label` is OpenRouter's masked form of the key (`sk-or-v1-au7...890`).
#[derive(Debug, Clone, Default, serde::Deserialize)]
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
    pub usage_monthly: f64,
}

/// Removes the key from any text that came from elsewhere (an echoing proxy, an error chain).
pub fn redact(text: &str, key: &ApiKey) -> String {
    let k = key.expose();
    if k.len() >= 4 && text.contains(k) {
        text.replace(k, "<redacted>")
    } else {
        text.to_string()
    }
}

fn transport_error(e: &reqwest::Error, key: &ApiKey) -> ApiError {
    // `without_url` keeps query strings out; the key is in a header, never in the URL.
    let mut msg = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        msg.push_str(": ");
        msg.push_str(&s.to_string());
        source = s.source();
    }
    ApiError {
        status: None,
        code: None,
        message: redact(&msg, key),
        error_type: None,
        maybe_sent: !e.is_connect() && !e.is_builder(),
    }
}

/// Reads OpenRouter's error body `{"error": {"code", "message", "metadata"}}`; `code` is an
/// integer or a string, so it is read loosely.
pub fn error_from_body(status: u16, body: &str, key: &ApiKey) -> ApiError {
    let v: serde_json::Value = serde_json::from_str(body).unwrap_or(serde_json::Value::Null);
    let err = v.get("error");
    let message = err
        .and_then(|e| e.get("message"))
        .and_then(|m| m.as_str())
        .map(str::to_string)
        .unwrap_or_else(|| {
            let t = body.trim();
            if t.is_empty() {
                "no error message".to_string()
            } else {
                t.chars().take(300).collect()
            }
        });
    let code = err.and_then(|e| e.get("code")).map(|c| match c {
        serde_json::Value::String(s) => s.clone(),
        other => other.to_string(),
    });
    let error_type = err
        .and_then(|e| e.get("metadata"))
        .and_then(|m| m.get("error_type"))
        .and_then(|t| t.as_str())
        .map(str::to_string);
    ApiError {
        status: Some(status),
        code,
        message: redact(&message, key),
        error_type,
        maybe_sent: false,
    }
}
