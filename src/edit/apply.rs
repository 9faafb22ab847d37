//! `:LlmApply`: the SEARCH/REPLACE blocks of an answer already received (an ask's, a past
//! conversation's) proposed as pending hunks, with no request and no cost. The blocks are read
//! by the edit's parser and placed by its placer, under the edit's path rules; a block naming
//! a file of the project that the shim did not send (not open in Neovim) is placed in that
//! file as read from disk. What no longer matches is reported by name, the rest proposed:
//! `hunk` events, then `done` with `cost_usd = 0` (or `failed` when nothing could be placed).

use super::blocks::{Block, BlockParser};
use super::files::{self, EditFile, Target};
use super::placing::Placing;
use crate::budget::Usd;
use crate::edit::request::{decode_parts, text_lines, ContextFile};
use crate::protocol::{Event, Problem, ProtocolError, Reason};
use crate::services::Ui;
use crate::settings::ProjectInput;
use rmpv::Value;
use serde::Deserialize;
use std::path::Path;

/// What the shim sends for `:LlmApply`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApplyRequest {
    /// Chosen by the shim from the counter of its requests.
    pub id: u64,
    /// The buffer the answer is about (its blocks without a path go there), else the buffer
    /// `:LlmApply` ran in.
    pub buf: i64,
    /// That buffer's file relative to the checkout, when it has one: blocks naming no file go
    /// to it (`lines`: its text now).
    #[serde(default)]
    pub file: Option<String>,
    pub project: ProjectInput,
    /// The answer's text.
    pub text: String,
    /// The model that wrote the answer, when known (for the message).
    #[serde(default)]
    pub model: Option<String>,
    /// The ledger id of the request that got the answer, when known.
    #[serde(default)]
    pub request: Option<i64>,
    #[serde(skip)]
    pub lines: Option<Vec<String>>,
    /// Files of the project open in Neovim that the answer may name, with their lines.
    #[serde(skip)]
    pub context: Vec<ContextFile>,
}

impl ApplyRequest {
    /// Decodes the shim's map; an answer without any block is refused at once (one line).
    pub fn decode(v: Value) -> Result<ApplyRequest, ProtocolError> {
        let (mut req, context, raw_lines) = decode_parts::<ApplyRequest>("apply", "applies", v)?;
        req.context = context;
        req.lines = match raw_lines {
            None | Some(Value::Nil) => None,
            Some(Value::Array(items)) => Some(text_lines(items, 0, "")?),
            Some(_) => {
                return Err(ProtocolError::Malformed {
                    method: "apply",
                    message: "lines must be a list".into(),
                })
            }
        };
        if !req.text.contains("<<<<<<<") {
            return Err(ProtocolError::Refused(
                "frugal: the last answer holds no SEARCH/REPLACE block: nothing to apply".into(),
            ));
        }
        Ok(req)
    }
}

/// Places the answer's blocks, sending a `hunk` event for each one shown; the last event
/// (`done` with cost 0, or `failed`). Runs off the runtime's thread (placing can take a while).
pub fn apply(ui: &Ui, req: &ApplyRequest, limit: u64) -> Event {
    let root = files::checkout_root(&req.project.file);
    let mut parser = BlockParser::new();
    let mut blocks = parser.push(&req.text);
    let last = parser.finish();
    blocks.extend(last.blocks);
    let mut problems: Vec<Problem> = last
        .malformed
        .into_iter()
        .map(|m| Problem {
            title: m.title,
            why: m.why,
        })
        .collect();
    if let Some(title) = last.unterminated {
        problems.push(Problem {
            title,
            why: "the block has no >>>>>>> REPLACE line: not applied".into(),
        });
    }
    let mut edit_files = request_files(&root, req, limit, &mut problems);
    // Blocks naming no file go to the buffer the answer is about; without one, nowhere.
    let current = req.file.is_some() && req.lines.is_some();
    blocks.retain(|b| {
        if b.file.is_some() || current {
            return true;
        }
        problems.push(Problem {
            title: b.title(),
            why: "it names no file: not applied".into(),
        });
        false
    });
    for b in &blocks {
        add_named(&root, b, &mut edit_files, limit);
    }
    let mut placing = Placing::new(root, edit_files);
    for b in &blocks {
        placing.place(ui, req.id, b);
    }
    placing.problems.splice(0..0, problems);
    let hunks: usize = placing.plans.iter().map(|p| p.hunks().len()).sum();
    let failed = |message: String| Event::Failed {
        id: req.id,
        buf: req.buf,
        reason: Reason::NoMatch,
        message,
        line: None,
        cost_usd: None,
        cost_text: None,
        answer: None,
    };
    if hunks == 0 {
        return failed(placing.nothing_shown(false));
    }
    tracing::info!(apply = req.id, hunks, request = ?req.request, "answer applied as hunks");
    Event::Done {
        id: req.id,
        buf: req.buf,
        hunks,
        cost_usd: Some(0.0),
        cost_text: Some(Usd::ZERO.to_string()),
        model: req.model.clone().unwrap_or_default(),
        words: super::wording::done(&placing.unmatched, &placing.problems),
        unmatched: std::mem::take(&mut placing.unmatched),
        problems: std::mem::take(&mut placing.problems),
        tokens: 0,
        elapsed_ms: 0,
        answer: req.text.clone(),
        reserved_usd: None,
        // The hunks count for the request that got the answer, once (an ask's row has none:
        // the ledger records outcomes of edits only).
        request: req.request,
    }
}

