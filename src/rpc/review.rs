//! `review`: start a review of an edit's pending hunks (`:LlmReview`) in a task of its own.
//! It is registered with the edits in flight, so `cancel` stops it. Whether its buffer is busy
//! is decided once, by the shim (lua/frugal/request.lua), which also sees the buffers an edit's
//! hunks go to.

use super::wire::{Accepted, Answer};
use crate::protocol::{Event, ProtocolError, Reason};
use crate::review::request::ReviewRequest;
use crate::state::State;
use std::sync::Arc;

pub(super) fn start(state: &Arc<State>, req: ReviewRequest) -> Result<Answer, ProtocolError> {
    let (id, buf) = (req.id, req.buf);
    let task = tokio::spawn({
        let state = state.clone();
        async move {
            // Yield once so `start_edit` below has run.
            tokio::task::yield_now().await;
            crate::review::run(state, req).await
        }
    });
    state.start_edit(id, buf, task.abort_handle());
    // A panic (a bug) still ends the review for the user, as for an edit.
    let state = state.clone();
    tokio::spawn(async move {
        if let Err(e) = task.await {
            if e.is_panic() && state.finish_edit(id).is_some() {
                tracing::error!(review = id, "the review failed with an internal error: {e}");
                state.send_ui(Event::Failed {
                    id,
                    buf,
                    reason: Reason::Stream,
                    message: "an internal error ended this review (a bug in frugal; the log has the details)".into(),
                    line: None,
                });
            }
        }
    });
    Ok(Answer::Accepted(Accepted {}))
}
