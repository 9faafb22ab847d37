//! Decoding the streamed answer: SSE framing (comments such as `: OPENROUTER PROCESSING`
//! dropped, events split anywhere across reads reassembled, LF, CRLF or CR line ends), and
//! OpenRouter's chunk JSON into [`ChatEvent`]s.
//!
//! The framing is done here, in one pass over each byte, rather than by a crate: the one we
//! used re-parsed its whole buffer on every read, so one long line cost time quadratic in its
//! length. What reaches the framer is already bounded (see `client::Limits`), so the line and
//! event it holds are too.

use futures::{Stream, StreamExt};
use serde::Deserialize;

/// What one SSE event of a chat stream means to us.
#[derive(Debug, Clone, PartialEq)]
pub enum ChatEvent {
    /// The generation id (first chunk that names it).
    Id(String),
    /// The model that actually ran (fallbacks may differ from the one asked).
    Model(String),
    /// A piece of the answer's text.
    Text(String),
    /// A piece of the model's reasoning (`delta.reasoning` / `delta.reasoning_details`): it
    /// is thinking. Its text is not part of the answer and is not kept.
    Reasoning,
    /// The answer ended for this reason (`stop`, `length`, …).
    Finish(String),
    /// A chunk's usage: tokens and the authoritative cost. Several chunks may carry one (the
    /// error chunk among them, just before its [`ChatEvent::Error`]); the last is the final
    /// figure.
    Usage(Usage),
    /// An error reported inside the stream, after it started.
    Error { code: String, message: String },
    /// `data: [DONE]`.
    Done,
    /// The stream stopped without its end: frugal's bounds cut it, or the connection broke.
    Broken(StreamCut),
}

/// Why an answer's stream stopped before its end, as frugal saw it. The connection is closed by
/// then: the body was dropped.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StreamCut {
    /// More bytes than any answer of `max_tokens` tokens needs (`client::Limits::body_bytes`).
    #[error("the answer passed {}, the most frugal reads for max_tokens = {max_tokens} ({max_tokens} × 1 KiB + 1 MiB), without ending, so the connection was closed: the endpoint does not honour max_tokens (check base_url, or pick another model)", mib(*limit))]
    TooLong { limit: u64, max_tokens: u32 },
    /// Nothing at all (not even a keep-alive comment) for `stall_timeout_s`.
    #[error("nothing arrived for {secs} s (stall_timeout_s), so the connection was closed: try again, or raise stall_timeout_s for a slow model")]
    Stalled { secs: u64 },
    #[error("the connection broke: {0}")]
    Transport(String),
}

/// `1.1 MiB`.
pub fn mib(bytes: u64) -> String {
    format!("{:.1} MiB", bytes as f64 / (1u64 << 20) as f64)
}

#[derive(Debug, Clone, PartialEq, Default, Deserialize)]
pub struct Usage {
    #[serde(default)]
    pub prompt_tokens: u64,
    #[serde(default)]
    pub completion_tokens: u64,
    /// USD actually charged, read as the decimal written (never through `f64`). Absent on
    /// some OpenAI-compatible endpoints.
    #[serde(default, deserialize_with = "crate::budget::wire_usd")]
    pub cost: Option<crate::budget::Usd>,
    #[serde(default)]
    pub prompt_tokens_details: Option<PromptDetails>,
    #[serde(default)]
    pub completion_tokens_details: Option<CompletionDetails>,
}

#[derive(Debug, Clone, PartialEq, Default, Deserialize)]
pub struct PromptDetails {
    #[serde(default)]
    pub cached_tokens: Option<u64>,
}

#[derive(Debug, Clone, PartialEq, Default, Deserialize)]
pub struct CompletionDetails {
    #[serde(default)]
    pub reasoning_tokens: Option<u64>,
}

#[derive(Deserialize)]
struct Chunk {
    #[serde(default)]
    id: Option<String>,
    #[serde(default)]
    model: Option<String>,
    #[serde(default)]
    choices: Vec<Choice>,
    #[serde(default)]
    usage: Option<Usage>,
    #[serde(default)]
    error: Option<StreamError>,
}

#[derive(Deserialize)]
struct Choice {
    /// `message` in a whole (non-streamed) completion.
    #[serde(default, alias = "message")]
    delta: Option<Delta>,
    #[serde(default)]
    finish_reason: Option<String>,
}

#[derive(Deserialize)]
struct Delta {
    #[serde(default)]
    content: Option<String>,
    #[serde(default)]
    reasoning: Present,
    #[serde(default)]
    reasoning_details: Present,
}

