//! Request shaping: the body of `POST /chat/completions` and its messages, with the prompt
//! caching marks where the model takes them.

#[allow(unused_imports)]
use super::*;
use serde::Serialize;

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
    pub provider: Option<crate::openrouter::provider::Provider>,
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
