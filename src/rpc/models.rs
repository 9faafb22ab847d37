//! `models`: the catalogue for `:LlmModel`, filtered by the project's allow-list. Never waits
//! on the network: without any catalogue at hand it answers `pending` and sends the list later
//! as a `models` event with the caller's `token`.

use super::wire::Answer;
use crate::openrouter::catalogue::Catalogue;
use crate::protocol::{Event, ModelEntry, ModelList, ProtocolError};
use crate::services::{Settings, Ui};
use crate::settings::ProjectInput;
use crate::settings::{project, Effective, ProjectSettings};
use serde::Deserialize;
use std::sync::Arc;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelsArgs {
    #[serde(default)]
    pub project: Option<ProjectInput>,
    #[serde(default)]
    pub token: u64,
    /// The id `:LlmModel <id>` names: when the catalogue lacks it, the closest are suggested.
    #[serde(default)]
    pub id: Option<String>,
}

pub(super) async fn models(
    settings_in_force: &Settings,
    catalogue: &Arc<crate::services::Catalogue>,
    ui: &Arc<Ui>,
    args: ModelsArgs,
) -> Result<Answer, ProtocolError> {
    let settings = match args.project.as_ref().map(|p| p.settings()).transpose() {
        Ok(s) => s.unwrap_or_default(),
        Err(e) => return Err(ProtocolError::Refused(e.to_string())),
    };
    let model = Effective::resolve(&settings_in_force.config(), &settings, None).model;
    if let Some(cat) = catalogue.at_hand().await {
        return Ok(Answer::Models(model_list(
            &cat,
            &settings,
            model,
            args.id.as_deref(),
        )));
    }
    let pending = ModelList {
        pending: true,
        ..ModelList::none(model.clone())
    };
    let (catalogue, ui) = (catalogue.clone(), ui.clone());
    let (token, id) = (args.token, args.id);
    tokio::spawn(async move {
        let list = match catalogue.get().await {
            Some(cat) => model_list(&cat, &settings, model, id.as_deref()),
            None => ModelList {
                message: Some("the model catalogue could not be fetched (offline, or base_url wrong?) and none is cached yet".into()),
                ..ModelList::none(model)
            },
        };
        ui.send(Event::Models { token, list });
    });
    Ok(Answer::Models(pending))
}

impl ModelList {
    /// No list (yet).
    fn none(model: String) -> Self {
        ModelList {
            ok: false,
            models: None,
            filtered: false,
            model,
            pending: false,
            message: None,
            suggestions: Vec::new(),
        }
    }
}

/// A list price as the picker shows it, per million tokens: two decimals, more where two
/// would hide a non-zero price.
pub(super) fn price_text(p: crate::budget::Price) -> String {
    let per_m = |u: crate::budget::Usd| crate::budget::Usd(u.0.saturating_mul(1_000_000)).text(2);
    format!(
        "{} in / {} out per M tokens",
        per_m(p.prompt),
        per_m(p.completion)
    )
}

/// The picker's list: plain catalogue prices per million tokens; with `id` not listed, the
/// ids closest to it (the same suggestion as an edit's refusal).
fn model_list(
    cat: &Catalogue,
    settings: &ProjectSettings,
    model: String,
    id: Option<&str>,
) -> ModelList {
    let suggestions = match id {
        Some(id) if cat.get(id).is_none() => cat.suggest(id, std::time::SystemTime::now()),
        _ => Vec::new(),
    };
    let allow = settings.allow.as_ref();
    let per_m = |u: crate::budget::Usd| u.to_f64() * 1_000_000.0;
    let models = cat
        .models
        .iter()
        .filter(|m| allow.is_none_or(|a| project::allowed(&m.id, a)))
        .map(|m| ModelEntry {
            id: m.id.clone(),
            name: m.name.clone(),
            priced: m.list_price.is_some(),
            free: m.list_price.is_some_and(|p| p.is_free()),
            prompt_per_m: m.list_price.map(|p| per_m(p.prompt)),
            completion_per_m: m.list_price.map(|p| per_m(p.completion)),
            price_text: m.list_price.map(price_text),
        })
        .collect();
    ModelList {
        ok: true,
        models: Some(models),
        filtered: allow.is_some(),
        model,
        pending: false,
        message: None,
        suggestions,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::budget::Price;

    #[test]
    fn prices_per_million_never_read_zero() {
        let text = |prompt: &str, completion: &str| {
            price_text(Price::from_catalogue(prompt, completion, "0").unwrap())
        };
        assert_eq!(
            text("0.000003", "0.000015"),
            "$3.00 in / $15.00 out per M tokens"
        );
        assert_eq!(
            text("0.0000004", "0.000002"),
            "$0.40 in / $2.00 out per M tokens"
        );
        // $0.001 and $0.0004 per million tokens: "$0.00" would read as free.
        assert_eq!(
            text("0.000000001", "0.0000000004"),
            "$0.001 in / $0.0004 out per M tokens"
        );
        assert_eq!(text("0", "0.000001"), "$0.00 in / $1.00 out per M tokens");
    }
}
