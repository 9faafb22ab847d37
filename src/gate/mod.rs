//! The one door every request to the model goes through. Nothing else in the backend talks to
//! the chat endpoint, so the checks made here — key, model allow-list, price, caps, and the
//! reservation in the ledger — cannot be bypassed.
//!
//! `policy` decides (pure), `ticket` holds the reservation until it is settled, released or
//! reconciled (`reconcile`), `retry` says what follows a failed attempt (pure), `warn` tells
//! the user when spend nears a cap; [`send`] runs them in order, through the services of a
//! [`Gate`] only.

pub mod policy;
pub mod reconcile;
pub mod retry;
pub mod ticket;
mod warn;
mod words;

pub use policy::{effective_caps, CapsError, EffectiveCaps};
pub use reconcile::{reconcile, reconcile_orphans};
pub use ticket::{release_unsent, Ticket};

use crate::budget::foresight::{self, SAMPLE_ROWS};
use crate::budget::{Price, RequestKind, Usd};
use crate::message::{Failure, Level, Reason};
use crate::openrouter::client::StreamOptions;
use crate::openrouter::{ApiError, ChatEvent, ChatRequest, Endpoint, Limits};
use crate::services::{Catalogue, Keys, Services, Settings, Ui};
use crate::settings::{ApiKey, BoundKey, Config, FileState, KeySpec, ProjectSettings};
use futures::stream::BoxStream;
use retry::{Fail, KeySource, Mark, Moment, Retries, Step, Why};
use std::sync::Arc;
use std::time::Duration;
use ticket::Reserved;
use words::{explain, gave_up, http_failure, unauthorized};

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
    /// Upper bound on the prompt's tokens (see `edit::prompt::prompt_token_bound`); the model's
    /// context window caps it further ([`policy::prompt_bound`]).
    pub prompt_bound: u64,
    /// The prompt's size in UTF-8 bytes (recorded in the ledger; the foresight learns from it).
    pub prompt_bytes: u64,
    /// Tells the user about a wait before a retry ("rate limited, retrying in 4 s (2/3)").
    pub on_retry: Box<dyn Fn(String) + Send + Sync>,
    /// What the request is for, recorded in the ledger (`requests.kind`).
    pub kind: RequestKind,
    /// Tells the user what the request will likely cost and at most costs, once reserved.
    pub on_foresight: Box<dyn Fn(Foresight) + Send + Sync>,
    /// The request's id and buffer (the shim's), named by a confirmation question.
    pub id: u64,
    pub buf: i64,
    /// A worst case the user already agreed to (a "Send" given after the question's time ran
    /// out restarts the request with it): asked again only when the worst case rose above it.
    pub confirmed: Option<Usd>,
    /// Told the ledger row of each reservation made (the conversation is kept under it).
    pub on_reserved: Box<dyn Fn(crate::budget::RequestId) + Send + Sync>,
}

/// The foresight of a reserved request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Foresight {
    /// The worst case reserved.
    pub worst: Usd,
    /// What it will likely cost (`None`: the model has no price).
    pub likely: Option<Usd>,
}

/// How long a confirmation waits for the user before the request is dropped, unsent.
pub const CONFIRM_WAIT: Duration = Duration::from_secs(60);

/// [`CONFIRM_WAIT`], unless the environment variable `FRUGAL_CONFIRM_WAIT_MS` (for tests: a
/// late answer within a test's time) says otherwise.
fn confirm_wait() -> Duration {
    std::env::var("FRUGAL_CONFIRM_WAIT_MS")
        .ok()
        .and_then(|v| v.parse().ok())
        .map_or(CONFIRM_WAIT, Duration::from_millis)
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

/// The services a request to the model goes through.
#[derive(Clone)]
pub struct Gate {
    pub settings: Arc<Settings>,
    pub catalogue: Arc<Catalogue>,
    pub keys: Arc<Keys>,
    pub ui: Arc<Ui>,
}

impl From<&Services> for Gate {
    fn from(s: &Services) -> Gate {
        Gate {
            settings: s.settings.clone(),
            catalogue: s.catalogue.clone(),
            keys: s.keys.clone(),
            ui: s.ui.clone(),
        }
    }
}

/// Checks, prices and reserves the request, then sends it: [`plan`] (policy, key, catalogue)
/// → [`reserve`] (ticket, notices, confirmation) → [`attempts`]. Every refusal on the way says
/// that nothing was sent.
///
/// What follows a failed attempt is [`retry::next_step`]'s: under the same reservation when
/// nothing was billed (the ticket is unsent while waiting, so a cancel then releases it),
/// through this whole gate again when the attempt may have been billed (its reservation is
/// kept until reconciled, and the caps must allow a new one).
pub async fn send(
    gate: &Gate,
    mut out: Outbound,
) -> Result<Sent<BoxStream<'static, ChatEvent>>, Failure> {
    let asked_max_tokens = out.request.max_tokens;
    let mut retries = Retries::default();
    // An earlier attempt of this request that may have been billed (its reservation kept).
    let mut cut_before: Option<String> = None;
    loop {
        let planned = plan(gate, &out, asked_max_tokens).await?;
        let reserved = reserve(gate, &mut out, &planned, cut_before.as_deref()).await?;
        match attempts(gate, &mut out, &planned, reserved, &mut retries).await? {
            Attempted::Answered(sent) => return Ok(*sent),
            Attempted::Cut(e) => cut_before = Some(e),
        }
    }
}

