//! OpenRouter's key-management API (`/keys`), called with a management key: create a key
//! for a project, read it, change its limit, disable it. The management key is sent in the
//! `Authorization` header only; every text that comes back is redacted before it reaches a
//! message, and the created key's text leaves this module only as an [`ApiKey`].

use super::client::{
    error_from_body, for_message, transport_error, with_key, ApiError, Client, KeyData,
};
use crate::settings::ApiKey;
use futures::StreamExt;
use serde::Deserialize;
use std::time::Duration;

/// How long a key-management call may take.
const TIMEOUT: Duration = Duration::from_secs(15);
/// The most a key-management answer may be.
const BODY_BYTES: usize = 256 << 10;

/// A key as `/keys` describes it (`data`).
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
pub struct KeyRecord {
    pub hash: String,
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub disabled: bool,
    /// Its label (OpenRouter's masked form of the key, `sk-or-v1-abc...xyz`), limit and usage.
    #[serde(flatten)]
    pub figures: KeyData,
}

/// Why a key-management call is not made: `base_url` is not OpenRouter.
pub const NOT_OPENROUTER: &str =
    "base_url is not OpenRouter: keys are managed on OpenRouter only, nothing was sent";

/// A limit reset period.
pub const RESETS: [&str; 3] = ["daily", "weekly", "monthly"];

/// `POST /keys`'s body.
#[derive(Debug, Clone, serde::Serialize)]
pub struct NewKey<'a> {
    pub name: &'a str,
    pub limit: Option<f64>,
    pub limit_reset: Option<&'a str>,
}

impl Client {
    /// `POST /keys`: a new key; its text comes back once, here.
    pub async fn create_key(
        &self,
        management: &ApiKey,
        new: &NewKey<'_>,
    ) -> Result<(KeyRecord, ApiKey), ApiError> {
        #[derive(Deserialize)]
        struct Created {
            data: KeyRecord,
            key: String,
        }
        let body = serde_json::to_value(new).map_err(|e| local(e.to_string()))?;
        let (status, text) = self
            .manage(reqwest::Method::POST, "/keys", management, Some(body))
            .await?
            .ok_or_else(|| error_from_body(404, "", management))?;
        let created: Created = read(status, &text, "the created key")?;
        if created.key.trim().is_empty() || created.data.hash.is_empty() {
            return Err(unreadable(status, "the created key (no key or hash in it)"));
        }
        Ok((created.data, ApiKey::new(created.key.trim().to_string())))
    }

    /// `GET /keys/{hash}`; `None` when OpenRouter does not know it (deleted).
    pub async fn get_key(
        &self,
        management: &ApiKey,
        hash: &str,
    ) -> Result<Option<KeyRecord>, ApiError> {
        let path = format!("/keys/{}", path_segment(hash));
        match self
            .manage(reqwest::Method::GET, &path, management, None)
            .await?
        {
            Some((status, text)) => data(status, &text, "the key").map(Some),
            None => Ok(None),
        }
    }

    /// `PATCH /keys/{hash}` with `change` (`{"limit": 7}`, `{"disabled": true}`); `None` when
    /// OpenRouter does not know the key.
    pub async fn patch_key(
        &self,
        management: &ApiKey,
        hash: &str,
        change: serde_json::Value,
    ) -> Result<Option<KeyRecord>, ApiError> {
        let path = format!("/keys/{}", path_segment(hash));
        match self
            .manage(reqwest::Method::PATCH, &path, management, Some(change))
            .await?
        {
            Some((status, text)) => data(status, &text, "the key").map(Some),
            None => Ok(None),
        }
    }

