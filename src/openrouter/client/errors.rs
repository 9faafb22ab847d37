//! What went wrong, for a message: [`ApiError`] and the reading of an error body (OpenRouter's
//! JSON, a provider's reason, a gateway's HTML page), with keys and credentials masked and
//! the text fit for one line; `Retry-After`.

#[allow(unused_imports)]
use super::*;
use crate::settings::ApiKey;
use std::time::{Duration, SystemTime};

/// A failure before the stream started: a status with OpenRouter's error body, or no answer.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{}", self.describe())]
pub struct ApiError {
    /// HTTP status; `None` when the endpoint could not be reached.
    pub status: Option<u16>,
    pub code: Option<String>,
    pub message: String,
    /// What the provider behind OpenRouter said (`error.metadata`), when the body names it.
    pub upstream: Option<Upstream>,
    /// The request may have reached the server without our seeing an answer (a reset or a
    /// timeout after sending, a 524): it may be billed, so its reservation must not be released.
    pub maybe_sent: bool,
    /// How long the server asked to wait (`Retry-After`, else `X-RateLimit-Reset`).
    pub retry_after: Option<Duration>,
    /// A 200 whose body is no answer (an HTML page from a wrong `base_url` or a captive portal):
    /// `message` says what came back. Nothing was generated, so nothing was billed.
    pub not_an_answer: bool,
}

/// The provider behind OpenRouter and its own reason, as a recorded error body carries them:
/// `error.metadata.provider_name` and `error.metadata.raw` (OpenRouter's `message` is then
/// only "Provider returned error").
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Upstream {
    /// `provider_name` ("Anthropic", "Google AI Studio"); null on a 402.
    pub provider: Option<String>,
    /// The provider's reason: `raw`'s inner `error.message` when `raw` is JSON, else `raw` as
    /// text; on one line, bounded, with anything shaped like a key masked.
    pub reason: Option<String>,
}

/// The most cells a notification takes (`v:echospace` at 80 columns; SPEC, *One line*).
pub const LINE_CELLS: usize = 68;

impl ApiError {
    /// The failure's one-line notification when a provider said why (`frugal: Anthropic
    /// refused: …`, at most [`LINE_CELLS`] cells); `None` otherwise.
    pub fn line(&self) -> Option<String> {
        let (who, reason) = self.refused()?;
        Some(one_line(
            &format!("frugal: {who} refused: {reason}"),
            LINE_CELLS,
        ))
    }

    /// Who refused and why, when a provider is named or gave its reason.
    fn refused(&self) -> Option<(&str, &str)> {
        let u = self.upstream.as_ref()?;
        self.status?;
        let who = u.provider.as_deref().unwrap_or("the provider");
        Some((who, u.reason.as_deref().unwrap_or(&self.message)))
    }

    fn describe(&self) -> String {
        if self.not_an_answer {
            return self.message.clone();
        }
        if self.status.is_none() && self.maybe_sent {
            return format!(
                "the connection broke after the request was sent, before any answer: {}",
                self.message
            );
        }
        let hint = match self.status {
            None => " (is base_url right and the network up?)",
            Some(401) => " (the API key is wrong or disabled)",
            Some(402) => " (out of credits, or the key's own limit)",
            Some(429) => " (rate limited)",
            Some(503) => " (no provider meets the routing requirements)",
            _ => "",
        };
        if let (Some(s), Some((who, reason))) = (self.status, self.refused()) {
            // The provider's own words first: they say what to change.
            let theirs = if reason == self.message {
                String::new()
            } else {
                format!(": {}", self.message)
            };
            return format!("{who} refused: {reason} (OpenRouter answered {s}{theirs}{hint})");
        }
        match self.status {
            Some(s) => format!("OpenRouter answered {s}: {}{hint}", self.message),
            None => format!("OpenRouter unreachable: {}{hint}", self.message),
        }
    }
}

