//! The msgpack-RPC surface: one `call` notification decoded into a [`Call`] (`wire.rs`), one
//! module per call holding its parameters, its reply and its handler, every answer a `reply`
//! event on the ordered event path (see `protocol.rs` for the transport and the events).
//!
//! # Calls (`method`: params → result)
//!
//! | method | module | params | result |
//! |---|---|---|---|
//! | `hello` | `rpc/hello.rs` | `{ config, data_home }`: `setup()` as given (types checked by the shim), `stdpath("data")` | `{ version, protocol, pid, log_file, warnings = { {level, message} }, settings = { model, judge_model, context_lines, base_url, data_dir, stall_timeout_s } }` |
//! | `edit` | `rpc/edit.rs` | [`crate::edit::request::EditRequest`] | `{}` once started; the edit reports through `progress`, `hunk`, `done`, `failed` events |
//! | `review` | `rpc/review.rs` | [`crate::review::request::ReviewRequest`] | `{}` once started; the review reports through `progress`, then `review_done` or `failed` |
//! | `ask` | `rpc/ask.rs` | [`crate::ask::request::AskRequest`]: an `edit`'s params (`instruction`: the question, `history`: the conversation so far) and `ask_buf` | `{}` once started; the ask reports through `foresight`, `progress`, `ask_text` (the answer in batches), then `ask_done` or `failed` |
//! | `apply` | `rpc/apply.rs` | [`crate::edit::apply::ApplyRequest`]: `{ id, buf, file?, lines?, project, text, model?, request?, context }` | `{}` once started (refused when `text` holds no block); `hunk` events, then `done` (cost 0) or `failed`; no request to the model |
//! | `cancel` | `rpc/cancel.rs` | `{ id }` | `{}` (a `failed` event with reason `cancelled` follows when it was running) |
//! | `outcome` | `rpc/outcome.rs` | `{ outcomes = { {request, hunk, fate} } }`: `request` the edit's ledger row (`done`'s `request`), `hunk` its number (1-based, answer order), `fate` `proposed` \| `accepted` \| `rejected` \| `replaced` \| `abandoned` | `{}` once recorded (or not: a lost outcome is logged, never said) |
//! | `models` | `rpc/models.rs` | `{ project?, token }` | `{ ok, models, filtered, model }` (`model`: the one an edit uses without `:LlmModel`), or `{ ok = false, pending = true, model }` and later a `models` event with `token` |
//! | `usage` | `rpc/usage.rs` | `{ project?, all, width, token }` | the report `{ ok, title, lines, highlights, width, data }`; a fresher one may follow as a `usage` event |
//! | `status` | `rpc/status.rs` | `{ project }` | `{ root, text }` for the statusline |
//! | `health` | `rpc/health.rs` | `{ project? }` | `{ version, checks = { {section, level, message, advice?} } }`: every check the backend makes, in order |
//! | `choose` | `rpc/choose.rs` | `{ question, choice? }` | `{ expired? }`: the user's choice for a `question` event (`choice` 1-based, nil when dismissed; `expired` when its time had run out) |
//! | `context` | `rpc/context.rs` | `{ file, model?, files = { {path, buf, lines?} }, project? }` | `{ lines }`: the `:LlmContext` listing (the instruction files and context files, each one's size and share of `max_context_bytes`) |
//! | `check_path` | `rpc/paths.rs` | `{ file, path, new_file? }` (`file`: the project file, `path` relative to its directory) | `{}` when a hunk of that file may be applied now; refused with a few words naming `path` (it leads into `.git`, out of the project, nowhere; a new file that exists by now) |
//! | `project` | `rpc/project.rs` | `{ path, cwd?, paths? }` (`path`: the buffer's file; `paths`: what the user typed for `:LlmContext`, a leading `~` expanded) | `{ root, checkout, file, rel?, paths = { {rel} or {message} } }`: the ledger's project key, the checkout, its project file, `path` relative to the checkout, and each typed path accepted (relative to the checkout) or refused with the message |
//! | `version` | (inline) | `{}` | `"x.y.z"` |
//! | `key` | `rpc/key.rs` | `{ project }` | `{ message, bound }`: the project's bound key (`:LlmKey`) |
//! | `key_create` | `rpc/key.rs` | `{ project, args }` (`args`: `[limit_usd] [daily\|weekly\|monthly]` as strings) | `{ message, bound }` (`:LlmKey create`) |
//! | `key_limit` | `rpc/key.rs` | `{ project, args }` (`args`: `{usd}`) | `{ message, bound }` (`:LlmKey limit`) |
//! | `key_disable` | `rpc/key.rs` | `{ project }` | `{ message, bound }` (`:LlmKey disable`) |
//! | `history` | `rpc/history.rs` | `{ project, before?, limit? }` (`project`: the ledger's key) | `{ entries = { {id, line, text} }, more?, path, problem? }`: a page of the project's requests, newest first |
//! | `history_open` | `rpc/history.rs` | `{ project, id }` | `{ id, lines, answer }`: the conversation as Markdown, its last answer |
//! | `history_delete` | `rpc/history.rs` | `{ project, id }` | `{ deleted }`: the request's text deleted (its ledger row stays) |
//! | `history_clear` | `rpc/history.rs` | `{ project }` | `{ deleted }`: the project's text deleted |
//!

