//! Settings: the user's `setup()` (trusted) and a project's `.frugal.toml` (trusted only when
//! the user trusts it) → the settings a request runs with. The rules live here only: the shim
//! checks types and shape, and shows what this module decides.

pub mod bound;
pub mod effective;
pub mod endpoint;
pub mod keys;
pub mod paths;
pub mod prices;
pub mod project;
pub mod schema;
pub mod user;

pub use bound::BoundKey;
pub use effective::{Effective, EffectiveCaps, KeyChoice, UsedKey};
pub use endpoint::Endpoint;
pub use keys::{ApiKey, KeyCache, KeyError, KeySpec};
pub use project::{BudgetCaps, BudgetSpec, FileState, ProjectInput, ProjectSettings};
pub use user::{Config, FootprintSpec, LogLevel};