/// What the checks decided: the settings, the key and the priced plan of one pass through the
/// gate.
struct Planned {
    cfg: Arc<Config>,
    spec: KeySpec,
    bound: Option<BoundKey>,
    key_id: Option<String>,
    key: ApiKey,
    plan: policy::Plan,
}

/// Policy → key → catalogue: the request checked against the setup and the project's rules,
/// its key found and its worst case priced.
async fn plan(gate: &Gate, out: &Outbound, asked_max_tokens: u32) -> Result<Planned, Failure> {
    let cfg = gate.settings.config();
    let p = &out.project;
    let setup = policy::check_setup(&cfg, p)?;
    let spec = setup.key().clone();
    // A key bound by `:LlmKey create`, unless the trusted project file names a key; keys
    // meant for OpenRouter never go to another host (refused here, nothing sent).
    let (bound, key_id) =
        crate::settings::bound::for_request(&cfg, &p.root, p.settings.key_name.as_deref())?;
    let key = match &bound {
        Some(b) => b.key.clone(),
        None => gate
            .keys
            .get(&spec)
            .await
            .map_err(|e| Failure::new(Reason::Config, e.to_string()))?,
    };
    let admission = setup.admit(p, &out.request.model, asked_max_tokens)?;
    // Price from the catalogue (fetched only once the cheap checks passed).
    let catalogue = gate.catalogue.get().await;
    let (fetch_error, charged_while_free) = gate.catalogue.price_notes();
    let plan = admission.price(
        &policy::Prices {
            catalogue: catalogue.as_deref(),
            now: std::time::SystemTime::now(),
            fetch_error: fetch_error.as_deref(),
            charged_while_free: &charged_while_free,
        },
        out.prompt_bound,
    )?;
    if let Some(c) = &catalogue {
        gate.catalogue.warn_if_leaving(c, &plan.model);
    }
    Ok(Planned {
        cfg,
        spec,
        bound,
        key_id,
        key,
        plan,
    })
}

