//! frugal: the backend of frugal.nvim. It speaks msgpack-RPC with its parent Neovim, streams
//! edits from OpenRouter, and keeps every request inside the project's budget.

pub mod budget;
pub mod config;
pub mod edit;
pub mod gate;
pub mod openrouter;
pub mod project;
pub mod rpc;
pub mod state;
pub mod ui;
pub mod usage;
pub mod usage_rpc;
