//! `choose`: the user's choice for a `question` event (the questions wait in [`Ui`]).

use super::wire::{Accepted, Answer};
use crate::services::Ui;
use serde::Deserialize;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChooseArgs {
    pub question: u64,
    /// 1-based; `None` when the user dismissed the question.
    #[serde(default)]
    pub choice: Option<usize>,
}

pub(super) fn choose(ui: &Ui, a: ChooseArgs) -> Answer {
    ui.questions.choose(a.question, a.choice);
    Answer::Accepted(Accepted {})
}
