//! What the shim sends for `:LlmEdit` (the `edit` call's parameters, decoded by
//! `rpc/wire.rs`): the job's input, kept beside the pipeline that runs it.

use crate::protocol::{decode, non_utf8, text, ProtocolError};
use crate::settings::ProjectInput;
use rmpv::Value;
use serde::de::DeserializeOwned;
use serde::Deserialize;

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
    /// The worst case (USD) a confirmation showed when its "Send" came after the deadline:
    /// this request restarts that one, and is asked again only above it.
    #[serde(default)]
    pub confirmed_usd: Option<f64>,
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

/// The `context` entries of an edit: `{ path, buf?, lines? }` each.
pub fn decode_context(v: Value) -> Result<Vec<ContextFile>, ProtocolError> {
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

/// A request's map (`method`'s) taken apart: the rest, checked to be UTF-8 (`verb`: what frugal
/// does with text, for the refusal) and decoded, its `context` decoded, and its raw `lines`
/// (whose text each request checks line by line).
pub(crate) fn decode_parts<T: DeserializeOwned>(
    method: &'static str,
    verb: &str,
    v: Value,
) -> Result<(T, Vec<ContextFile>, Option<Value>), ProtocolError> {
    let Value::Map(entries) = v else {
        return Err(ProtocolError::Malformed {
            method,
            message: "expected a table of named arguments".into(),
        });
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
            "{method}: {at} is not valid UTF-8: frugal {verb} UTF-8 text only"
        )));
    }
    let req: T = decode(method, rest)?;
    Ok((req, decode_context(raw_context)?, raw_lines))
}

/// A buffer's lines as text, the first being buffer row `first` (0-based); a line that is not
/// UTF-8 is refused by its number, `hint` after the message.
pub(crate) fn text_lines(
    items: Vec<Value>,
    first: usize,
    hint: &str,
) -> Result<Vec<String>, ProtocolError> {
    let mut lines = Vec::with_capacity(items.len());
    for (i, item) in items.into_iter().enumerate() {
        match text(item) {
            Some(t) => lines.push(t),
            None => {
                return Err(ProtocolError::Refused(format!(
                    "line {} is not valid UTF-8: frugal edits UTF-8 text only{hint}",
                    first + i + 1
                )))
            }
        }
    }
    Ok(lines)
}

impl EditRequest {
    /// A worst case the user already agreed to (a late "Send"): asked again only above it.
    pub fn confirmed(&self) -> Option<crate::budget::Usd> {
        (self.confirmed_usd).and_then(|c| crate::budget::Usd::from_cost_f64(c).ok())
    }

    /// What `:LlmHistory` keeps of it once answered (an edit's or a question's): the earlier
    /// turns, this instruction with `answer` as far as it came, and the files by name (the
    /// context files, then the instruction files sent).
    pub fn transcript(
        &self,
        answer: &str,
        instruction_files: &[String],
    ) -> crate::history::Transcript {
        use crate::history::Turn;
        let mut turns: Vec<Turn> = (self.history.iter())
            .map(|t| Turn {
                instruction: t.instruction.clone(),
                answer: t.answer.clone(),
            })
            .collect();
        turns.push(Turn {
            instruction: self.instruction.clone(),
            answer: answer.to_string(),
        });
        let files = (self.context.iter().map(|f| f.path.clone()))
            .chain(instruction_files.iter().cloned())
            .collect();
        crate::history::Transcript { turns, files }
    }

    /// Decodes the shim's map, refusing non-UTF-8 text with a message naming the line.
    pub fn decode(v: Value) -> Result<EditRequest, ProtocolError> {
        let (mut req, context, raw_lines) = decode_parts::<EditRequest>("edit", "sends", v)?;
        req.context = context;
        let Some(Value::Array(items)) = raw_lines else {
            return Err(ProtocolError::Malformed {
                method: "edit",
                message: "missing lines".into(),
            });
        };
        req.lines = text_lines(
            items,
            req.win_start,
            " (:set fileencoding? and reload with :e ++enc=…)",
        )?;
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
