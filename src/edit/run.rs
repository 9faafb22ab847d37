//! The orchestration of one edit: prompt → gate → streamed answer → blocks → located hunks
//! sent to Neovim. The pure parts it calls are its siblings.

use super::blocks::{Block, BlockParser};
use super::files::{self, EditFile, Target};
use super::locate::LocateError;
use super::plan::Plan;
use super::prompt;
use super::stream;
use crate::budget::{RequestKind, Usd};
use crate::edit::request::EditRequest;
use crate::gate::{self, Gate, Outbound, ProjectCtx};
use crate::openrouter::ChatRequest;
use crate::protocol::{Event, Failure, Phase, Problem, Reason};
use crate::services::{InFlight, Ui};
use crate::settings::{Effective, ProjectInput};
use std::sync::Arc;
use std::time::Instant;

/// Runs one edit to its end, reporting through the UI channel. Cancellation is by
/// aborting the task running this future (that drops the HTTP stream, closing the connection).
pub async fn run(gate: Gate, inflight: Arc<InFlight>, req: EditRequest) {
    let outcome = run_inner(&gate, &req).await;
    let ev = match outcome {
        Ok(done) => done,
        Err(f) => Event::Failed {
            id: req.id,
            buf: req.buf,
            reason: f.reason,
            message: f.message,
            line: f.line,
        },
    };
    inflight.finish(req.id);
    gate.ui.send(ev);
}

/// The project's settings after the trust rules: an untrusted or absent file is ignored, a
/// malformed trusted one stops the request (never a fall back to no caps).
pub(crate) fn project_ctx(p: &ProjectInput) -> Result<ProjectCtx, Failure> {
    let settings = p.settings().map_err(|e| {
        Failure::new(
            Reason::Config,
            format!("{e}. No request is sent for this project until the file is fixed"),
        )
    })?;
    Ok(ProjectCtx {
        root: p.root.clone(),
        file: p.file.clone(),
        file_state: p.state.clone(),
        settings,
    })
}

async fn run_inner(gate: &Gate, req: &EditRequest) -> Result<Event, Failure> {
    let started = Instant::now();
    let cfg = gate.settings.config();
    let project = project_ctx(&req.project)?;
    let model = Effective::resolve(&cfg, &project.settings, req.model.as_deref()).model;
    let root = files::checkout_root(&req.project.file);
    let edit_files = files::load(&root, req, cfg.max_context_bytes)
        .map_err(|m| Failure::new(Reason::Config, format!("{m}: nothing was sent")))?;
    let context: Vec<prompt::ContextText> = edit_files[1..]
        .iter()
        .map(|f| prompt::ContextText {
            path: &f.path,
            lines: &f.lines,
        })
        .collect();
    let messages = prompt::build(&prompt::PromptInput {
        file: &req.file,
        filetype: &req.filetype,
        instruction: &req.instruction,
        window: &req.lines,
        win_start: req.win_start,
        sel_start: req.sel_start,
        sel_end: req.sel_end,
        total_lines: req.total_lines,
        context: &context,
        history: &req.history,
        diagnostics: &req.diagnostics,
    });
    drop(context);
    // Context files, history and diagnostics are all in `messages`: the bound (and so the
    // worst case and the caps) covers them.
    let prompt_bound = prompt::prompt_token_bound(&messages);
    let prompt_bytes = prompt::prompt_bytes(&messages);
    if prompt_bytes > cfg.max_context_bytes {
        return Err(Failure::new(
            Reason::Budget,
            too_large(prompt_bytes, cfg.max_context_bytes, &edit_files),
        ));
    }
    gate.ui.send(Event::Prompt {
        id: req.id,
        buf: req.buf,
        files: edit_files.len(),
        bytes: prompt_bytes,
    });
    let on_retry = {
        let (ui, id, buf) = (gate.ui.clone(), req.id, req.buf);
        Box::new(move |note: String| {
            ui.send(Event::Progress {
                id,
                buf,
                tokens: 0,
                elapsed_ms: started.elapsed().as_millis() as u64,
                cost_usd: None,
                cost_text: None,
                phase: Phase::Retrying,
                note: Some(note),
            })
        })
    };
    let on_foresight = {
        let (ui, id, buf) = (gate.ui.clone(), req.id, req.buf);
        Box::new(move |f: gate::Foresight| {
            ui.send(Event::Foresight {
                id,
                buf,
                worst_usd: f.worst.to_f64(),
                worst_text: f.worst.to_string(),
                likely_usd: f.likely.map(Usd::to_f64),
                likely_text: f.likely.map(|u| u.to_string()),
            })
        })
    };
    let outbound = Outbound {
        project,
        prompt_bound,
        prompt_bytes,
        on_retry,
        on_foresight,
        request: ChatRequest {
            model: model.clone(),
            messages,
            stream: true,
            max_tokens: cfg.max_tokens,
            temperature: cfg.temperature,
            provider: None,
            response_format: None,
            stream_options: None,
        },
        kind: RequestKind::Edit,
    };
    gate.ui.send(Event::waiting(req.id, req.buf, 0));
    let sent = gate::send(gate, outbound).await?;
    let reserved = sent.ticket.reserved();
    let price = sent.price;
    // A running estimate for the progress line (prompt ≈ 4 bytes a token); the usage chunk's
    // figure replaces it at the end.
    let estimate =
        |tokens: u64| -> Option<Usd> { price.and_then(|p| p.worst_case(prompt_bytes / 4, tokens)) };

    let mut parser = BlockParser::new();
    let mut answer = String::new();
    let placer = Placer::start(gate.ui.clone(), req.id, Placing::new(root, edit_files));
    let reader = stream::Reader {
        ui: &gate.ui,
        id: req.id,
        buf: req.buf,
        started,
        what: "the answer",
        shows_thinking: true,
    };
    let streamed = stream::read(&reader, sent, model, estimate, |t| {
        answer.push_str(t);
        for block in parser.push(t) {
            placer.push(block);
        }
    })
    .await?;
    let finish = streamed.finish;
    let end = parser.finish();
    for block in end.blocks {
        placer.push(block);
    }
    let mut placing = placer.finish().await?;
    let cut = finish.as_deref() == Some("length");
    if let Some(title) = end.unterminated {
        let message = if cut {
            format!("the answer was cut at max_tokens inside the block \"{title}\": nothing applied; raise max_tokens (setup) or ask for a smaller change")
        } else {
            format!("the answer ended inside the block \"{title}\" (it has no >>>>>>> REPLACE line): nothing applied; try again")
        };
        return Err(Failure::new(Reason::Stream, message));
    }
    placing
        .problems
        .extend(end.malformed.into_iter().map(|m| Problem {
            title: m.title,
            why: m.why,
        }));
    let hunks: usize = placing.plans.iter().map(|p| p.hunks().len()).sum();
    if hunks == 0 {
        return Err(Failure::new(Reason::NoMatch, placing.nothing_shown(cut)));
    }
    Ok(Event::Done {
        id: req.id,
        buf: req.buf,
        hunks,
        cost_usd: streamed.cost.map(Usd::to_f64),
        cost_text: streamed.cost.map(|c| c.to_string()),
        model: streamed.model,
        words: super::wording::done(&placing.unmatched, &placing.problems),
        unmatched: placing.unmatched,
        problems: placing.problems,
        tokens: streamed.tokens,
        elapsed_ms: started.elapsed().as_millis() as u64,
        answer,
        reserved_usd: Some(reserved.to_f64()),
    })
}

