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
//! - **Calls** are listed in `rpc/mod.rs`: each one's parameters, reply and handler live in its
//!   own module under `src/rpc/`; the envelope (`Call` decode, the reply) is `rpc/wire.rs`.
//!   What this module holds is shared by all: the events, the levels and reasons, failures,
//!   and the decoding helpers.
//! - **Optional fields** of every reply and event are omitted when they have no value, never
//!   sent as `nil` (which Lua would see as `vim.NIL`, a true value): the shim tests them
//!   with `if x then`.
//!
//! # Events (`kind`)
//!
//! `reply { seq, ok, result?, message? }`, `foresight`, `progress`, `hunk`, `done`, `failed`,
//! `review_done` (see [`Event`]), `usage { token, report }`, `models { token, list }`, `notify { level, message }`
//! (`level`: `"info"`, `"warn"`, `"error"`), and `question { question, prompt, choices, wait_ms,
//! deadline_ms, id?, buf?, worst_usd? }`: a question the backend waits on (answered with the
//! `choose` call; unanswered questions time out in the backend, and `choose` then answers
//! `{ expired = true }`).
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
//! `unmatched` (titles of blocks that matched nowhere), `problems` (`{ title, why }` for
//! blocks not shown for another reason) and `words`, what the shim says about them, worded
//! here ([`DoneWords`]): every failure of a request is worded by the backend, and the shim
//! shows `line` or `message` as it is.
//!
//! A review (`review`) shares the id space of edits (the shim numbers both from one counter)
//! and its `progress` and `failed` events; it ends with `review_done` carrying one verdict per
//! hunk sent, in the order sent.

use rmpv::Value;
use serde::Serialize;

/// The protocol's number, sent in `hello`: the shim (`lua/frugal/version.lua`'s `protocol`)
/// compares it with its own and says when they differ (a backend older or newer than the Lua
/// after an update). Raise it with every change to a call, a reply or an event.
pub const PROTOCOL: u32 = 2;

pub use crate::message::{Failure, Level, Notice, Paid, Reason};

/// Where a request is, as its progress line shows it (`phase` of `progress` events).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Phase {
    /// Sent; no token back yet.
    Waiting,
    /// The model streams reasoning, no answer text yet.
    Thinking,
    Streaming,
    /// An attempt failed and another follows (`note` says why and when).
    Retrying,
    /// Nothing sent yet: the user is asked to confirm a dear request (a `question` follows).
    Confirming,
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

/// `params` as `T`, or why not, naming `method`.
pub fn decode<T: serde::de::DeserializeOwned>(
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

/// `value` as UTF-8 text (msgpack strings or binary).
pub fn text(value: Value) -> Option<String> {
    match value {
        Value::String(s) => s.into_str(),
        Value::Binary(b) => String::from_utf8(b).ok(),
        _ => None,
    }
}

/// The first string in `v` that is not UTF-8, named by where it is (`history[1].answer`).
pub fn non_utf8(v: &Value, at: &str) -> Option<String> {
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

/// What the shim says at the end of an edit about the blocks it shows no hunk for, worded by
/// the backend (`edit/wording.rs`). The shim words only its own reasons (a hunk whose lines
/// changed while the answer streamed), which it puts after the `matched nowhere` reason.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DoneWords {
    /// One reason a line, said as `not shown: <reason>`: the blocks that matched nowhere
    /// together first (when `unmatched` is not empty), then each other block with its title.
    pub not_shown: Vec<String>,
    /// The failure the shim reports, followed by `: ` and every reason, when it could show
    /// none of the hunks sent.
    pub none_placed: String,
}

/// A block of an answer that is not shown, and why (said after its title).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Problem {
    pub title: String,
    pub why: String,
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
    /// The hunk's number as the judge saw it: k, the number its label shows (by path, then
    /// line from 1 when the shim sent none).
    pub hunk: usize,
    pub path: String,
    pub line: usize,
    pub verdict: Judgement,
    /// One line; for `none`, why there is no verdict.
    pub reason: String,
}

