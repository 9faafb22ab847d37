//! What the user is told, below every module that tells it: a notification's [`Level`], a
//! [`Notice`] at one, and a request's [`Failure`] with its [`Reason`]. A leaf, so that settings, the gate and the
//! protocol word failures alike without importing one another.

use serde::Serialize;

/// A notification's importance, as `vim.notify` shows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Level {
    Info,
    Warn,
    Error,
}

/// A message with its level.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Notice {
    pub level: Level,
    pub message: String,
}

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
    /// The ledger cannot be read or written: corrupt, locked too long, read-only.
    Ledger,
}

/// Why an edit ended without hunks.
#[derive(Debug, Clone, PartialEq)]
pub struct Failure {
    pub reason: Reason,
    /// The whole text (the `User` event's data, the log).
    pub message: String,
    /// The one-line notification (`frugal: …`, at most 68 cells), when `message` is not one;
    /// the shim shows `message` otherwise.
    pub line: Option<String>,
    /// An answer that was paid for but gave nothing to show: its cost, and its text when it
    /// held no SEARCH/REPLACE block (the shim opens it in a float).
    pub paid: Option<Paid>,
}

/// What a failed request still cost, and the answer that was not used.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Paid {
    pub cost_usd: Option<f64>,
    /// `cost_usd` as frugal shows money.
    pub cost_text: Option<String>,
    /// The model's text, when none of it could be shown as a hunk.
    pub answer: Option<String>,
}

impl Failure {
    pub fn new(reason: Reason, message: String) -> Self {
        Failure {
            reason,
            message,
            line: None,
            paid: None,
        }
    }

    /// With what the answer cost and, when it held no block, its text.
    pub fn with_paid(mut self, paid: Paid) -> Self {
        self.paid = Some(paid);
        self
    }

    /// With a one-line notification of its own (`None` keeps the message as the line).
    pub fn with_line(mut self, line: impl Into<Option<String>>) -> Self {
        self.line = line.into();
        self
    }
}
