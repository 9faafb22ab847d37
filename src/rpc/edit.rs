//! `edit`: start an edit in a task of its own. One request per buffer is the shim's decision
//! (lua/frugal/request.lua), taken there only: it also sees the buffers an edit's hunks go to,
//! which this side does not.

use super::wire::{Accepted, Answer};
use crate::edit;
use crate::edit::request::EditRequest;
use crate::gate::Gate;
use crate::protocol::{Event, ProtocolError, Reason};
use crate::services::InFlight;
use std::sync::Arc;

pub(super) fn start(
    gate: Gate,
    inflight: &Arc<InFlight>,
    req: EditRequest,
) -> Result<Answer, ProtocolError> {
    tracing::info!(edit = req.id, buf = req.buf, file = %req.file, lines = req.lines.len(), "edit");
    let (id, buf) = (req.id, req.buf);
    // Registered before the task can finish, so a quick failure cannot race the insert.
    let ui = gate.ui.clone();
    let task = tokio::spawn({
        let inflight = inflight.clone();
        async move {
            // Yield once so `start` below has run.
            tokio::task::yield_now().await;
            edit::run(gate, inflight, req).await
        }
    });
    inflight.start(id, buf, task.abort_handle());
    // A panic in the edit (a bug) must still end the edit for the user: nothing applied, the
    // event fired, the buffer free again. (Its ticket was dropped while unwinding, which
    // releases or reconciles the reservation.) An abort is `cancel`'s, which already said so.
    let inflight = inflight.clone();
    tokio::spawn(async move {
        if let Err(e) = task.await {
            if e.is_panic() && inflight.finish(id).is_some() {
                tracing::error!(edit = id, "the edit failed with an internal error: {e}");
                ui.send(Event::Failed {
                    id,
                    buf,
                    reason: Reason::Stream,
                    message: "an internal error ended this edit (a bug in frugal; the log has the details): nothing was applied".into(),
                    line: None,
                });
            }
        }
    });
    Ok(Answer::Accepted(Accepted {}))
}
