//! `ask`: start a question (`:LlmAsk`, an [`Ask`] job of the runner) in a task of its own:
//! priced, capped, confirmed and recorded (`kind = ask`) like an edit; `cancel` stops it.

use super::wire::{Accepted, Answer};
use crate::ask::request::AskRequest;
use crate::ask::Ask;
use crate::gate::Gate;
use crate::protocol::ProtocolError;
use crate::runner::{self, Ctx};
use crate::services::InFlight;
use std::sync::Arc;

pub(super) fn start(
    gate: Gate,
    inflight: &Arc<InFlight>,
    req: AskRequest,
) -> Result<Answer, ProtocolError> {
    runner::start(Ctx::new(gate, inflight.clone()), Ask::new(req));
    Ok(Answer::Accepted(Accepted {}))
}
