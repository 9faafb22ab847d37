//! HTTP to OpenRouter (or any OpenAI-compatible endpoint): one streamed chat completion.

use super::sse::{self, ChatEvent, StreamCut};
use crate::settings::ApiKey;
use futures::stream::BoxStream;
use futures::{Stream, StreamExt};
use serde::Serialize;
use std::time::{Duration, SystemTime};

/// Bytes of an error body read at most (OpenRouter's are a few hundred).
const ERROR_BODY_BYTES: usize = 64 << 10;
/// Bytes of `/generation` and `/key` answers read at most.
const SMALL_BODY_BYTES: usize = 1 << 20;
/// Bytes of the `/models` catalogue read at most (about 1 MB in 2025).
const CATALOGUE_BYTES: usize = 64 << 20;

/// What frugal reads of one answer at most, so an endpoint that never stops (or never speaks)
/// can neither grow the backend's memory nor hold a reservation open.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// The `max_tokens` sent: the body bound is derived from it.
    pub max_tokens: u32,
    /// `stall_timeout_s`: the longest silence (no byte at all, not even a keep-alive comment)
    /// before the headers or between reads.
    pub stall: Duration,
}

impl Limits {
    /// The most body bytes an answer of `max_tokens` tokens may take: 1 KiB a token plus 1 MiB.
    /// Generous on purpose: each streamed token comes in a JSON chunk of 200 to 400 bytes
    /// (ids, model, escaped text; reasoning tokens more), a token's text can be long, and
    /// keep-alive comments and the usage chunk come on top. An answer past it is not one of
    /// `max_tokens` tokens: the endpoint ignores the limit.
    pub fn body_bytes(&self) -> u64 {
        u64::from(self.max_tokens) * 1024 + (1 << 20)
    }
}

/// An answer under way: its generation id (from the headers) and its events. Dropping it
/// closes the connection, which is how a cancel reaches the server.
pub struct ChatStream {
    pub generation_id: Option<String>,
    pub events: BoxStream<'static, ChatEvent>,
}

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
    pub provider: Option<super::provider::Provider>,
    /// `{"type": "json_schema", …}`: an answer in JSON of that shape, for models whose
    /// catalogue entry lists `structured_outputs` / `response_format` (the judge's verdicts).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub response_format: Option<serde_json::Value>,
    /// `{"include_usage": true}`, for a plain OpenAI-compatible endpoint only: the standard
    /// way to get the usage chunk at the end of a stream there (OpenRouter always sends it).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stream_options: Option<StreamOptions>,
}

/// The OpenAI `stream_options` object.
#[derive(Debug, Clone, Copy, Serialize, PartialEq, Eq)]
pub struct StreamOptions {
    pub include_usage: bool,
}

/// One chat message. `cache` marks the end of a stable prefix (system prompt, context files)
/// that a provider taking `cache_control` breakpoints may cache: such a message goes out as
/// `[{"type": "text", "text": …, "cache_control": {"type": "ephemeral"}}]`, any other as a
/// plain string. Whether the marks go out at all is the gate's decision
/// ([`ChatRequest::keep_cache_marks`]): only Anthropic and Gemini models through OpenRouter take
/// them.
#[derive(Debug, Clone, PartialEq)]
pub struct Message {
    pub role: &'static str,
    pub content: String,
    pub cache: bool,
}

/// The most `cache_control` breakpoints a request may carry (Anthropic's limit).
pub const MAX_CACHE_BREAKPOINTS: usize = 4;

impl Message {
    pub fn system(content: impl Into<String>) -> Message {
        Message::new("system", content)
    }

    pub fn user(content: impl Into<String>) -> Message {
        Message::new("user", content)
    }

    pub fn assistant(content: impl Into<String>) -> Message {
        Message::new("assistant", content)
    }

    fn new(role: &'static str, content: impl Into<String>) -> Message {
        Message {
            role,
            content: content.into(),
            cache: false,
        }
    }

    /// Marks the message as the end of a cacheable prefix: `Message::system(text).cached()`.
    pub fn cached(mut self) -> Message {
        self.cache = true;
        self
    }
}

