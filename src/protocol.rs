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
//! | `hello` | `{ config, data_home }`: `setup()` as given (types checked by the shim), `stdpath("data")` | `{ version, protocol, pid, log_file, warnings = { {level, message} }, settings = { model, judge_model, context_lines, base_url, data_dir, stall_timeout_s } }` |
//! | `edit` | [`EditRequest`] | `{}` once started; the edit reports through `progress`, `hunk`, `done`, `failed` events |
//! | `review` | [`ReviewRequest`] | `{}` once started; the review reports through `progress`, then `review_done` or `failed` |
//! | `cancel` | `{ id }` | `{}` (a `failed` event with reason `cancelled` follows when it was running) |
//! | `models` | `{ project?, token }` | `{ ok, models, filtered, model }` (`model`: the one an edit uses without `:LlmModel`), or `{ ok = false, pending = true, model }` and later a `models` event with `token` |
//! | `usage` | `{ project?, all, width, token }` | the report `{ ok, title, lines, highlights, width, data }`; a fresher one may follow as a `usage` event |
//! | `status` | `{ project }` | `{ root, text }` for the statusline |
//! | `health` | `{ project? }` | `{ version, ledger_path, ledger_rows?, ledger_error?, endpoint_ok, endpoint, endpoint_kind, priced, project_error?, warnings, keys, files, judge }` |
//! | `choose` | `{ question, choice? }` | `{}`: the user's choice for a `question` event (`choice` 1-based, nil when dismissed) |
//! | `context` | `{ file, model?, files = { {path, buf, lines?} } }` | `{ lines }`: the `:LlmContext` listing (each file's size and share of an edit's worst case) |
//! | `check_path` | `{ file, path, new_file? }` (`file`: the project file, `path` relative to its directory) | `{}` when a hunk of that file may be applied now; refused with a few words naming `path` (it leads into `.git`, out of the project, nowhere; a new file that exists by now) |
//! | `version` | `{}` | `"x.y.z"` |
//! | `key` | `{ project }` | `{ message, bound }`: the project's bound key (`:LlmKey`) |
//! | `key_create` | `{ project, args }` (`args`: `[limit_usd] [daily\|weekly\|monthly]` as strings) | `{ message, bound }` (`:LlmKey create`) |
//! | `key_limit` | `{ project, args }` (`args`: `{usd}`) | `{ message, bound }` (`:LlmKey limit`) |
//! | `key_disable` | `{ project }` | `{ message, bound }` (`:LlmKey disable`) |
//!
//! # Events (`kind`)
//!
//! `reply { seq, ok, result?, message? }`, `foresight`, `progress`, `hunk`, `done`, `failed`,
//! `review_done` (see [`Event`]), `usage { token, report }`, `models { token, list }`, `notify { level, message }`
//! (`level`: `"info"`, `"warn"`, `"error"`), and `question { question, prompt, choices }`: a
//! question the backend waits on (answered with the `choose` call; unanswered questions time out
//! in the backend).
//!
//! An edit's `prompt { id, buf, files, bytes }` event says, once its prompt is built, how many
//! files the model sees and the prompt's size. Its `hunk` events carry the file's `path`
//! (relative to the checkout's root) and `buf` (0: not loaded, the shim loads it); `new_file`
//! marks a proposed new file. `done` carries the answer's text (`answer`), which a follow-up
//! sends back in `history`.
//!
//! An edit's `hunk` events carry increasing `index`es. A `hunk` whose `replaces` lists
//! earlier indices supersedes those hunks (a later block of the answer edited their text):
//! the shim withdraws them and shows this one, which covers their lines and includes their
//! changes, so every hunk still shown is accepted or rejected on its own. `done` carries
//! `unmatched` (titles of blocks that matched nowhere) and `problems` (`{ title, why }` for
//! blocks not shown for another reason).
//!
//! A review (`review`) shares the id space of edits (the shim numbers both from one counter)
//! and its `progress` and `failed` events; it ends with `review_done` carrying one verdict per
//! hunk sent, in the order sent.

