//! One edit: `run.rs` drives it (prompt → gate → streamed answer → blocks → hunks); the pure
//! parts — the prompt, the SEARCH/REPLACE parser and the matcher — are apart, tested without
//! Neovim or a network.

pub mod blocks;
pub mod files;
pub mod locate;
pub mod plan;
pub mod prompt;
pub mod request;
mod run;
pub mod stream;
pub mod wording;

pub(crate) use run::project_ctx;
pub use run::run;

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
