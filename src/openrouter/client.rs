//! HTTP to OpenRouter (or any OpenAI-compatible endpoint): one streamed chat completion.

use super::sse::{self, ChatEvent, StreamCut};
use crate::settings::ApiKey;
use futures::stream::BoxStream;
use futures::{Stream, StreamExt};
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

mod errors;
mod manage;
mod request;

pub(in crate::openrouter) use errors::transport_error;
use errors::*;
pub use errors::{
    error_from_body, for_message, one_line, redact, retry_after, without_credentials, ApiError,
    Upstream, LINE_CELLS,
};
pub(in crate::openrouter) use manage::with_key;
pub use manage::{Generation, KeyData};
pub use request::{ChatRequest, Message, StreamOptions, MAX_CACHE_BREAKPOINTS};

#[derive(Clone)]
pub struct Client {
    pub(super) http: reqwest::Client,
    pub(super) base_url: String,
    referer: String,
    /// Attribution headers, key management, `/key` and `/generation` go to OpenRouter only.
    pub(super) endpoint: super::Endpoint,
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
