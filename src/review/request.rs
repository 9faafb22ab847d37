//! What the shim sends for `:LlmReview` (the `review` call's parameters, decoded by
//! `rpc/wire.rs`): the job's input, kept beside the pipeline that runs it.

use crate::protocol::{decode, ProtocolError};
use crate::settings::ProjectInput;
use rmpv::Value;
use serde::Deserialize;

/// What the shim sends for `:LlmReview`: the edit's instruction and its pending hunks.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReviewRequest {
    /// Chosen by the shim from the counter its edits use: unique among edits and reviews.
    pub id: u64,
    pub buf: i64,
    /// The instruction of the edit that proposed the hunks.
    pub instruction: String,
    /// The buffer's filetype (the fences' language).
    #[serde(default)]
    pub filetype: String,
    pub project: ProjectInput,
    /// Every pending hunk of the edit. The judge sees them by the numbers their labels show
    /// (`number`; by path, then line, from 1 when not every hunk has a distinct one); the
    /// verdicts come back in the order sent here.
    pub hunks: Vec<ReviewHunk>,
    /// The worst case (USD) a confirmation showed when its "Send" came after the deadline
    /// (see `EditRequest::confirmed_usd`).
    #[serde(default)]
    pub confirmed_usd: Option<f64>,
}

/// One pending hunk, where it is now.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReviewHunk {
    /// The file's path relative to the project root.
    pub path: String,
    /// 1-based line of the first old line in the buffer now.
    pub line: usize,
    /// The hunk's number k in its edit, as its label shows it (`frugal k/N`).
    #[serde(default)]
    pub number: Option<usize>,
    /// The original lines the hunk replaces.
    pub old: Vec<String>,
    /// The proposed lines.
    pub new: Vec<String>,
    /// A few unchanged lines just above and below, for context.
    #[serde(default)]
    pub before: Vec<String>,
    #[serde(default)]
    pub after: Vec<String>,
}

impl ReviewRequest {
    /// Decodes the shim's map; a review of nothing is refused.
    pub fn decode(v: Value) -> Result<ReviewRequest, ProtocolError> {
        let req: ReviewRequest = decode("review", v)?;
        if req.hunks.is_empty() {
            return Err(ProtocolError::Refused(
                "no pending hunk to review in this buffer: :LlmEdit first".into(),
            ));
        }
        if req.hunks.iter().any(|h| h.line == 0) {
            return Err(ProtocolError::Malformed {
                method: "review",
                message: "hunk lines are 1-based".into(),
            });
        }
        Ok(req)
    }
}
