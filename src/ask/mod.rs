//! `:LlmAsk`: a question about the code, answered in Markdown and streamed into the ask buffer
//! (`frugal://ask/<tab>`). `job.rs` is its [`crate::runner::Job`] (recorded as `kind = ask`,
//! priced, capped and confirmed like an edit); the request reuses the edit's shape (its lines,
//! context files, earlier turns) and its prompt reuses the edit's stable part (context files
//! and the project's instructions), with a system prompt of its own ([`prompt`]).

mod job;
pub mod prompt;
pub mod request;

pub use job::Ask;
