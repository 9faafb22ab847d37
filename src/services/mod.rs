//! What the backend holds between requests, as narrow services, each behind an `Arc` and
//! handed only to the code that uses it (mini-redis's `Db`, five times over):
//!
//! - [`Settings`]: the config in force, its client and ledger slot; the clock and the
//!   background writes the process waits for ([`LedgerHandle`] is what a ticket keeps);
//! - [`Catalogue`]: the model listing of the endpoint in force (cache, refresh, warm-up) and
//!   what the session learnt of its prices and leaving models;
//! - [`Keys`]: the API keys of the session and their `GET /key` figures, per endpoint;
//! - [`InFlight`]: every request running now, of any kind, for `cancel`;
//! - [`Ui`]: events to Neovim, and the [`Questions`] waiting on the user.
//!
//! [`Services`] bundles them once, in `main.rs`; handlers take the fields they use.

pub mod catalogue;
pub mod history;
pub mod inflight;
pub mod keys;
pub mod ledger;
mod question;
pub mod settings;
pub mod ui;

pub use catalogue::Catalogue;
pub use inflight::InFlight;
pub use keys::Keys;
pub use ledger::{Background, LedgerHandle, LedgerRunError, LedgerSlot};
#[cfg(test)]
pub(crate) use question::next_question;
pub use question::{About, Choice, Questions};
pub use settings::{Settings, Snapshot};
pub use ui::Ui;

use crate::protocol::Event;
use std::sync::Arc;
use tokio::sync::mpsc::UnboundedSender;

/// Every service, built once; each handler destructures what it uses.
#[derive(Clone)]
pub struct Services {
    pub settings: Arc<Settings>,
    pub catalogue: Arc<Catalogue>,
    pub keys: Arc<Keys>,
    pub inflight: Arc<InFlight>,
    pub ui: Arc<Ui>,
}

impl Services {
    /// The services of a process whose events go to `ui`.
    pub fn new(ui: UnboundedSender<Event>) -> Self {
        let settings = Arc::new(Settings::default());
        let ui = Arc::new(Ui::new(ui));
        Services {
            catalogue: Arc::new(Catalogue::new(settings.clone(), ui.clone())),
            settings,
            keys: Arc::default(),
            inflight: Arc::default(),
            ui,
        }
    }
}
