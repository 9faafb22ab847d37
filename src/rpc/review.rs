//! `review`: start a review of an edit's pending hunks (`:LlmReview`, a [`Review`] job of the
//! runner) in a task of its own. It is registered in flight with the edits, so `cancel` stops
//! it. Whether its buffer is busy is decided once, by the shim (lua/frugal/request.lua), which
//! also sees the buffers an edit's hunks go to.

use super::wire::{Accepted, Answer};
use crate::gate::Gate;
use crate::protocol::ProtocolError;
use crate::review::request::ReviewRequest;
use crate::review::Review;
use crate::runner::{self, Ctx};
use crate::services::InFlight;
use std::sync::Arc;

pub(super) fn start(
    gate: Gate,
    inflight: &Arc<InFlight>,
    req: ReviewRequest,
) -> Result<Answer, ProtocolError> {
    runner::start(Ctx::new(gate, inflight.clone()), Review::new(req));
    Ok(Answer::Accepted(Accepted {}))
}
