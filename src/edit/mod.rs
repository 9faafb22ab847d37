//! One edit: `job.rs` is its [`crate::runner::Job`] (prompt → blocks placed as the answer
//! streams → hunks → `done`), `placing.rs` places the blocks off the runtime's thread; the pure
//! parts — the prompt, the SEARCH/REPLACE parser and the matcher — are apart, tested without
//! Neovim or a network.

pub mod apply;
pub mod blocks;
pub mod diff;
pub mod files;
pub mod instructions;
mod job;
pub mod locate;
mod placing;
pub mod plan;
pub mod prompt;
pub mod request;
pub mod wording;

pub(crate) use job::told_size;
pub use job::Edit;

/// The property tests' settings: `PROPTEST_CASES` cases (128 by default; the long run before a
/// release uses far more).
#[cfg(test)]
fn props_config() -> proptest::prelude::ProptestConfig {
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(128);
    proptest::prelude::ProptestConfig {
        cases,
        ..Default::default()
    }
}
