//! OpenRouter's chat-completions API, as `shared/OPENROUTER.md` describes it.

pub mod catalogue;
pub mod client;
pub mod endpoint;
pub mod keys;
pub mod sse;

pub use client::{ApiError, ChatRequest, ChatStream, Client, Limits, Message};
pub use endpoint::Endpoint;
pub use sse::{ChatEvent, StreamCut, Usage};