/// Why a prompt over `max_context_bytes` is refused, naming the largest files.
fn too_large(bytes: u64, limit: u64, files: &[EditFile]) -> String {
    let mut sizes: Vec<(String, u64)> = files
        .iter()
        .enumerate()
        .map(|(i, f)| {
            let name = if i == 0 {
                format!("{} (the lines sent)", f.path)
            } else {
                f.path.clone()
            };
            (name, f.bytes())
        })
        .collect();
    sizes.sort_by_key(|s| std::cmp::Reverse(s.1));
    let largest: Vec<String> = sizes
        .iter()
        .take(3)
        .map(|(n, b)| format!("{n} {}", files::size_text(*b)))
        .collect();
    format!(
        "this edit's prompt is {}, over max_context_bytes ({}): the largest files are {}. Remove context files (:LlmContext remove …), select less, or raise max_context_bytes (setup). Nothing was sent",
        files::size_text(bytes),
        files::size_text(limit),
        largest.join(", ")
    )
}

/// Places an answer's blocks away from the runtime's only thread (see `main.rs`): a block can
/// cost a file's length (or, bounded, more: `locate::WORK_BUDGET`) to place, and meanwhile
/// `:LlmCancel` and every other call must be answered. The blocks go in order to one task of
/// the blocking pool, which sends each hunk as it is placed; the edit ends once it has placed
/// them all. Dropped (the edit cancelled or failed), it stops after the block under way.
struct Placer {
    blocks: Option<std::sync::mpsc::Sender<Block>>,
    task: Option<tokio::task::JoinHandle<Placing>>,
    stop: Arc<std::sync::atomic::AtomicBool>,
}

impl Placer {
    fn start(ui: Arc<Ui>, id: u64, mut placing: Placing) -> Self {
        let (tx, rx) = std::sync::mpsc::channel::<Block>();
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let stopped = stop.clone();
        let task = tokio::task::spawn_blocking(move || {
            for block in rx {
                if stopped.load(std::sync::atomic::Ordering::Relaxed) {
                    break;
                }
                placing.place(&ui, id, &block);
            }
            placing
        });
        Placer {
            blocks: Some(tx),
            task: Some(task),
            stop,
        }
    }

    fn push(&self, block: Block) {
        if let Some(tx) = &self.blocks {
            // Fails only once the task is gone (it panicked): `finish` says so.
            let _ = tx.send(block);
        }
    }

