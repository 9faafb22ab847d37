//! The one door every request to the model goes through. Nothing else in the backend talks to
//! the chat endpoint, so the checks made here — key, model allow-list, price, caps, and the
//! reservation in the ledger — cannot be bypassed.
//!
//! `policy` decides (pure), `ticket` holds the reservation until it is settled, released or
//! reconciled (`reconcile`), `retry` says when a failed attempt is tried again, `warn` tells
//! the user when spend nears a cap; [`send`] runs them in order.

pub mod policy;
pub mod reconcile;
pub mod retry;
pub mod ticket;
mod warn;

pub use policy::{effective_caps, CapsError, EffectiveCaps};
pub use reconcile::{reconcile, reconcile_orphans};
pub use ticket::Ticket;

use crate::budget::Price;
use crate::openrouter::{ApiError, ChatEvent, ChatRequest, Limits};
use crate::protocol::{Failure, Level, Reason};
use crate::settings::{FileState, KeySpec, ProjectSettings};
use crate::state::State;
use futures::stream::BoxStream;
use retry::{Retries, Stop, Why};
use std::sync::Arc;
use std::time::Duration;
use ticket::Reserved;

/// The project a request is charged to, after the trust rules.
#[derive(Debug, Clone)]
pub struct ProjectCtx {
    /// Canonical root: the ledger's project key.
    pub root: String,
    /// Path of its `.frugal.toml` (whether or not it exists).
    pub file: String,
    pub file_state: FileState,
    /// Settings from a trusted, valid file (defaults otherwise).
    pub settings: ProjectSettings,
}

/// A request about to leave.
pub struct Outbound {
    pub project: ProjectCtx,
    pub request: ChatRequest,
    /// Upper bound on the prompt's tokens (see `edit::prompt::prompt_token_bound`).
    pub prompt_bound: u64,
    /// Tells the user about a wait before a retry ("rate limited, retrying in 4 s (2/3)").
    pub on_retry: Box<dyn Fn(String) + Send + Sync>,
}

/// A request that was let through and answered with a stream.
pub struct Sent<S> {
    pub stream: S,
    pub ticket: Ticket,
    /// The model's price, when known (for the running cost).
    pub price: Option<Price>,
    /// The `max_tokens` actually sent.
    pub max_tokens: u32,
}

impl From<policy::Refusal> for Failure {
    fn from(r: policy::Refusal) -> Self {
        let reason = if r.is_budget() {
            Reason::Budget
        } else {
            Reason::Config
        };
        Failure::new(reason, r.to_string())
    }
}

