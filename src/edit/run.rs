//! The orchestration of one edit: prompt → gate → streamed answer → blocks → located hunks
//! sent to Neovim. The pure parts it calls are its siblings.

use super::blocks::{Block, BlockParser};
use super::{locate, prompt};
use crate::gate::{self, Outbound, ProjectCtx};
use crate::openrouter::{ChatEvent, ChatRequest};
use crate::protocol::{EditRequest, Event, Failure, Reason};
use crate::settings::ProjectInput;
use crate::state::State;
use futures::StreamExt;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How often progress reaches Neovim: a few updates a second, never one per token.
const PROGRESS_EVERY: Duration = Duration::from_millis(200);

/// Runs one edit to its end, reporting through the state's UI channel. Cancellation is by
/// aborting the task running this future (that drops the HTTP stream, closing the connection).
pub async fn run(state: Arc<State>, req: EditRequest) {
    let outcome = run_inner(&state, &req).await;
    let ev = match outcome {
        Ok(done) => done,
        Err(f) => Event::Failed {
            id: req.id,
            buf: req.buf,
            reason: f.reason,
            message: f.message,
        },
    };
    state.finish_edit(req.id);
    state.send_ui(ev);
}

/// The project's settings after the trust rules: an untrusted or absent file is ignored, a
/// malformed trusted one stops the request (never a fall back to no caps).
fn project_ctx(p: &ProjectInput) -> Result<ProjectCtx, Failure> {
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

async fn run_inner(state: &Arc<State>, req: &EditRequest) -> Result<Event, Failure> {
    let started = Instant::now();
    let cfg = state.config();
    let project = project_ctx(&req.project)?;
    let model = req
        .model
        .clone()
        .or_else(|| project.settings.default_model.clone())
        .unwrap_or_else(|| cfg.model.clone());
    let messages = prompt::build(&prompt::PromptInput {
        file: &req.file,
        filetype: &req.filetype,
        instruction: &req.instruction,
        window: &req.lines,
        win_start: req.win_start,
        sel_start: req.sel_start,
        sel_end: req.sel_end,
        total_lines: req.total_lines,
    });
    let prompt_bound = prompt::prompt_token_bound(&messages);
    let prompt_bytes: u64 = messages.iter().map(|m| m.content.len() as u64).sum();
    let outbound = Outbound {
        project,
        prompt_bound,
        request: ChatRequest {
            model: model.clone(),
            messages,
            stream: true,
            max_tokens: cfg.max_tokens,
            temperature: cfg.temperature,
            provider: None,
        },
    };
    state.send_ui(Event::Progress {
        id: req.id,
        buf: req.buf,
        tokens: 0,
        elapsed_ms: 0,
        cost_usd: None,
        phase: "waiting",
    });
    let sent = gate::send(state, outbound).await?;
    // Settled the moment the usage chunk arrives, whatever happens after; dropped unsettled
    // (error, cut stream, cancel) it is reconciled through /generation.
    let key = sent.ticket.key();
    let mut ticket = Some(sent.ticket);
    let mut cost: Option<f64> = None;
    let price = sent.price;
    let mut stream = std::pin::pin!(sent.stream);
    // A running estimate for the progress line (prompt ≈ 4 bytes a token); the usage chunk's
    // figure replaces it at the end.
    let estimate = |tokens: u64| -> Option<f64> {
        price
            .and_then(|p| p.worst_case(prompt_bytes / 4, tokens))
            .map(|u| u.to_f64())
    };

    let mut parser = BlockParser::new();
    let mut taken: Vec<(usize, usize)> = Vec::new();
    let mut unmatched: Vec<String> = Vec::new();
    let mut hunks = 0usize;
    let mut tokens = 0u64;
    let mut ran_model = model;
    let mut finish: Option<String> = None;
    let mut done = false;
    let mut ticker = tokio::time::interval(PROGRESS_EVERY);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);

    loop {
        tokio::select! {
            ev = stream.next() => {
                let Some(ev) = ev else { break };
                match ev {
                    ChatEvent::Id(g) => {
                        if let Some(t) = ticket.as_mut() {
                            t.set_generation_id(&g).await;
                        }
                    }
                    ChatEvent::Model(m) => ran_model = m,
                    ChatEvent::Text(t) => {
                        tokens += 1;
                        for block in parser.push(&t) {
                            place(state, req, &block, &mut taken, &mut unmatched, &mut hunks);
                        }
                    }
                    ChatEvent::Finish(r) => finish = Some(r),
                    ChatEvent::Usage(u) => {
                        tokens = u.completion_tokens.max(tokens);
                        if let Some(t) = ticket.take() {
                            cost = t.settle(&u).await;
                        }
                    }
                    ChatEvent::Error { code, message } => {
                        let message = crate::openrouter::client::redact(&message, &key);
                        return Err(Failure::new(Reason::Stream, format!("the answer broke off ({code}): {message}")));
                    }
                    ChatEvent::Done => { done = true; break; }
                }
            }
            _ = ticker.tick() => {
                state.send_ui(Event::Progress {
                    id: req.id,
                    buf: req.buf,
                    tokens,
                    elapsed_ms: started.elapsed().as_millis() as u64,
                    cost_usd: estimate(tokens),
                    phase: if tokens == 0 { "waiting" } else { "streaming" },
                });
            }
        }
    }
    // No usage chunk: reconciled through /generation in the background.
    drop(ticket);
    if !done && finish.is_none() {
        return Err(Failure::new(
            Reason::Stream,
            "the connection closed before the answer ended".into(),
        ));
    }
    let end = parser.finish();
    for block in end.blocks {
        place(state, req, &block, &mut taken, &mut unmatched, &mut hunks);
    }
    if let Some(title) = end.unterminated {
        let why = if finish.as_deref() == Some("length") {
            "the answer was cut at max_tokens"
        } else {
            "the answer ended"
        };
        return Err(Failure::new(
            Reason::Stream,
            format!("{why} inside the block \"{title}\": nothing applied; try again or raise max_tokens"),
        ));
    }
    if hunks == 0 {
        let message = if unmatched.is_empty() {
            "the answer held no SEARCH/REPLACE block".to_string()
        } else {
            format!("no block matched the buffer: {}", quote_list(&unmatched))
        };
        return Err(Failure::new(Reason::NoMatch, message));
    }
    Ok(Event::Done {
        id: req.id,
        buf: req.buf,
        hunks,
        cost_usd: cost,
        model: ran_model,
        unmatched,
        tokens,
        elapsed_ms: started.elapsed().as_millis() as u64,
    })
}

fn quote_list(titles: &[String]) -> String {
    titles
        .iter()
        .map(|t| format!("\"{t}\""))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Locates a finished block in the window and sends it as a hunk, or records it as unmatched.
fn place(
    state: &State,
    req: &EditRequest,
    block: &Block,
    taken: &mut Vec<(usize, usize)>,
    unmatched: &mut Vec<String>,
    hunks: &mut usize,
) {
    let ws = req.win_start;
    let prefer = (req.sel_start - ws, req.sel_end - ws);
    match locate::locate(&req.lines, &block.search, &block.replace, prefer, taken) {
        Ok(found) => {
            taken.push((found.start, found.end));
            *hunks += 1;
            state.send_ui(Event::Hunk {
                id: req.id,
                buf: req.buf,
                path: req.file.clone(),
                index: *hunks,
                start: ws + found.start,
                end: ws + found.end,
                old: req.lines[found.start..found.end].to_vec(),
                new: found.new_lines,
                title: block.title(),
            });
        }
        Err(e) => {
            tracing::info!(edit = req.id, ?e, title = %block.title(), "block not located");
            unmatched.push(block.title());
        }
    }
}