impl Serialize for Message {
    /// Written straight from the borrowed text: the array form allocates nothing either.
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeStruct;
        /// `{"type": "text", "text": …, "cache_control": {"type": "ephemeral"}}`.
        #[derive(Serialize)]
        struct CachedText<'a> {
            #[serde(rename = "type")]
            kind: &'static str,
            text: &'a str,
            cache_control: Ephemeral,
        }
        #[derive(Serialize)]
        struct Ephemeral {
            #[serde(rename = "type")]
            kind: &'static str,
        }
        let mut m = s.serialize_struct("Message", 2)?;
        m.serialize_field("role", self.role)?;
        if self.cache {
            let part = CachedText {
                kind: "text",
                text: &self.content,
                cache_control: Ephemeral { kind: "ephemeral" },
            };
            m.serialize_field("content", &[part])?;
        } else {
            m.serialize_field("content", &self.content)?;
        }
        m.end()
    }
}

impl ChatRequest {
    /// Keeps the messages' cache marks where the model takes `cache_control` breakpoints
    /// (`takes`; see [`super::Endpoint::takes_cache_control`]), at most the first
    /// [`MAX_CACHE_BREAKPOINTS`] of them: the stable part comes first. Clears them all
    /// otherwise (models that cache by themselves, or a plain endpoint, get plain strings).
    pub fn keep_cache_marks(&mut self, takes: bool) {
        let mut left = if takes { MAX_CACHE_BREAKPOINTS } else { 0 };
        for m in self.messages.iter_mut().filter(|m| m.cache) {
            if left == 0 {
                m.cache = false;
            } else {
                left -= 1;
            }
        }
    }
}

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

#[derive(Clone)]
pub struct Client {
    pub(super) http: reqwest::Client,
    pub(super) base_url: String,
    referer: String,
    /// Attribution headers, key management, `/key` and `/generation` go to OpenRouter only.
    pub(super) endpoint: super::Endpoint,
}

