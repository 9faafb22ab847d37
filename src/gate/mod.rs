//! The one door every request to the model goes through. Nothing else in the backend talks to
//! the chat endpoint, so the checks made here — key, model allow-list, price, caps, and the
//! reservation in the ledger — cannot be bypassed.
//!
//! `policy` decides (pure), `ticket` holds the reservation until it is settled, released or
//! reconciled (`reconcile`), `warn` tells the user when spend nears a cap; [`send`] runs them
//! in order.

pub mod policy;
pub mod reconcile;
pub mod ticket;
mod warn;

pub use policy::{effective_caps, CapsError, EffectiveCaps};
pub use reconcile::{reconcile, reconcile_orphans};
pub use ticket::Ticket;

use crate::budget::Price;
use crate::openrouter::{ChatEvent, ChatRequest};
use crate::protocol::{Failure, Level, Reason};
use crate::settings::{FileState, ProjectSettings};
use crate::state::State;
use futures::Stream;
use std::sync::Arc;
use ticket::Reserved;

/// The project a request is charged to, after the trust rules.
#[derive(Debug, Clone)]
pub struct ProjectCtx {
    /// Canonical root: the ledger's project key.
    pub root: String,
    /// Path of its `.frugal.toml` (whether or not it exists).
    pub file: String,
    pub file_state: FileState,
    /// Settings from a trusted, valid file (defaults otherwise).
    pub settings: ProjectSettings,
}

/// A request about to leave.
pub struct Outbound {
    pub project: ProjectCtx,
    pub request: ChatRequest,
    /// Upper bound on the prompt's tokens (see `edit::prompt::prompt_token_bound`).
    pub prompt_bound: u64,
}

/// A request that was let through and answered with a stream.
pub struct Sent<S> {
    pub stream: S,
    pub ticket: Ticket,
    /// The model's price, when known (for the running cost).
    pub price: Option<Price>,
    /// The `max_tokens` actually sent.
    pub max_tokens: u32,
}

impl From<policy::Refusal> for Failure {
    fn from(r: policy::Refusal) -> Self {
        let reason = if r.is_budget() {
            Reason::Budget
        } else {
            Reason::Config
        };
        Failure::new(reason, r.to_string())
    }
}

/// Checks, prices and reserves the request, then sends it: policy → key → catalogue → ledger →
/// chat endpoint. Every refusal on the way says that nothing was sent.
pub async fn send(
    state: &Arc<State>,
    mut out: Outbound,
) -> Result<Sent<impl Stream<Item = ChatEvent>>, Failure> {
    let cfg = state.config();
    let p = &out.project;
    let setup = policy::check_setup(&cfg, p)?;
    let key = setup
        .key()
        .resolve()
        .await
        .map_err(|e| Failure::new(Reason::Config, e.to_string()))?;
    let admission = setup.admit(p, &out.request.model, out.request.max_tokens)?;
    // Price from the catalogue (fetched only once the cheap checks passed).
    let catalogue = state.catalogue().await;
    let plan = admission.price(catalogue.as_deref())?;
    let model = plan.model.clone();

    // Reserve the worst case; refuse or lower max_tokens when a cap would be crossed.
    let reserved = Ticket::reserve(state, key.clone(), &p.root, &plan, out.prompt_bound)
        .await
        // The ledger could not be used: not a budget refusal, and the message says what to do.
        .map_err(|e| Failure::new(Reason::Ledger, format!("{e}; nothing was sent")))?;
    let Reserved {
        mut ticket,
        max_tokens,
        lowered_from,
    } = match reserved {
        Err(r) => {
            // Point at where this cap was set: the project file, or the user's setup().
            let file = plan.caps.set_in_file(r.cap).then_some(p.file.as_str());
            tracing::info!(project = %p.root, %model, "refused: {r}");
            return Err(Failure::new(
                Reason::Budget,
                format!("refused, nothing sent: {}", r.message(file)),
            ));
        }
        Ok(reserved) => reserved,
    };
    if let Some(from) = lowered_from {
        state.notify(
            Level::Info,
            format!(
                "max_tokens lowered from {from} to {max_tokens} so the answer fits the budget (worst case {})",
                ticket.reserved()
            ),
        );
    }
    out.request.max_tokens = max_tokens;
    if let Some(provider) = plan.provider {
        out.request.provider = Some(provider);
    }

    tracing::info!(project = %p.root, %model, max_tokens, reserved = %ticket.reserved(), "sending chat request");
    ticket.mark_sent();
    match state.client().stream_chat(&key, &out.request).await {
        Ok((generation_id, stream)) => {
            if let Some(g) = generation_id {
                ticket.set_generation_id(&g).await;
            }
            Ok(Sent {
                stream,
                ticket,
                price: plan.price,
                max_tokens,
            })
        }
        Err(e) if !e.maybe_sent => {
            // Refused with a status, or never connected: nothing was generated or billed.
            ticket.release();
            Err(Failure::new(Reason::Http, e.to_string()))
        }
        Err(e) => {
            // Sent, but no answer: it may be billed. The ticket's drop keeps the reservation
            // counted (reconciled when a generation id is known).
            drop(ticket);
            Err(Failure::new(Reason::Http, e.to_string()))
        }
    }
}