use crate::settings::ProjectInput;
use rmpv::Value;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::path::PathBuf;

pub use crate::message::{Failure, Level, Reason};

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
    Review(Box<ReviewRequest>),
    Cancel(Cancel),
    Models(ModelsArgs),
    Usage(UsageArgs),
    Status(StatusArgs),
    Health(HealthArgs),
    Choose(ChooseArgs),
    Context(ContextArgs),
    CheckPath(CheckPathArgs),
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
            "review" => Call::Review(Box::new(ReviewRequest::decode(params)?)),
            "cancel" => Call::Cancel(decode("cancel", params)?),
            "models" => Call::Models(decode("models", params)?),
            "usage" => Call::Usage(decode("usage", params)?),
            "status" => Call::Status(decode("status", params)?),
            "health" => Call::Health(decode("health", params)?),
            "choose" => Call::Choose(decode("choose", params)?),
            "context" => Call::Context(ContextArgs::decode(params)?),
            "check_path" => Call::CheckPath(decode("check_path", params)?),
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
pub struct ChooseArgs {
    pub question: u64,
    /// 1-based; `None` when the user dismissed the question.
    #[serde(default)]
    pub choice: Option<usize>,
}

/// `context`: the `:LlmContext` listing of a project's context files.
#[derive(Debug)]
pub struct ContextArgs {
    /// The project file (`<checkout>/.frugal.toml`): its directory is the paths' root.
    pub file: String,
    /// The model an edit would use now.
    pub model: Option<String>,
    pub files: Vec<ContextFile>,
}

impl ContextArgs {
    fn decode(v: Value) -> Result<ContextArgs, ProtocolError> {
        let malformed = |message: String| ProtocolError::Malformed {
            method: "context",
            message,
        };
        let Value::Map(entries) = v else {
            return Err(malformed("expected a table of named arguments".into()));
        };
        let (mut file, mut model, mut files) = (None, None, Vec::new());
        for (k, v) in entries {
            match k.as_str() {
                Some("file") => file = text(v),
                Some("model") => model = text(v),
                Some("files") => files = decode_context(v)?,
                other => return Err(malformed(format!("unknown field {}", other.unwrap_or("?")))),
            }
        }
        let file = file.ok_or_else(|| malformed("missing file".into()))?;
        Ok(ContextArgs { file, model, files })
    }
}

/// `check_path`: may a hunk of `path` be applied now (asked at accept, for a buffer the shim
/// created or loaded for an edit)?
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CheckPathArgs {
    /// The project file (`<checkout>/.frugal.toml`): its directory is the path's root.
    pub file: String,
    /// Relative to the checkout's root, as the `hunk` event named it.
    pub path: String,
    /// The hunk fills a proposed new file.
    #[serde(default)]
    pub new_file: bool,
}

/// `context`'s result: the listing's lines.
#[derive(Debug, Clone, Serialize)]
pub struct ContextReply {
    pub lines: Vec<String>,
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
    /// Filled from the raw message: the other files the model sees and may change (the
    /// session's context files and the instruction's `@path` mentions), texts checked to be
    /// UTF-8.
    #[serde(skip)]
    pub context: Vec<ContextFile>,
    /// The earlier turns of a follow-up, oldest first.
    #[serde(default)]
    pub history: Vec<Turn>,
    /// Error and warning diagnostics inside the selection.
    #[serde(default)]
    pub diagnostics: Vec<Diagnostic>,
}

/// A context file of an edit: its path (relative to the checkout's root, or absolute), and
/// its buffer's lines when it is loaded in Neovim (unsaved changes included); without them the
/// backend reads the file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContextFile {
    pub path: String,
    /// Its buffer, 0 when it is not loaded.
    pub buf: i64,
    pub lines: Option<Vec<String>>,
}

/// One earlier exchange of a follow-up: what the user asked and what the model answered.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Turn {
    pub instruction: String,
    pub answer: String,
}

