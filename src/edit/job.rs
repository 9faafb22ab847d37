//! An edit as a [`Job`] of the runner: the prompt (the lines sent, context files, history,
//! diagnostics; refused over `max_context_bytes`), each streamed piece parsed into blocks and
//! placed as it comes ([`Placer`]), and `done` with the hunks shown.

use super::blocks::BlockParser;
use super::files::{self, EditFile};
use super::placing::{Placer, Placing};
use super::prompt;
use crate::budget::{RequestKind, Usd};
use crate::edit::instructions::{self, InstructionFile};
use crate::edit::request::EditRequest;
use crate::history::Transcript;
use crate::protocol::{Event, Failure, Paid, Problem, Reason};
use crate::runner::{self, Ctx, End, Job, Prompt, Who};
use crate::settings::Effective;
use std::path::PathBuf;

/// One edit, from its request to its `done`.
pub struct Edit {
    req: EditRequest,
    /// The checkout's root and the edit's files, once read (the placer takes them).
    files: Option<(PathBuf, Vec<EditFile>)>,
    parser: BlockParser,
    /// The whole answer, for `done`.
    answer: String,
    placer: Option<Placer>,
    /// The project's instruction files sent (named in its history, never their text).
    instruction_files: Vec<String>,
}

impl Edit {
    pub fn new(req: EditRequest) -> Self {
        Edit {
            req,
            files: None,
            parser: BlockParser::new(),
            answer: String::new(),
            placer: None,
            instruction_files: Vec::new(),
        }
    }
}

impl Job for Edit {
    const KIND: RequestKind = RequestKind::Edit;
    const ANSWER: &'static str = "the answer";
    const SHOWS_THINKING: bool = true;
    const FORESIGHT: bool = true;
    const INTERNAL_ERROR: &'static str = "an internal error ended this edit (a bug in frugal; the log has the details): nothing was applied";

    fn who(&self) -> Who {
        Who {
            id: self.req.id,
            buf: self.req.buf,
        }
    }

    fn confirmed(&self) -> Option<Usd> {
        self.req.confirmed()
    }

    fn prompt(&mut self, ctx: &Ctx) -> Result<Prompt, Failure> {
        let req = &self.req;
        let cfg = ctx.config();
        let project = runner::project_ctx(&req.project)?;
        let model = Effective::resolve(&cfg, &project.settings, req.model.as_deref()).model;
        let root = files::checkout_root(&req.project.file);
        let edit_files = files::load(&root, req, cfg.max_context_bytes)
            .map_err(|m| Failure::new(Reason::Config, format!("{m}: nothing was sent")))?;
        let instructions = instructions::for_request(ctx, &project);
        self.instruction_files = instructions::names_of(&instructions);
        let messages = build(req, &instructions, &edit_files);
        told_size(
            ctx,
            self.who(),
            "edit",
            cfg.max_context_bytes,
            &messages,
            &edit_files,
            &instructions,
        )?;
        self.files = Some((root, edit_files));
        Ok(Prompt {
            project,
            model,
            messages,
        })
    }

    fn sent(&mut self, ctx: &Ctx) {
        let (root, files) = self.files.take().expect("read by prompt()");
        let placing = Placing::new(root, files);
        self.placer = Some(Placer::start(ctx.ui.clone(), self.req.id, placing));
    }

    fn text(&mut self, t: &str) {
        self.answer.push_str(t);
        let placer = self.placer.as_ref().expect("started by sent()");
        for block in self.parser.push(t) {
            placer.push(block);
        }
    }

