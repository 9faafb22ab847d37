//! Reading one streamed answer to its end, for an edit and for a review alike: the generation
//! id recorded, the ticket settled at the stream's last usage however the reading ends (its
//! end, an error chunk, a cut, a cancel), progress sent a few times a second, and an error
//! chunk, a cut or an early close turned into a failure. What the text is for is the caller's
//! (`on_text`).

use crate::budget::Usd;
use crate::gate::{Sent, Ticket};
use crate::openrouter::{ChatEvent, Usage};
use crate::protocol::{Event, Failure, Phase, Reason};
use crate::services::Ui;
use crate::settings::ApiKey;
use futures::stream::BoxStream;
use futures::StreamExt;
use std::time::{Duration, Instant};

/// How often progress reaches Neovim: a few updates a second, never one per token.
const PROGRESS_EVERY: Duration = Duration::from_millis(200);

/// Who is reading, for progress events and messages.
pub struct Reader<'a> {
    pub ui: &'a Ui,
    pub id: u64,
    pub buf: i64,
    pub started: Instant,
    /// What the answer is called in messages: "the answer", "the judge's answer".
    pub what: &'static str,
    /// Whether reasoning before the answer shows as "thinking" and counts in the running cost.
    pub shows_thinking: bool,
}

/// How an answer ended.
pub struct Streamed {
    /// Answer pieces received, or the usage chunk's completion tokens when larger.
    pub tokens: u64,
    /// What the stream's last usage settled (None without one: reconciled later).
    pub cost: Option<Usd>,
    /// The model that answered.
    pub model: String,
    /// The finish reason, when one came.
    pub finish: Option<String>,
}

/// The ticket and the last usage the stream carried. Several chunks may carry `usage` (the last
/// is the final figure) and an error chunk carries what was billed until it: the ticket is
/// settled from the last one when the reading ends, whatever ends it — dropped too (a cancel
/// drops the reader). Without any usage the ticket is dropped unsettled, and reconciled
/// through `/generation` in the background.
struct Settling {
    ticket: Option<Ticket>,
    usage: Option<Usage>,
}

impl Settling {
    /// Settles with the last usage, once; what it charged.
    fn settle(&mut self) -> Option<Usd> {
        let usage = self.usage.take()?;
        self.ticket.take()?.settle(&usage)
    }
}

impl Drop for Settling {
    fn drop(&mut self) {
        // Settling writes in a task: only where there is a runtime to run it (else the
        // ticket's own drop leaves the row to the next start's reconciliation).
        if tokio::runtime::Handle::try_current().is_ok() {
            self.settle();
        }
    }
}

/// Reads `sent`'s stream to its end, giving each piece of answer text to `on_text`.
/// `estimate(tokens)` is the running cost shown on the progress line. The ticket is settled
/// at the stream's last usage (see [`Settling`]); without one it is reconciled through
/// `/generation` in the background.
pub async fn read(
    r: &Reader<'_>,
    sent: Sent<BoxStream<'static, ChatEvent>>,
    model: String,
    estimate: impl Fn(u64) -> Option<Usd>,
    mut on_text: impl FnMut(&str),
) -> Result<Streamed, Failure> {
    let mut reading = Reading {
        key: sent.ticket.key(),
        settling: Settling {
            ticket: Some(sent.ticket),
            usage: None,
        },
        out: Streamed {
            tokens: 0,
            cost: None,
            model,
            finish: None,
        },
        reasoning: 0,
    };
    let mut stream = sent.stream;
    let mut done = false;
    let mut ticker = tokio::time::interval(PROGRESS_EVERY);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            ev = stream.next() => {
                let Some(ev) = ev else { break };
                match reading.event(r, ev, &mut on_text).await? {
                    Next::More => {}
                    Next::End => break,
                    Next::Done => { done = true; break; }
                }
            }
            _ = ticker.tick() => reading.progress(r, &estimate),
        }
    }
    // The connection is closed first (a server that did not close it after the end); without
    // usage, the ticket is reconciled through /generation in the background.
    drop(stream);
    let Reading {
        mut settling,
        mut out,
        ..
    } = reading;
    out.cost = settling.settle();
    drop(settling);
    if !done && out.finish.is_none() {
        return Err(Failure::new(
            Reason::Stream,
            format!("the connection closed before {} ended", r.what),
        ));
    }
    Ok(out)
}

/// What to do after an event of the stream.
enum Next {
    More,
    /// The stream ends here (the answer whole, or a server that does not close after it).
    End,
    /// `[DONE]`.
    Done,
}

/// One answer as it is read.
struct Reading {
    /// The key the request went with, redacted from messages.
    key: ApiKey,
    settling: Settling,
    out: Streamed,
    /// Pieces of reasoning before the answer: billed like answer tokens.
    reasoning: u64,
}

impl Reading {
    /// Takes one event of the stream: what next, or why the answer failed.
    async fn event(
        &mut self,
        r: &Reader<'_>,
        ev: ChatEvent,
        on_text: &mut impl FnMut(&str),
    ) -> Result<Next, Failure> {
        let out = &mut self.out;
        match ev {
            ChatEvent::Id(g) => {
                if let Some(t) = self.settling.ticket.as_mut() {
                    t.set_generation_id(&g).await;
                }
            }
            ChatEvent::Model(m) => out.model = m,
            ChatEvent::Text(t) => {
                out.tokens += 1;
                on_text(&t);
            }
            ChatEvent::Reasoning => {
                if r.shows_thinking {
                    self.reasoning += 1;
                }
            }
            ChatEvent::Finish(f) => out.finish = Some(f),
            ChatEvent::Usage(u) => {
                out.tokens = u.completion_tokens.max(out.tokens);
                self.settling.usage = Some(u);
            }
            ChatEvent::Error { code, message } => {
                self.settling.settle();
                let message = crate::openrouter::client::for_message(&message, &self.key);
                return Err(Failure::new(
                    Reason::Stream,
                    format!("{} broke off ({code}): {message}", r.what),
                ));
            }
            // After the finish reason the answer is whole: a server that then neither sends
            // [DONE] nor closes is left (the stream is dropped by the caller).
            ChatEvent::Broken(cut) if out.finish.is_some() => {
                tracing::info!(request = r.id, "after the answer's end: {cut}");
                return Ok(Next::End);
            }
            // Cut by a bound (or a broken connection): returning drops the stream, closing
            // the connection, and the ticket, reconciling what it cost.
            ChatEvent::Broken(cut) => {
                self.settling.settle();
                let message = crate::openrouter::client::redact(&cut.to_string(), &self.key);
                tracing::info!(request = r.id, "stream cut: {message}");
                return Err(Failure::new(Reason::Stream, message));
            }
            ChatEvent::Done => return Ok(Next::Done),
        }
        Ok(Next::More)
    }

    /// The progress line: tokens so far, time, the running cost.
    fn progress(&self, r: &Reader<'_>, estimate: impl Fn(u64) -> Option<Usd>) {
        let tokens = self.out.tokens;
        let cost = estimate(tokens + self.reasoning);
        r.ui.send(Event::Progress {
            id: r.id,
            buf: r.buf,
            tokens,
            elapsed_ms: r.started.elapsed().as_millis() as u64,
            cost_usd: cost.map(Usd::to_f64),
            cost_text: cost.map(|u| u.to_string()),
            phase: match (tokens, self.reasoning) {
                (0, 0) => Phase::Waiting,
                (0, _) => Phase::Thinking,
                _ => Phase::Streaming,
            },
            note: None,
        });
    }
}