/// One model of the `:LlmModel` picker, prices per million tokens.
#[derive(Debug, Clone, Serialize)]
pub struct ModelEntry {
    pub id: String,
    pub name: String,
    pub priced: bool,
    pub free: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub prompt_per_m: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub completion_per_m: Option<f64>,
    /// `"$3.00 in / $15.00 out per M tokens"` for a priced model (enough digits that a tiny
    /// price never reads `$0.00`).
    #[serde(skip_serializing_if = "Option::is_none")]
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
    /// The catalogue's ids closest to the one asked for (`:LlmModel <id>`) when it is not
    /// listed, as an edit's refusal names them.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub suggestions: Vec<String>,
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

/// Messages to the shim, delivered in order through `require("frugal.rpc")._dispatch(ev)`.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Event {
    /// The answer to the call `seq`: `result` when `ok`, else `message`.
    Reply {
        seq: u64,
        ok: bool,
        #[serde(skip_serializing_if = "Option::is_none")]
        result: Option<Value>,
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
        #[serde(skip_serializing_if = "Option::is_none")]
        cost_usd: Option<f64>,
        /// `cost_usd` as frugal shows money (never `$0.0000` for a non-zero amount).
        #[serde(skip_serializing_if = "Option::is_none")]
        cost_text: Option<String>,
        phase: Phase,
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
        /// What accepting it changes, line by line and word by word (`edit/diff.rs`): the
        /// shim marks these lines only and leaves the block's other lines plain.
        changes: Vec<Change>,
        /// The block's ordinal in the answer (1-based, every block counted, shown or not): the
        /// same for the same answer placed again by `:LlmApply`, so a hunk's outcome is kept
        /// under it (`hunk_outcomes.hunk`) and counts once for its request.
        block: usize,
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
        #[serde(skip_serializing_if = "Option::is_none")]
        cost_usd: Option<f64>,
        /// `cost_usd` as frugal shows money.
        #[serde(skip_serializing_if = "Option::is_none")]
        cost_text: Option<String>,
        model: String,
        /// Titles of blocks that matched nowhere.
        unmatched: Vec<String>,
        /// Blocks not shown for another reason (no divider, overlapping another block, an
        /// unclear elision, ...), each with it.
        problems: Vec<Problem>,
        /// What to say about the blocks not shown, worded (see [`DoneWords`]).
        words: DoneWords,
        tokens: u64,
        elapsed_ms: u64,
        /// The answer's text, for a follow-up's history (`:LlmEdit` on the pending hunks).
        answer: String,
        /// The worst case that was reserved for the request (`None`: no reservation).
        #[serde(skip_serializing_if = "Option::is_none")]
        reserved_usd: Option<f64>,
        /// The request's ledger row, which the hunks' outcomes are recorded against (`None`:
        /// no reservation). A follow-up is its own row.
        #[serde(skip_serializing_if = "Option::is_none")]
        request: Option<i64>,
    },
    Failed {
        id: u64,
        buf: i64,
        reason: Reason,
        message: String,
        /// The one-line notification, when `message` is longer (see [`Failure::line`]).
        #[serde(skip_serializing_if = "Option::is_none")]
        line: Option<String>,
        /// What an answer that gave no hunk cost (`no_match`).
        #[serde(skip_serializing_if = "Option::is_none")]
        cost_usd: Option<f64>,
        #[serde(skip_serializing_if = "Option::is_none")]
        cost_text: Option<String>,
        /// An answer that held no SEARCH/REPLACE block: its text, shown in a float.
        #[serde(skip_serializing_if = "Option::is_none")]
        answer: Option<String>,
    },
    /// A review ended: one verdict per hunk sent, in the order sent. `unread` says why the
    /// answer held no readable verdicts at all (every verdict is then `none`).
    ReviewDone {
        id: u64,
        buf: i64,
        verdicts: Vec<Verdict>,
        #[serde(skip_serializing_if = "Option::is_none")]
        cost_usd: Option<f64>,
        #[serde(skip_serializing_if = "Option::is_none")]
        cost_text: Option<String>,
        model: String,
        #[serde(skip_serializing_if = "Option::is_none")]
        unread: Option<String>,
        tokens: u64,
        elapsed_ms: u64,
    },
    /// A piece of an ask's answer (Markdown), batched (a few per second at most while the
    /// model streams): appended to the ask buffer as it comes.
    AskText { id: u64, buf: i64, text: String },
    /// An ask ended: its whole answer (the ask buffer already shows it), what it cost.
    AskDone {
        id: u64,
        buf: i64,
        #[serde(skip_serializing_if = "Option::is_none")]
        cost_usd: Option<f64>,
        #[serde(skip_serializing_if = "Option::is_none")]
        cost_text: Option<String>,
        model: String,
        tokens: u64,
        elapsed_ms: u64,
        answer: String,
        /// The answer was cut at `max_tokens`.
        #[serde(skip_serializing_if = "std::ops::Not::not")]
        cut: bool,
        #[serde(skip_serializing_if = "Option::is_none")]
        reserved_usd: Option<f64>,
        /// The ask's ledger row (`None`: no reservation), kept with the answer for
        /// `:LlmApply`.
        #[serde(skip_serializing_if = "Option::is_none")]
        request: Option<i64>,
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
    /// A question the backend waits on; answered with the `choose` call. It waits `wait_ms`,
    /// until `deadline_ms` (Unix time; the shim says it in local time); an answer after it is
    /// answered `{ expired = true }`. `id`/`buf`: the request it holds up, `worst_usd` the worst
    /// case it shows (a late "Send" restarts that request with it as `confirmed_usd`).
    Question {
        question: u64,
        prompt: String,
        choices: Vec<String>,
        wait_ms: u64,
        deadline_ms: u64,
        #[serde(skip_serializing_if = "Option::is_none")]
        id: Option<u64>,
        #[serde(skip_serializing_if = "Option::is_none")]
        buf: Option<i64>,
        #[serde(skip_serializing_if = "Option::is_none")]
        worst_usd: Option<f64>,
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
            phase: Phase::Waiting,
            note: None,
        }
    }

    /// The event as msgpack: structs as maps (what Lua tables decode from), no JSON detour.
    pub fn encode(&self) -> Result<Value, String> {
        let bytes = rmp_serde::to_vec_named(self).map_err(|e| e.to_string())?;
        rmpv::decode::read_value(&mut bytes.as_slice()).map_err(|e| e.to_string())
    }
}

/// What a hunk changes: one run of changed lines (computed by `edit::diff`, drawn by the
/// shim).
/// Rows are 0-based indices into the hunk's `old` and `new`, ends
/// exclusive; an empty `old` range is a pure insertion before `old.0`, an empty `new` range a
/// pure deletion. Words are `(row, start byte, end byte)`, the row an index into `old` (for
/// `old_words`) or `new` (for `new_words`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Change {
    pub old: (usize, usize),
    pub new: (usize, usize),
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub old_words: Vec<(usize, usize, usize)>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub new_words: Vec<(usize, usize, usize)>,
}
