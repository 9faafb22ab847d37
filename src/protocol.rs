//! The protocol between the shim (`lua/frugal/rpc.lua`) and the backend: every call, reply and
//! event as a type, decoded once and encoded straight to msgpack.
//!
//! # Transport
//!
//! - **Calls** (shim → backend), two ways, the same methods:
//!   - the msgpack-RPC request `call` with `[method, params]`, when the shim waits for the
//!     answer. The response is always a reply map `{ ok, result }` / `{ ok = false, message }`
//!     (never an RPC error, whose text Neovim would wrap). `vim.rpcrequest` cannot time out,
//!     so the shim bounds the wait with a watchdog that kills a backend that does not answer
//!     (a stopped or wedged process would otherwise freeze Neovim).
//!   - the notification `call` with `[seq, method, params]`, when it does not wait: answered
//!     exactly once by a `reply` event carrying the same `seq`.
//!
//!   Malformed params are refused with a message naming the method and the field.
//! - **Events** (backend → shim): `require("frugal.rpc")._dispatch(event)`, one at a time and
//!   in order; `event.kind` picks the handler that a module registered with `rpc.on(kind, fn)`.
//!   A reply travels on the same ordered path, so an edit's quick failure can never overtake
//!   the reply that accepted it.
//!
//! # Calls (`method`: params → result)
//!
//! | method | params | result |
//! |---|---|---|
//! | `hello` | `{ config, data_home }`: `setup()` as given (types checked by the shim), `stdpath("data")` | `{ version, pid, log_file, warnings = { {level, message} }, settings = { model, context_lines, base_url, data_dir, stall_timeout_s } }` |
//! | `edit` | [`EditRequest`] | `{}` once started; the edit reports through `progress`, `hunk`, `done`, `failed` events |
//! | `cancel` | `{ id }` | `{}` (a `failed` event with reason `cancelled` follows when it was running) |
//! | `models` | `{ project?, token }` | `{ ok, models, filtered, project_default }`, or `{ ok = false, pending = true }` and later a `models` event with `token` |
//! | `usage` | `{ project?, all, width, token }` | the report `{ ok, title, lines, highlights, width, data }`; a fresher one may follow as a `usage` event |
//! | `status` | `{ project }` | `{ root, text }` for the statusline |
//! | `health` | `{ project? }` | `{ version, ledger_path, ledger_rows?, ledger_error?, endpoint_ok, endpoint, project_error?, warnings, keys, files }` |
//! | `answer` | `{ ask, choice? }` | `{}`: the user's answer to an `ask` event (`choice` 1-based, nil when dismissed) |
//! | `version` | `{}` | `"x.y.z"` |
//! | `key` | `{ project }` | `{ message, bound }`: the project's bound key (`:LlmKey`) |
//! | `key_create` | `{ project, args }` (`args`: `[limit_usd] [daily\|weekly\|monthly]` as strings) | `{ message, bound }` (`:LlmKey create`) |
//! | `key_limit` | `{ project, args }` (`args`: `{usd}`) | `{ message, bound }` (`:LlmKey limit`) |
//! | `key_disable` | `{ project }` | `{ message, bound }` (`:LlmKey disable`) |
//!
//! # Events (`kind`)
//!
//! `reply { seq, ok, result?, message? }`, `progress`, `hunk`, `done`, `failed` (see
//! [`Event`]), `usage { token, report }`, `models { token, list }`, `notify { level, message }`
//! (`level`: `"info"`, `"warn"`, `"error"`), and `ask { ask, prompt, choices }`: a question
//! the backend waits on (answered with the `answer` call; unanswered asks time out in the
//! backend).
//!
//! An edit's `hunk` events carry increasing `index`es. A `hunk` whose `replaces` lists
//! earlier indices supersedes those hunks (a later block of the answer edited their text):
//! the shim withdraws them and shows this one, which covers their lines and includes their
//! changes, so every hunk still shown is accepted or rejected on its own. `done` carries
//! `unmatched` (titles of blocks that matched nowhere) and `problems` (`{ title, why }` for
//! blocks not shown for another reason).

use crate::settings::ProjectInput;
use rmpv::Value;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::path::PathBuf;

/// A notification's importance, as `vim.notify` shows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Level {
    Info,
    Warn,
    Error,
}

/// `reason` of `User FrugalEditFailed` (SPEC.md fixes these names).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Reason {
    Budget,
    Http,
    Stream,
    Cancelled,
    NoMatch,
    Config,
    /// The ledger cannot be read or written: corrupt, locked too long, read-only.
    Ledger,
}

