//! `cancel`: abort an edit or a review in flight (`:LlmCancel`).

use super::wire::{Accepted, Answer};
use crate::protocol::{Event, Reason};
use crate::state::State;
use serde::Deserialize;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Cancel {
    pub id: u64,
}

pub(super) fn cancel(state: &State, c: Cancel) -> Answer {
    if let Some(buf) = state.cancel_edit(c.id) {
        tracing::info!(edit = c.id, "cancelled");
        state.send_ui(Event::Failed {
            id: c.id,
            buf,
            reason: Reason::Cancelled,
            message: "cancelled; the buffer is unchanged".into(),
            line: None,
        });
    }
    Answer::Accepted(Accepted {})
}