mod apply;
mod ask;
mod cancel;
mod choose;
mod context;
mod edit;
mod health;
mod hello;
mod history;
mod key;
mod models;
mod outcome;
mod paths;
mod project;
mod review;
mod status;
pub mod usage;
pub mod wire;

use crate::protocol::{Event, Notice, ProtocolError};
use crate::services::Services;
use async_trait::async_trait;
use futures::future::BoxFuture;
use nvim_rs::{compat::tokio::Compat, Neovim};
use rmpv::Value;
use std::sync::{Arc, Mutex};
use wire::{reply_event, Answer, Call};

/// Where RPC messages to Neovim are written: stdout, as [`crate::stdio`] opens it.
pub type Writer = Compat<Box<dyn tokio::io::AsyncWrite + Send + Unpin>>;

#[derive(Clone)]
pub struct Handler {
    pub services: Services,
    /// The `--log-file` base path; the file written today carries the UTC date as suffix.
    pub log_file: Option<std::path::PathBuf>,
    /// What is wrong in the last `setup()`.
    warnings: Arc<Mutex<Vec<Notice>>>,
}

impl Handler {
    pub fn new(services: Services, log_file: Option<std::path::PathBuf>) -> Self {
        Handler {
            services,
            log_file,
            warnings: Arc::new(Mutex::new(Vec::new())),
        }
    }

