//! The msgpack-RPC surface the shim (`lua/frugal/rpc.lua`) talks to. Types cross the process
//! boundary here and in `ui.rs` only.
//!
//! Requests: `hello(config) -> {version, pid}`, `edit(request) -> {ok, message?}`,
//! `version() -> string`. Notifications: `cancel(id)`.

use crate::config::Config;
use crate::edit::{self, EditRequest};
use crate::state::State;
use crate::ui::{Reason, UiEvent};
use async_trait::async_trait;
use nvim_rs::{compat::tokio::Compat, Neovim};
use rmpv::Value;
use std::sync::Arc;

pub type Writer = Compat<tokio::fs::File>;

#[derive(Clone)]
pub struct Handler {
    pub state: Arc<State>,
    /// The `--log-file` base path; the file written today carries the UTC date as suffix.
    pub log_file: Option<std::path::PathBuf>,
}

fn map(pairs: Vec<(&str, Value)>) -> Value {
    Value::Map(
        pairs
            .into_iter()
            .map(|(k, v)| (Value::from(k), v))
            .collect(),
    )
}

fn refusal(message: String) -> Value {
    map(vec![
        ("ok", Value::from(false)),
        ("message", Value::from(message)),
    ])
}

impl Handler {
    fn hello(&self, args: Vec<Value>) -> Result<Value, Value> {
        let cfg = args.into_iter().next().unwrap_or(Value::Nil);
        let config: Config = if cfg.is_nil() {
            Config::default()
        } else {
            rmpv::ext::from_value(cfg).map_err(|e| Value::from(format!("bad config: {e}")))?
        };
        tracing::info!(base_url = %config.base_url, model = %config.model, api_key = ?config.api_key, data_dir = %config.data_dir.display(), "configured");
        self.state.set_config(config);
        tokio::spawn(crate::gate::reconcile_orphans(self.state.clone()));
        let log_file = self.log_file.as_ref().map(|p| {
            let d = time::OffsetDateTime::now_utc().date();
            format!(
                "{}.{:04}-{:02}-{:02}",
                p.display(),
                d.year(),
                d.month() as u8,
                d.day()
            )
        });
        Ok(map(vec![
            ("version", Value::from(env!("CARGO_PKG_VERSION"))),
            ("pid", Value::from(std::process::id())),
            ("log_file", log_file.map(Value::from).unwrap_or(Value::Nil)),
        ]))
    }

    fn edit(&self, args: Vec<Value>) -> Result<Value, Value> {
        let raw = args.into_iter().next().unwrap_or(Value::Nil);
        let req = match EditRequest::from_value(raw) {
            Ok(r) => r,
            Err(message) => return Ok(refusal(message)),
        };
        if self.state.busy(req.buf) {
            return Ok(refusal(
                "an edit is still streaming in this buffer: wait for it or :LlmCancel it".into(),
            ));
        }
        tracing::info!(edit = req.id, buf = req.buf, file = %req.file, lines = req.lines.len(), "edit");
        let (id, buf) = (req.id, req.buf);
        let state = self.state.clone();
        // Registered before the task can finish, so a quick failure cannot race the insert.
        let task = tokio::spawn({
            let state = state.clone();
            async move {
                // Yield once so `start_edit` below has run.
                tokio::task::yield_now().await;
                edit::run(state, req).await
            }
        });
        state.start_edit(id, buf, task.abort_handle());
        Ok(map(vec![("ok", Value::from(true))]))
    }