/// Checks, prices and reserves the request, then sends it: policy → key → catalogue → ledger →
/// chat endpoint. Every refusal on the way says that nothing was sent.
///
/// A failed attempt is retried as [`retry`] says: under the same reservation when nothing was
/// billed (the ticket is unsent while waiting, so a cancel then releases it), through this
/// whole gate again when the attempt may have been billed (its reservation is kept until
/// reconciled, and the caps must allow a new one).
pub async fn send(
    state: &Arc<State>,
    mut out: Outbound,
) -> Result<Sent<BoxStream<'static, ChatEvent>>, Failure> {
    let asked_max_tokens = out.request.max_tokens;
    let mut retries = Retries::default();
    // An earlier attempt of this edit that may have been billed (its reservation kept).
    let mut cut_before: Option<String> = None;
    'gate: loop {
        let cfg = state.config();
        let p = &out.project;
        let setup = policy::check_setup(&cfg, p)?;
        let spec = setup.key().clone();
        // A key bound by `:LlmKey create`, unless the trusted project file names a key.
        let (bound, key_id) = crate::settings::bound::for_request(
            &cfg.data_dir,
            &p.root,
            p.settings.key_name.as_deref(),
        );
        let mut key = match &bound {
            Some(b) => b.key.clone(),
            None => state
                .keys
                .get(&spec)
                .await
                .map_err(|e| Failure::new(Reason::Config, e.to_string()))?,
        };
        let admission = setup.admit(p, &out.request.model, asked_max_tokens)?;
        // Price from the catalogue (fetched only once the cheap checks passed).
        let catalogue = state.catalogue().await;
        let (fetch_error, charged_while_free) = state.price_notes();
        let plan = admission.price(&policy::Prices {
            catalogue: catalogue.as_deref(),
            now: std::time::SystemTime::now(),
            fetch_error: fetch_error.as_deref(),
            charged_while_free: &charged_while_free,
        })?;
        let model = plan.model.clone();

        // Reserve the worst case; refuse or lower max_tokens when a cap would be crossed.
        let reserved =
            Ticket::reserve(state, key.clone(), &p.root, &plan, out.prompt_bound, key_id)
                .await
                // The ledger could not be used: not a budget refusal, and the message says what
                // to do.
                .map_err(|e| Failure::new(Reason::Ledger, format!("{e}; nothing was sent")))?;
        let Reserved {
            mut ticket,
            max_tokens,
            lowered_from,
        } = match reserved {
            Err(r) => {
                // Point at where this cap was set: the project file, or the user's setup().
                let file = plan.caps.set_in_file(r.cap).then_some(p.file.as_str());
                tracing::info!(project = %p.root, %model, "refused: {r}");
                let message = match &cut_before {
                    None => format!("refused, nothing sent: {}", r.message(file)),
                    Some(cut) => format!(
                        "{cut}. That attempt may have been billed: it counts in full until OpenRouter says what it cost, and another would not fit, so nothing more was sent: {}",
                        r.message(file)
                    ),
                };
                return Err(Failure::new(Reason::Budget, message));
            }
            Ok(reserved) => reserved,
        };
        if let Some(from) = lowered_from {
            state.notify(
                Level::Info,
                format!(
                    "max_tokens lowered from {from} to {max_tokens} so the answer fits the budget (worst case {})",
                    ticket.reserved()
                ),
            );
        }
        out.request.max_tokens = max_tokens;
        out.request.provider = plan.provider.clone();
        let limits = Limits {
            max_tokens,
            stall: cfg.stall_timeout(),
        };
        let mut key_refreshed = false;

        // Attempts under this reservation.
        loop {
            tracing::info!(project = %p.root, %model, max_tokens, reserved = %ticket.reserved(), "sending chat request");
            ticket.mark_sent();
            let e = match state.client().stream_chat(&key, &out.request, limits).await {
                Ok(chat) => {
                    if let Some(g) = chat.generation_id {
                        ticket.set_generation_id(&g).await;
                    }
                    return Ok(Sent {
                        stream: chat.events,
                        ticket,
                        price: plan.price,
                        max_tokens,
                    });
                }
                Err(e) => e,
            };
            tracing::info!(project = %p.root, %model, "attempt failed: {e}");
            if e.status == Some(401) {
                // Refused before anything ran. A `cmd:` key may have been rotated: the
                // command runs again, and a new key is tried at once.
                ticket.unsent();
                if let Some(b) = &bound {
                    ticket.release();
                    return Err(Failure::new(
                        Reason::Http,
                        crate::settings::bound::refused_message(b, &e.message),
                    ));
                }
                if spec.is_cmd() && !key_refreshed {
                    key_refreshed = true;
                    state.keys.forget(&spec, &key).await;
                    if let Ok(k) = state.keys.get(&spec).await {
                        if k != key {
                            key = k;
                            ticket.set_key(key.clone());
                            continue;
                        }
                    }
                }
                ticket.release();
                return Err(Failure::new(
                    Reason::Http,
                    unauthorized(&e, &spec, &out.project),
                ));
            }
            let Some(why) = Why::of(&e) else {
                // Answered with a status (or a 200 that is no answer): nothing was billed.
                ticket.release();
                return Err(Failure::new(Reason::Http, explain(&e, &out.request)));
            };
            if !why.unbilled() {
                // May have been billed: kept in full, reconciled in the background; a retry
                // needs a reservation of its own, through the gate again.
                drop(ticket);
                wait_to_retry(&mut retries, why, &e, &*out.on_retry).await?;
                cut_before = Some(e.to_string());
                continue 'gate;
            }
            // Not billed: the same reservation, unsent while waiting.
            ticket.unsent();
            wait_to_retry(&mut retries, why, &e, &*out.on_retry).await?;
        }
    }
}

/// Waits before the next attempt, counting down in the progress line, or says why there is
/// none.
async fn wait_to_retry(
    retries: &mut Retries,
    why: Why,
    e: &ApiError,
    notice: &(dyn Fn(String) + Send + Sync),
) -> Result<(), Failure> {
    let wait = retries
        .next(why, e.retry_after, retry::jitter())
        .map_err(|stop| Failure::new(Reason::Http, gave_up(e, why, stop, retries)))?;
    tracing::info!(
        wait_ms = wait.as_millis() as u64,
        retry = retries.done(),
        "retrying: {}",
        why.label()
    );
    count_down(notice, why, wait, retries.done()).await;
    Ok(())
}

/// Shows the wait before a retry, counting down each second.
async fn count_down(notice: &(dyn Fn(String) + Send + Sync), why: Why, wait: Duration, n: u32) {
    let end = tokio::time::Instant::now() + wait;
    loop {
        let left = end.saturating_duration_since(tokio::time::Instant::now());
        let when = if left < Duration::from_millis(500) {
            String::new()
        } else {
            format!(" in {}", retry::human(left))
        };
        notice(format!(
            "{}, retrying{when} ({n}/{})",
            why.label(),
            retry::MAX_RETRIES
        ));
        if left.is_zero() {
            return;
        }
        tokio::time::sleep(left.min(Duration::from_secs(1))).await;
    }
}

/// No more retries: what failed, and why frugal stopped.
fn gave_up(e: &ApiError, why: Why, stop: Stop, retries: &Retries) -> String {
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

/// A final failure, explained. A 503 is a routing refusal: no provider of the model met what
/// the request's `provider` object asks for.
fn explain(e: &ApiError, request: &ChatRequest) -> String {
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
fn unauthorized(e: &ApiError, spec: &KeySpec, project: &ProjectCtx) -> String {
    let name = project.settings.key_name.as_deref();
    let (what, fix) = match (name, spec.env_name()) {
        (None, Some(var)) => (
            format!("the key in the environment variable {var} (setup api_key)"),
            format!("export a valid key as {var} and restart Neovim"),
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
