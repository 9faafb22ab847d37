//! OpenRouter's chat-completions API, as `shared/OPENROUTER.md` describes it.

pub mod catalogue;
pub mod client;
pub mod sse;

pub use client::{ApiError, ChatRequest, Client, Message};
pub use sse::{ChatEvent, Usage};