/// Whether a field holds anything (a non-empty string, array or object), read without copying
/// it: reasoning text can be as long as the answer, and only its presence matters.
#[derive(Default)]
struct Present(bool);

impl<'de> Deserialize<'de> for Present {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Present, D::Error> {
        use serde::de::{IgnoredAny, MapAccess, SeqAccess, Visitor};
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Present;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("any JSON value")
            }
            fn visit_str<E>(self, v: &str) -> Result<Present, E> {
                Ok(Present(!v.is_empty()))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Present, A::Error> {
                let mut any = false;
                while seq.next_element::<IgnoredAny>()?.is_some() {
                    any = true;
                }
                Ok(Present(any))
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Present, A::Error> {
                let mut any = false;
                while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {
                    any = true;
                }
                Ok(Present(any))
            }
            fn visit_unit<E>(self) -> Result<Present, E> {
                Ok(Present(false))
            }
            fn visit_bool<E>(self, _: bool) -> Result<Present, E> {
                Ok(Present(false))
            }
            fn visit_i64<E>(self, _: i64) -> Result<Present, E> {
                Ok(Present(false))
            }
            fn visit_u64<E>(self, _: u64) -> Result<Present, E> {
                Ok(Present(false))
            }
            fn visit_f64<E>(self, _: f64) -> Result<Present, E> {
                Ok(Present(false))
            }
        }
        d.deserialize_any(V)
    }
}

#[derive(Deserialize)]
struct StreamError {
    #[serde(default)]
    code: serde_json::Value,
    #[serde(default)]
    message: String,
}

/// Interprets one SSE `data` payload. Unknown or malformed JSON yields an error event rather than
/// a panic: a provider's odd chunk must not take the backend down.
pub fn interpret(data: &str, seen_id: &mut bool, out: &mut Vec<ChatEvent>) {
    let data = data.trim();
    if data == "[DONE]" {
        out.push(ChatEvent::Done);
        return;
    }
    if data.is_empty() {
        return;
    }
    let chunk: Chunk = match serde_json::from_str(data) {
        Ok(c) => c,
        Err(e) => {
            out.push(ChatEvent::Error {
                code: "bad_chunk".into(),
                message: format!("unreadable stream chunk: {e}"),
            });
            return;
        }
    };
    if !*seen_id {
        if let Some(id) = chunk.id.filter(|id| !id.is_empty()) {
            *seen_id = true;
            out.push(ChatEvent::Id(id));
            if let Some(m) = chunk.model.filter(|m| !m.is_empty()) {
                out.push(ChatEvent::Model(m));
            }
        }
    }
    if let Some(err) = chunk.error {
        let code = match err.code {
            serde_json::Value::String(s) => s,
            serde_json::Value::Null => "error".into(),
            other => other.to_string(),
        };
        // OpenRouter's error chunk carries what was billed until then: its usage comes first,
        // so the reader settles with it before it fails.
        if let Some(usage) = chunk.usage {
            out.push(ChatEvent::Usage(usage));
        }
        out.push(ChatEvent::Error {
            code,
            message: err.message,
        });
        return;
    }
    // The usage chunk has `choices: []`: iterate, never index.
    for choice in chunk.choices {
        if let Some(delta) = choice.delta {
            if delta.reasoning.0 || delta.reasoning_details.0 {
                out.push(ChatEvent::Reasoning);
            }
            if let Some(text) = delta.content.filter(|t| !t.is_empty()) {
                out.push(ChatEvent::Text(text));
            }
        }
        if let Some(reason) = choice.finish_reason {
            out.push(ChatEvent::Finish(reason));
        }
    }
    if let Some(usage) = chunk.usage {
        out.push(ChatEvent::Usage(usage));
    }
}

/// SSE framing, one byte at a time in effect (a line is scanned once, whatever the reads).
#[derive(Default)]
struct Framer {
    /// The line so far.
    line: Vec<u8>,
    /// The event's data so far (`data:` lines joined by LF), when it has any.
    data: Option<String>,
    /// The last byte was a CR: an LF right after it ends nothing more.
    after_cr: bool,
    /// A first line was seen (a byte-order mark may only start the stream).
    started: bool,
}

const BOM: &[u8] = b"\xEF\xBB\xBF";

