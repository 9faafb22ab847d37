//! `cancel`: abort an edit or a review in flight (`:LlmCancel`).

use super::wire::{Accepted, Answer};
use crate::protocol::{Event, Reason};
use crate::services::{InFlight, Ui};
use serde::Deserialize;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Cancel {
    pub id: u64,
}

pub(super) fn cancel(inflight: &InFlight, ui: &Ui, c: Cancel) -> Answer {
    if let Some(buf) = inflight.cancel(c.id) {
        tracing::info!(edit = c.id, "cancelled");
        ui.send(Event::Failed {
            id: c.id,
            buf,
            reason: Reason::Cancelled,
            message: "cancelled; the buffer is unchanged".into(),
            line: None,
            cost_usd: None,
            cost_text: None,
            answer: None,
        });
    }
    Answer::Accepted(Accepted {})
}
