//! What the backend tells the shim, and the failure reasons of `User FrugalEditFailed`.

use serde::Serialize;

/// `reason` of `User FrugalEditFailed` (SPEC.md fixes these names).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Reason {
    Budget,
    Http,
    Stream,
    Cancelled,
    NoMatch,
    Config,
}

/// Why an edit ended without hunks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    pub reason: Reason,
    pub message: String,
}

impl Failure {
    pub fn new(reason: Reason, message: String) -> Self {
        Failure { reason, message }
    }
}

/// Messages to the shim, delivered in order through `require("frugal.edit")._on(ev)`.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum UiEvent {
    /// Batched progress (a few per second).
    Progress {
        id: u64,
        buf: i64,
        tokens: u64,
        elapsed_ms: u64,
        cost_usd: Option<f64>,
        phase: &'static str,
    },
    /// One located block, ready to preview. Rows are 0-based, `end` exclusive, as they were in
    /// the lines the shim sent; `old` is those lines, so the shim can re-anchor after edits.
    Hunk {
        id: u64,
        buf: i64,
        index: usize,
        start: usize,
        end: usize,
        old: Vec<String>,
        new: Vec<String>,
        title: String,
    },
    Done {
        id: u64,
        buf: i64,
        hunks: usize,
        cost_usd: Option<f64>,
        model: String,
        /// Titles of blocks that matched nowhere.
        unmatched: Vec<String>,
        tokens: u64,
        elapsed_ms: u64,
    },
    Failed {
        id: u64,
        buf: i64,
        reason: Reason,
        message: String,
    },
    /// A newer `:LlmUsage` report for the window that asked with `token`.
    Usage {
        token: u64,
        report: serde_json::Value,
    },
    /// The `:LlmModel` list that was not at hand when asked for.
    Models { token: u64, list: serde_json::Value },
    /// The statusline text of a project.
    Status { root: String, text: String },
    /// A message for `vim.notify` (levels as `vim.log.levels`: 2 info, 3 warn, 4 error).
    Notify { level: u8, message: String },
}