impl ApiError {
    /// The request left, and no status came back within the stall bound.
    pub(super) fn no_answer(stall: Duration) -> ApiError {
        ApiError {
            status: None,
            code: None,
            message: format!("no answer within {} s (stall_timeout_s)", stall.as_secs()),
            upstream: None,
            maybe_sent: true,
            retry_after: None,
            not_an_answer: false,
        }
    }
}

/// At most `max` characters of `text` fit for one message line: control characters (escape
/// sequences, line breaks) become spaces and runs of white space one space.
pub(super) fn printable(text: &str, max: usize) -> String {
    let mut out = String::new();
    let mut count = 0;
    let mut space = false;
    for c in text.chars() {
        let c = if c.is_control() || c.is_whitespace() {
            ' '
        } else {
            c
        };
        if c == ' ' {
            if space || out.is_empty() {
                continue;
            }
            space = true;
        } else {
            space = false;
        }
        if count == max {
            out.push('…');
            return out;
        }
        out.push(c);
        count += 1;
    }
    out.trim_end().to_string()
}

/// A URL for a message or the log: without `user:password@` (a proxy's credentials are a key
/// too).
pub fn without_credentials(url: &str) -> String {
    match url.split_once("://") {
        Some((scheme, rest)) => {
            let (authority, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
            let host = authority.rsplit('@').next().unwrap_or(authority);
            format!("{scheme}://{host}{path}")
        }
        None => url.to_string(),
    }
}

/// Reads up to `max` bytes of a body, as text, and the cut that ended it early, if any.
pub(super) async fn read_up_to(
    bytes: &mut BoxStream<'static, Result<Vec<u8>, StreamCut>>,
    max: usize,
) -> (String, Option<StreamCut>) {
    let mut buf = Vec::new();
    let mut cut = None;
    while buf.len() < max {
        match bytes.next().await {
            Some(Ok(b)) => buf.extend_from_slice(&b),
            Some(Err(c)) => {
                cut = Some(c);
                break;
            }
            None => break,
        }
    }
    buf.truncate(max);
    (String::from_utf8_lossy(&buf).into_owned(), cut)
}

/// How long the server asked to wait: `Retry-After` (seconds, or an HTTP date), else
/// `X-RateLimit-Reset` (epoch milliseconds, as OpenRouter sends it on free-model limits).
pub fn retry_after(headers: &reqwest::header::HeaderMap, now: SystemTime) -> Option<Duration> {
    let get = |n: &str| headers.get(n).and_then(|v| v.to_str().ok()).map(str::trim);
    let until = |t: SystemTime| Some(t.duration_since(now).unwrap_or(Duration::ZERO));
    if let Some(v) = get("retry-after") {
        if let Ok(secs) = v.parse::<u64>() {
            return Some(Duration::from_secs(secs));
        }
        if let Ok(ts) = jiff::fmt::rfc2822::parse(v).map(|z| z.timestamp()) {
            return until(SystemTime::from(ts));
        }
    }
    let reset = get("x-ratelimit-reset")?.parse::<u64>().ok()?;
    // Epoch milliseconds; a value too small to be (before 1973) is taken as seconds.
    let ms = if reset < 100_000_000_000 {
        reset.saturating_mul(1000)
    } else {
        reset
    };
    until(SystemTime::UNIX_EPOCH + Duration::from_millis(ms))
}

/// Removes the key from any text that came from elsewhere (an echoing proxy, an error chain).
/// Anything shaped like an API key (`sk-` and at least 16 key characters, as a word of its
/// own) is masked too: an echo may hold another key than the one sent (a named key, a key
/// before rotation).
pub fn redact(text: &str, key: &ApiKey) -> String {
    let k = key.expose();
    let text = if k.len() >= 4 && text.contains(k) {
        text.replace(k, "<redacted>")
    } else {
        text.to_string()
    };
    let is_key_char = |c: char| c.is_ascii_alphanumeric() || c == '-' || c == '_';
    let mut out = String::with_capacity(text.len());
    let mut rest = text.as_str();
    while let Some(i) = rest.find("sk-") {
        let word_start = rest[..i]
            .chars()
            .next_back()
            .is_none_or(|c| !is_key_char(c));
        let tail = &rest[i + 3..];
        let len = tail.find(|c: char| !is_key_char(c)).unwrap_or(tail.len());
        out.push_str(&rest[..i]);
        if word_start && len >= 16 {
            out.push_str("<redacted>");
        } else {
            out.push_str(&rest[i..i + 3 + len]);
        }
        rest = &tail[len..];
    }
    out.push_str(rest);
    out
}

/// Text from the other end (an error message, a body) made fit for a message: keys masked
/// first (so that shortening cannot leave a key's prefix), then at most 300 printable
/// characters on one line.
pub fn for_message(text: &str, key: &ApiKey) -> String {
    printable(&redact(text, key), 300)
}

/// An error and its causes, in one line.
pub(super) fn error_chain(e: &reqwest::Error) -> String {
    // reqwest's URLs carry no `user:password@` (it moves them to a header): nothing to hide.
    let mut msg = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        msg.push_str(": ");
        msg.push_str(&s.to_string());
        source = s.source();
    }
    msg
}

