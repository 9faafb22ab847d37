//! `:LlmHistory`: past edits, asks and reviews of a project. The text lives in the
//! conversation [`store`] (`history.sqlite3` beside the ledger); the listing joins the ledger's
//! rows of the project (kind, model, state, cost) with it ([`listing`]); the runner writes a
//! request's conversation when it ends (`runner/record.rs`).

pub mod listing;
pub mod store;

pub use store::{Conversation, Store, StoreError, Turn, HISTORY_FILE};

/// What a job says of its conversation when it ends (see `Job::transcript`): the turns, the
/// last one's answer as far as it came, and the names of the files sent with it.
#[derive(Debug, Clone, Default)]
pub struct Transcript {
    pub turns: Vec<Turn>,
    /// Context and instruction files, by name (never their text).
    pub files: Vec<String>,
}