impl Framer {
    /// Feeds bytes; each event completed by them has its data pushed to `out`.
    fn push(&mut self, mut bytes: &[u8], out: &mut Vec<Result<String, String>>) {
        while !bytes.is_empty() {
            if std::mem::take(&mut self.after_cr) && bytes[0] == b'\n' {
                bytes = &bytes[1..];
                continue;
            }
            match bytes.iter().position(|&b| b == b'\n' || b == b'\r') {
                None => {
                    self.line.extend_from_slice(bytes);
                    return;
                }
                Some(i) => {
                    self.line.extend_from_slice(&bytes[..i]);
                    self.after_cr = bytes[i] == b'\r';
                    bytes = &bytes[i + 1..];
                    self.end_line(out);
                }
            }
        }
    }

    fn end_line(&mut self, out: &mut Vec<Result<String, String>>) {
        let line = std::mem::take(&mut self.line);
        let mut l = &line[..];
        if !std::mem::replace(&mut self.started, true) {
            l = l.strip_prefix(BOM).unwrap_or(l);
        }
        if l.is_empty() {
            if let Some(data) = self.data.take() {
                out.push(Ok(data));
            }
            return;
        }
        if l[0] == b':' {
            return; // a comment
        }
        let (name, value) = match l.iter().position(|&b| b == b':') {
            Some(i) => {
                let v = &l[i + 1..];
                (&l[..i], v.strip_prefix(b" ").unwrap_or(v))
            }
            None => (l, &[][..]),
        };
        // `event`, `id` and `retry` mean nothing to a chat stream.
        if name != b"data" {
            return;
        }
        match std::str::from_utf8(value) {
            Ok(v) => {
                // Each data line ends with an LF; the event's last one is dropped on dispatch.
                let data = self.data.get_or_insert_with(String::new);
                data.push_str(v);
                data.push('\n');
            }
            Err(_) => out.push(Err("the stream is not valid UTF-8".into())),
        }
    }
}

