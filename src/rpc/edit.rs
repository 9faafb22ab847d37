//! `edit`: start an edit (an [`Edit`] job of the runner) in a task of its own. One request per
//! buffer is the shim's decision (lua/frugal/request.lua), taken there only: it also sees the
//! buffers an edit's hunks go to, which this side does not.

use super::wire::{Accepted, Answer};
use crate::edit::request::EditRequest;
use crate::edit::Edit;
use crate::gate::Gate;
use crate::protocol::ProtocolError;
use crate::runner::{self, Ctx};
use crate::services::InFlight;
use std::sync::Arc;

pub(super) fn start(
    gate: Gate,
    inflight: &Arc<InFlight>,
    req: EditRequest,
) -> Result<Answer, ProtocolError> {
    tracing::info!(edit = req.id, buf = req.buf, file = %req.file, lines = req.lines.len(), "edit");
    runner::start(Ctx::new(gate, inflight.clone()), Edit::new(req));
    Ok(Answer::Accepted(Accepted {}))
}
