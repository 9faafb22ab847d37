//! One runner for every kind of request (edit, review, and the kinds to come): spawn, watch
//! for a panic, gate and send, stream, settle, finish with one last event, leave the in-flight
//! registry. What differs between kinds is a [`Job`]: its prompt, what it does with the
//! streamed text, and how it finishes.
//!
//! A new kind (say `ask`, a Markdown answer streamed into a buffer) is one type implementing
//! [`Job`] — its [`RequestKind`], a [`Prompt`] (project, model, messages: the system message
//! ending with the project's instruction files, `edit::instructions::for_request` and
//! `edit::instructions::system_with`, marked cached), `text` (send each piece on as a
//! `text` event), `finish` (its last event) — and an `rpc/` handler calling [`start`] with it. Pricing, caps, the ledger row of its kind, progress, retries, `cancel`
//! and the panic watch come with the runner.

pub mod record;
pub mod stream;

use crate::budget::{RequestId, RequestKind, Usd};
use crate::gate::{self, Gate, Outbound, ProjectCtx, Sent};
use crate::history::Transcript;
use crate::openrouter::catalogue::Catalogue;
use crate::openrouter::{ChatEvent, ChatRequest, Message};
use crate::protocol::{Event, Failure, Phase, Reason};
use crate::services::{InFlight, Ui};
use crate::settings::{Config, ProjectInput};
use futures::stream::BoxStream;
use std::future::Future;
use std::sync::Arc;
use std::time::Instant;
use stream::Streamed;
use tokio::task::{AbortHandle, JoinHandle};

/// What a run uses of the backend: the UI channel, the in-flight registry, the settings, the
/// catalogue and the gate's send step — the services the rpc handler holds ([`Gate`] and
/// [`InFlight`]), built into one value by [`Ctx::new`]; every use of them in a run goes
/// through these methods.
#[derive(Clone)]
pub struct Ctx {
    pub ui: Arc<Ui>,
    gate: Gate,
    inflight: Arc<InFlight>,
}

impl Ctx {
    pub fn new(gate: Gate, inflight: Arc<InFlight>) -> Self {
        Ctx {
            ui: gate.ui.clone(),
            gate,
            inflight,
        }
    }

    /// The settings now.
    pub fn config(&self) -> Arc<Config> {
        self.gate.settings.config()
    }

    /// The model catalogue (fetched when missing or stale).
    pub async fn catalogue(&self) -> Option<Arc<Catalogue>> {
        self.gate.catalogue.get().await
    }

    /// The gate: checks, prices and reserves the request, then sends it.
    async fn send(&self, out: Outbound) -> Result<Sent<BoxStream<'static, ChatEvent>>, Failure> {
        gate::send(&self.gate, out).await
    }

    /// In flight: `cancel` aborts it through `handle`.
    fn register(&self, who: Who, handle: AbortHandle) {
        self.inflight.start(who.id, who.buf, handle);
    }

    /// Out of flight; whether it was still in (not cancelled nor finished).
    fn unregister(&self, who: Who) -> bool {
        self.inflight.finish(who.id).is_some()
    }
}

/// A request's id (the shim's) and its buffer.
#[derive(Clone, Copy, Debug)]
pub struct Who {
    pub id: u64,
    pub buf: i64,
}

/// What a job asks.
pub struct Prompt {
    /// The project's settings after the trust rules (see [`project_ctx`]).
    pub project: ProjectCtx,
    pub model: String,
    pub messages: Vec<Message>,
}

/// How the answer ended, for [`Job::finish`].
pub struct End {
    pub streamed: Streamed,
    /// What the gate reserved for the request.
    pub reserved: Usd,
    /// The request's ledger row (`None`: no reservation was made).
    pub row: Option<RequestId>,
    /// When the run started (for `elapsed_ms`).
    pub started: Instant,
}