/// Ticket → notices → confirmation → the request shaped as planned: the worst case reserved
/// (refused, or `max_tokens` lowered, when a cap would be crossed), the user told what it
/// costs, and asked when it is dear. `cut_before`: an earlier attempt that may have been
/// billed.
async fn reserve(
    gate: &Gate,
    out: &mut Outbound,
    planned: &Planned,
    cut_before: Option<&str>,
) -> Result<Reserved, Failure> {
    let (p, plan) = (&out.project, &planned.plan);
    let facts = ticket::Facts {
        prompt_bound: plan.prompt_bound(out.prompt_bound),
        prompt_bytes: out.prompt_bytes,
        kind: out.kind,
        key_id: planned.key_id.clone(),
    };
    let reserved = Ticket::reserve(gate, planned.key.clone(), &p.root, plan, facts)
        .await
        // The ledger could not be used: not a budget refusal, and the message says what
        // to do.
        .map_err(|e| Failure::new(Reason::Ledger, format!("{e}; nothing was sent")))?
        .map_err(|r| refused(p, plan, &r, cut_before))?;
    let (ticket, max_tokens) = (&reserved.ticket, reserved.max_tokens);
    if let Some(id) = ticket.row() {
        (out.on_reserved)(id);
    }
    if let Some(from) = reserved.lowered_from {
        gate.ui.notify(
            Level::Info,
            format!(
                "max_tokens lowered from {from} to {max_tokens} so the answer fits the budget (worst case {})",
                ticket.reserved()
            ),
        );
    }
    let seen = Foresight {
        worst: ticket.reserved(),
        likely: likely_cost(gate, plan, out.prompt_bytes, max_tokens, ticket.reserved()).await,
    };
    (out.on_foresight)(seen);
    if let Some(limit) = plan.caps.project.confirm_above {
        let agreed = out.confirmed.is_some_and(|c| seen.worst <= c);
        if seen.worst > limit && cut_before.is_none() && !agreed {
            let from_file = plan.caps.from_file.confirm_above == Some(limit);
            let source = if from_file {
                format!("[budget] confirm_above_usd in {}", p.file)
            } else {
                "setup budget.confirm_above_usd".to_string()
            };
            // Declined or unanswered: the ticket is dropped unsent, which releases the
            // reservation (nothing left).
            let asking = Asking {
                id: out.id,
                buf: out.buf,
                wait: confirm_wait(),
            };
            confirm(&gate.ui, &plan.model, seen, limit, &source, asking).await?;
        }
    }
    out.request.max_tokens = max_tokens;
    out.request.provider = plan.provider.clone();
    out.request.keep_cache_marks(plan.cache_breakpoints);
    out.request.stream_options =
        (!Endpoint::of(&planned.cfg.base_url).is_openrouter()).then_some(StreamOptions {
            include_usage: true,
        });
    Ok(reserved)
}

/// A cap refused the reservation: the message points at where the cap was set (the project
/// file, or the user's setup()).
fn refused(
    p: &ProjectCtx,
    plan: &policy::Plan,
    r: &crate::budget::Refusal,
    cut_before: Option<&str>,
) -> Failure {
    let file = plan.caps.set_in_file(r.cap).then_some(p.file.as_str());
    tracing::info!(project = %p.root, model = %plan.model, "refused: {r}");
    let message = match cut_before {
        None => format!("refused, nothing sent: {}", r.message(file)),
        Some(cut) => format!(
            "{cut}. That attempt may have been billed: it counts in full until OpenRouter says what it cost, and another would not fit, so nothing more was sent: {}",
            r.message(file)
        ),
    };
    Failure::new(Reason::Budget, message)
}

/// How the attempts under one reservation ended.
enum Attempted {
    Answered(Box<Sent<BoxStream<'static, ChatEvent>>>),
    /// Cut after the request left (may have been billed): go through the gate again.
    Cut(String),
}

/// Attempts under one reservation, each marked sent on disk before its bytes leave; after a
/// failure, [`retry::next_step`] says what next.
async fn attempts(
    gate: &Gate,
    out: &mut Outbound,
    planned: &Planned,
    reserved: Reserved,
    retries: &mut Retries,
) -> Result<Attempted, Failure> {
    let Reserved {
        mut ticket,
        max_tokens,
        ..
    } = reserved;
    let (p, model) = (&out.project, &planned.plan.model);
    let limits = Limits {
        max_tokens,
        stall: planned.cfg.stall_timeout(),
    };
    let source = KeySource::of(&planned.spec, planned.bound.is_some());
    let mut key = planned.key.clone();
    let mut refreshed = false;
    loop {
        tracing::info!(project = %p.root, %model, max_tokens, reserved = %ticket.reserved(), "sending chat request");
        let e = match attempt(gate, &mut ticket, &key, &out.request, limits).await? {
            Ok(events) => {
                return Ok(Attempted::Answered(Box::new(Sent {
                    stream: events,
                    ticket,
                    price: planned.plan.price,
                    max_tokens,
                })));
            }
            Err(e) => e,
        };
        tracing::info!(project = %p.root, %model, "attempt failed: {e}");
        let moment = Moment::Failed(&e);
        let next = retry::next_step(
            moment,
            source,
            refreshed,
            retries,
            Mark::Sent,
            retry::jitter(),
        );
        let fail = |why| failure(&e, why, planned, out, retries);
        match next.step {
            // Unsent: released (nothing was billed); sent: kept until reconciled.
            Step::Fail(why) if next.mark == Mark::Unsent => return Err(release(ticket, fail(why))),
            Step::Fail(why) => return Err(fail(why)),
            Step::Regate { after, why } => {
                drop(ticket);
                count_down(&*out.on_retry, why, after, retries.done()).await;
                return Ok(Attempted::Cut(e.to_string()));
            }
            Step::RetrySameTicket { after, why } => {
                ticket.unsent().await;
                count_down(&*out.on_retry, why, after, retries.done()).await
            }
            // A `cmd:` key may have been rotated: the command runs again, and a new key is
            // tried at once.
            Step::RefreshKey => {
                ticket.unsent().await;
                refreshed = true;
                let Some(k) = refresh_key(&gate.keys, &planned.spec, &key).await else {
                    return Err(release(ticket, fail(Fail::Unauthorized)));
                };
                key = k;
                ticket.set_key(key.clone());
            }
            _ => unreachable!("next_step after a failure: fail, refresh, retry or re-gate"),
        }
    }
}

/// The request never reached the server: its reservation is released, and it fails so.
fn release(ticket: Ticket, f: Failure) -> Failure {
    ticket.release();
    f
}

/// One attempt, marked sent on disk before its bytes leave (a dead process's row is then
/// reconciled): the answer's events, or why it failed.
async fn attempt(
    gate: &Gate,
    ticket: &mut Ticket,
    key: &ApiKey,
    request: &ChatRequest,
    limits: Limits,
) -> Result<Result<BoxStream<'static, ChatEvent>, ApiError>, Failure> {
    ticket
        .mark_sent()
        .await
        .map_err(|e| Failure::new(Reason::Ledger, format!("{e}; nothing was sent")))?;
    let chat = gate
        .settings
        .client()
        .stream_chat(key, request, limits)
        .await;
    Ok(match chat {
        Ok(chat) => {
            if let Some(g) = chat.generation_id {
                ticket.set_generation_id(&g).await;
            }
            Ok(chat.events)
        }
        Err(e) => Err(e),
    })
}