/// Why an edit ended without hunks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    pub reason: Reason,
    pub message: String,
}

impl Failure {
    pub fn new(reason: Reason, message: String) -> Self {
        Failure { reason, message }
    }
}

/// A call that cannot be decoded: the message names the method and what is wrong.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProtocolError {
    #[error("frugal: unknown request {0:?}")]
    UnknownMethod(String),
    #[error("{method}: malformed request: {message}")]
    Malformed {
        method: &'static str,
        message: String,
    },
    /// A request that is well formed but cannot be served as asked (said to the user as is).
    #[error("{0}")]
    Refused(String),
}

/// A decoded call.
#[derive(Debug)]
pub enum Call {
    Hello(Hello),
    Edit(Box<EditRequest>),
    Cancel(Cancel),
    Models(ModelsArgs),
    Usage(UsageArgs),
    Status(StatusArgs),
    Health(HealthArgs),
    Answer(AnswerArgs),
    Version,
    /// `:LlmKey …`: which one, and its arguments.
    Key(KeyAction, KeyArgs),
}

impl Call {
    /// Decodes `params` for `method`. An absent params table (`nil`, or an empty Lua table
    /// that arrived as an array) counts as `{}`.
    pub fn decode(method: &str, params: Value) -> Result<Call, ProtocolError> {
        let params = match params {
            Value::Nil => Value::Map(Vec::new()),
            Value::Array(a) if a.is_empty() => Value::Map(Vec::new()),
            v => v,
        };
        Ok(match method {
            "hello" => Call::Hello(decode("hello", params)?),
            "edit" => Call::Edit(Box::new(EditRequest::decode(params)?)),
            "cancel" => Call::Cancel(decode("cancel", params)?),
            "models" => Call::Models(decode("models", params)?),
            "usage" => Call::Usage(decode("usage", params)?),
            "status" => Call::Status(decode("status", params)?),
            "health" => Call::Health(decode("health", params)?),
            "answer" => Call::Answer(decode("answer", params)?),
            "version" => Call::Version,
            "key" => Call::Key(KeyAction::Show, decode("key", params)?),
            "key_create" => Call::Key(KeyAction::Create, decode("key_create", params)?),
            "key_limit" => Call::Key(KeyAction::Limit, decode("key_limit", params)?),
            "key_disable" => Call::Key(KeyAction::Disable, decode("key_disable", params)?),
            other => return Err(ProtocolError::UnknownMethod(other.to_string())),
        })
    }
}

fn decode<T: serde::de::DeserializeOwned>(
    method: &'static str,
    params: Value,
) -> Result<T, ProtocolError> {
    if !params.is_map() {
        return Err(ProtocolError::Malformed {
            method,
            message: "expected a table of named arguments".into(),
        });
    }
    rmpv::ext::from_value(params).map_err(|e| ProtocolError::Malformed {
        method,
        message: e.to_string(),
    })
}

/// `hello`: the user's `setup()` and where Neovim keeps its data.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Hello {
    /// `setup()` as given, minus the keys only the shim uses; checked key by key.
    #[serde(default = "nil")]
    pub config: Value,
    /// `stdpath("data")`.
    #[serde(default)]
    pub data_home: Option<PathBuf>,
}

fn nil() -> Value {
    Value::Nil
}

