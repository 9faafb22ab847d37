//! A review as a [`Job`] of the runner: the judge's prompt (structured outputs where the
//! catalogue says the judge takes them; recorded as `kind = review`), the answer collected
//! (bounded), its verdicts read → `review_done`.

use super::request::ReviewRequest;
use super::{prompt, verdicts};
use crate::budget::{RequestKind, Usd};
use crate::edit::instructions;
use crate::history::{Transcript, Turn};
use crate::openrouter::ChatRequest;
use crate::protocol::{Event, Failure, Verdict};
use crate::runner::{self, Ctx, End, Job, Prompt, Who};
use crate::settings::Effective;

/// The most answer bytes kept: verdicts are a few lines each; past this the answer is not one.
const MAX_ANSWER_BYTES: usize = 1 << 20;

/// One review, from its request to its `review_done`.
pub struct Review {
    req: ReviewRequest,
    /// The answer so far (at most [`MAX_ANSWER_BYTES`]).
    text: String,
    /// The project's instruction files sent (named in its history, never their text).
    instruction_files: Vec<String>,
}

impl Review {
    pub fn new(req: ReviewRequest) -> Self {
        Review {
            req,
            text: String::new(),
            instruction_files: Vec::new(),
        }
    }
}

impl Job for Review {
    const KIND: RequestKind = RequestKind::Review;
    const ANSWER: &'static str = "the judge's answer";
    // A reasoning judge thinks before it answers; only the answer is read.
    const SHOWS_THINKING: bool = false;
    // Its progress line shows the same figures as an edit's: the worst case first.
    const FORESIGHT: bool = true;
    const INTERNAL_ERROR: &'static str =
        "an internal error ended this review (a bug in frugal; the log has the details)";

    fn who(&self) -> Who {
        Who {
            id: self.req.id,
            buf: self.req.buf,
        }
    }

    fn confirmed(&self) -> Option<Usd> {
        self.req
            .confirmed_usd
            .and_then(|c| Usd::from_cost_f64(c).ok())
    }

    fn prompt(&mut self, ctx: &Ctx) -> Result<Prompt, Failure> {
        let project = runner::project_ctx(&self.req.project)?;
        let cfg = ctx.config();
        let model = Effective::resolve(&cfg, &project.settings, None).judge_model;
        let instructions = instructions::for_request(ctx, &project);
        self.instruction_files = instructions::names_of(&instructions);
        let messages = prompt::build(
            &self.req.instruction,
            &self.req.filetype,
            &self.req.hunks,
            &instructions,
        );
        Ok(Prompt {
            project,
            model,
            messages,
        })
    }

    /// Structured outputs only where the catalogue says the judge takes them. The gate reads
    /// the catalogue right after (cached by then).
    async fn shape(&self, ctx: &Ctx, request: &mut ChatRequest) {
        let catalogue = ctx.catalogue().await;
        let model = &request.model;
        let structured = prompt::wants_schema(catalogue.as_deref().and_then(|c| c.get(model)));
        tracing::info!(review = self.req.id, hunks = self.req.hunks.len(), %model, structured, "review");
        request.response_format = structured.then(prompt::response_format);
    }

    fn text(&mut self, t: &str) {
        if self.text.len() + t.len() <= MAX_ANSWER_BYTES {
            self.text.push_str(t);
        }
    }

    async fn finish(&mut self, _ctx: &Ctx, end: End) -> Result<Event, Failure> {
        let req = &self.req;
        let streamed = end.streamed;
        let order = prompt::numbering(&req.hunks);
        let numbers: Vec<usize> = order.iter().map(|p| p.0).collect();
        let (reads, mut unread) = verdicts::read(&self.text, &numbers);
        if unread.is_some() && streamed.finish.as_deref() == Some("length") {
            unread = Some(
                "the judge's answer was cut at max_tokens before its verdicts ended (raise max_tokens in setup)".into(),
            );
        }
        if let Some(why) = &unread {
            tracing::info!(review = req.id, "verdicts not read: {why}");
        }
        let mut out: Vec<Verdict> = order
            .into_iter()
            .zip(&reads)
            .map(|((n, i), r)| {
                let h = &req.hunks[i];
                Verdict {
                    item: i + 1,
                    hunk: n,
                    path: h.path.clone(),
                    line: h.line,
                    verdict: r.verdict,
                    reason: r.reason.clone(),
                }
            })
            .collect();
        out.sort_by_key(|v| v.item);
        Ok(Event::ReviewDone {
            id: req.id,
            buf: req.buf,
            verdicts: out,
            cost_usd: streamed.cost.map(Usd::to_f64),
            cost_text: streamed.cost.map(|c| c.to_string()),
            model: streamed.model,
            unread,
            tokens: streamed.tokens,
            elapsed_ms: end.started.elapsed().as_millis() as u64,
        })
    }

    /// The instruction of the edit reviewed, the judge's answer; the hunks' files by name.
    fn transcript(&self) -> Option<Transcript> {
        let mut files: Vec<String> = self.req.hunks.iter().map(|h| h.path.clone()).collect();
        files.dedup();
        files.extend(self.instruction_files.iter().cloned());
        Some(Transcript {
            turns: vec![Turn {
                instruction: self.req.instruction.clone(),
                answer: self.text.clone(),
            }],
            files,
        })
    }
}