    /// Every block placed: what was shown and what not.
    async fn finish(mut self) -> Result<Placing, Failure> {
        drop(self.blocks.take());
        let task = self.task.take().expect("finished once");
        task.await.map_err(|e| {
            tracing::error!("placing the answer's blocks failed: {e}");
            Failure::new(
                Reason::NoMatch,
                "placing the answer's blocks failed (a bug; see the log): nothing applied".into(),
            )
        })
    }
}

impl Drop for Placer {
    fn drop(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
    }
}

/// The answer's blocks as they are placed: the hunks of each file, sent as they come, and the
/// blocks not shown.
struct Placing {
    /// The checkout's root (canonical), for the paths of the answer.
    root: std::path::PathBuf,
    /// The edit's files, the current one first; new files proposed by the answer are added.
    files: Vec<EditFile>,
    /// One plan per file.
    plans: Vec<Plan>,
    /// Titles of blocks that matched nowhere.
    unmatched: Vec<String>,
    /// Blocks not shown for another reason, with it.
    problems: Vec<Problem>,
}

impl Placing {
    fn new(root: std::path::PathBuf, files: Vec<EditFile>) -> Self {
        Placing {
            root,
            plans: files.iter().map(|_| Plan::default()).collect(),
            files,
            unmatched: Vec::new(),
            problems: Vec::new(),
        }
    }

    /// The file a block is for: the current file when it names none.
    fn target(&self, block: &Block) -> Target {
        let Some(written) = block.file.as_deref() else {
            return Target::File(0);
        };
        let paths: Vec<String> = self.files.iter().map(|f| f.path.clone()).collect();
        let empty = block.search.iter().all(|l| l.trim().is_empty());
        match files::resolve(&self.root, &paths, written, empty) {
            // A block whose path names no file is never applied to another one.
            Target::Missing(rel) => Target::Refused {
                path: written.to_string(),
                why: format!("{rel} does not exist: not applied"),
            },
            t => t,
        }
    }

    /// Places a finished block in its file and sends its hunk (replacing the earlier hunks
    /// whose text it edits), or records why it is not shown.
    fn place(&mut self, ui: &Ui, id: u64, block: &Block) {
        let title = block.title();
        let at = match self.target(block) {
            Target::File(i) => i,
            Target::New(rel) => return self.propose_new(ui, id, rel, block),
            Target::Refused { path, why } => {
                tracing::info!(edit = id, %title, %path, "block for another file refused");
                self.problems.push(Problem {
                    title: format!("{path}: {title}"),
                    why,
                });
                return;
            }
            Target::Missing(_) => unreachable!("resolved by target()"),
        };
        let file = &self.files[at];
        let ws = file.win_start;
        let named = |t: &str| {
            if at == 0 {
                t.to_string()
            } else {
                format!("{}: {t}", file.path)
            }
        };
        match self.plans[at].place(
            &file.lines,
            &block.search,
            &block.replace,
            file.prefer,
            &title,
        ) {
            Ok(placed) => {
                let h = placed.hunk;
                ui.send(Event::Hunk {
                    id,
                    buf: file.buf,
                    path: file.path.clone(),
                    index: h.index,
                    start: ws + h.start,
                    end: ws + h.end,
                    old: file.lines[h.start..h.end].to_vec(),
                    new: h.new,
                    title: h.title,
                    replaces: placed.replaces,
                    new_file: file.new_file,
                });
            }
            Err(LocateError::NotFound) => {
                tracing::info!(edit = id, %title, "block not located");
                self.unmatched.push(named(&title));
            }
            Err(e) => {
                tracing::info!(edit = id, %title, why = %e, "block not shown");
                self.problems.push(Problem {
                    title: named(&title),
                    why: e.to_string(),
                });
            }
        }
    }

    /// A block with an empty SEARCH for a file that exists nowhere: a new file, its text the
    /// block's replacement (later blocks for it are refused: it has no text to search yet).
    fn propose_new(&mut self, ui: &Ui, id: u64, rel: String, block: &Block) {
        self.files.push(EditFile {
            path: rel.clone(),
            buf: 0,
            lines: Vec::new(),
            win_start: 0,
            prefer: (0, 0),
            new_file: true,
        });
        let mut plan = Plan::default();
        let h = plan.propose(block.replace.clone(), &format!("new file {rel}"));
        self.plans.push(plan);
        ui.send(Event::Hunk {
            id,
            buf: 0,
            path: rel,
            index: h.index,
            start: 0,
            end: 0,
            old: Vec::new(),
            new: h.new,
            title: h.title,
            replaces: Vec::new(),
            new_file: true,
        });
    }

    /// Why an answer gave no hunk. `cut`: it ended at max_tokens.
    fn nothing_shown(&self, cut: bool) -> String {
        super::wording::nothing_shown(&self.unmatched, &self.problems, cut)
    }
}
