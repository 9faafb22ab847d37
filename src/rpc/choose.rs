//! `choose`: the user's choice for a `question` event (the questions wait in [`Ui`]). A choice
//! given after the question's time ran out is answered `{ expired = true }`: the backend knows
//! the deadline passed, the shim (which holds the instruction) decides what a late answer does.

use super::wire::Answer;
use crate::services::{Choice, Ui};
use serde::{Deserialize, Serialize};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChooseArgs {
    pub question: u64,
    /// 1-based; `None` when the user dismissed the question.
    #[serde(default)]
    pub choice: Option<usize>,
}

/// The reply: `{}`, or `{ expired = true }` when the question had run out of time.
#[derive(Debug, Clone, Serialize)]
pub struct ChooseReply {
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub expired: bool,
}

pub(super) fn choose(ui: &Ui, a: ChooseArgs) -> Answer {
    let expired = ui.questions.choose(a.question, a.choice) == Choice::Expired;
    Answer::Choice(ChooseReply { expired })
}
