//! One edit: `run.rs` drives it (prompt → gate → streamed answer → blocks → hunks); the pure
//! parts — the prompt, the SEARCH/REPLACE parser and the matcher — are apart, tested without
//! Neovim or a network.

pub mod blocks;
pub mod locate;
pub mod prompt;
mod run;

pub use run::run;
