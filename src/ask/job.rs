//! An ask as a [`Job`] of the runner: the prompt (the range asked about, context files and the
//! project's instructions, the conversation so far; refused over `max_context_bytes`), the
//! answer sent on to the ask buffer in batches (`ask_text`), and `ask_done`.

use super::prompt::{self, AskInput};
use super::request::AskRequest;
use crate::budget::{RequestKind, Usd};
use crate::edit::files;
use crate::edit::prompt::{Code, ContextText};
use crate::history::Transcript;
use crate::protocol::{Event, Failure, Reason};
use crate::runner::{self, Ctx, End, Job, Prompt, Who};
use crate::services::Ui;
use crate::settings::Effective;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// How often the answer's text reaches Neovim at most: a few appends a second, never one per
/// token (each is a buffer change and a redraw).
const TEXT_EVERY: Duration = Duration::from_millis(50);

/// One ask, from its request to its `ask_done`.
pub struct Ask {
    req: AskRequest,
    /// The whole answer, for `ask_done` (the next turn's history).
    answer: String,
    /// The text not sent on yet, which a task sends every [`TEXT_EVERY`] (so a piece never
    /// waits for the next one), and that task.
    outbox: Arc<Mutex<Outbox>>,
    sender: Option<tokio::task::JoinHandle<()>>,
    /// The project's instruction files sent (named in its history, never their text).
    instruction_files: Vec<String>,
}

/// The answer's text waiting to be sent, and whether the ask has ended (nothing more goes).
#[derive(Default)]
struct Outbox {
    text: String,
    closed: bool,
}

impl Outbox {
    /// Sends what waits (under the lock: the order of pieces is kept).
    fn send(&mut self, ui: &Ui, id: u64, buf: i64) {
        if self.closed || self.text.is_empty() {
            return;
        }
        let text = std::mem::take(&mut self.text);
        ui.send(Event::AskText { id, buf, text });
    }
}

impl Ask {
    pub fn new(req: AskRequest) -> Self {
        Ask {
            req,
            answer: String::new(),
            outbox: Arc::default(),
            sender: None,
            instruction_files: Vec::new(),
        }
    }
}

impl Drop for Ask {
    /// Cancelled or failed: the sending task stops with it.
    fn drop(&mut self) {
        if let Some(task) = self.sender.take() {
            task.abort();
        }
    }
}

impl Job for Ask {
    /// A late "Send" re-sends the question with the worst case the user agreed to: asked
    /// again only above it.
    fn confirmed(&self) -> Option<Usd> {
        self.req.about.confirmed()
    }

    const KIND: RequestKind = RequestKind::Ask;
    const ANSWER: &'static str = "the answer";
    const SHOWS_THINKING: bool = true;
    const FORESIGHT: bool = true;
    const INTERNAL_ERROR: &'static str =
        "an internal error ended this question (a bug in frugal; the log has the details)";

    fn who(&self) -> Who {
        Who {
            id: self.req.about.id,
            buf: self.req.about.buf,
        }
    }

    fn prompt(&mut self, ctx: &Ctx) -> Result<Prompt, Failure> {
        let req = &self.req.about;
        let cfg = ctx.config();
        let project = runner::project_ctx(&req.project)?;
        let model = Effective::resolve(&cfg, &project.settings, req.model.as_deref()).model;
        let root = files::checkout_root(&req.project.file);
        let ask_files = files::load(&root, req, cfg.max_context_bytes)
            .map_err(|m| Failure::new(Reason::Config, format!("{m}: nothing was sent")))?;
        let context = ContextText::beside(&ask_files);
        let instructions = crate::edit::instructions::for_request(ctx, &project);
        self.instruction_files = crate::edit::instructions::names_of(&instructions);
        let messages = prompt::build(&AskInput {
            code: Code::of(req),
            question: &req.instruction,
            context: &context,
            instructions: &instructions,
            history: &req.history,
        });
        crate::edit::told_size(
            ctx,
            self.who(),
            "question",
            cfg.max_context_bytes,
            &messages,
            &ask_files,
            &instructions,
        )?;
        tracing::info!(
            ask = req.id,
            buf = req.buf,
            ask_buf = self.req.ask_buf,
            turns = req.history.len(),
            "ask"
        );
        Ok(Prompt {
            project,
            model,
            messages,
        })
    }

    fn sent(&mut self, ctx: &Ctx) {
        let (ui, outbox) = (ctx.ui.clone(), self.outbox.clone());
        let (id, buf) = (self.req.about.id, self.req.about.buf);
        self.sender = Some(tokio::spawn(async move {
            let mut tick = tokio::time::interval(TEXT_EVERY);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                let mut o = outbox.lock().expect("ask outbox lock");
                if o.closed {
                    break;
                }
                o.send(&ui, id, buf);
            }
        }));
    }

    fn text(&mut self, t: &str) {
        self.answer.push_str(t);
        self.outbox
            .lock()
            .expect("ask outbox lock")
            .text
            .push_str(t);
    }

    async fn finish(&mut self, ctx: &Ctx, end: End) -> Result<Event, Failure> {
        {
            // The rest goes now, before the last event; nothing after it.
            let mut o = self.outbox.lock().expect("ask outbox lock");
            o.send(&ctx.ui, self.req.about.id, self.req.about.buf);
            o.closed = true;
        }
        let streamed = end.streamed;
        let cut = streamed.finish.as_deref() == Some("length");
        if self.answer.trim().is_empty() {
            let message = if cut {
                "the answer was cut at max_tokens before any text (the model spent them thinking): raise max_tokens (setup)"
            } else {
                "the model answered with no text: try again, or another model (:LlmModel)"
            };
            return Err(Failure::new(Reason::Stream, message.into()));
        }
        Ok(Event::AskDone {
            id: self.req.about.id,
            buf: self.req.about.buf,
            cost_usd: streamed.cost.map(Usd::to_f64),
            cost_text: streamed.cost.map(|c| c.to_string()),
            model: streamed.model,
            tokens: streamed.tokens,
            elapsed_ms: end.started.elapsed().as_millis() as u64,
            // Kept too: the conversation goes to `:LlmHistory` after this.
            answer: self.answer.clone(),
            cut,
            reserved_usd: Some(end.reserved.to_f64()),
            request: end.row.map(|r| r.0),
        })
    }

    /// The earlier questions and answers, this question and its answer as far as it came;
    /// the context and instruction files by name.
    fn transcript(&self) -> Option<Transcript> {
        Some(
            self.req
                .about
                .transcript(&self.answer, &self.instruction_files),
        )
    }
}
