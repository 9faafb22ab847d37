//! The msgpack-RPC surface: one `call` notification decoded into a [`Call`], one handler per
//! call, every answer a `reply` event on the ordered event path (see `protocol.rs` for the
//! wire format).

mod context;
mod edit;
mod health;
mod hello;
mod key;
mod models;
mod paths;
mod review;
pub mod usage;

use crate::protocol::{Answer, Call, Event, Notice, ProtocolError};
use crate::services::Services;
use async_trait::async_trait;
use nvim_rs::{compat::tokio::Compat, Neovim};
use rmpv::Value;
use std::sync::{Arc, Mutex};

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

    /// Serves a quick call at once; `Err` is said to the user as is. `Ok(None)`: a slow call,
    /// for [`Handler::serve_slow`].
    fn serve_now(&self, call: Call) -> Result<Result<Answer, ProtocolError>, Box<Call>> {
        let s = &self.services;
        Ok(match call {
            Call::Hello(h) => self.hello(h),
            Call::Edit(req) => edit::start(s.into(), &s.inflight, *req),
            Call::Review(req) => review::start(s.into(), &s.inflight, *req),
            Call::Cancel(c) => Ok(edit::cancel(&s.inflight, &s.ui, c)),
            Call::Choose(a) => {
                s.ui.questions.choose(a.question, a.choice);
                Ok(Answer::Accepted(crate::protocol::Accepted {}))
            }
            Call::CheckPath(a) => paths::check(a),
            Call::Version => Ok(Answer::Version(env!("CARGO_PKG_VERSION"))),
            slow => return Err(Box::new(slow)),
        })
    }

    /// Serves a call that waits on the network or the ledger.
    async fn serve_slow(&self, call: Box<Call>) -> Result<Answer, ProtocolError> {
        let s = &self.services;
        match *call {
            Call::Models(a) => models::models(&s.settings, &s.catalogue, &s.ui, a).await,
            Call::Usage(a) => usage::usage(&s.settings, &s.keys, &s.ui, a)
                .await
                .map(|r| Answer::Usage(Box::new(r)))
                .map_err(ProtocolError::Refused),
            Call::Status(a) => usage::status(&s.settings, a.project)
                .await
                .map(Answer::Status)
                .map_err(ProtocolError::Refused),
            Call::Context(a) => Ok(Answer::Context(
                context::listing(&s.settings, &s.catalogue, a).await,
            )),
            Call::Health(a) => Ok(Answer::Health(
                health::health(&s.settings, &s.catalogue, a, self.warnings()).await,
            )),
            Call::Key(action, a) => key::key(&s.settings, &s.keys, action, a)
                .await
                .map(Answer::Key)
                .map_err(ProtocolError::Refused),
            quick => self
                .serve_now(quick)
                .unwrap_or_else(|_| unreachable!("serve_now serves every call that is not slow")),
        }
    }

    fn warnings(&self) -> Vec<Notice> {
        self.warnings
            .lock()
            .expect("warnings lock poisoned")
            .clone()
    }

    /// Decodes the call `seq` and serves it: quick calls inline, so that they keep their
    /// order (a `cancel` never overtakes the `edit` it cancels, an `edit` never runs on the
    /// settings of before the `hello` sent ahead of it); calls that wait on the network or the
    /// ledger in a task of their own, so they never hold up the next. The answer is a `reply`
    /// event.
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
        match self.serve_now(call) {
            Ok(outcome) => self.reply(seq, &method, outcome),
            Err(slow) => {
                let me = self.clone();
                tokio::spawn(async move {
                    let outcome = me.serve_slow(slow).await;
                    me.reply(seq, &method, outcome);
                });
            }
        }
    }

    fn reply(&self, seq: u64, method: &str, outcome: Result<Answer, ProtocolError>) {
        self.services.ui.send(reply_event(seq, method, outcome));
    }
}

/// The `reply` to the call `seq`.
fn reply_event(seq: u64, method: &str, outcome: Result<Answer, ProtocolError>) -> Event {
    match outcome {
        Ok(result) => Event::Reply {
            seq,
            ok: true,
            result: Some(result),
            message: None,
        },
        Err(e) => {
            tracing::info!(%method, "refused: {e}");
            Event::Reply {
                seq,
                ok: false,
                result: None,
                message: Some(e.to_string()),
            }
        }
    }
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
                    Ok(call) => match self.serve_now(call) {
                        Ok(outcome) => outcome,
                        Err(slow) => self.serve_slow(slow).await,
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
            other => tracing::warn!("unknown notification {other}"),
        }
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
