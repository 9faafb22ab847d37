//! `health`, for `:checkhealth frugal`: the ledger, the endpoint, the project file's validity,
//! and the warnings about `setup()`.

use crate::openrouter::catalogue::Catalogue;
use crate::protocol::{HealthArgs, HealthReply, Notice};
use crate::state::State;
use std::sync::Arc;
use std::time::Duration;

/// How long the endpoint may take to answer before it is reported unreachable.
const ENDPOINT_TIMEOUT: Duration = Duration::from_secs(5);

pub(super) async fn health(state: &Arc<State>, args: HealthArgs, warnings: Vec<Notice>) -> HealthReply {
    let cfg = state.config();
    let ledger = state
        .ledger(|l, _| {
            l.connection()
                .query_row("SELECT COUNT(*) FROM requests", [], |r| r.get::<_, i64>(0))
                .map_err(Into::into)
        })
        .await;
    let client = state.client();
    let endpoint = match tokio::time::timeout(ENDPOINT_TIMEOUT, client.models()).await {
        Ok(Ok(body)) => match Catalogue::parse(&body) {
            Ok(c) => Ok(format!(
                "{} answered: {} models in the catalogue",
                cfg.base_url,
                c.models.len()
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
        Err(e) => (None, Some(e)),
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
    }
}