impl ApiError {
    /// The request left, and no status came back within the stall bound.
    fn no_answer(stall: Duration) -> ApiError {
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

impl Client {
    /// `connect_timeout` bounds connecting; the chat stream's silences are bounded per request
    /// ([`Limits::stall`]), the other calls by a whole-request timeout.
    pub fn new(base_url: &str, referer: &str, connect_timeout: Duration) -> Self {
        let http = reqwest::Client::builder()
            .connect_timeout(connect_timeout)
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
    /// the answer's events: an event stream as it arrives, or a whole JSON completion (billed,
    /// so it carries its usage like a stream's last chunk). The body is read within `limits`:
    /// past them the events end with [`ChatEvent::Broken`] and the connection is closed. A 200
    /// that is neither is an error saying what came back (`not_an_answer`).
    pub async fn stream_chat(
        &self,
        key: &ApiKey,
        body: &ChatRequest,
        limits: Limits,
    ) -> Result<ChatStream, ApiError> {
        let mut req = with_key(
            self.http
                .post(format!("{}/chat/completions", self.base_url)),
            key,
        );
        if self.endpoint.is_openrouter() {
            req = req
                .header("HTTP-Referer", &self.referer)
                .header("X-OpenRouter-Title", "frugal.nvim")
                .header("X-Title", "frugal.nvim");
        }
        let send = req.header("Accept", "text/event-stream").json(body).send();
        let resp = tokio::time::timeout(limits.stall, send)
            .await
            .map_err(|_| ApiError::no_answer(limits.stall))?
            .map_err(|e| transport_error(&e, key))?;
        let status = resp.status().as_u16();
        let headers = resp.headers().clone();
        let mut bytes = bounded(resp.bytes_stream(), limits);
        if !(200..300).contains(&status) {
            let (text, _) = read_up_to(&mut bytes, ERROR_BODY_BYTES).await;
            let mut e = error_from_body(status, &text, key);
            e.retry_after = retry_after(&headers, SystemTime::now());
            return Err(e);
        }
        let header = |name: &str| {
            headers
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_string)
        };
        let generation_id = header("x-generation-id");
        let content_type = header("content-type").unwrap_or_default();
        let events = if media_type(&content_type) == "text/event-stream" {
            sse::decode(bytes).boxed()
        } else {
            self.sniff(bytes, &content_type, limits, key).await?
        };
        Ok(ChatStream {
            generation_id,
            events,
        })
    }

    /// A 200 that does not say it is an event stream: an event stream all the same (some
    /// OpenAI-compatible servers label it otherwise), a JSON completion, or no answer at all.
    async fn sniff(
        &self,
        mut bytes: BoxStream<'static, Result<Vec<u8>, StreamCut>>,
        content_type: &str,
        limits: Limits,
        key: &ApiKey,
    ) -> Result<BoxStream<'static, ChatEvent>, ApiError> {
        // The first bytes that are not white space tell.
        let mut head = Vec::new();
        let mut cut = None;
        while head.iter().all(u8::is_ascii_whitespace) || head.len() < 6 {
            match bytes.next().await {
                Some(Ok(b)) => head.extend_from_slice(&b),
                Some(Err(c)) => {
                    cut = Some(c);
                    break;
                }
                None => break,
            }
        }
        let start = head
            .iter()
            .position(|b| !b.is_ascii_whitespace())
            .map_or(&[][..], |i| &head[i..]);
        let looks_sse = [&b"data:"[..], b":", b"event:", b"id:", b"retry:"]
            .iter()
            .any(|p| start.starts_with(p));
        if looks_sse {
            let rest = futures::stream::iter([Ok(head)]).chain(bytes);
            let mut events = sse::decode(rest).boxed();
            if let Some(c) = cut {
                events = events
                    .chain(futures::stream::iter([ChatEvent::Broken(c)]))
                    .boxed();
            }
            return Ok(events);
        }
        if cut.is_none() {
            let limit = usize::try_from(limits.body_bytes()).unwrap_or(usize::MAX);
            let (rest, c) = read_up_to(&mut bytes, limit.saturating_sub(head.len())).await;
            head.extend_from_slice(rest.as_bytes());
            cut = c;
        }
        drop(bytes);
        if let Ok(v) = serde_json::from_slice::<serde_json::Value>(&head) {
            if v.get("choices").is_some() || v.get("usage").is_some() || v.get("error").is_some() {
                // A completion (billed: settled from its usage), or an error said with a 200.
                let mut events = completion_events(std::str::from_utf8(&head).unwrap_or_default());
                if let Some(c) = cut {
                    events.push(ChatEvent::Broken(c));
                }
                return Ok(futures::stream::iter(events).boxed());
            }
        } else if let Some(c) = cut {
            // Cut while reading: whatever it was, it was under way.
            return Ok(futures::stream::iter([ChatEvent::Broken(c)]).boxed());
        }
        Err(ApiError {
            status: Some(200),
            code: None,
            message: self
                .not_an_answer(content_type, &redact(&String::from_utf8_lossy(&head), key)),
            upstream: None,
            maybe_sent: false,
            retry_after: None,
            not_an_answer: true,
        })
    }

    /// What came back instead of an answer, short and printable, and where to look.
    fn not_an_answer(&self, content_type: &str, body: &str) -> String {
        let what = match content_type.trim() {
            "" => "no content type".to_string(),
            t => printable(t, 60),
        };
        let first = printable(body, 120);
        let first = if first.is_empty() {
            "an empty body".to_string()
        } else {
            format!("\"{first}\"")
        };
        format!(
            "{} answered 200 with {what}, not an event stream: {first}. Is base_url right? It must be an OpenAI-compatible API such as https://openrouter.ai/api/v1 (a captive portal or a proxy also answers like this). Nothing was charged",
            without_credentials(&self.base_url)
        )
    }
}

/// The media type of a `Content-Type` value, lower case, without parameters.
fn media_type(content_type: &str) -> String {
    content_type
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase()
}

/// At most `max` characters of `text` fit for one message line: control characters (escape
/// sequences, line breaks) become spaces and runs of white space one space.
fn printable(text: &str, max: usize) -> String {
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

/// A JSON completion (`"object": "chat.completion"`) as the events of a stream: id, model,
/// text, finish, usage, done — or the error it holds. Read from the body's own text, not from a
/// `Value` of it: `usage.cost` would go through `f64` there.
fn completion_events(body: &str) -> Vec<ChatEvent> {
    // A completion is a stream's chunks in one: its choices carry `message` where a chunk's
    // carry `delta`, which the chunk reader takes as well.
    let mut out = Vec::new();
    sse::interpret(body, &mut false, &mut out);
    out.push(ChatEvent::Done);
    out
}

/// The body's bytes within `limits`: an error ends it when it passes the byte bound or stays
/// silent for the stall bound (the body is dropped there, closing the connection).
fn bounded<S, B>(inner: S, limits: Limits) -> BoxStream<'static, Result<Vec<u8>, StreamCut>>
where
    S: Stream<Item = reqwest::Result<B>> + Send + 'static,
    B: AsRef<[u8]> + Send + 'static,
{
    let stall = limits.stall;
    Bounded {
        inner: Some(Box::pin(inner)),
        seen: 0,
        limits,
        last: tokio::time::Instant::now(),
        silence: Box::pin(tokio::time::sleep(stall)),
    }
    .boxed()
}

/// See [`bounded`]. The silence bound is one timer for the whole body, moved only when it
/// fires before its time (a read came since it was set), never once per read: a streamed
/// answer is thousands of small reads, and arming a timer for each was a visible part of what
/// a read cost.
struct Bounded<S> {
    /// `None` once the body ended or was cut (dropping it closes the connection).
    inner: Option<std::pin::Pin<Box<S>>>,
    seen: u64,
    limits: Limits,
    /// When the last bytes came.
    last: tokio::time::Instant,
    silence: std::pin::Pin<Box<tokio::time::Sleep>>,
}

impl<S, B> Stream for Bounded<S>
where
    S: Stream<Item = reqwest::Result<B>>,
    B: AsRef<[u8]>,
{
    type Item = Result<Vec<u8>, StreamCut>;

    fn poll_next(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Self::Item>> {
        use std::future::Future;
        use std::task::Poll;
        let this = &mut *self;
        let Some(inner) = this.inner.as_mut() else {
            return Poll::Ready(None);
        };
        let cut = match inner.as_mut().poll_next(cx) {
            Poll::Ready(None) => {
                this.inner = None;
                return Poll::Ready(None);
            }
            Poll::Ready(Some(Ok(b))) => {
                let b = b.as_ref();
                this.seen += b.len() as u64;
                this.last = tokio::time::Instant::now();
                let limit = this.limits.body_bytes();
                if this.seen <= limit {
                    return Poll::Ready(Some(Ok(b.to_vec())));
                }
                StreamCut::TooLong {
                    limit,
                    max_tokens: this.limits.max_tokens,
                }
            }
            Poll::Ready(Some(Err(e))) => StreamCut::Transport(error_chain(&e)),
            Poll::Pending => loop {
                if this.silence.as_mut().poll(cx).is_pending() {
                    return Poll::Pending;
                }
                let deadline = this.last + this.limits.stall;
                if tokio::time::Instant::now() >= deadline {
                    break StreamCut::Stalled {
                        secs: this.limits.stall.as_secs(),
                    };
                }
                this.silence.as_mut().reset(deadline);
            },
        };
        this.inner = None;
        Poll::Ready(Some(Err(cut)))
    }
}

/// Reads up to `max` bytes of a body, as text, and the cut that ended it early, if any.
async fn read_up_to(
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

/// `req` with `key` as its bearer token; none for the empty key of `api_key = false` (a server
/// that takes no key).
pub(super) fn with_key(req: reqwest::RequestBuilder, key: &ApiKey) -> reqwest::RequestBuilder {
    if key.expose().is_empty() {
        req
    } else {
        req.bearer_auth(key.expose())
    }
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
fn error_chain(e: &reqwest::Error) -> String {
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

pub(super) fn transport_error(e: &reqwest::Error, key: &ApiKey) -> ApiError {
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
const REASON_CHARS: usize = 300;

/// `error.metadata`'s provider and reason, when it has either.
fn upstream(metadata: &serde_json::Value, key: &ApiKey) -> Option<Upstream> {
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
fn raw_reason(raw: &serde_json::Value) -> Option<String> {
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
fn html_page(body: &str, key: &ApiKey) -> String {
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
fn mask_tokens(text: &str) -> String {
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
fn is_wide(c: char) -> bool {
    matches!(c as u32,
        0x1100..=0x115F | 0x2E80..=0x303E | 0x3041..=0x33FF | 0x3400..=0x4DBF | 0x4E00..=0x9FFF
        | 0xA000..=0xA4CF | 0xAC00..=0xD7A3 | 0xF900..=0xFAFF | 0xFE30..=0xFE4F
        | 0xFF00..=0xFF60 | 0xFFE0..=0xFFE6 | 0x1F300..=0x1F64F | 0x1F900..=0x1F9FF
        | 0x20000..=0x3FFFD)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gate::retry::Why;
    use reqwest::header::{HeaderMap, HeaderValue};

    #[test]
    fn the_body_bound_grows_with_max_tokens() {
        let l = |max_tokens| Limits {
            max_tokens,
            stall: Duration::from_secs(60),
        };
        assert_eq!(l(100).body_bytes(), 100 * 1024 + 1_048_576);
        assert_eq!(l(4096).body_bytes(), 5 << 20);
        assert_eq!(sse::mib(l(100).body_bytes()), "1.1 MiB");
    }

    #[test]
    fn retry_after_in_seconds_as_a_date_or_as_a_reset_time() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_760_000_000);
        let h = |pairs: &[(&'static str, &str)]| {
            let mut m = HeaderMap::new();
            for (k, v) in pairs {
                m.insert(*k, HeaderValue::from_str(v).unwrap());
            }
            retry_after(&m, now)
        };
        assert_eq!(h(&[("retry-after", "7")]), Some(Duration::from_secs(7)));
        // 1_760_000_000 is Thu, 09 Oct 2025 08:53:20 GMT.
        assert_eq!(
            h(&[("retry-after", "Thu, 09 Oct 2025 08:53:32 GMT")]),
            Some(Duration::from_secs(12))
        );
        assert_eq!(
            h(&[("retry-after", "Thu, 01 Jan 1970 00:00:00 GMT")]),
            Some(Duration::ZERO),
            "a date past is no wait"
        );
        assert_eq!(
            h(&[("x-ratelimit-reset", "1760000002500")]),
            Some(Duration::from_millis(2500))
        );
        assert_eq!(
            h(&[("x-ratelimit-reset", "1760000003")]),
            Some(Duration::from_secs(3)),
            "seconds, when too small to be milliseconds"
        );
        assert_eq!(
            h(&[("retry-after", "2"), ("x-ratelimit-reset", "1760000009000")]),
            Some(Duration::from_secs(2)),
            "Retry-After wins"
        );
        assert_eq!(h(&[("retry-after", "soon")]), None);
        assert_eq!(h(&[]), None);
    }

    #[test]
    fn what_came_back_is_short_printable_and_without_credentials() {
        let c = Client::new(
            "https://user:pw@portal.example/api/v1",
            "r",
            Duration::from_secs(1),
        );
        let body = format!("<html>\n\x1b[31m<title>Log  in</title>{}", "x".repeat(500));
        let m = c.not_an_answer("text/html; charset=utf-8", &body);
        assert!(m.starts_with("https://portal.example/api/v1 answered 200 with text/html; charset=utf-8, not an event stream: \"<html> [31m<title>Log in</title>xxx"), "{m}");
        assert!(!m.contains('\x1b') && !m.contains("pw"), "{m}");
        assert!(m.contains("…\"") && m.contains("base_url"), "{m}");
        let m = c.not_an_answer("", "");
        assert!(
            m.contains("with no content type, not an event stream: an empty body"),
            "{m}"
        );
    }

    #[test]
    fn a_json_completion_reads_as_the_events_of_a_stream() {
        let v = serde_json::json!({
            "id": "gen-9", "object": "chat.completion", "model": "m/x",
            "choices": [{"index": 0, "message": {"role": "assistant", "content": "hi"}, "finish_reason": "stop"}],
            "usage": {"prompt_tokens": 3, "completion_tokens": 1, "cost": 0.5}
        });
        let ev = completion_events(&v.to_string());
        assert_eq!(ev[0], ChatEvent::Id("gen-9".into()));
        assert_eq!(ev[1], ChatEvent::Model("m/x".into()));
        assert_eq!(ev[2], ChatEvent::Text("hi".into()));
        assert_eq!(ev[3], ChatEvent::Finish("stop".into()));
        assert!(
            matches!(&ev[4], ChatEvent::Usage(u) if u.cost == Some(crate::budget::Usd(500_000_000_000)))
        );
        assert_eq!(ev[5], ChatEvent::Done);
        let e = completion_events(
            &serde_json::json!({"error": {"code": 400, "message": "no"}}).to_string(),
        );
        assert!(
            matches!(&e[0], ChatEvent::Error { code, message } if code == "400" && message == "no")
        );
        // The cost as written: a `Value` would read this one picodollar low.
        let noisy = r#"{"choices":[],"usage":{"prompt_tokens":1,"completion_tokens":1,"cost":0.0076509169000000005}}"#;
        assert!(matches!(&completion_events(noisy)[0],
            ChatEvent::Usage(u) if u.cost == Some(crate::budget::Usd(7_650_916_901))));
    }

    #[test]
    fn redaction_masks_the_key_and_anything_shaped_like_one() {
        let k = ApiKey::new("sk-or-v1-0123456789abcdef".into());
        assert_eq!(
            redact(
                "bad key sk-or-v1-0123456789abcdef; also sk-or-v1-ffffffffffffffffffff.",
                &k
            ),
            "bad key <redacted>; also <redacted>."
        );
        // Not a key: too short, or inside a word.
        assert_eq!(
            redact("risk-assessment-model-v2 sk-short", &k),
            "risk-assessment-model-v2 sk-short"
        );
        // Masked before shortening: no prefix of a key survives the cut.
        let long = format!("{}Bearer sk-or-v1-0123456789abcdef", "x".repeat(290));
        let m = for_message(&long, &ApiKey::new(String::new()));
        assert!(!m.contains("sk-or"), "{m}");
        let e = error_from_body(
            400,
            &format!(
                r#"{{"error":{{"message":"{}\u001b[2J"}}}}"#,
                "y".repeat(5000)
            ),
            &k,
        );
        assert!(
            e.message.chars().count() <= 301 && !e.message.contains('\x1b'),
            "{}",
            e.message
        );
    }

    #[tokio::test]
    async fn transport_errors_do_not_show_url_credentials() {
        // Nothing listens on port 9 of loopback: refused at once.
        let c = Client::new(
            "http://proxyuser:proxypass@127.0.0.1:9/api/v1",
            "r",
            Duration::from_secs(5),
        );
        let e = c.models().await.unwrap_err();
        assert!(e.message.contains("127.0.0.1:9"), "{e}");
        assert!(!e.to_string().contains("proxypass"), "{e}");
        assert!(!e.maybe_sent, "{e:?}");
    }

    fn request(model: &str, messages: Vec<Message>) -> ChatRequest {
        ChatRequest {
            model: model.into(),
            messages,
            stream: true,
            max_tokens: 16,
            temperature: None,
            provider: None,
            response_format: None,
            stream_options: None,
        }
    }

    /// The request's messages as sent to `base_url`, after the gate kept or cleared the marks.
    fn sent_messages(base_url: &str, model: &str, messages: Vec<Message>) -> serde_json::Value {
        let mut req = request(model, messages);
        req.keep_cache_marks(super::super::Endpoint::of(base_url).takes_cache_control(model));
        serde_json::to_value(&req).unwrap()["messages"].clone()
    }

    #[test]
    fn a_cached_message_goes_as_a_text_part_with_cache_control_where_taken() {
        let or = "https://openrouter.ai/api/v1";
        let msgs = || vec![Message::system("rules").cached(), Message::user("edit")];
        let marked = serde_json::json!([
            {"role": "system", "content": [
                {"type": "text", "text": "rules", "cache_control": {"type": "ephemeral"}}
            ]},
            {"role": "user", "content": "edit"}
        ]);
        let plain = serde_json::json!([
            {"role": "system", "content": "rules"},
            {"role": "user", "content": "edit"}
        ]);
        assert_eq!(
            sent_messages(or, "anthropic/claude-sonnet-4.5", msgs()),
            marked
        );
        assert_eq!(sent_messages(or, "google/gemini-2.5-pro", msgs()), marked);
        assert_eq!(sent_messages(or, "openai/gpt-4o", msgs()), plain);
        assert_eq!(
            sent_messages(
                "https://api.anthropic.example/v1",
                "anthropic/claude-sonnet-4.5",
                msgs()
            ),
            plain,
            "a plain endpoint never gets cache_control"
        );
        // The text is escaped like any JSON string.
        let v = sent_messages(or, "anthropic/x", vec![Message::system("a\"b\n").cached()]);
        assert_eq!(v[0]["content"][0]["text"], "a\"b\n");
    }

    #[test]
    fn at_most_four_cache_breakpoints_the_first_ones() {
        let msgs = (0..6)
            .map(|i| Message::user(format!("m{i}")).cached())
            .chain([Message::assistant("a")])
            .collect();
        let v = sent_messages("https://openrouter.ai/api/v1", "anthropic/x", msgs);
        let marked: Vec<bool> = v
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["content"].is_array())
            .collect();
        assert_eq!(marked, [true, true, true, true, false, false, false]);
        assert_eq!(v[4]["content"], "m4");
    }

    /// Error bodies as recorded from openrouter.ai: the provider's reason is in
    /// `metadata.raw` (JSON of its own, or text), its name in `metadata.provider_name`.
    #[test]
    fn a_providers_reason_is_read_from_what_the_wire_carries() {
        let k = ApiKey::new("sk-or-v1-0123456789abcdef".into());
        let e = error_from_body(
            400,
            r#"{"error":{"message":"Provider returned error","code":400,"metadata":{"raw":"{\"type\":\"error\",\"error\":{\"type\":\"invalid_request_error\",\"message\":\"messages.0.content.1.image.source.base64: image exceeds 5 MB maximum\"}}","provider_name":"Anthropic"}},"user_id":"user_2abc"}"#,
            &k,
        );
        assert_eq!(
            e.to_string(),
            "Anthropic refused: messages.0.content.1.image.source.base64: image exceeds 5 MB maximum (OpenRouter answered 400: Provider returned error)"
        );
        assert_eq!(
            e.line().unwrap(),
            "frugal: Anthropic refused: messages.0.content.1.image.source.base64…"
        );
        assert_eq!(e.code.as_deref(), Some("400"));
        // `raw` as text.
        let e = error_from_body(
            429,
            r#"{"error":{"message":"Provider returned error","code":429,"metadata":{"raw":"google/gemini-2.5-flash is temporarily rate-limited upstream. Please retry shortly, or add your own key to accumulate your rate limits: https://openrouter.ai/settings/integrations","provider_name":"Google AI Studio"}},"user_id":"user_2abc"}"#,
            &k,
        );
        assert!(
            e.to_string().starts_with("Google AI Studio refused: google/gemini-2.5-flash is temporarily rate-limited upstream. Please retry shortly, or add your own key to accumulate your rate limits: https://openrouter.ai/settings/integrations (OpenRouter answered 429: Provider returned error (rate limited))"),
            "{e}"
        );
        let line = e.line().unwrap();
        assert_eq!(line.chars().count(), LINE_CELLS, "{line}");
        assert!(line.ends_with('…'), "{line}");
        // A provider's JSON in a list (Google's), with its own message.
        let raw = serde_json::json!([{"error": {"code": 400, "message": "Please use a valid role: user, model.", "status": "INVALID_ARGUMENT"}}]).to_string();
        let body = serde_json::json!({"error": {"message": "Provider returned error", "code": 400, "metadata": {"raw": raw, "provider_name": "Google"}}});
        let e = error_from_body(400, &body.to_string(), &k);
        assert!(
            e.to_string()
                .starts_with("Google refused: Please use a valid role: user, model. ("),
            "{e}"
        );
        // JSON without a message: the text as it is.
        let body = serde_json::json!({"error": {"message": "Provider returned error", "code": 400, "metadata": {"raw": "{\"status\":400}", "provider_name": "Fireworks"}}});
        let e = error_from_body(400, &body.to_string(), &k);
        assert!(
            e.to_string()
                .starts_with("Fireworks refused: {\"status\":400} ("),
            "{e}"
        );
        // No `raw`: the provider named, OpenRouter's message.
        let e = error_from_body(
            400,
            r#"{"error":{"message":"Provider returned error","code":400,"metadata":{"provider_name":"Anthropic"}},"user_id":"user_2abc"}"#,
            &k,
        );
        assert_eq!(
            e.to_string(),
            "Anthropic refused: Provider returned error (OpenRouter answered 400)"
        );
        assert_eq!(
            e.line().unwrap(),
            "frugal: Anthropic refused: Provider returned error"
        );
        // A 402 names no provider: OpenRouter's own message, as before; no line of its own.
        let e = error_from_body(
            402,
            r#"{"error":{"message":"This request requires more credits, or fewer max_tokens. You requested up to 4096 tokens, but can only afford 1000.","code":402,"metadata":{"provider_name":null}},"user_id":"user_2abc"}"#,
            &k,
        );
        assert!(e.upstream.is_none());
        assert!(e.line().is_none());
        assert!(
            e.to_string()
                .starts_with("OpenRouter answered 402: This request requires more credits"),
            "{e}"
        );
        assert!(
            e.to_string()
                .ends_with("(out of credits, or the key's own limit)"),
            "{e}"
        );
        // No metadata at all, as before.
        let e = error_from_body(
            401,
            r#"{"error":{"code":401,"message":"User not found."}}"#,
            &k,
        );
        assert_eq!(
            e.to_string(),
            "OpenRouter answered 401: User not found. (the API key is wrong or disabled)"
        );
        // An HTML page: its title, not its markup.
        let e = error_from_body(
            502,
            "<!DOCTYPE html>\n<html><head><TITLE>502 Bad Gateway</TITLE></head><body><center>cloudflare</center></body></html>",
            &k,
        );
        assert_eq!(e.message, "an HTML page (\"502 Bad Gateway\")");
        assert!(e.line().is_none());
        assert_eq!(
            error_from_body(502, "<html>oops</html>", &k).message,
            "an HTML page"
        );
    }

    /// What a provider writes is bounded, on one line, and never carries a key: ours, another
    /// `sk-` key, or a credential of its own.
    #[test]
    fn a_providers_reason_is_bounded_printable_and_redacted() {
        let k = ApiKey::new("sk-or-v1-0123456789abcdef".into());
        let raw = format!(
            "bad key sk-or-v1-0123456789abcdef, or sk-ant-api03-ffffffffffffffffffff, or AIzaSyA1b2C3d4E5f6G7h8I9j0KlMnOpQrStUvW\n\x1b[31m{}",
            "and more ".repeat(600)
        );
        let body = serde_json::json!({"error": {"message": "Provider returned error", "code": 400, "metadata": {"raw": raw, "provider_name": "Evil\u{1b}[2J Provider\nX"}}});
        let e = error_from_body(400, &body.to_string(), &k);
        let u = e.upstream.clone().unwrap();
        let reason = u.reason.unwrap();
        assert!(
            reason.starts_with("bad key <redacted>, or <redacted>, or <redacted> [31mand more and"),
            "{reason}"
        );
        assert_eq!(reason.chars().count(), REASON_CHARS + 1, "cut with …");
        assert_eq!(u.provider.as_deref(), Some("Evil [2J Provider X"));
        for text in [e.to_string(), e.line().unwrap()] {
            assert!(
                !text.contains("0123456789abcdef") && !text.contains("fffff"),
                "{text}"
            );
            assert!(
                !text.contains("AIza") && !text.contains('\x1b') && !text.contains('\n'),
                "{text}"
            );
        }
        // Ordinary words, model ids and URLs are kept.
        assert_eq!(
            mask_tokens("anthropic/claude-3-5-sonnet-20241022 at https://openrouter.ai/settings/integrations"),
            "anthropic/claude-3-5-sonnet-20241022 at https://openrouter.ai/settings/integrations"
        );
    }

    /// `/key` and `/generation` are OpenRouter's: another host is never asked, so it never gets
    /// a key for them (a listener that sees no connection).
    #[tokio::test]
    async fn openrouter_only_calls_never_reach_another_host() {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.set_nonblocking(true).unwrap();
        let c = Client::new(
            &format!("http://{}/v1", l.local_addr().unwrap()),
            "r",
            Duration::from_secs(5),
        );
        let k = ApiKey::new("sk-or-v1-0123456789abcdef".into());
        let e = c.key_info(&k, Duration::from_secs(5)).await.unwrap_err();
        assert!(e.message.contains("/key is OpenRouter's"), "{e}");
        let e = c.generation(&k, "gen-1").await.unwrap_err();
        assert!(e.message.contains("/generation is OpenRouter's"), "{e}");
        assert!(
            !e.maybe_sent && Why::of(&e).is_none(),
            "final, never retried: {e:?}"
        );
        let mgmt = c
            .create_key(
                &k,
                &super::super::keys::NewKey {
                    name: "frugal: p",
                    limit: Some(1.0),
                    limit_reset: None,
                },
            )
            .await
            .unwrap_err();
        assert!(
            mgmt.message.contains("base_url is not OpenRouter"),
            "{mgmt}"
        );
        assert!(c.get_key(&k, "h").await.is_err());
        assert!(c.patch_key(&k, "h", serde_json::json!({})).await.is_err());
        assert_eq!(
            l.accept().map_err(|e| e.kind()).err(),
            Some(std::io::ErrorKind::WouldBlock),
            "a connection was made"
        );
    }

    #[test]
    fn one_line_fits_its_cells() {
        assert_eq!(one_line("frugal: short", 68), "frugal: short");
        let cut = one_line(&format!("frugal: {}", "a ".repeat(100)), 68);
        assert!(cut.chars().count() <= 68 && cut.ends_with('…'), "{cut}");
        // Wide characters take two cells.
        let wide = one_line(&format!("frugal: {}", "模".repeat(40)), 68);
        assert_eq!(wide, format!("frugal: {}…", "模".repeat(29)));
    }

    #[test]
    fn a_524_may_have_been_billed() {
        let k = ApiKey::new("sk-x".into());
        assert!(error_from_body(524, "<html>timeout</html>", &k).maybe_sent);
        assert!(!error_from_body(502, "", &k).maybe_sent);
        assert_eq!(
            media_type("Text/Event-Stream; charset=utf-8"),
            "text/event-stream"
        );
    }
}
