//! `apply`: an answer's SEARCH/REPLACE blocks proposed as hunks (`:LlmApply`), with no request
//! to the model: placed off the runtime's thread, reported through `hunk` events and `done`
//! (cost 0) or `failed` (see [`crate::edit::apply`]).

use super::wire::{Accepted, Answer};
use crate::edit::apply::{self, ApplyRequest};
use crate::services::{Settings, Ui};
use std::sync::Arc;

pub(super) fn start(settings: &Settings, ui: &Arc<Ui>, req: ApplyRequest) -> Answer {
    let limit = settings.config().max_context_bytes;
    let ui = ui.clone();
    tokio::task::spawn_blocking(move || {
        let last = apply::apply(&ui, &req, limit);
        ui.send(last);
    });
    Answer::Accepted(Accepted {})
}
