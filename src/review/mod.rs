//! `:LlmReview`, LLM-as-a-judge: the judge model gives a verdict (`ok`, `risky`, `wrong`, with
//! a one-line reason) on every pending hunk of an edit. `run.rs` drives it through the same
//! gate as an edit (caps, reservation, settlement; recorded as `kind = review`); the pure
//! parts are apart: the prompt and the structured-output request ([`prompt`]), and the
//! tolerant reading of the answer ([`verdicts`]).

pub mod prompt;
pub mod request;
mod run;
pub mod verdicts;

pub use run::run;
