//! frugal: the backend of frugal.nvim. It speaks msgpack-RPC with its parent Neovim, streams
//! edits from OpenRouter, and keeps every request inside the project's budget.
//!
//! The data flow reads from the module names: `:LlmEdit` → [`rpc`] (decoded by [`protocol`])
//! → [`runner`] (with the [`edit`] job) → [`gate`] (policy, reservation in the [`budget`]
//! ledger) → [`openrouter`] → `edit::blocks` → `edit::locate` → hunks back to the shim. [`settings`] turns `setup()` and
//! `.frugal.toml` into what a request runs with, [`instructions`] reads the project's
//! instruction files (AGENTS.md…) for every prompt; [`usage`] builds `:LlmUsage`.

pub mod ask;
pub mod budget;
pub mod edit;
pub mod gate;
pub mod history;
pub mod message;
pub mod openrouter;
pub mod private;
pub mod protocol;
pub mod review;
pub mod rpc;
pub mod runner;
pub mod services;
pub mod settings;
pub mod stdio;
pub mod usage;
