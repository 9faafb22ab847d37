//! `:LlmReview`, LLM-as-a-judge: the judge model gives a verdict (`ok`, `risky`, `wrong`, with
//! a one-line reason) on every pending hunk of an edit. `job.rs` is its [`crate::runner::Job`]:
//! the runner drives it through the same gate as an edit (caps, reservation, settlement;
//! recorded as `kind = review`); the pure parts are apart: the prompt and the structured-output request ([`prompt`]), and the
//! tolerant reading of the answer ([`verdicts`]).

mod job;
pub mod prompt;
pub mod request;
pub mod verdicts;

pub use job::Review;