/// The files the shim sent (the current one first), each inside the project; one that is not
/// is reported and left out.
fn request_files(
    root: &Path,
    req: &ApplyRequest,
    limit: u64,
    problems: &mut Vec<Problem>,
) -> Vec<EditFile> {
    let mut out = Vec::new();
    if let (Some(file), Some(lines)) = (&req.file, &req.lines) {
        out.push(EditFile::whole(file.clone(), req.buf, lines.clone()));
    }
    for c in &req.context {
        let read = files::inside(root, &c.path).and_then(|rel| {
            let lines = match &c.lines {
                Some(l) => l.clone(),
                None => files::read_lines(root, &rel, limit)?,
            };
            Ok((rel, lines))
        });
        match read {
            Ok((rel, _)) if out.iter().any(|f| f.path == rel) => {}
            Ok((rel, lines)) => out.push(EditFile::whole(rel, c.buf, lines)),
            Err(why) => problems.push(Problem {
                title: c.path.clone(),
                why,
            }),
        }
    }
    out
}

/// A file of the project that a block names and that is not among `files` yet: read from
/// disk and added (the shim sends the files open in Neovim; the others are as on disk).
/// A path the path rules refuse is left to the placer, which reports it.
fn add_named(root: &Path, block: &Block, files: &mut Vec<EditFile>, limit: u64) {
    let Some(written) = block.file.as_deref() else {
        return;
    };
    let paths: Vec<String> = files.iter().map(|f| f.path.clone()).collect();
    let empty = block.search.iter().all(|l| l.trim().is_empty());
    if paths.is_empty() {
        // `resolve` reads the first path as the current file.
    } else if !matches!(
        files::resolve(root, &paths, written, empty),
        Target::Refused { .. }
    ) {
        return;
    }
    let clean = written.replace('\\', "/");
    let clean = clean.trim_start_matches("./");
    let Ok(rel) = files::real_path(root, clean) else {
        return;
    };
    if paths.contains(&rel) || !root.join(&rel).is_file() {
        return;
    }
    if let Ok(lines) = files::read_lines(root, &rel, limit) {
        files.push(EditFile::whole(rel, 0, lines));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(text: &str) -> Value {
        Value::Map(vec![
            ("id".into(), 1.into()),
            ("buf".into(), 2.into()),
            (
                "project".into(),
                Value::Map(vec![
                    ("path".into(), "/p/a.lua".into()),
                    ("file".into(), "/p/.frugal.toml".into()),
                    ("state".into(), "absent".into()),
                ]),
            ),
            ("text".into(), text.into()),
        ])
    }

    #[test]
    fn an_answer_without_blocks_is_refused_in_one_line() {
        let e = ApplyRequest::decode(req("Just prose.")).unwrap_err();
        assert_eq!(
            e.to_string(),
            "frugal: the last answer holds no SEARCH/REPLACE block: nothing to apply"
        );
        let ok = ApplyRequest::decode(req("<<<<<<< SEARCH\na\n=======\nb\n>>>>>>> REPLACE\n"));
        assert!(ok.unwrap().lines.is_none());
    }
}