impl Hello {
    /// The config table by key (an empty Lua table may arrive as an array).
    pub fn config_map(&self) -> Result<HashMap<String, Value>, ProtocolError> {
        match &self.config {
            Value::Nil => Ok(HashMap::new()),
            Value::Array(a) if a.is_empty() => Ok(HashMap::new()),
            Value::Map(entries) => entries
                .iter()
                .map(|(k, v)| match k.as_str() {
                    Some(k) => Ok((k.to_string(), v.clone())),
                    None => Err(ProtocolError::Malformed {
                        method: "hello",
                        message: "config keys must be strings".into(),
                    }),
                })
                .collect(),
            _ => Err(ProtocolError::Malformed {
                method: "hello",
                message: "config must be a table".into(),
            }),
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Cancel {
    pub id: u64,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelsArgs {
    #[serde(default)]
    pub project: Option<ProjectInput>,
    #[serde(default)]
    pub token: u64,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UsageArgs {
    #[serde(default)]
    pub project: Option<ProjectInput>,
    #[serde(default)]
    pub all: bool,
    #[serde(default)]
    pub width: usize,
    #[serde(default)]
    pub token: u64,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StatusArgs {
    pub project: ProjectInput,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HealthArgs {
    #[serde(default)]
    pub project: Option<ProjectInput>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AnswerArgs {
    pub ask: u64,
    /// 1-based; `None` when the user dismissed the question.
    #[serde(default)]
    pub choice: Option<usize>,
}

/// The `:LlmKey` subcommand.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyAction {
    Show,
    Create,
    Limit,
    Disable,
}

/// `key`, `key_create`, `key_limit`, `key_disable`: the project, and the command's words after
/// the subcommand (checked by the backend, which words what is wrong).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeyArgs {
    pub project: ProjectInput,
    #[serde(default)]
    pub args: Vec<String>,
}

/// The answer to a `:LlmKey` command: what to tell the user, and whether a key is bound to the
/// project afterwards.
#[derive(Debug, Clone, Serialize)]
pub struct KeyReply {
    pub message: String,
    pub bound: bool,
}

/// What the shim sends for `:LlmEdit` (all rows 0-based, ranges end-exclusive).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EditRequest {
    /// Chosen by the shim, unique within its session.
    pub id: u64,
    pub buf: i64,
    pub file: String,
    #[serde(default)]
    pub filetype: String,
    pub instruction: String,
    pub sel_start: usize,
    pub sel_end: usize,
    /// First buffer row of `lines`.
    pub win_start: usize,
    pub total_lines: usize,
    /// The project: its root (git root or the file's directory) and `.frugal.toml`.
    pub project: ProjectInput,
    /// The model to use instead of the configured one (`:LlmModel`).
    #[serde(default)]
    pub model: Option<String>,
    /// Filled from the raw message: the context window, checked to be UTF-8.
    #[serde(skip)]
    pub lines: Vec<String>,
}

impl EditRequest {
    /// Decodes the shim's map, refusing non-UTF-8 text with a message naming the line.
    pub fn decode(v: Value) -> Result<EditRequest, ProtocolError> {
        let malformed = |message: String| ProtocolError::Malformed {
            method: "edit",
            message,
        };
        let Value::Map(entries) = v else {
            return Err(malformed("expected a table of named arguments".into()));
        };
        let mut raw_lines = None;
        let mut rest = Vec::with_capacity(entries.len());
        for (k, v) in entries {
            if k.as_str() == Some("lines") {
                raw_lines = Some(v);
            } else {
                rest.push((k, v));
            }
        }
        let mut req: EditRequest = decode("edit", Value::Map(rest))?;
        let Some(Value::Array(items)) = raw_lines else {
            return Err(malformed("missing lines".into()));
        };
        let mut lines = Vec::with_capacity(items.len());
        for (i, item) in items.into_iter().enumerate() {
            let text = match item {
                Value::String(s) => s.into_str(),
                Value::Binary(b) => String::from_utf8(b).ok(),
                _ => None,
            };
            match text {
                Some(t) => lines.push(t),
                None => {
                    return Err(ProtocolError::Refused(format!(
                        "line {} is not valid UTF-8: frugal edits UTF-8 text only (:set fileencoding? and reload with :e ++enc=…)",
                        req.win_start + i + 1
                    )))
                }
            }
        }
        req.lines = lines;
        let win_end = req.win_start + req.lines.len();
        if req.sel_start >= req.sel_end || req.sel_start < req.win_start || req.sel_end > win_end {
            return Err(ProtocolError::Refused(format!(
                "edit: selection {}-{} is outside the lines sent ({}-{})",
                req.sel_start + 1,
                req.sel_end,
                req.win_start + 1,
                win_end
            )));
        }
        if req.instruction.trim().is_empty() {
            return Err(ProtocolError::Refused(
                "the instruction is empty: say what to change".into(),
            ));
        }
        Ok(req)
    }
}

/// An empty result: the call was accepted.
#[derive(Debug, Clone, Serialize)]
pub struct Accepted {}

/// `hello`'s result.
#[derive(Debug, Clone, Serialize)]
pub struct HelloReply {
    pub version: &'static str,
    pub pid: u32,
    /// Today's log file (the base path carries the UTC date as suffix).
    pub log_file: Option<String>,
    /// What is wrong in `setup()`: the shim shows each once.
    pub warnings: Vec<Notice>,
    /// The settings in effect that the shim needs or shows.
    pub settings: SettingsView,
}

/// The effective settings the shim uses (`context_lines` for the window it sends) or shows.
#[derive(Debug, Clone, Serialize)]
pub struct SettingsView {
    pub model: String,
    pub context_lines: usize,
    pub base_url: String,
    pub data_dir: String,
    pub stall_timeout_s: u64,
}

/// One key's check for `:checkhealth`: never its value.
#[derive(Debug, Clone, Serialize)]
pub struct KeyCheck {
    /// `"ok"`, `"info"` or `"error"`.
    pub state: &'static str,
    pub message: String,
    pub advice: Option<String>,
}

/// A message with its level.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Notice {
    pub level: Level,
    pub message: String,
}

/// One model of the `:LlmModel` picker, prices per million tokens.
#[derive(Debug, Clone, Serialize)]
pub struct ModelEntry {
    pub id: String,
    pub name: String,
    pub priced: bool,
    pub free: bool,
    pub prompt_per_m: Option<f64>,
    pub completion_per_m: Option<f64>,
    /// `"$3.00 in / $15.00 out per M tokens"` for a priced model (enough digits that a tiny
    /// price never reads `$0.00`).
    pub price_text: Option<String>,
}

/// `models`' result and event: the list, `pending` (sent later as an event), or why none.
#[derive(Debug, Clone, Serialize)]
pub struct ModelList {
    pub ok: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub models: Option<Vec<ModelEntry>>,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub filtered: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub project_default: Option<String>,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub pending: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

/// The `:LlmUsage` report as the float shows it: lines, highlight ranges
/// `(line, start col, end col, group)`, and the figures behind them.
#[derive(Debug, Clone, Serialize)]
pub struct UsageReport {
    pub ok: bool,
    pub title: String,
    pub lines: Vec<String>,
    pub highlights: Vec<(usize, usize, usize, &'static str)>,
    pub width: usize,
    pub data: crate::usage::json::ReportData,
}

/// `status`' result: the statusline text of a project.
#[derive(Debug, Clone, Serialize)]
pub struct StatusReply {
    pub root: String,
    pub text: String,
}

/// `health`'s result, for `:checkhealth frugal`.
#[derive(Debug, Clone, Serialize)]
pub struct HealthReply {
    pub version: &'static str,
    pub ledger_path: String,
    pub ledger_rows: Option<i64>,
    pub ledger_error: Option<String>,
    pub endpoint_ok: bool,
    pub endpoint: String,
    pub project_error: Option<String>,
    /// The `setup()` warnings of the last `hello`.
    pub warnings: Vec<Notice>,
    /// `api_key` and every named key: present or not (never the value).
    pub keys: Vec<KeyCheck>,
    /// `data_dir`, the ledger and its `-wal`/`-shm`, the catalogue: each one's mode.
    pub files: Vec<FileCheck>,
}

/// One file's mode for `:checkhealth`: private (0700 directory, 0600 file) or open to others.
#[derive(Debug, Clone, Serialize)]
pub struct FileCheck {
    /// `"ok"`, `"info"` or `"warn"`.
    pub state: &'static str,
    pub message: String,
    pub advice: Option<String>,
}

/// A block of an answer that is not shown, and why (said after its title).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Problem {
    pub title: String,
    pub why: String,
}

/// Everything a reply can carry.
#[derive(Debug, Clone, Serialize)]
#[serde(untagged)]
pub enum Answer {
    Accepted(Accepted),
    Hello(HelloReply),
    Models(ModelList),
    Usage(Box<UsageReport>),
    Status(StatusReply),
    Health(HealthReply),
    Version(&'static str),
    Key(KeyReply),
}

/// Messages to the shim, delivered in order through `require("frugal.rpc")._dispatch(ev)`.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Event {
    /// The answer to the call `seq`: `result` when `ok`, else `message`.
    Reply {
        seq: u64,
        ok: bool,
        #[serde(skip_serializing_if = "Option::is_none")]
        result: Option<Answer>,
        #[serde(skip_serializing_if = "Option::is_none")]
        message: Option<String>,
    },
    /// Batched progress (a few per second). `phase`: `waiting`, `streaming`, or `retrying`
    /// with `note` saying why and when ("rate limited, retrying in 4 s (2/3)").
    Progress {
        id: u64,
        buf: i64,
        tokens: u64,
        elapsed_ms: u64,
        cost_usd: Option<f64>,
        /// `cost_usd` as frugal shows money (never `$0.0000` for a non-zero amount).
        cost_text: Option<String>,
        phase: &'static str,
        #[serde(skip_serializing_if = "Option::is_none")]
        note: Option<String>,
    },
    /// One located block, ready to preview. Rows are 0-based, `end` exclusive, as they were in
    /// the lines the shim sent; `old` is those lines, so the shim can re-anchor after edits.
    /// `path` is the file's path relative to the project root, the address of the hunk beside
    /// `buf` (edits across files will send hunks for other buffers).
    Hunk {
        id: u64,
        buf: i64,
        path: String,
        index: usize,
        start: usize,
        end: usize,
        old: Vec<String>,
        new: Vec<String>,
        title: String,
        /// Indices of earlier hunks of this edit that this one replaces: the block edited
        /// their text, so this hunk covers their lines too and its `new` includes their
        /// changes. The shim withdraws them before showing this one.
        replaces: Vec<usize>,
    },
    Done {
        id: u64,
        buf: i64,
        hunks: usize,
        cost_usd: Option<f64>,
        /// `cost_usd` as frugal shows money.
        cost_text: Option<String>,
        model: String,
        /// Titles of blocks that matched nowhere.
        unmatched: Vec<String>,
        /// Blocks not shown for another reason (no divider, overlapping another block, an
        /// unclear elision, ...), each with it.
        problems: Vec<Problem>,
        tokens: u64,
        elapsed_ms: u64,
    },
    Failed {
        id: u64,
        buf: i64,
        reason: Reason,
        message: String,
    },
    /// A newer `:LlmUsage` report for the window that asked with `token`.
    Usage {
        token: u64,
        report: Box<UsageReport>,
    },
    /// The `:LlmModel` list that was not at hand when asked for.
    Models { token: u64, list: ModelList },
    /// A message for `vim.notify`.
    Notify { level: Level, message: String },
    /// A question the backend waits on; answered with the `answer` call.
    Ask {
        ask: u64,
        prompt: String,
        choices: Vec<String>,
    },
}

impl Event {
    /// Progress of an edit that waits for the model's first token.
    pub fn waiting(id: u64, buf: i64, elapsed_ms: u64) -> Event {
        Event::Progress {
            id,
            buf,
            tokens: 0,
            elapsed_ms,
            cost_usd: None,
            cost_text: None,
            phase: "waiting",
            note: None,
        }
    }

    /// The event as msgpack: structs as maps (what Lua tables decode from), no JSON detour.
    pub fn encode(&self) -> Result<Value, String> {
        let bytes = rmp_serde::to_vec_named(self).map_err(|e| e.to_string())?;
        rmpv::decode::read_value(&mut bytes.as_slice()).map_err(|e| e.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(pairs: &[(&str, Value)]) -> Value {
        Value::Map(
            pairs
                .iter()
                .map(|(k, v)| (Value::from(*k), v.clone()))
                .collect(),
        )
    }

    fn get<'a>(v: &'a Value, key: &str) -> Option<&'a Value> {
        v.as_map()?
            .iter()
            .find(|(k, _)| k.as_str() == Some(key))
            .map(|(_, v)| v)
    }

    #[test]
    fn unknown_methods_and_malformed_params_are_refused_with_a_message() {
        let e = Call::decode("nosuch", Value::Nil).unwrap_err();
        assert_eq!(e.to_string(), "frugal: unknown request \"nosuch\"");
        let e = Call::decode("cancel", map(&[])).unwrap_err();
        assert!(
            e.to_string().starts_with("cancel: malformed request"),
            "{e}"
        );
        assert!(e.to_string().contains("id"), "{e}");
        let e = Call::decode("cancel", map(&[("id", Value::from("x"))])).unwrap_err();
        assert!(e.to_string().contains("cancel"), "{e}");
        let e = Call::decode("models", Value::from(3)).unwrap_err();
        assert!(e.to_string().contains("named arguments"), "{e}");
        let e = Call::decode("usage", map(&[("all", Value::from("yes"))])).unwrap_err();
        assert!(e.to_string().starts_with("usage: malformed request"), "{e}");
        let e = Call::decode("status", map(&[("prject", Value::Nil)])).unwrap_err();
        assert!(e.to_string().contains("prject"), "{e}");
        let bad_state = map(&[(
            "project",
            map(&[
                ("root", Value::from("/p")),
                ("file", Value::from("/p/.frugal.toml")),
                ("state", Value::from("maybe")),
            ]),
        )]);
        let e = Call::decode("status", bad_state).unwrap_err();
        assert!(e.to_string().contains("maybe"), "{e}");
    }

    #[test]
    fn key_calls_name_their_action() {
        let project = map(&[
            ("root", Value::from("/p")),
            ("file", Value::from("/p/.frugal.toml")),
            ("state", Value::from("absent")),
        ]);
        let args = map(&[
            ("project", project.clone()),
            (
                "args",
                Value::Array(vec![Value::from("5"), Value::from("monthly")]),
            ),
        ]);
        assert!(matches!(
            Call::decode("key_create", args),
            Ok(Call::Key(KeyAction::Create, KeyArgs { args, .. })) if args == ["5", "monthly"]
        ));
        assert!(matches!(
            Call::decode("key", map(&[("project", project.clone())])),
            Ok(Call::Key(KeyAction::Show, KeyArgs { args, .. })) if args.is_empty()
        ));
        let e = Call::decode("key_limit", map(&[])).unwrap_err();
        assert!(
            e.to_string().starts_with("key_limit: malformed request"),
            "{e}"
        );
        assert!(e.to_string().contains("project"), "{e}");
    }

    #[test]
    fn empty_params_are_an_empty_table() {
        assert!(matches!(
            Call::decode("version", Value::Nil),
            Ok(Call::Version)
        ));
        assert!(matches!(
            Call::decode("models", Value::Array(vec![])),
            Ok(Call::Models(ModelsArgs { token: 0, .. }))
        ));
    }

    #[test]
    fn edit_requests_check_their_lines_and_selection() {
        let project = map(&[
            ("root", Value::from("/p")),
            ("file", Value::from("/p/.frugal.toml")),
            ("state", Value::from("absent")),
        ]);
        let base = |lines: Value, sel: (u64, u64)| {
            map(&[
                ("id", Value::from(1)),
                ("buf", Value::from(1)),
                ("file", Value::from("a.py")),
                ("instruction", Value::from("x")),
                ("sel_start", Value::from(sel.0)),
                ("sel_end", Value::from(sel.1)),
                ("win_start", Value::from(0)),
                ("total_lines", Value::from(2)),
                ("project", project.clone()),
                ("lines", lines),
            ])
        };
        let ok = Call::decode(
            "edit",
            base(
                Value::Array(vec![Value::from("a"), Value::from("b")]),
                (0, 2),
            ),
        );
        assert!(matches!(ok, Ok(Call::Edit(r)) if r.lines == ["a", "b"]));
        let e = Call::decode(
            "edit",
            base(Value::Array(vec![Value::Binary(vec![0xff])]), (0, 1)),
        )
        .unwrap_err();
        assert!(
            e.to_string().starts_with("line 1 is not valid UTF-8"),
            "{e}"
        );
        let e =
            Call::decode("edit", base(Value::Array(vec![Value::from("a")]), (0, 3))).unwrap_err();
        assert!(e.to_string().contains("outside the lines sent"), "{e}");
    }

    #[test]
    fn events_encode_as_maps_with_their_kind() {
        let ev = Event::Notify {
            level: Level::Warn,
            message: "m".into(),
        };
        let v = ev.encode().unwrap();
        assert_eq!(get(&v, "kind").and_then(Value::as_str), Some("notify"));
        assert_eq!(get(&v, "level").and_then(Value::as_str), Some("warn"));
        let reply = Event::Reply {
            seq: 7,
            ok: true,
            result: Some(Answer::Status(StatusReply {
                root: "/p".into(),
                text: "$0.00 today".into(),
            })),
            message: None,
        };
        let v = reply.encode().unwrap();
        assert_eq!(get(&v, "seq").and_then(Value::as_u64), Some(7));
        assert!(get(&v, "message").is_none());
        let result = get(&v, "result").unwrap();
        assert_eq!(
            get(result, "text").and_then(Value::as_str),
            Some("$0.00 today")
        );
        let accepted = Event::Reply {
            seq: 1,
            ok: true,
            result: Some(Answer::Accepted(Accepted {})),
            message: None,
        };
        let v = accepted.encode().unwrap();
        assert_eq!(get(&v, "result"), Some(&Value::Map(vec![])));
        let v = Event::waiting(1, 2, 0).encode().unwrap();
        assert_eq!(get(&v, "cost_usd"), Some(&Value::Nil));
        assert_eq!(get(&v, "note"), None);
    }
}
