//! `:LlmUsage` and `frugal usage`: the spend report. Rust builds it (text, highlights and the
//! same figures as data); the shim only puts the lines in a float.
//!
//! One module per step:
//! - [`report`]: what to report on, and the figures read from the ledger ([`build`]);
//! - [`layout`]: the float's lines and highlight ranges (building blocks in [`text`]);
//! - [`json`]: the same figures as data, typed; its documentation is the shape that
//!   `frugal usage --json` prints and Neovim receives;
//! - [`cli`]: `frugal usage` in a terminal.

pub mod cli;
pub mod json;
pub mod layout;
pub mod report;
pub mod text;

pub use layout::{hl, BAR_WIDTH, DEFAULT_WIDTH};
pub use report::{
    build, FileStatus, FootprintFactors, KeyInfo, Report, ReportRequest, DEFAULT_WARN_AT_MILLI,
    SPARK_DAYS,
};

#[cfg(test)]
mod tests;