/// A diagnostic inside the selection (`vim.diagnostic`), rows 0-based.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Diagnostic {
    pub row: usize,
    /// `"error"` or `"warning"`.
    pub severity: String,
    pub message: String,
    #[serde(default)]
    pub source: Option<String>,
}

/// `value` as UTF-8 text (msgpack strings or binary).
fn text(value: Value) -> Option<String> {
    match value {
        Value::String(s) => s.into_str(),
        Value::Binary(b) => String::from_utf8(b).ok(),
        _ => None,
    }
}

/// The first string in `v` that is not UTF-8, named by where it is (`history[1].answer`).
fn non_utf8(v: &Value, at: &str) -> Option<String> {
    match v {
        Value::String(s) if s.as_str().is_none() => Some(at.to_string()),
        Value::Array(items) => items
            .iter()
            .enumerate()
            .find_map(|(i, x)| non_utf8(x, &format!("{at}[{}]", i + 1))),
        Value::Map(entries) => entries.iter().find_map(|(k, x)| {
            let key = k.as_str().unwrap_or("?");
            let at = if at.is_empty() {
                key.to_string()
            } else {
                format!("{at}.{key}")
            };
            non_utf8(x, &at)
        }),
        _ => None,
    }
}

/// The `context` entries of an edit: `{ path, buf?, lines? }` each.
fn decode_context(v: Value) -> Result<Vec<ContextFile>, ProtocolError> {
    let malformed = |message: String| ProtocolError::Malformed {
        method: "edit",
        message,
    };
    let items = match v {
        Value::Nil => return Ok(Vec::new()),
        Value::Array(items) => items,
        Value::Map(m) if m.is_empty() => return Ok(Vec::new()),
        _ => return Err(malformed("context must be a list".into())),
    };
    let mut out = Vec::with_capacity(items.len());
    for (i, item) in items.into_iter().enumerate() {
        let Value::Map(entries) = item else {
            return Err(malformed(format!("context[{}] must be a table", i + 1)));
        };
        let (mut path, mut buf, mut lines) = (None, 0, None);
        for (k, v) in entries {
            match k.as_str() {
                Some("path") => {
                    path = Some(text(v).ok_or_else(|| {
                        ProtocolError::Refused(format!(
                            "context file {}: its path is not valid UTF-8: rename it",
                            i + 1
                        ))
                    })?)
                }
                Some("buf") => buf = v.as_i64().unwrap_or(0),
                Some("lines") => {
                    let Value::Array(raw) = v else {
                        return Err(malformed(format!(
                            "context[{}].lines must be a list",
                            i + 1
                        )));
                    };
                    lines = Some(raw);
                }
                other => {
                    return Err(malformed(format!(
                        "unknown field context[{}].{}",
                        i + 1,
                        other.unwrap_or("?")
                    )))
                }
            }
        }
        let path = path.ok_or_else(|| malformed(format!("context[{}] has no path", i + 1)))?;
        let lines = match lines {
            None => None,
            Some(raw) => {
                let mut ls = Vec::with_capacity(raw.len());
                for (n, l) in raw.into_iter().enumerate() {
                    ls.push(text(l).ok_or_else(|| {
                        ProtocolError::Refused(format!(
                            "the context file {path}: line {} is not valid UTF-8: frugal sends UTF-8 text only (:LlmContext remove {path})",
                            n + 1
                        ))
                    })?);
                }
                Some(ls)
            }
        };
        out.push(ContextFile { path, buf, lines });
    }
    Ok(out)
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
        let mut raw_context = Value::Nil;
        let mut rest = Vec::with_capacity(entries.len());
        for (k, v) in entries {
            match k.as_str() {
                Some("lines") => raw_lines = Some(v),
                Some("context") => raw_context = v,
                _ => rest.push((k, v)),
            }
        }
        let rest = Value::Map(rest);
        if let Some(at) = non_utf8(&rest, "") {
            return Err(ProtocolError::Refused(format!(
                "edit: {at} is not valid UTF-8: frugal sends UTF-8 text only"
            )));
        }
        let mut req: EditRequest = decode("edit", rest)?;
        req.context = decode_context(raw_context)?;
        let Some(Value::Array(items)) = raw_lines else {
            return Err(malformed("missing lines".into()));
        };
        let mut lines = Vec::with_capacity(items.len());
        for (i, item) in items.into_iter().enumerate() {
            match text(item) {
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

/// What the shim sends for `:LlmReview`: the edit's instruction and its pending hunks.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReviewRequest {
    /// Chosen by the shim from the counter its edits use: unique among edits and reviews.
    pub id: u64,
    pub buf: i64,
    /// The instruction of the edit that proposed the hunks.
    pub instruction: String,
    /// The buffer's filetype (the fences' language).
    #[serde(default)]
    pub filetype: String,
    pub project: ProjectInput,
    /// Every pending hunk of the edit. The judge sees them numbered from 1 by path, then line;
    /// the verdicts come back in the order sent here.
    pub hunks: Vec<ReviewHunk>,
}

/// One pending hunk, where it is now.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReviewHunk {
    /// The file's path relative to the project root.
    pub path: String,
    /// 1-based line of the first old line in the buffer now.
    pub line: usize,
    /// The original lines the hunk replaces.
    pub old: Vec<String>,
    /// The proposed lines.
    pub new: Vec<String>,
    /// A few unchanged lines just above and below, for context.
    #[serde(default)]
    pub before: Vec<String>,
    #[serde(default)]
    pub after: Vec<String>,
}

impl ReviewRequest {
    /// Decodes the shim's map; a review of nothing is refused.
    pub fn decode(v: Value) -> Result<ReviewRequest, ProtocolError> {
        let req: ReviewRequest = decode("review", v)?;
        if req.hunks.is_empty() {
            return Err(ProtocolError::Refused(
                "no pending hunk to review in this buffer: :LlmEdit first".into(),
            ));
        }
        if req.hunks.iter().any(|h| h.line == 0) {
            return Err(ProtocolError::Malformed {
                method: "review",
                message: "hunk lines are 1-based".into(),
            });
        }
        Ok(req)
    }
}

/// A judge's verdict on one hunk (`verdict` in `review_done` and `User FrugalReviewDone`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Judgement {
    Ok,
    Risky,
    Wrong,
    /// No verdict could be read for this hunk (missing, duplicated, an unknown word, the
    /// wrong shape): shown as "no verdict", never guessed.
    None,
}