pub(in crate::openrouter) fn transport_error(e: &reqwest::Error, key: &ApiKey) -> ApiError {
    // The key is in a header, never in the URL, but an error chain is redacted all the same.
    ApiError {
        status: None,
        code: None,
        message: redact(&error_chain(e), key),
        upstream: None,
        // Not connected (or not built): the request never left.
        maybe_sent: !e.is_connect() && !e.is_builder(),
        retry_after: None,
        not_an_answer: false,
    }
}

/// Reads OpenRouter's error body `{"error": {"code", "message", "metadata"}}`; `code` is an
/// integer or a string, so it is read loosely. What the recorded bodies carry is read: the
/// provider's name and reason in `metadata.provider_name` / `metadata.raw` (see [`Upstream`]);
/// none carries `metadata.error_type`. An HTML page (a gateway's) is named, not quoted whole.
pub fn error_from_body(status: u16, body: &str, key: &ApiKey) -> ApiError {
    let v: serde_json::Value = serde_json::from_str(body).unwrap_or(serde_json::Value::Null);
    let err = v.get("error");
    let html = err.is_none() && body.trim_start().starts_with('<');
    let message = match err.and_then(|e| e.get("message")).and_then(|m| m.as_str()) {
        Some(m) => for_message(m, key),
        None if html => html_page(body, key),
        None => for_message(body, key),
    };
    let message = match message {
        m if m.is_empty() => "no error message".to_string(),
        m => m,
    };
    let code = err.and_then(|e| e.get("code")).map(|c| match c {
        serde_json::Value::String(s) => s.clone(),
        other => other.to_string(),
    });
    ApiError {
        status: Some(status),
        code: code.map(|c| for_message(&c, key)),
        message,
        upstream: err
            .and_then(|e| e.get("metadata"))
            .and_then(|m| upstream(m, key)),
        // A gateway that gave up waiting (Cloudflare's 524) after the request reached
        // OpenRouter: it may have run, and be billed.
        maybe_sent: status == 524,
        retry_after: None,
        not_an_answer: false,
    }
}

/// The most characters of a provider's reason kept (the whole text goes to the event's data
/// and the log; the notification is cut further).
pub(super) const REASON_CHARS: usize = 300;

/// `error.metadata`'s provider and reason, when it has either.
pub(super) fn upstream(metadata: &serde_json::Value, key: &ApiKey) -> Option<Upstream> {
    let text = |s: &str, max: usize| {
        Some(printable(&mask_tokens(&redact(s, key)), max)).filter(|t| !t.is_empty())
    };
    let provider = metadata
        .get("provider_name")
        .and_then(|p| p.as_str())
        .and_then(|p| text(p, 60));
    let reason = metadata
        .get("raw")
        .and_then(raw_reason)
        .and_then(|r| text(&r, REASON_CHARS));
    (provider.is_some() || reason.is_some()).then_some(Upstream { provider, reason })
}