    async fn finish(&mut self, _ctx: &Ctx, end: End) -> Result<Event, Failure> {
        let placer = self.placer.take().expect("started by sent()");
        let streamed = end.streamed;
        let last = std::mem::replace(&mut self.parser, BlockParser::new()).finish();
        for block in last.blocks {
            placer.push(block);
        }
        let mut placing = placer.finish().await?;
        let cut = streamed.finish.as_deref() == Some("length");
        if let Some(title) = last.unterminated {
            let message = if cut {
                format!("the answer was cut at max_tokens inside the block \"{title}\": nothing applied; raise max_tokens (setup) or ask for a smaller change")
            } else {
                format!("the answer ended inside the block \"{title}\" (it has no >>>>>>> REPLACE line): nothing applied; try again")
            };
            return Err(Failure::new(Reason::Stream, message));
        }
        placing
            .problems
            .extend(last.malformed.into_iter().map(|m| Problem {
                title: m.title,
                why: m.why,
            }));
        let hunks: usize = placing.plans.iter().map(|p| p.hunks().len()).sum();
        if hunks == 0 {
            // Paid for all the same: its cost is said, and an answer with no block at all is
            // shown (SPEC: "An answer without an edit is shown, not lost").
            let no_block = placing.unmatched.is_empty() && placing.problems.is_empty();
            let paid = Paid {
                cost_usd: streamed.cost.map(Usd::to_f64),
                cost_text: streamed.cost.map(|c| c.to_string()),
                answer: no_block.then(|| std::mem::take(&mut self.answer)),
            };
            return Err(Failure::new(Reason::NoMatch, placing.nothing_shown(cut)).with_paid(paid));
        }
        Ok(Event::Done {
            id: self.req.id,
            buf: self.req.buf,
            hunks,
            cost_usd: streamed.cost.map(Usd::to_f64),
            cost_text: streamed.cost.map(|c| c.to_string()),
            model: streamed.model,
            words: super::wording::done(&placing.unmatched, &placing.problems),
            unmatched: placing.unmatched,
            problems: placing.problems,
            tokens: streamed.tokens,
            elapsed_ms: end.started.elapsed().as_millis() as u64,
            // Kept for the transcript too.
            answer: self.answer.clone(),
            reserved_usd: Some(end.reserved.to_f64()),
            request: end.row.map(|r| r.0),
        })
    }

    /// The earlier turns of a follow-up, this instruction and the answer as far as it came;
    /// the context and instruction files by name.
    fn transcript(&self) -> Option<Transcript> {
        Some(self.req.transcript(&self.answer, &self.instruction_files))
    }
}

/// The edit's messages: the project's instructions, its lines, the context files (all but the
/// first), history and diagnostics.
fn build(
    req: &EditRequest,
    instructions: &[InstructionFile],
    edit_files: &[EditFile],
) -> Vec<crate::openrouter::Message> {
    let context = prompt::ContextText::beside(edit_files);
    prompt::build(&prompt::PromptInput {
        code: prompt::Code::of(req),
        instruction: &req.instruction,
        instructions,
        context: &context,
        history: &req.history,
        diagnostics: &req.diagnostics,
    })
}

/// A prompt's size: refused over `limit` ([`too_large`]; `what`: the request's kind, "edit",
/// "question"), else told to the shim (`prompt` event) with the files the model sees.
pub(crate) fn told_size(
    ctx: &Ctx,
    who: Who,
    what: &str,
    limit: u64,
    messages: &[crate::openrouter::Message],
    files: &[EditFile],
    instructions: &[InstructionFile],
) -> Result<u64, Failure> {
    let bytes = prompt::prompt_bytes(messages);
    if bytes > limit {
        return Err(Failure::new(
            Reason::Budget,
            too_large(what, bytes, limit, files, instructions),
        ));
    }
    ctx.ui.send(Event::Prompt {
        id: who.id,
        buf: who.buf,
        // The instruction files sent are files the model sees too.
        files: files.len() + instructions.iter().filter(|f| !f.lines.is_empty()).count(),
        bytes,
    });
    Ok(bytes)
}

/// Why a prompt over `max_context_bytes` is refused, naming the largest files (instruction
/// files among them). `what`: the request's kind ("edit", "question").
pub(crate) fn too_large(
    what: &str,
    bytes: u64,
    limit: u64,
    files: &[EditFile],
    instructions: &[InstructionFile],
) -> String {
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
        .chain(
            instructions
                .iter()
                .map(|f| (format!("{} (instructions)", f.path), f.bytes())),
        )
        .collect();
    sizes.sort_by_key(|s| std::cmp::Reverse(s.1));
    let largest: Vec<String> = sizes
        .iter()
        .take(3)
        .map(|(n, b)| format!("{n} {}", files::size_text(*b)))
        .collect();
    format!(
        "this {what}'s prompt is {}, over max_context_bytes ({}): the largest files are {}. Remove context files (:LlmContext remove …), select less, {}or raise max_context_bytes (setup). Nothing was sent",
        files::size_text(bytes),
        files::size_text(limit),
        largest.join(", "),
        if instructions.is_empty() {
            ""
        } else {
            "lower max_instructions_bytes, "
        }
    )
}