impl Judgement {
    pub fn as_str(self) -> &'static str {
        match self {
            Judgement::Ok => "ok",
            Judgement::Risky => "risky",
            Judgement::Wrong => "wrong",
            Judgement::None => "none",
        }
    }
}

/// One hunk's verdict, for the hunk sent at `item` (1-based position in the request).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Verdict {
    pub item: usize,
    /// The hunk's number as the judge saw it (by path, then line).
    pub hunk: usize,
    pub path: String,
    pub line: usize,
    pub verdict: Judgement,
    /// One line; for `none`, why there is no verdict.
    pub reason: String,
}

/// An empty result: the call was accepted.
#[derive(Debug, Clone, Serialize)]
pub struct Accepted {}

/// The protocol's number, sent in `hello`: the shim (`lua/frugal/version.lua`'s `protocol`)
/// compares it with its own and says when they differ (a backend older or newer than the Lua
/// after an update). Raise it with every change to a call, a reply or an event.
pub const PROTOCOL: u32 = 1;

/// `hello`'s result.
#[derive(Debug, Clone, Serialize)]
pub struct HelloReply {
    pub version: &'static str,
    /// [`PROTOCOL`].
    pub protocol: u32,
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
    /// The model `:LlmReview` asks, as resolved here (the shim shows it).
    pub judge_model: String,
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
    /// The model an edit of this project uses unless `:LlmModel` picks one: the project's
    /// `[model] default`, else `setup({ model })` (decided here, shown by the shim).
    pub model: String,
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
    /// `"openrouter"` or `"plain"` (see `openrouter::Endpoint`).
    pub endpoint_kind: &'static str,
    /// The models `setup({ prices })` prices, one line each, sorted.
    pub priced: Vec<String>,
    pub project_error: Option<String>,
    /// The `setup()` warnings of the last `hello`.
    pub warnings: Vec<Notice>,
    /// `api_key` and every named key: present or not (never the value).
    pub keys: Vec<KeyCheck>,
    /// `data_dir`, the ledger and its `-wal`/`-shm`, the catalogue: each one's mode.
    pub files: Vec<FileCheck>,
    /// `judge_model` (`:LlmReview`): in the catalogue, priced, taking structured outputs.
    pub judge: FileCheck,
    /// The configured model's and the judge's tiered prices (catalogue `pricing.overrides`),
    /// one line per tier.
    pub tiers: Vec<String>,
}

