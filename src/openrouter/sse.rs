//! Decoding the streamed answer: SSE framing by `eventsource-stream` (comments such as
//! `: OPENROUTER PROCESSING` are dropped there, and events split across reads are reassembled),
//! and OpenRouter's chunk JSON into [`ChatEvent`]s here.

use eventsource_stream::Eventsource;
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
    /// The answer ended for this reason (`stop`, `length`, …).
    Finish(String),
    /// The usage chunk: tokens and the authoritative cost.
    Usage(Usage),
    /// An error reported inside the stream, after it started.
    Error { code: String, message: String },
    /// `data: [DONE]`.
    Done,
}

#[derive(Debug, Clone, PartialEq, Default, Deserialize)]
pub struct Usage {
    #[serde(default)]
    pub prompt_tokens: u64,
    #[serde(default)]
    pub completion_tokens: u64,
    /// USD actually charged. Absent on some OpenAI-compatible endpoints.
    #[serde(default)]
    pub cost: Option<f64>,
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
    #[serde(default)]
    delta: Option<Delta>,
    #[serde(default)]
    finish_reason: Option<String>,
}

#[derive(Deserialize)]
struct Delta {
    #[serde(default)]
    content: Option<String>,
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
        out.push(ChatEvent::Error {
            code,
            message: err.message,
        });
        return;
    }
    // The usage chunk has `choices: []`: iterate, never index.
    for choice in chunk.choices {
        if let Some(text) = choice.delta.and_then(|d| d.content) {
            if !text.is_empty() {
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

/// Turns a byte stream (split anywhere) into chat events. A transport error ends the stream with
/// an [`ChatEvent::Error`] of code `transport`.
pub fn decode<S, B, E>(bytes: S) -> impl Stream<Item = ChatEvent>
where
    S: Stream<Item = Result<B, E>> + Send + 'static,
    B: AsRef<[u8]> + Send,
    E: std::fmt::Display + Send,
{
    let mut seen_id = false;
    bytes
        .eventsource()
        .map(move |ev| {
            let mut out = Vec::new();
            match ev {
                Ok(ev) => interpret(&ev.data, &mut seen_id, &mut out),
                Err(e) => out.push(ChatEvent::Error {
                    code: "transport".into(),
                    message: e.to_string(),
                }),
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
        let s = futures::stream::iter(pieces.into_iter().map(Ok::<_, std::io::Error>));
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
                cost: Some(0.00095),
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

    #[test]
    fn numeric_error_code_and_garbage_chunk() {
        let s = "data: {\"error\":{\"code\":502,\"message\":\"bad\"}}\n\ndata: {not json\n\n";
        let got = run(vec![s.as_bytes().to_vec()]);
        assert!(matches!(&got[0], ChatEvent::Error { code, .. } if code == "502"));
        assert!(matches!(&got[1], ChatEvent::Error { code, .. } if code == "bad_chunk"));
    }
}