    /// Decides, for every call, whether it is served inline or in a task of its own: one
    /// match with no catch-all arm, so a new call that is not placed here does not compile.
    /// Inline: quick calls, which so keep their order (a `cancel` never overtakes the `edit`
    /// it cancels, an `edit` never runs on the settings of before the `hello` sent ahead of
    /// it). Spawned: calls that wait on the network or the ledger, so they never hold up the
    /// next. Each handler receives only the services it uses.
    fn serve(&self, call: Call) -> Serve {
        let s = &self.services;
        let me = self.services.clone();
        match call {
            Call::Hello(h) => Serve::Now(self.hello(h)),
            Call::Edit(req) => Serve::Now(edit::start(s.into(), &s.inflight, *req)),
            Call::Review(req) => Serve::Now(review::start(s.into(), &s.inflight, *req)),
            Call::Ask(req) => Serve::Now(ask::start(s.into(), &s.inflight, *req)),
            Call::Apply(req) => Serve::Now(Ok(apply::start(&s.settings, &s.ui, *req))),
            Call::Cancel(c) => Serve::Now(Ok(cancel::cancel(&s.inflight, &s.ui, c))),
            Call::Choose(a) => Serve::Now(Ok(choose::choose(&s.ui, a))),
            Call::CheckPath(a) => Serve::Now(paths::check(a)),
            Call::Project(a) => Serve::Now(Ok(Answer::Project(Box::new(project::project(a))))),
            Call::Version => Serve::Now(Ok(Answer::Version(env!("CARGO_PKG_VERSION")))),
            Call::Outcome(a) => later(async move { outcome::outcome(&me.settings, a).await }),
            Call::Models(a) => {
                later(async move { models::models(&me.settings, &me.catalogue, &me.ui, a).await })
            }
            Call::Usage(a) => later(async move {
                usage::usage(&me.settings, &me.keys, &me.ui, a)
                    .await
                    .map(|r| Answer::Usage(Box::new(r)))
                    .map_err(ProtocolError::Refused)
            }),
            Call::Status(a) => later(async move {
                status::status(&me.settings, a.project)
                    .await
                    .map(Answer::Status)
                    .map_err(ProtocolError::Refused)
            }),
            Call::Context(a) => later(async move {
                Ok(Answer::Context(
                    context::listing(&me.settings, &me.catalogue, a).await,
                ))
            }),
            Call::Health(a) => {
                let warnings = self.warnings();
                later(async move {
                    Ok(Answer::Health(Box::new(
                        health::health(&me.settings, &me.catalogue, a, warnings).await,
                    )))
                })
            }
            Call::History(a) => later(async move {
                history::list(&me.settings, a)
                    .await
                    .map(|r| Answer::History(Box::new(r)))
                    .map_err(ProtocolError::Refused)
            }),
            Call::HistoryOpen(a) => later(async move {
                history::open(&me.settings, a)
                    .await
                    .map(Answer::HistoryOpen)
                    .map_err(ProtocolError::Refused)
            }),
            Call::HistoryDelete(a) => later(async move {
                history::delete(&me.settings, a)
                    .await
                    .map(Answer::Deleted)
                    .map_err(ProtocolError::Refused)
            }),
            Call::Key(action, a) => later(async move {
                key::key(&me.settings, &me.keys, action, a)
                    .await
                    .map(Answer::Key)
                    .map_err(ProtocolError::Refused)
            }),
        }
    }

    fn warnings(&self) -> Vec<Notice> {
        self.warnings
            .lock()
            .expect("warnings lock poisoned")
            .clone()
    }

    /// Decodes the call `seq` and serves it as [`Handler::serve`] decides. The answer is a
    /// `reply` event.
    fn call(&self, args: Vec<Value>) {
        let mut it = args.into_iter();
        let (Some(seq), Some(method)) = (it.next().and_then(|v| v.as_u64()), it.next()) else {
            tracing::warn!("a call without a sequence number or method: ignored");
            return;
        };
        let method = method.as_str().unwrap_or_default().to_string();
        let call = match Call::decode(&method, it.next().unwrap_or(Value::Nil)) {
            Ok(call) => call,
            Err(e) => return self.reply(seq, &method, Err(e)),
        };
        match self.serve(call) {
            Serve::Now(outcome) => self.reply(seq, &method, outcome),
            Serve::Later(outcome) => {
                let me = self.clone();
                tokio::spawn(async move {
                    let outcome = outcome.await;
                    me.reply(seq, &method, outcome);
                });
            }
        }
    }

    fn reply(&self, seq: u64, method: &str, outcome: Result<Answer, ProtocolError>) {
        self.services.ui.send(reply_event(seq, method, outcome));
    }
}

/// How a call is served: its outcome now, or a future to run in a task of its own.
enum Serve {
    Now(Result<Answer, ProtocolError>),
    Later(BoxFuture<'static, Result<Answer, ProtocolError>>),
}

fn later(
    outcome: impl std::future::Future<Output = Result<Answer, ProtocolError>> + Send + 'static,
) -> Serve {
    Serve::Later(Box::pin(outcome))
}

#[async_trait]
impl nvim_rs::Handler for Handler {
    type Writer = Writer;