/// The `cmd:` key run again after a 401; `None` when it fails or prints the same key.
async fn refresh_key(keys: &Keys, spec: &KeySpec, key: &ApiKey) -> Option<ApiKey> {
    keys.forget(spec, key).await;
    keys.get(spec).await.ok().filter(|k| k != key)
}

/// The failure `e` ended in, worded for the user.
fn failure(
    e: &ApiError,
    why: Fail,
    planned: &Planned,
    out: &Outbound,
    retries: &Retries,
) -> Failure {
    match (why, &planned.bound) {
        (Fail::BoundKeyRefused, Some(b)) => Failure::new(
            Reason::Http,
            crate::settings::bound::refused_message(b, &e.message),
        ),
        (Fail::BoundKeyRefused | Fail::Unauthorized, _) => {
            Failure::new(Reason::Http, unauthorized(e, &planned.spec, &out.project))
        }
        (Fail::Final, _) => http_failure(e, explain(e, &out.request, &planned.cfg.base_url)),
        (Fail::GaveUp(why, stop), _) => http_failure(e, gave_up(e, why, stop, retries)),
    }
}

/// The likely cost of the request at the model's list price, learned from the model's recent
/// requests in the ledger (see [`foresight`]); `None` when the model has no price. A ledger
/// that cannot be read leaves the defaults (the estimate is a courtesy, never a bound).
async fn likely_cost(
    gate: &Gate,
    plan: &policy::Plan,
    prompt_bytes: u64,
    max_tokens: u32,
    worst: Usd,
) -> Option<Usd> {
    let price = plan.list_price.or(plan.price)?;
    let model = plan.model.clone();
    let samples = gate
        .settings
        .with_ledger(move |l, _| l.samples(&model, SAMPLE_ROWS))
        .await
        .unwrap_or_else(|e| {
            tracing::info!("foresight without samples: {e}");
            Vec::new()
        });
    Some(foresight::likely(&price, prompt_bytes, max_tokens, &samples, worst).cost)
}

/// The request a confirmation holds up, and how long it waits.
struct Asking {
    id: u64,
    buf: i64,
    wait: Duration,
}

