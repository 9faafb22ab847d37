//! One review: prompt → gate (caps, reservation, as for an edit; recorded as a review) →
//! streamed answer, collected → verdicts → `review_done`. Cancellation is by aborting the task
//! running this future, as for an edit.

use super::{prompt, verdicts};
use crate::budget::{RequestKind, Usd};
use crate::gate::Gate;
use crate::gate::{self, Outbound};
use crate::openrouter::ChatRequest;
use crate::protocol::{Event, Failure, Phase, Verdict};
use crate::review::request::ReviewRequest;
use crate::services::InFlight;
use std::sync::Arc;
use std::time::Instant;

/// The most answer bytes kept: verdicts are a few lines each; past this the answer is not one.
const MAX_ANSWER_BYTES: usize = 1 << 20;

/// Runs one review to its end, reporting through the UI channel.
pub async fn run(gate: Gate, inflight: Arc<InFlight>, req: ReviewRequest) {
    let ev = match run_inner(&gate, &req).await {
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

async fn run_inner(gate: &Gate, req: &ReviewRequest) -> Result<Event, Failure> {
    let started = Instant::now();
    let cfg = gate.settings.config();
    let project = crate::edit::project_ctx(&req.project)?;
    let model = crate::settings::Effective::resolve(&cfg, &project.settings, None).judge_model;
    let messages = prompt::build(&req.instruction, &req.filetype, &req.hunks);
    let prompt_bound = crate::edit::prompt::prompt_token_bound(&messages);
    gate.ui.send(Event::waiting(req.id, req.buf, 0));
    // Structured outputs only where the catalogue says the judge takes them. The gate reads
    // the catalogue right after (cached by then).
    let catalogue = gate.catalogue.get().await;
    let structured = prompt::wants_schema(catalogue.as_deref().and_then(|c| c.get(&model)));
    tracing::info!(review = req.id, hunks = req.hunks.len(), %model, structured, "review");
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
    let prompt_bytes = crate::edit::prompt::prompt_bytes(&messages);
    let outbound = Outbound {
        project,
        prompt_bound,
        prompt_bytes,
        on_retry,
        // The review's notice and spinner say enough; its cost comes in `review_done`.
        on_foresight: Box::new(|_| {}),
        request: ChatRequest {
            model: model.clone(),
            messages,
            stream: true,
            max_tokens: cfg.max_tokens,
            temperature: cfg.temperature,
            provider: None,
            response_format: structured.then(prompt::response_format),
            stream_options: None,
        },
        kind: RequestKind::Review,
    };
    let sent = gate::send(gate, outbound).await?;
    let price = sent.price;
    let prompt_tokens = prompt_bound;
    let estimate = |tokens: u64| price.and_then(|p| p.worst_case(prompt_tokens / 4, tokens));

    let mut text = String::new();
    let reader = crate::edit::stream::Reader {
        ui: &gate.ui,
        id: req.id,
        buf: req.buf,
        started,
        what: "the judge's answer",
        // A reasoning judge thinks before it answers; only the answer is read.
        shows_thinking: false,
    };
    let streamed = crate::edit::stream::read(&reader, sent, model, estimate, |t| {
        if text.len() + t.len() <= MAX_ANSWER_BYTES {
            text.push_str(t);
        }
    })
    .await?;
    let finish = streamed.finish;
    let (reads, mut unread) = verdicts::read(&text, req.hunks.len());
    if unread.is_some() && finish.as_deref() == Some("length") {
        unread = Some(
            "the judge's answer was cut at max_tokens before its verdicts ended (raise max_tokens in setup)".into(),
        );
    }
    if let Some(why) = &unread {
        tracing::info!(review = req.id, "verdicts not read: {why}");
    }
    let mut out: Vec<Verdict> = prompt::numbering(&req.hunks)
        .into_iter()
        .map(|(n, i)| {
            let h = &req.hunks[i];
            let r = &reads[n - 1];
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
        elapsed_ms: started.elapsed().as_millis() as u64,
    })
}