    async fn handle_request(
        &self,
        name: String,
        args: Vec<Value>,
        _nvim: Neovim<Writer>,
    ) -> Result<Value, Value> {
        match name.as_str() {
            // `call(method, params)` as a request: the shim waits for it (bounded by its own
            // watchdog). The answer is a reply map, `{ ok, result }` or `{ ok = false, message }`,
            // never an RPC error, whose text Neovim would wrap.
            "call" => {
                let mut it = args.into_iter();
                let method = it.next();
                let method = method.as_ref().and_then(Value::as_str).unwrap_or_default();
                let outcome = match Call::decode(method, it.next().unwrap_or(Value::Nil)) {
                    Ok(call) => match self.serve(call) {
                        Serve::Now(outcome) => outcome,
                        Serve::Later(outcome) => outcome.await,
                    },
                    Err(e) => Err(e),
                };
                reply_event(0, method, outcome)
                    .encode()
                    .map_err(|e| Value::from(format!("frugal: cannot encode the reply: {e}")))
            }
            // For a person or a script poking at the process.
            "version" => Ok(Value::from(env!("CARGO_PKG_VERSION"))),
            other => Err(Value::from(format!("frugal: unknown request {other:?}"))),
        }
    }

    async fn handle_notify(&self, name: String, args: Vec<Value>, _nvim: Neovim<Writer>) {
        match name.as_str() {
            // Notifications run inline in arrival order: serve each call in a task of its own
            // so a slow one (the network, the ledger) never holds up the next.
            "call" => self.call(args),
            // The whole text of a message the shim showed cut to one line (`util.notify`).
            "log" => shim_log(&args),
            other => tracing::warn!("unknown notification {other}"),
        }
    }
}

/// Writes a message the shim told the user to the log: `log(level, text)`.
fn shim_log(args: &[Value]) {
    let level = args.first().and_then(Value::as_str).unwrap_or("info");
    let text = args.get(1).and_then(Value::as_str).unwrap_or_default();
    match level {
        "error" => tracing::error!(target: "frugal::shim", "told the user: {text}"),
        "warn" => tracing::warn!(target: "frugal::shim", "told the user: {text}"),
        _ => tracing::info!(target: "frugal::shim", "told the user: {text}"),
    }
}

/// Delivers events to Neovim in order. What queued up while the last call was under way goes
/// in one call (`_dispatch_all`): an answer's hunks, which come in a burst when a buffered
/// stream is read, then cost one round trip to Neovim instead of one each.
pub async fn forward_events(
    nvim: Neovim<Writer>,
    mut rx: tokio::sync::mpsc::UnboundedReceiver<Event>,
) {
    /// Events in one call at most (a bound on one call's size, not a pace).
    const BATCH: usize = 64;
    let mut batch = Vec::with_capacity(BATCH);
    while rx.recv_many(&mut batch, BATCH).await > 0 {
        let values: Vec<Value> = batch
            .drain(..)
            .filter_map(|ev| match ev.encode() {
                Ok(v) => Some(v),
                Err(e) => {
                    tracing::error!("cannot encode an event: {e}");
                    None
                }
            })
            .collect();
        let sent = match values.len() {
            0 => continue,
            1 => {
                nvim.exec_lua("require('frugal.rpc')._dispatch(...)", values)
                    .await
            }
            _ => {
                nvim.exec_lua(
                    "require('frugal.rpc')._dispatch_all(...)",
                    vec![Value::Array(values)],
                )
                .await
            }
        };
        if let Err(e) = sent {
            if e.is_channel_closed() {
                break;
            }
            tracing::warn!("event not delivered: {e}");
        }
    }
}