/// The provider's reason in `raw`: a provider's own error body (JSON as text, or as JSON)
/// gives its message (`error.message`, `message`, `detail`; a list gives its first); any other
/// text is the reason as it is.
pub(super) fn raw_reason(raw: &serde_json::Value) -> Option<String> {
    use serde_json::Value;
    fn message_in(v: &Value) -> Option<String> {
        let v = match v {
            Value::Array(a) => a.first()?,
            v => v,
        };
        [
            v.pointer("/error/message"),
            v.get("message"),
            v.get("detail"),
            v.get("error"),
        ]
        .into_iter()
        .flatten()
        .find_map(Value::as_str)
        .filter(|m| !m.trim().is_empty())
        .map(str::to_string)
    }
    match raw {
        Value::String(s) => match serde_json::from_str::<Value>(s.trim()) {
            Ok(v @ (Value::Object(_) | Value::Array(_))) => message_in(&v).or(Some(s.clone())),
            _ => Some(s.clone()),
        },
        Value::Object(_) | Value::Array(_) => message_in(raw).or(Some(raw.to_string())),
        Value::Null => None,
        other => Some(other.to_string()),
    }
}

/// An HTML error page (a gateway's, a proxy's) for a message: its title, not its markup.
pub(super) fn html_page(body: &str, key: &ApiKey) -> String {
    let lower = body.to_ascii_lowercase();
    let title = lower
        .find("<title>")
        .map(|i| i + "<title>".len())
        .and_then(|start| Some((start, start + lower[start..].find("</title>")?)))
        .map(|(a, b)| for_message(&body[a..b], key))
        .filter(|t| !t.is_empty());
    match title {
        Some(t) => format!("an HTML page (\"{}\")", printable(&t, 80)),
        None => "an HTML page".to_string(),
    }
}

/// Masks any long run of key characters mixing letters and digits (32 or more: API keys of
/// other providers, bearer tokens, JWT parts) that [`redact`] does not know by its prefix. A
/// provider's text is not ours: it may echo a credential of its own.
pub(super) fn mask_tokens(text: &str) -> String {
    let is_key_char = |c: char| c.is_ascii_alphanumeric() || c == '-' || c == '_';
    let mut out = String::with_capacity(text.len());
    let mut word = String::new();
    let flush = |word: &mut String, out: &mut String| {
        let digits = word.chars().any(|c| c.is_ascii_digit());
        let letters = word.chars().any(|c| c.is_ascii_alphabetic());
        if word.len() >= 32 && digits && letters {
            out.push_str("<redacted>");
        } else {
            out.push_str(word);
        }
        word.clear();
    };
    for c in text.chars() {
        if is_key_char(c) {
            word.push(c);
        } else {
            flush(&mut word, &mut out);
            out.push(c);
        }
    }
    flush(&mut word, &mut out);
    out
}

/// `text` in at most `cells` terminal cells, cut with `…` where it must be (a wide character,
/// CJK or emoji, takes two cells).
pub fn one_line(text: &str, cells: usize) -> String {
    let text = printable(text, usize::MAX);
    let width = |c: char| if is_wide(c) { 2 } else { 1 };
    if text.chars().map(width).sum::<usize>() <= cells {
        return text;
    }
    let mut out = String::new();
    let mut used = 0;
    for c in text.chars() {
        if used + width(c) > cells.saturating_sub(1) {
            break;
        }
        used += width(c);
        out.push(c);
    }
    out.truncate(out.trim_end().len());
    out.push('…');
    out
}

/// East Asian wide and fullwidth characters and emoji: two cells in a terminal.
pub(super) fn is_wide(c: char) -> bool {
    matches!(c as u32,
        0x1100..=0x115F | 0x2E80..=0x303E | 0x3041..=0x33FF | 0x3400..=0x4DBF | 0x4E00..=0x9FFF
        | 0xA000..=0xA4CF | 0xAC00..=0xD7A3 | 0xF900..=0xFAFF | 0xFE30..=0xFE4F
        | 0xFF00..=0xFF60 | 0xFFE0..=0xFFE6 | 0x1F300..=0x1F64F | 0x1F900..=0x1F9FF
        | 0x20000..=0x3FFFD)
}
