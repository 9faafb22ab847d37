//! `health`, for `:checkhealth frugal`: the ledger, the endpoint, the project file's validity,
//! and the warnings about `setup()`.

use crate::openrouter::catalogue::Catalogue;
use crate::openrouter::Endpoint;
use crate::protocol::{HealthArgs, HealthReply, KeyCheck, Notice};
use crate::settings::KeySpec;
use crate::state::State;
use std::sync::Arc;
use std::time::Duration;

/// How long the endpoint may take to answer before it is reported unreachable.
const ENDPOINT_TIMEOUT: Duration = Duration::from_secs(5);

pub(super) async fn health(
    state: &Arc<State>,
    args: HealthArgs,
    warnings: Vec<Notice>,
) -> HealthReply {
    let cfg = state.config();
    let ledger = state.ledger(|l, _| l.request_count()).await;
    let client = state.client();
    let endpoint = match tokio::time::timeout(ENDPOINT_TIMEOUT, client.models()).await {
        Ok(Ok(body)) => match Catalogue::parse(&body) {
            Ok(c) => Ok(format!(
                "{} answered: {} models in the catalogue ({})",
                cfg.base_url,
                c.models.len(),
                match Endpoint::of(&cfg.base_url) {
                    Endpoint::OpenRouter => "OpenRouter: requests carry provider routing, max_price always under a cap",
                    Endpoint::Plain => "not OpenRouter: plain requests, no provider routing or max_price; under a cap every model needs a price in this catalogue",
                }
            )),
            Err(e) => Err(format!("{} answered, but {e}", cfg.base_url)),
        },
        Ok(Err(e)) => Err(e.to_string()),
        Err(_) => Err(format!(
            "{} did not answer within {} s",
            cfg.base_url,
            ENDPOINT_TIMEOUT.as_secs()
        )),
    };
    let project_error = args
        .project
        .and_then(|p| p.settings().err())
        .map(|e| e.to_string());
    let (ledger_rows, ledger_error) = match ledger {
        Ok(n) => (Some(n), None),
        Err(e) => (None, Some(e.to_string())),
    };
    HealthReply {
        version: env!("CARGO_PKG_VERSION"),
        ledger_path: cfg.ledger_path().display().to_string(),
        ledger_rows,
        ledger_error,
        endpoint_ok: endpoint.is_ok(),
        endpoint: endpoint.unwrap_or_else(|e| e),
        project_error,
        warnings,
        keys: std::iter::once(("api_key".to_string(), &cfg.api_key))
            .chain({
                let mut named: Vec<_> = cfg
                    .keys
                    .iter()
                    .map(|(n, s)| (format!("keys.{n}"), s))
                    .collect();
                named.sort_by(|a, b| a.0.cmp(&b.0));
                named
            })
            .map(|(label, spec)| key_check(&label, spec))
            .collect(),
    }
}

/// Is the key there? An `env:` key is looked up in the backend's environment (what requests
/// will use); a `cmd:` key is not run here.
fn key_check(label: &str, spec: &KeySpec) -> KeyCheck {
    if let Some(name) = spec.env_name() {
        return match std::env::var(name) {
            Ok(v) if !v.trim().is_empty() => KeyCheck {
                state: "ok",
                message: format!("{label}: environment variable {name} is set (value not shown)"),
                advice: None,
            },
            _ => KeyCheck {
                state: "error",
                message: format!("{label}: environment variable {name} is not set"),
                advice: Some(format!("export {name}=sk-or-v1-… before starting Neovim")),
            },
        };
    }
    match spec.check() {
        Ok(()) => KeyCheck {
            state: "info",
            message: format!("{label}: read from a command when first needed"),
            advice: None,
        },
        Err(e) => KeyCheck {
            state: "error",
            message: format!("{label}: {e}"),
            advice: None,
        },
    }
}