/// One check for `:checkhealth`: a file's mode (private, 0700 directory, 0600 file, or open
/// to others), or the judge model.
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
    Context(ContextReply),
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
    /// What the request about to leave will likely cost and at most costs (the reservation),
    /// once reserved: the progress line shows both ("likely ~$0.004 · at most $0.031").
    /// `likely_*` is absent when the model has no price (uncapped).
    Foresight {
        id: u64,
        buf: i64,
        worst_usd: f64,
        worst_text: String,
        #[serde(skip_serializing_if = "Option::is_none")]
        likely_usd: Option<f64>,
        #[serde(skip_serializing_if = "Option::is_none")]
        likely_text: Option<String>,
    },
    /// Batched progress (a few per second). `phase`: `waiting`, `thinking` (the model
    /// streams reasoning, no answer text yet), `streaming`, or `retrying` with `note` saying
    /// why and when ("rate limited, retrying in 4 s (2/3)").
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
        /// The hunk creates the file `path` (not on disk, nor in a buffer): `old` is empty,
        /// and the shim shows it in a new buffer of that name, filled on accept.
        #[serde(skip_serializing_if = "std::ops::Not::not")]
        new_file: bool,
    },
    /// What the edit sends, once its prompt is built: how many files the model sees and the
    /// prompt's size in bytes (every message), for the progress line.
    Prompt {
        id: u64,
        buf: i64,
        files: usize,
        bytes: u64,
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
        /// The answer's text, for a follow-up's history (`:LlmEdit` on the pending hunks).
        answer: String,
        /// The worst case that was reserved for the request (`None`: no reservation).
        reserved_usd: Option<f64>,
    },
    Failed {
        id: u64,
        buf: i64,
        reason: Reason,
        message: String,
        /// The one-line notification, when `message` is longer (see [`Failure::line`]).
        #[serde(skip_serializing_if = "Option::is_none")]
        line: Option<String>,
    },
    /// A review ended: one verdict per hunk sent, in the order sent. `unread` says why the
    /// answer held no readable verdicts at all (every verdict is then `none`).
    ReviewDone {
        id: u64,
        buf: i64,
        verdicts: Vec<Verdict>,
        cost_usd: Option<f64>,
        cost_text: Option<String>,
        model: String,
        #[serde(skip_serializing_if = "Option::is_none")]
        unread: Option<String>,
        tokens: u64,
        elapsed_ms: u64,
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
    /// A question the backend waits on; answered with the `choose` call.
    Question {
        question: u64,
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
    fn edit_context_texts_are_checked_to_be_utf8() {
        let project = map(&[
            ("root", Value::from("/p")),
            ("file", Value::from("/p/.frugal.toml")),
            ("state", Value::from("absent")),
        ]);
        let req = |context: Value, history: Value| {
            map(&[
                ("id", Value::from(1)),
                ("buf", Value::from(1)),
                ("file", Value::from("a.py")),
                ("instruction", Value::from("x")),
                ("sel_start", Value::from(0)),
                ("sel_end", Value::from(1)),
                ("win_start", Value::from(0)),
                ("total_lines", Value::from(1)),
                ("project", project.clone()),
                ("lines", Value::Array(vec![Value::from("a")])),
                ("context", context),
                ("history", history),
            ])
        };
        let ctx = |lines: Vec<Value>| {
            Value::Array(vec![map(&[
                ("path", Value::from("b.py")),
                ("buf", Value::from(3)),
                ("lines", Value::Array(lines)),
            ])])
        };
        let ok = Call::decode(
            "edit",
            req(ctx(vec![Value::from("b")]), Value::Array(vec![])),
        );
        let Ok(Call::Edit(r)) = ok else {
            panic!("{ok:?}")
        };
        assert_eq!(
            r.context,
            [ContextFile {
                path: "b.py".into(),
                buf: 3,
                lines: Some(vec!["b".into()])
            }]
        );
        let e = Call::decode(
            "edit",
            req(ctx(vec![Value::Binary(vec![0xe9])]), Value::Array(vec![])),
        )
        .unwrap_err();
        assert!(
            e.to_string()
                .starts_with("the context file b.py: line 1 is not valid UTF-8"),
            "{e}"
        );
        // A msgpack str of one byte that is not UTF-8.
        let bad = rmpv::decode::read_value(&mut [0xa1u8, 0xff].as_slice()).unwrap();
        let history = Value::Array(vec![map(&[
            ("instruction", Value::from("x")),
            ("answer", bad),
        ])]);
        let e = Call::decode("edit", req(Value::Array(vec![]), history)).unwrap_err();
        assert!(
            e.to_string()
                .contains("history[1].answer is not valid UTF-8"),
            "{e}"
        );
    }

    #[test]
    fn review_requests_need_hunks_and_verdicts_encode_their_word() {
        let project = map(&[
            ("root", Value::from("/p")),
            ("file", Value::from("/p/.frugal.toml")),
            ("state", Value::from("absent")),
        ]);
        let hunk = |line: u64| {
            map(&[
                ("path", Value::from("a.lua")),
                ("line", Value::from(line)),
                ("old", Value::Array(vec![Value::from("x")])),
                ("new", Value::Array(vec![])),
            ])
        };
        let req = |hunks: Vec<Value>| {
            map(&[
                ("id", Value::from(4)),
                ("buf", Value::from(1)),
                ("instruction", Value::from("do it")),
                ("project", project.clone()),
                ("hunks", Value::Array(hunks)),
            ])
        };
        let ok = Call::decode("review", req(vec![hunk(3)]));
        assert!(
            matches!(&ok, Ok(Call::Review(r)) if r.hunks[0].line == 3 && r.hunks[0].new.is_empty() && r.hunks[0].before.is_empty()),
            "{ok:?}"
        );
        let e = Call::decode("review", req(vec![])).unwrap_err();
        assert!(
            e.to_string().starts_with("no pending hunk to review"),
            "{e}"
        );
        let e = Call::decode("review", req(vec![hunk(0)])).unwrap_err();
        assert!(
            e.to_string().starts_with("review: malformed request"),
            "{e}"
        );
        let ev = Event::ReviewDone {
            id: 4,
            buf: 1,
            verdicts: vec![Verdict {
                item: 1,
                hunk: 1,
                path: "a.lua".into(),
                line: 3,
                verdict: Judgement::None,
                reason: "no verdict: x".into(),
            }],
            cost_usd: None,
            cost_text: None,
            model: "m".into(),
            unread: None,
            tokens: 0,
            elapsed_ms: 0,
        };
        let v = ev.encode().unwrap();
        assert_eq!(get(&v, "kind").and_then(Value::as_str), Some("review_done"));
        assert_eq!(get(&v, "unread"), None);
        let first = &get(&v, "verdicts").unwrap().as_array().unwrap()[0];
        assert_eq!(get(first, "verdict").and_then(Value::as_str), Some("none"));
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