    /// The catalogue for `:LlmModel`: `{ ok, models = { {id, name, prompt_per_m,
    /// completion_per_m, free, priced} … }, filtered, project_default }`, filtered by the
    /// project's allow-list. Never waits on the network: without any catalogue at hand it
    /// answers `{ ok = false, pending = true }` and sends the list later as a `models` event
    /// with the caller's `token`.
    async fn models(&self, args: Vec<Value>) -> Result<Value, Value> {
        #[derive(serde::Deserialize)]
        struct Args {
            #[serde(default)]
            project: Option<crate::project::ProjectInput>,
            #[serde(default)]
            token: u64,
        }
        let args: Args = args
            .into_iter()
            .next()
            .and_then(|v| rmpv::ext::from_value(v).ok())
            .unwrap_or(Args {
                project: None,
                token: 0,
            });
        let settings = match args.project.as_ref().map(|p| p.settings()).transpose() {
            Ok(s) => s.unwrap_or_default(),
            Err(e) => return Ok(refusal(e)),
        };
        if let Some(cat) = self.state.catalogue_at_hand().await {
            return Ok(json_to_msgpack(model_list(&cat, &settings)));
        }
        let state = self.state.clone();
        let token = args.token;
        tokio::spawn(async move {
            let list = match state.catalogue().await {
                Some(cat) => model_list(&cat, &settings),
                None => serde_json::json!({
                    "ok": false,
                    "message": "the model catalogue could not be fetched (offline, or base_url wrong?) and none is cached yet",
                }),
            };
            state.send_ui(UiEvent::Models { token, list });
        });
        Ok(map(vec![
            ("ok", Value::from(false)),
            ("pending", Value::from(true)),
        ]))
    }

    /// For `:checkhealth frugal`: the ledger, the endpoint, and the project file's validity.
    async fn health(&self, args: Vec<Value>) -> Value {
        let cfg = self.state.config();
        let ledger_path = cfg.ledger_path();
        let ledger = self
            .state
            .ledger(|l, _| {
                l.connection()
                    .query_row("SELECT COUNT(*) FROM requests", [], |r| r.get::<_, i64>(0))
                    .map_err(Into::into)
            })
            .await;
        let client = self.state.client();
        let endpoint =
            tokio::time::timeout(std::time::Duration::from_secs(5), client.models()).await;
        let endpoint = match endpoint {
            Ok(Ok(body)) => match crate::openrouter::catalogue::Catalogue::parse(&body) {
                Ok(c) => Ok(format!(
                    "{} answered: {} models in the catalogue",
                    cfg.base_url,
                    c.models.len()
                )),
                Err(e) => Err(format!("{} answered, but {e}", cfg.base_url)),
            },
            Ok(Err(e)) => Err(e.to_string()),
            Err(_) => Err(format!("{} did not answer within 5 s", cfg.base_url)),
        };
        let project: Option<crate::project::ProjectInput> = args
            .into_iter()
            .next()
            .filter(|v| !v.is_nil())
            .and_then(|v| rmpv::ext::from_value(v).ok());
        let project_error = project.and_then(|p| p.settings().err());
        let opt = |s: Option<String>| s.map(Value::from).unwrap_or(Value::Nil);
        map(vec![
            ("version", Value::from(env!("CARGO_PKG_VERSION"))),
            (
                "ledger_path",
                Value::from(ledger_path.display().to_string()),
            ),
            (
                "ledger_rows",
                ledger
                    .as_ref()
                    .map(|n| Value::from(*n))
                    .unwrap_or(Value::Nil),
            ),
            ("ledger_error", opt(ledger.err().map(|e| e.to_string()))),
            ("endpoint_ok", Value::from(endpoint.is_ok())),
            ("endpoint", Value::from(endpoint.unwrap_or_else(|e| e))),
            ("project_error", opt(project_error)),
        ])
    }

    async fn usage(&self, args: Vec<Value>) -> Value {
        let parsed = args
            .into_iter()
            .next()
            .ok_or_else(|| "usage: missing arguments".to_string())
            .and_then(|v| {
                rmpv::ext::from_value::<crate::usage_rpc::UsageArgs>(v)
                    .map_err(|e| format!("usage: malformed request: {e}"))
            });
        let res = match parsed {
            Ok(a) => crate::usage_rpc::usage(&self.state, a).await,
            Err(e) => Err(e),
        };
        match res {
            Ok(v) => json_to_msgpack(v),
            Err(e) => refusal(e),
        }
    }

