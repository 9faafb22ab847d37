//! `outcome`: what became of hunks an edit proposed (sent by the shim as a notification, in a
//! batch): recorded in the ledger's `hunk_outcomes` against each edit's row.

use super::wire::{Accepted, Answer};
use crate::budget::{HunkFate, Outcome, RequestId};
use crate::protocol::ProtocolError;
use crate::services::Settings;
use serde::Deserialize;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OutcomeArgs {
    pub outcomes: Vec<OutcomeItem>,
}

/// One hunk's fate: `request` is the edit's ledger row (the `request` of its `done`), `hunk`
/// its number in that edit (1-based, answer order).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OutcomeItem {
    pub request: i64,
    pub hunk: u32,
    pub fate: String,
}

/// Records the outcomes; a fate the ledger does not know is refused, the rest recorded.
pub(super) async fn outcome(settings: &Settings, a: OutcomeArgs) -> Result<Answer, ProtocolError> {
    let mut outcomes = Vec::with_capacity(a.outcomes.len());
    for o in a.outcomes {
        let Some(fate) = HunkFate::parse(&o.fate) else {
            return Err(ProtocolError::Refused(format!(
                "unknown hunk fate {:?}: nothing recorded",
                o.fate
            )));
        };
        outcomes.push(Outcome {
            request: RequestId(o.request),
            hunk: o.hunk,
            fate,
        });
    }
    let n = outcomes.len();
    match settings
        .with_ledger(move |l, c| l.record_outcomes(&outcomes, c))
        .await
    {
        Ok(written) => tracing::debug!(outcomes = n, written, "hunk outcomes"),
        // The edit itself went well: a lost outcome only skews `:LlmUsage`'s shares.
        Err(e) => tracing::warn!("recording {n} hunk outcomes: {e}"),
    }
    Ok(Answer::Accepted(Accepted {}))
}

#[cfg(test)]
mod tests {
    use super::super::wire::Call;
    use rmpv::Value;

    fn params(fate: &str) -> Value {
        let item = Value::Map(vec![
            ("request".into(), 3.into()),
            ("hunk".into(), 1.into()),
            ("fate".into(), fate.into()),
        ]);
        Value::Map(vec![("outcomes".into(), Value::Array(vec![item]))])
    }

    #[test]
    fn outcomes_decode_and_a_stray_field_is_refused() {
        let Ok(Call::Outcome(a)) = Call::decode("outcome", params("accepted")) else {
            panic!("not an outcome call")
        };
        assert_eq!((a.outcomes[0].request, a.outcomes[0].hunk), (3, 1));
        let mut bad = params("accepted");
        if let Value::Map(m) = &mut bad {
            m.push(("extra".into(), 1.into()));
        }
        assert!(Call::decode("outcome", bad).is_err());
    }
}