/// Asks the user whether to send a request whose worst case is above `confirm_above_usd`;
/// `Err` (reason `cancelled`) when declined or unanswered within `wait`. Meanwhile the progress
/// line says it waits for the user's answer (nothing is sent).
async fn confirm(
    ui: &Ui,
    model: &str,
    seen: Foresight,
    limit: Usd,
    source: &str,
    asking: Asking,
) -> Result<(), Failure> {
    let Asking { id, buf, wait } = asking;
    ui.send(crate::protocol::Event::Progress {
        id,
        buf,
        tokens: 0,
        elapsed_ms: 0,
        cost_usd: None,
        cost_text: None,
        phase: crate::protocol::Phase::Confirming,
        note: None,
    });
    let likely = seen
        .likely
        .map(|l| format!(", likely ~{l}"))
        .unwrap_or_default();
    let prompt = format!(
        "frugal: this request to {model} costs at most {}{likely}, above {limit} ({source}). Send it?",
        seen.worst
    );
    let choices = vec![
        format!("Send (at most {})", seen.worst),
        "Do not send".to_string(),
    ];
    let asked = tokio::time::Instant::now();
    let about = crate::services::About {
        id,
        buf,
        worst_usd: seen.worst.to_f64(),
    };
    let why = match ui
        .questions
        .pose(ui, prompt, choices, wait, Some(about))
        .await
    {
        Some(0) => return Ok(()),
        // Dismissed (or the shim gone) before the time was up: a no.
        None if asked.elapsed() >= wait => {
            format!("not confirmed within {}", retry::human(wait))
        }
        _ => "declined".to_string(),
    };
    tracing::info!(%model, worst = %seen.worst, "{why}: not sent");
    Err(Failure::new(
        Reason::Cancelled,
        format!(
            "{why}: nothing was sent (worst case {} above {limit}, {source})",
            seen.worst
        ),
    ))
}

/// Shows the wait before a retry, counting down each second.
async fn count_down(notice: &(dyn Fn(String) + Send + Sync), why: Why, wait: Duration, n: u32) {
    tracing::info!(
        wait_ms = wait.as_millis() as u64,
        retry = n,
        "retrying: {}",
        why.label()
    );
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

#[cfg(test)]
mod tests {
    use super::*;

    /// The question shows the worst and the likely cost; only the first choice sends; a
    /// refusal or a silence past the wait is `cancelled`, saying nothing was sent.
    #[tokio::test]
    async fn a_dear_request_is_sent_only_when_confirmed_in_time() {
        assert_eq!(CONFIRM_WAIT, Duration::from_secs(60));
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
        let ui = Arc::new(Ui::new(tx));
        let usd = |s: &str| Usd::parse_decimal(s).unwrap();
        let seen = Foresight {
            worst: usd("0.031"),
            likely: Some(usd("0.004")),
        };
        let ask = |wait: Duration| {
            let ui = ui.clone();
            tokio::spawn(async move {
                let asking = Asking {
                    id: 7,
                    buf: 1,
                    wait,
                };
                confirm(
                    &ui,
                    "m/x",
                    seen,
                    usd("0.02"),
                    "setup budget.confirm_above_usd",
                    asking,
                )
                .await
            })
        };
        for (choice, sent) in [(Some(1), true), (Some(2), false), (None, false)] {
            let asking = ask(Duration::from_secs(20));
            // The progress line first: waiting for the user, nothing sent.
            assert!(matches!(
                rx.recv().await,
                Some(crate::protocol::Event::Progress {
                    id: 7,
                    phase: crate::protocol::Phase::Confirming,
                    ..
                })
            ));
            let (question, prompt, choices) = crate::services::next_question(&mut rx).await;
            assert_eq!(
                prompt,
                "frugal: this request to m/x costs at most $0.0310, likely ~$0.0040, above $0.0200 (setup budget.confirm_above_usd). Send it?"
            );
            assert_eq!(choices, ["Send (at most $0.0310)", "Do not send"]);
            ui.questions.choose(question, choice);
            let got = asking.await.unwrap();
            assert_eq!(got.is_ok(), sent, "{choice:?}");
            if let Err(f) = got {
                assert_eq!(f.reason, Reason::Cancelled);
                assert!(
                    f.message.starts_with("declined: nothing was sent"),
                    "{}",
                    f.message
                );
            }
        }
        // Unanswered within the wait.
        let f = ask(Duration::from_millis(30)).await.unwrap().unwrap_err();
        assert_eq!(f.reason, Reason::Cancelled);
        assert!(
            f.message
                .starts_with("not confirmed within 0 s: nothing was sent"),
            "{}",
            f.message
        );
    }
}