    /// One key-management call: `Ok(None)` on 404; a success body as text, read within a
    /// bound; an error status as [`ApiError`] (redacted).
    async fn manage(
        &self,
        method: reqwest::Method,
        path: &str,
        key: &ApiKey,
        body: Option<serde_json::Value>,
    ) -> Result<Option<(u16, String)>, ApiError> {
        // The management key goes to OpenRouter only (SPEC, *Security*): `:LlmKey` refuses
        // another base_url before it gets here, and this holds whoever calls.
        if !self.endpoint.is_openrouter() {
            return Err(local(NOT_OPENROUTER.into()));
        }
        let mut req = with_key(
            self.http
                .request(method, format!("{}{path}", self.base_url)),
            key,
        )
        .timeout(TIMEOUT);
        if let Some(b) = body {
            req = req.json(&b);
        }
        let resp = req.send().await.map_err(|e| transport_error(&e, key))?;
        let status = resp.status().as_u16();
        if status == 404 {
            return Ok(None);
        }
        let html = resp
            .headers()
            .get(reqwest::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.contains("text/html"));
        let mut text = Vec::new();
        let mut chunks = resp.bytes_stream();
        while let Some(b) = chunks.next().await {
            let b = b.map_err(|e| transport_error(&e, key))?;
            text.extend_from_slice(&b);
            if text.len() > BODY_BYTES {
                text.truncate(BODY_BYTES);
                break;
            }
        }
        let text = String::from_utf8_lossy(&text).into_owned();
        if html || text.trim_start().starts_with('<') {
            return Err(ApiError {
                not_an_answer: true,
                ..unreadable(
                    status,
                    &format!(
                        "an HTML page (status {status}) instead of JSON from {path}: is base_url an OpenRouter API URL (https://openrouter.ai/api/v1)?"
                    ),
                )
            });
        }
        if !(200..300).contains(&status) {
            return Err(error_from_body(status, &text, key));
        }
        Ok(Some((status, text)))
    }
}

/// A hash as one path segment: OpenRouter's hashes are hex; anything else is dropped rather
/// than sent as a path.
fn path_segment(hash: &str) -> String {
    hash.chars()
        .filter(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '_')
        .collect()
}

fn local(message: String) -> ApiError {
    ApiError {
        status: None,
        code: None,
        message,
        upstream: None,
        maybe_sent: false,
        retry_after: None,
        not_an_answer: false,
    }
}

fn unreadable(status: u16, what: &str) -> ApiError {
    ApiError {
        status: Some(status),
        message: format!("OpenRouter answered with {what}"),
        not_an_answer: true,
        ..local(String::new())
    }
}

fn read<T: serde::de::DeserializeOwned>(
    status: u16,
    text: &str,
    what: &str,
) -> Result<T, ApiError> {
    // serde's messages say where, not what: no key text can leak through them; redacted anyway.
    serde_json::from_str(text).map_err(|e| {
        unreadable(
            status,
            &format!(
                "an unreadable answer for {what}: {}",
                for_message(&e.to_string(), &ApiKey::new(String::new()))
            ),
        )
    })
}

fn data(status: u16, text: &str, what: &str) -> Result<KeyRecord, ApiError> {
    #[derive(Deserialize)]
    struct Body {
        data: KeyRecord,
    }
    read::<Body>(status, text, what).map(|b| b.data)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashes_become_one_path_segment() {
        assert_eq!(path_segment("abc123"), "abc123");
        assert_eq!(path_segment("../x?y"), "xy");
    }

    #[test]
    fn created_keys_read_with_their_record() {
        let r: KeyRecord = serde_json::from_str(
            r#"{"hash":"h1","name":"frugal: p","label":"sk-or-v1-a...b","disabled":false,"limit":5,"limit_remaining":5,"limit_reset":"monthly","usage":0,"usage_daily":0,"usage_weekly":0,"usage_monthly":0,"created_at":"x"}"#,
        )
        .unwrap();
        assert_eq!(r.hash, "h1");
        assert_eq!(r.figures.limit, Some(5.0));
        assert_eq!(r.figures.limit_reset.as_deref(), Some("monthly"));
    }
}