    fn cancel(&self, args: Vec<Value>) {
        let Some(id) = args.first().and_then(Value::as_u64) else {
            return;
        };
        if let Some(buf) = self.state.cancel_edit(id) {
            tracing::info!(edit = id, "cancelled");
            self.state.send_ui(UiEvent::Failed {
                id,
                buf,
                reason: Reason::Cancelled,
                message: "cancelled; the buffer is unchanged".into(),
            });
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
            "hello" => self.hello(args),
            "edit" => self.edit(args),
            "version" => Ok(Value::from(env!("CARGO_PKG_VERSION"))),
            "models" => self.models(args).await,
            "health" => Ok(self.health(args).await),
            "usage" => Ok(self.usage(args).await),
            other => Err(Value::from(format!("frugal: unknown request {other}"))),
        }
    }

    async fn handle_notify(&self, name: String, args: Vec<Value>, _nvim: Neovim<Writer>) {
        match name.as_str() {
            "cancel" => self.cancel(args),
            "status" => {
                let project = args
                    .into_iter()
                    .next()
                    .and_then(|v| rmpv::ext::from_value::<crate::project::ProjectInput>(v).ok());
                if let Some(p) = project {
                    let state = self.state.clone();
                    tokio::spawn(async move { crate::usage_rpc::status(&state, p).await });
                }
            }
            other => tracing::warn!("unknown notification {other}"),
        }
    }
}

/// Delivers UI events to Neovim one at a time, in order.
pub async fn forward_ui(
    nvim: Neovim<Writer>,
    mut rx: tokio::sync::mpsc::UnboundedReceiver<UiEvent>,
) {
    while let Some(ev) = rx.recv().await {
        // Through JSON: rmpv's serializer writes structs as arrays, Lua wants maps.
        let value = match serde_json::to_value(&ev) {
            Ok(v) => json_to_msgpack(v),
            Err(e) => {
                tracing::error!("cannot encode UI event: {e}");
                continue;
            }
        };
        if let Err(e) = nvim
            .exec_lua("require('frugal.edit')._on(...)", vec![value])
            .await
        {
            if e.is_channel_closed() {
                break;
            }
            tracing::warn!("UI event not delivered: {e}");
        }
    }
}

/// A JSON value as msgpack, objects as maps (what Lua tables decode from).
pub fn json_to_msgpack(v: serde_json::Value) -> Value {
    match v {
        serde_json::Value::Null => Value::Nil,
        serde_json::Value::Bool(b) => Value::from(b),
        serde_json::Value::Number(n) => {
            if let Some(i) = n.as_i64() {
                Value::from(i)
            } else if let Some(u) = n.as_u64() {
                Value::from(u)
            } else {
                Value::from(n.as_f64().unwrap_or(0.0))
            }
        }
        serde_json::Value::String(s) => Value::from(s),
        serde_json::Value::Array(a) => Value::Array(a.into_iter().map(json_to_msgpack).collect()),
        serde_json::Value::Object(o) => Value::Map(
            o.into_iter()
                .map(|(k, v)| (Value::from(k), json_to_msgpack(v)))
                .collect(),
        ),
    }
}

/// The picker's list: plain catalogue prices per million tokens.
fn model_list(
    cat: &crate::openrouter::catalogue::Catalogue,
    settings: &crate::project::ProjectSettings,
) -> serde_json::Value {
    let allow = settings.allow.as_ref();
    let per_m = |u: crate::budget::Usd| u.to_f64() * 1_000_000.0;
    let models: Vec<serde_json::Value> = cat
        .models
        .iter()
        .filter(|m| allow.is_none_or(|a| crate::project::allowed(&m.id, a)))
        .map(|m| {
            serde_json::json!({
                "id": m.id,
                "name": m.name,
                "priced": m.list_price.is_some(),
                "free": m.list_price.is_some_and(|p| p.is_free()),
                "prompt_per_m": m.list_price.map(|p| per_m(p.prompt)),
                "completion_per_m": m.list_price.map(|p| per_m(p.completion)),
            })
        })
        .collect();
    serde_json::json!({
        "ok": true,
        "models": models,
        "filtered": allow.is_some(),
        "project_default": settings.default_model,
    })
}
