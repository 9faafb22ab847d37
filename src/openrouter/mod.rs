//! OpenRouter's chat-completions API, as `shared/OPENROUTER.md` describes it.

pub mod catalogue;
pub mod client;
pub mod keys;
pub mod provider;
pub mod sse;

/// Which kind of server `base_url` names: decided by the settings, which own `base_url`.
pub use crate::settings::Endpoint;
pub use client::{ApiError, ChatRequest, ChatStream, Client, Limits, Message};
pub use sse::{ChatEvent, StreamCut, Usage};