/// One kind of request, as the runner drives it: `prompt` → (`shape`) → gate → `sent` →
/// `text` for each streamed piece → `finish`. A failure at any step ends the run with a
/// `failed` event.
pub trait Job: Send + 'static {
    /// The ledger's `kind`.
    const KIND: RequestKind;
    /// What the answer is called in messages ("the answer", "the judge's answer").
    const ANSWER: &'static str;
    /// Whether reasoning before the answer shows as "thinking" and counts in the running cost.
    const SHOWS_THINKING: bool;
    /// Whether the gate's foresight (worst and likely cost) is sent as a `foresight` event.
    const FORESIGHT: bool;
    /// The `failed` message when the run panicked (a bug).
    const INTERNAL_ERROR: &'static str;

    fn who(&self) -> Who;

    /// The request to send, or why nothing is sent. Events before the spinner go out here.
    fn prompt(&mut self, ctx: &Ctx) -> Result<Prompt, Failure>;

    /// Last touches to the request once the spinner shows (the review asks the catalogue
    /// whether its judge takes structured outputs).
    fn shape(&self, _ctx: &Ctx, _request: &mut ChatRequest) -> impl Future<Output = ()> + Send {
        async {}
    }

    /// A worst case the user already agreed to: a "Send" given after the confirmation's time
    /// ran out restarts the request with the worst case it was shown (see `gate::Outbound`).
    fn confirmed(&self) -> Option<Usd> {
        None
    }

    /// The request is sent and reserved: the answer is about to stream.
    fn sent(&mut self, _ctx: &Ctx) {}

    /// A piece of the answer's text.
    fn text(&mut self, t: &str);

    /// The answer ended: the last event (`done`, `review_done`…) or why it failed.
    fn finish(
        &mut self,
        ctx: &Ctx,
        end: End,
    ) -> impl Future<Output = Result<Event, Failure>> + Send;

    /// The conversation to keep for `:LlmHistory` once the run ended (after `finish`, or after
    /// a failure at any step): the instructions and answers, the files by name. `None`: none.
    fn transcript(&self) -> Option<Transcript> {
        None
    }
}

/// Starts `job` in a task of its own, registered in flight (so `cancel` aborts it) and watched
/// for a panic.
pub fn start<J: Job>(ctx: Ctx, job: J) {
    let who = job.who();
    // Registered before the task can finish, so a quick failure cannot race the insert.
    let task = tokio::spawn({
        let ctx = ctx.clone();
        async move {
            // Yield once so `register` below has run.
            tokio::task::yield_now().await;
            run(&ctx, job).await
        }
    });
    ctx.register(who, task.abort_handle());
    tokio::spawn(watch::<J>(ctx, who, task));
}

/// A panic in the run (a bug) must still end it for the user: the event fired, the buffer free
/// again. (Its ticket was dropped while unwinding, which releases or reconciles the
/// reservation.) An abort is `cancel`'s, which already said so.
async fn watch<J: Job>(ctx: Ctx, who: Who, task: JoinHandle<()>) {
    if let Err(e) = task.await {
        if e.is_panic() && ctx.unregister(who) {
            tracing::error!(request = who.id, kind = %J::KIND.as_str(), "failed with an internal error: {e}");
            ctx.ui.send(Event::Failed {
                id: who.id,
                buf: who.buf,
                reason: Reason::Stream,
                message: J::INTERNAL_ERROR.into(),
                line: None,
                cost_usd: None,
                cost_text: None,
                answer: None,
            });
        }
    }
}

/// Runs `job` to its end: its last event, or `failed`. Cancellation is by aborting the task
/// running this future (that drops the HTTP stream, closing the connection).
async fn run<J: Job>(ctx: &Ctx, job: J) {
    let who = job.who();
    // Records the conversation however the run ends: here, or when `cancel` aborts it.
    let mut job = record::Recorder::new(ctx, job);
    let outcome = run_inner(ctx, &mut job.job, &mut job.meta).await;
    job.save(outcome.as_ref().err());
    let ev = match outcome {
        Ok(last) => last,
        Err(f) => {
            let paid = f.paid.unwrap_or_default();
            Event::Failed {
                id: who.id,
                buf: who.buf,
                reason: f.reason,
                message: f.message,
                line: f.line,
                cost_usd: paid.cost_usd,
                cost_text: paid.cost_text,
                answer: paid.answer,
            }
        }
    };
    // What the job holds goes first (an edit's placer stops placing), as the run's end.
    drop(job);
    ctx.unregister(who);
    ctx.ui.send(ev);
}

