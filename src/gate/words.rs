//! How a failed request is worded for the user: a 401 with where its key came from, a 404 or
//! 503 explained, the retries given up. Pure: the attempt step picks which, this says it.

use super::retry::{self, Retries, Stop, Why};
use super::ProjectCtx;
use crate::message::{Failure, Reason};
use crate::openrouter::{ApiError, ChatRequest};
use crate::settings::KeySpec;

/// No more retries: what failed, and why frugal stopped.
pub(super) fn gave_up(e: &ApiError, why: Why, stop: Stop, retries: &Retries) -> String {
    let billed = if why.unbilled() {
        ""
    } else {
        "; it may have been billed: it counts in full until OpenRouter says what it cost"
    };
    match stop {
        Stop::TooLong(w) => format!(
            "{e}{billed}; OpenRouter asks to wait {}, longer than frugal waits ({}): try again then",
            retry::human(w),
            retry::human(retry::MAX_WAIT)
        ),
        Stop::Exhausted if why == Why::RateLimited => format!(
            "{e}; gave up after {} retries: try again in a minute",
            retries.done()
        ),
        Stop::Exhausted => format!("{e}{billed}; gave up after {} retries", retries.done()),
    }
}

/// The failure of `e`, worded `message`. When the message starts with a provider's own reason
/// (see [`ApiError::line`]), the notification is its one line; the whole text stays in the
/// event and the log.
pub(super) fn http_failure(e: &ApiError, message: String) -> Failure {
    tracing::info!("failed: {message}");
    let line = e.line().filter(|_| message.starts_with(&e.to_string()));
    Failure::new(Reason::Http, message).with_line(line)
}

/// A final failure, explained. A 503 is a routing refusal: no provider of the model met what
/// the request's `provider` object asks for. A 404 is most often a model the endpoint does
/// not serve (a model id in `prices` or `model` misspelt for this server).
pub(super) fn explain(e: &ApiError, request: &ChatRequest, base_url: &str) -> String {
    if e.status == Some(404) {
        let base_url = crate::openrouter::client::without_credentials(base_url);
        return format!(
            "{base_url} answered 404 for model {} ({}): it does not serve that model id. Check the id (setup model / prices, :LlmModel) against what the endpoint lists; nothing was charged",
            request.model, e.message
        );
    }
    if e.status != Some(503) {
        return e.to_string();
    }
    let mut why = Vec::new();
    if let Some(p) = &request.provider {
        if p.max_price.is_some() {
            why.push("provider.max_price (the catalogue price: no dearer provider; setup max_price = false lifts it where no cap applies)".to_string());
        }
        if let Some(dc) = &p.data_collection {
            why.push(format!(
                "data_collection = \"{dc}\" ([privacy] in .frugal.toml)"
            ));
        }
        if p.require_parameters {
            why.push("require_parameters (only providers that honour max_tokens)".to_string());
        }
    }
    if why.is_empty() {
        return format!("{e}: the endpoint is unavailable; try again later");
    }
    format!(
        "OpenRouter answered 503: {}: no provider of {} meets this request's routing requirements: {}. Pick another model (:LlmModel) or relax them; nothing was charged",
        e.message,
        request.model,
        why.join(", ")
    )
}

/// A 401, with where the key came from and how to fix it — never the key, nor a `cmd:` text.
pub(super) fn unauthorized(e: &ApiError, spec: &KeySpec, project: &ProjectCtx) -> String {
    let name = project.settings.key_name.as_deref();
    let (what, fix) = match (name, spec.env_name()) {
        (None, Some(var)) => (
            format!("the key in the environment variable {var} (setup api_key)"),
            format!("export a valid key as {var} and restart Neovim"),
        ),
        (None, None) if spec.is_none() => (
            "a request without a key (setup api_key = false)".to_string(),
            "set setup({ api_key = \"env:NAME\" }) to this endpoint's key".to_string(),
        ),
        (None, None) => (
            "the key printed by the api_key command (setup api_key = \"cmd:…\")".to_string(),
            "check what the command prints; it runs again for the next request".to_string(),
        ),
        (Some(n), Some(var)) => (
            format!(
                "the named key \"{n}\" (key = \"{n}\" in {}; setup keys.{n} = \"env:{var}\")",
                project.file
            ),
            format!("export a valid key as {var} and restart Neovim"),
        ),
        (Some(n), None) => (
            format!(
                "the named key \"{n}\" (key = \"{n}\" in {}), printed by its command (setup keys.{n} = \"cmd:…\")",
                project.file
            ),
            "check what the command prints; it runs again for the next request".to_string(),
        ),
    };
    format!(
        "OpenRouter refused {what} (401: {}): it is wrong, disabled or deleted. To fix it, {fix}. Nothing was charged",
        e.message
    )
}
