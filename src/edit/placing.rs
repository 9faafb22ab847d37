//! Placing an answer's blocks as they stream: each block's file, its hunk located and sent to
//! Neovim, or why it is not shown. Away from the runtime's only thread (see [`Placer`]).

use super::blocks::Block;
use super::files::{self, EditFile, Target};
use super::locate::LocateError;
use super::plan::Plan;
use crate::protocol::{Event, Failure, Problem, Reason};
use crate::services::Ui;
use std::sync::Arc;

/// Places an answer's blocks away from the runtime's only thread (see `main.rs`): a block can
/// cost a file's length (or, bounded, more: `locate::WORK_BUDGET`) to place, and meanwhile
/// `:LlmCancel` and every other call must be answered. The blocks go in order to one task of
/// the blocking pool, which sends each hunk as it is placed; the edit ends once it has placed
/// them all. Dropped (the edit cancelled or failed), it stops after the block under way.
pub(super) struct Placer {
    blocks: Option<std::sync::mpsc::Sender<Block>>,
    task: Option<tokio::task::JoinHandle<Placing>>,
    stop: Arc<std::sync::atomic::AtomicBool>,
}

impl Placer {
    pub(super) fn start(ui: Arc<Ui>, id: u64, mut placing: Placing) -> Self {
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

    pub(super) fn push(&self, block: Block) {
        if let Some(tx) = &self.blocks {
            // Fails only once the task is gone (it panicked): `finish` says so.
            let _ = tx.send(block);
        }
    }

    /// Every block placed: what was shown and what not.
    pub(super) async fn finish(mut self) -> Result<Placing, Failure> {
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
pub(super) struct Placing {
    /// The checkout's root (canonical), for the paths of the answer.
    root: std::path::PathBuf,
    /// The edit's files, the current one first; new files proposed by the answer are added.
    files: Vec<EditFile>,
    /// One plan per file.
    pub(super) plans: Vec<Plan>,
    /// Titles of blocks that matched nowhere.
    pub(super) unmatched: Vec<String>,
    /// Blocks not shown for another reason, with it.
    pub(super) problems: Vec<Problem>,
    /// Blocks placed so far, shown or not: the ordinal of the next one, 1-based, is this plus
    /// one (the same for the same answer, whoever places it: an edit or `:LlmApply`).
    blocks: usize,
}

impl Placing {
    pub(super) fn new(root: std::path::PathBuf, files: Vec<EditFile>) -> Self {
        Placing {
            root,
            plans: files.iter().map(|_| Plan::default()).collect(),
            files,
            unmatched: Vec::new(),
            problems: Vec::new(),
            blocks: 0,
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
    pub(super) fn place(&mut self, ui: &Ui, id: u64, block: &Block) {
        self.blocks += 1;
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
                let old = file.lines[h.start..h.end].to_vec();
                let changes = super::diff::changes(&old, &h.new);
                ui.send(Event::Hunk {
                    id,
                    buf: file.buf,
                    path: file.path.clone(),
                    index: h.index,
                    start: ws + h.start,
                    end: ws + h.end,
                    old,
                    new: h.new,
                    title: h.title,
                    replaces: placed.replaces,
                    new_file: file.new_file,
                    changes,
                    block: self.blocks,
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
        let changes = super::diff::changes(&[], &h.new);
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
            changes,
            block: self.blocks,
        });
    }

    /// Why an answer gave no hunk. `cut`: it ended at max_tokens.
    pub(super) fn nothing_shown(&self, cut: bool) -> String {
        super::wording::nothing_shown(&self.unmatched, &self.problems, cut)
    }
}