/// Turns a byte stream (split anywhere) into chat events. An error of the byte stream (a bound,
/// a broken connection) ends the events with [`ChatEvent::Broken`].
pub fn decode<S, B>(bytes: S) -> impl Stream<Item = ChatEvent>
where
    S: Stream<Item = Result<B, StreamCut>> + Send + 'static,
    B: AsRef<[u8]> + Send,
{
    let mut framer = Framer::default();
    let mut seen_id = false;
    bytes
        .map(move |item| {
            let mut out = Vec::new();
            match item {
                Ok(b) => {
                    let mut datas = Vec::new();
                    framer.push(b.as_ref(), &mut datas);
                    for d in datas {
                        match d {
                            Ok(mut data) => {
                                data.pop(); // the LF after the last data line
                                interpret(&data, &mut seen_id, &mut out)
                            }
                            Err(message) => out.push(ChatEvent::Error {
                                code: "bad_chunk".into(),
                                message,
                            }),
                        }
                    }
                }
                Err(cut) => out.push(ChatEvent::Broken(cut)),
            }
            futures::stream::iter(out)
        })
        .flatten()
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE: &str = ": OPENROUTER PROCESSING\n\n\
data: {\"id\":\"gen-1\",\"provider\":\"OpenAI\",\"model\":\"openai/gpt-4o\",\"object\":\"chat.completion.chunk\",\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\",\"content\":\"Hé\"},\"finish_reason\":null}]}\n\n\
: keep-alive\n\n\
data: {\"id\":\"gen-1\",\"object\":\"chat.completion.chunk\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"llo ✓\"},\"finish_reason\":null}]}\n\n\
data: {\"id\":\"gen-1\",\"object\":\"chat.completion.chunk\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"\"},\"finish_reason\":\"stop\"}]}\n\n\
data: {\"id\":\"gen-1\",\"object\":\"chat.completion.chunk\",\"choices\":[],\"usage\":{\"prompt_tokens\":194,\"completion_tokens\":2,\"total_tokens\":196,\"cost\":0.00095,\"prompt_tokens_details\":{\"cached_tokens\":3},\"completion_tokens_details\":{\"reasoning_tokens\":0}}}\n\n\
data: [DONE]\n\n";

    fn run(pieces: Vec<Vec<u8>>) -> Vec<ChatEvent> {
        let s = futures::stream::iter(pieces.into_iter().map(Ok::<_, StreamCut>));
        futures::executor::block_on(decode(s).collect::<Vec<_>>())
    }

    fn expected() -> Vec<ChatEvent> {
        vec![
            ChatEvent::Id("gen-1".into()),
            ChatEvent::Model("openai/gpt-4o".into()),
            ChatEvent::Text("Hé".into()),
            ChatEvent::Text("llo ✓".into()),
            ChatEvent::Finish("stop".into()),
            ChatEvent::Usage(Usage {
                prompt_tokens: 194,
                completion_tokens: 2,
                cost: Some(crate::budget::Usd(950_000_000)),
                prompt_tokens_details: Some(PromptDetails {
                    cached_tokens: Some(3),
                }),
                completion_tokens_details: Some(CompletionDetails {
                    reasoning_tokens: Some(0),
                }),
            }),
            ChatEvent::Done,
        ]
    }

    #[test]
    fn whole_stream() {
        assert_eq!(run(vec![SAMPLE.as_bytes().to_vec()]), expected());
    }

    #[test]
    fn every_split_point_including_inside_utf8() {
        let bytes = SAMPLE.as_bytes();
        for i in 0..=bytes.len() {
            let got = run(vec![bytes[..i].to_vec(), bytes[i..].to_vec()]);
            assert_eq!(got, expected(), "split at byte {i}");
        }
    }

    #[test]
    fn one_byte_at_a_time() {
        let pieces = SAMPLE.bytes().map(|b| vec![b]).collect();
        assert_eq!(run(pieces), expected());
    }

    #[test]
    fn crlf_framing() {
        let crlf = SAMPLE.replace('\n', "\r\n");
        assert_eq!(run(vec![crlf.as_bytes().to_vec()]), expected());
        let pieces = crlf.bytes().map(|b| vec![b]).collect();
        assert_eq!(run(pieces), expected());
    }

    #[test]
    fn mid_stream_error_chunk() {
        let s = "data: {\"id\":\"gen-2\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"x\"}}]}\n\n\
data: {\"id\":\"gen-2\",\"object\":\"chat.completion.chunk\",\"error\":{\"code\":\"server_error\",\"message\":\"Provider disconnected unexpectedly\"},\"choices\":[{\"index\":0,\"delta\":{\"content\":\"\"},\"finish_reason\":\"error\"}]}\n\n";
        let got = run(vec![s.as_bytes().to_vec()]);
        assert_eq!(
            got,
            vec![
                ChatEvent::Id("gen-2".into()),
                ChatEvent::Text("x".into()),
                ChatEvent::Error {
                    code: "server_error".into(),
                    message: "Provider disconnected unexpectedly".into()
                }
            ]
        );
    }

    /// As recorded: an integer code, finish_reason null, a full usage with cost. The usage
    /// comes before the error, so the reader can settle with it.
    #[test]
    fn a_recorded_error_chunk_gives_its_usage_then_the_error() {
        let s = "data: {\"id\":\"gen-3\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"x\"},\"finish_reason\":\"length\"}]}\n\n\
data: {\"id\":\"gen-3\",\"error\":{\"code\":400,\"message\":\"Provider returned error\"},\"choices\":[{\"index\":0,\"delta\":{\"content\":\"\"},\"finish_reason\":null}],\"usage\":{\"prompt_tokens\":9,\"completion_tokens\":3,\"cost\":0.0123}}\n\n";
        let got = run(vec![s.as_bytes().to_vec()]);
        assert_eq!(got.len(), 5, "{got:?}");
        assert_eq!(got[2], ChatEvent::Finish("length".into()));
        assert!(
            matches!(&got[3], ChatEvent::Usage(u) if u.completion_tokens == 3),
            "{got:?}"
        );
        assert!(matches!(&got[4], ChatEvent::Error { code, .. } if code == "400"));
    }

    /// `usage.cost` is read as the decimal the wire wrote, never through a float: float noise
    /// (`…0000005`) is not rounded away one picodollar low.
    #[test]
    fn usage_cost_is_read_as_written() {
        let mut out = Vec::new();
        interpret(
            r#"{"choices":[],"usage":{"prompt_tokens":1,"completion_tokens":1,"cost":0.0076509169000000005}}"#,
            &mut true,
            &mut out,
        );
        let ChatEvent::Usage(u) = &out[0] else {
            panic!("{out:?}")
        };
        assert_eq!(u.cost, Some(crate::budget::Usd(7_650_916_901)));
    }

    #[test]
    fn numeric_error_code_and_garbage_chunk() {
        let s = "data: {\"error\":{\"code\":502,\"message\":\"bad\"}}\n\ndata: {not json\n\n";
        let got = run(vec![s.as_bytes().to_vec()]);
        assert!(matches!(&got[0], ChatEvent::Error { code, .. } if code == "502"));
        assert!(matches!(&got[1], ChatEvent::Error { code, .. } if code == "bad_chunk"));
    }

    #[test]
    fn cr_line_ends_bom_and_fields_other_than_data() {
        // Lone CRs end lines too, and a CR then LF is one line end even when split apart.
        let cr = format!("\u{FEFF}event: x\rid: 7\r{}", SAMPLE.replace('\n', "\r"));
        assert_eq!(run(vec![cr.as_bytes().to_vec()]), expected());
        let bytes = cr.as_bytes();
        for i in 0..=bytes.len() {
            let got = run(vec![bytes[..i].to_vec(), bytes[i..].to_vec()]);
            assert_eq!(got, expected(), "split at byte {i}");
        }
    }

    #[test]
    fn data_lines_join_and_a_trailing_event_without_blank_line_is_dropped() {
        let s = "data: {\"id\":\"g\",\ndata: \"choices\":[{\"delta\":{\"content\":\"a\"}}]}\n\ndata: [DONE]";
        assert_eq!(
            run(vec![s.as_bytes().to_vec()]),
            vec![ChatEvent::Id("g".into()), ChatEvent::Text("a".into())]
        );
    }

    #[test]
    fn a_long_line_in_many_pieces_is_one_event() {
        let text = "é".repeat(200_000);
        let s = chunk_line(&text);
        let pieces: Vec<Vec<u8>> = s.as_bytes().chunks(7).map(<[u8]>::to_vec).collect();
        assert_eq!(run(pieces), vec![ChatEvent::Text(text)]);
    }

    fn chunk_line(content: &str) -> String {
        let v = serde_json::json!({"choices": [{"delta": {"content": content}}]});
        format!("data: {v}\n\n")
    }

    #[test]
    fn reasoning_is_noticed_and_not_kept() {
        let line = |delta: serde_json::Value| {
            format!(
                "data: {}\n\n",
                serde_json::json!({"choices": [{"delta": delta}]})
            )
        };
        let s = [
            line(serde_json::json!({"role": "assistant", "content": "", "reasoning": "Let me \"see\"…"})),
            line(serde_json::json!({"content": null, "reasoning": null, "reasoning_details": [
                {"type": "reasoning.text", "text": "more", "format": "anthropic-claude-v1", "index": 0}
            ]})),
            line(serde_json::json!({"reasoning_details": [{"type": "reasoning.encrypted", "data": "xyz"}]})),
            // Empty or null reasoning is nothing; the answer's text comes as before.
            line(serde_json::json!({"content": "<<<", "reasoning": "", "reasoning_details": []})),
            line(serde_json::json!({"content": "x", "reasoning": 3})),
        ]
        .concat();
        assert_eq!(
            run(vec![s.into_bytes()]),
            vec![
                ChatEvent::Reasoning,
                ChatEvent::Reasoning,
                ChatEvent::Reasoning,
                ChatEvent::Text("<<<".into()),
                ChatEvent::Text("x".into()),
            ]
        );
        // A whole completion's message may carry its reasoning too.
        let mut out = Vec::new();
        let whole =
            r#"{"choices":[{"message":{"role":"assistant","content":"a","reasoning":"r"}}]}"#;
        interpret(whole, &mut true, &mut out);
        assert_eq!(out, vec![ChatEvent::Reasoning, ChatEvent::Text("a".into())]);
    }

    #[test]
    fn invalid_utf8_and_a_cut_are_reported() {
        let mut bytes = b"data: {\"x\": \"".to_vec();
        bytes.extend_from_slice(&[0xff, 0xfe]);
        bytes.extend_from_slice(b"\"}\n\n");
        let got = run(vec![bytes]);
        assert!(matches!(&got[0], ChatEvent::Error { code, .. } if code == "bad_chunk"));
        let s = futures::stream::iter(vec![
            Ok(chunk_line("a").into_bytes()),
            Err(StreamCut::Stalled { secs: 60 }),
        ]);
        let got = futures::executor::block_on(decode(s).collect::<Vec<_>>());
        assert_eq!(
            got,
            vec![
                ChatEvent::Text("a".into()),
                ChatEvent::Broken(StreamCut::Stalled { secs: 60 })
            ]
        );
        let m = StreamCut::TooLong {
            limit: 100 * 1024 + (1 << 20),
            max_tokens: 100,
        }
        .to_string();
        assert!(
            m.contains("1.1 MiB") && m.contains("max_tokens = 100"),
            "{m}"
        );
    }
}