async fn run_inner<J: Job>(
    ctx: &Ctx,
    job: &mut J,
    meta: &mut record::Meta,
) -> Result<Event, Failure> {
    let started = Instant::now();
    let who = job.who();
    let Prompt {
        project,
        model,
        messages,
    } = job.prompt(ctx)?;
    meta.project = project.root.clone();
    meta.model = model.clone();
    ctx.ui.send(Event::waiting(who.id, who.buf, 0));
    let cfg = ctx.config();
    let mut request = ChatRequest {
        model: model.clone(),
        messages,
        stream: true,
        max_tokens: cfg.max_tokens,
        temperature: cfg.temperature,
        provider: None,
        response_format: None,
        stream_options: None,
    };
    job.shape(ctx, &mut request).await;
    // Context files, history and diagnostics are all in the messages: the bound (and so the
    // worst case and the caps) covers them.
    let prompt_bound = prompt_token_bound(&request.messages);
    let prompt_bytes = prompt_bytes(&request.messages);
    let outbound = Outbound {
        project,
        prompt_bound,
        prompt_bytes,
        on_retry: on_retry(ctx, who, started),
        on_foresight: on_foresight::<J>(ctx, who),
        on_reserved: meta.on_reserved(),
        request,
        kind: J::KIND,
        id: who.id,
        buf: who.buf,
        confirmed: job.confirmed(),
    };
    let sent = ctx.send(outbound).await?;
    let reserved = sent.ticket.reserved();
    let row = sent.ticket.row();
    let price = sent.price;
    // A running estimate for the progress line (prompt ≈ 4 bytes a token); the usage chunk's
    // figure replaces it at the end.
    let estimate =
        |tokens: u64| -> Option<Usd> { price.and_then(|p| p.worst_case(prompt_bytes / 4, tokens)) };
    job.sent(ctx);
    let reader = stream::Reader {
        ui: &ctx.ui,
        id: who.id,
        buf: who.buf,
        started,
        what: J::ANSWER,
        shows_thinking: J::SHOWS_THINKING,
    };
    let streamed = stream::read(&reader, sent, model, estimate, |t| job.text(t)).await?;
    let end = End {
        streamed,
        reserved,
        row,
        started,
    };
    job.finish(ctx, end).await
}

/// Retries say so on the progress line.
fn on_retry(ctx: &Ctx, who: Who, started: Instant) -> Box<dyn Fn(String) + Send + Sync> {
    let ui = ctx.ui.clone();
    Box::new(move |note: String| {
        ui.send(Event::Progress {
            id: who.id,
            buf: who.buf,
            tokens: 0,
            elapsed_ms: started.elapsed().as_millis() as u64,
            cost_usd: None,
            cost_text: None,
            phase: Phase::Retrying,
            note: Some(note),
        })
    })
}

/// The gate's foresight as an event, for the jobs that show it.
fn on_foresight<J: Job>(ctx: &Ctx, who: Who) -> Box<dyn Fn(gate::Foresight) + Send + Sync> {
    if !J::FORESIGHT {
        return Box::new(|_| {});
    }
    let ui = ctx.ui.clone();
    Box::new(move |f: gate::Foresight| {
        ui.send(Event::Foresight {
            id: who.id,
            buf: who.buf,
            worst_usd: f.worst.to_f64(),
            worst_text: f.worst.to_string(),
            likely_usd: f.likely.map(Usd::to_f64),
            likely_text: f.likely.map(|u| u.to_string()),
        })
    })
}

/// The project's settings after the trust rules: an untrusted or absent file is ignored, a
/// malformed trusted one stops the request (never a fall back to no caps).
pub fn project_ctx(p: &ProjectInput) -> Result<ProjectCtx, Failure> {
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

/// The prompt's size in UTF-8 bytes, as the ledger records it (`requests.prompt_bytes`) and
/// `max_context_bytes` bounds it.
pub fn prompt_bytes(messages: &[Message]) -> u64 {
    messages.iter().map(|m| m.content.len() as u64).sum()
}

/// An upper bound on the prompt's tokens that holds for any tokenizer: no tokenizer emits more
/// tokens than the text has UTF-8 bytes, plus a small per-message overhead for the chat template.
pub fn prompt_token_bound(messages: &[Message]) -> u64 {
    messages
        .iter()
        .map(|m| m.content.len() as u64 + 16)
        .sum::<u64>()
        + 16
}
