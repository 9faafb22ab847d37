//! The runner's record of a conversation: when a run ends (its last event or its failure), the
//! job's [`Transcript`] is written to the conversation store under the ledger row the gate
//! reserved, in the background (a blocking thread; the process lets it end before exiting).
//! Nothing is written with `history_days = 0`, nor for a request that never got a ledger row
//! (refused before any reservation). A store that cannot be written costs one warning per
//! session, never the request.

use super::{Ctx, Job};
use crate::budget::{RequestId, RequestKind};
use crate::history::{Conversation, Transcript};
use crate::message::{Failure, Level, Reason};
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;

/// What the runner learns of a request on its way: the project and model of its prompt, and
/// the ledger row the gate reserved (0 until then).
#[derive(Default)]
pub struct Meta {
    pub project: String,
    pub model: String,
    pub row: Arc<AtomicI64>,
}

impl Meta {
    /// Told by the gate each time it reserves (a retry through the whole gate makes a new row:
    /// the last one holds the conversation).
    pub fn on_reserved(&self) -> Box<dyn Fn(RequestId) + Send + Sync> {
        let row = self.row.clone();
        Box::new(move |id: RequestId| row.store(id.0, Ordering::SeqCst))
    }
}

/// A run's job with what the runner learnt of it, recording its conversation once: when the
/// run ends ([`Recorder::save`]), or when it is dropped unsaved (`cancel` aborted the run: the
/// conversation so far, failed as `cancelled`).
pub struct Recorder<J: Job> {
    pub job: J,
    pub meta: Meta,
    ctx: Ctx,
    saved: bool,
}

impl<J: Job> Recorder<J> {
    pub fn new(ctx: &Ctx, job: J) -> Self {
        Recorder {
            job,
            meta: Meta::default(),
            ctx: ctx.clone(),
            saved: false,
        }
    }

    /// The run ended (`failure`: why it failed).
    pub fn save(&mut self, failure: Option<&Failure>) {
        self.saved = true;
        save(
            &self.ctx,
            J::KIND,
            &self.meta,
            self.job.transcript(),
            failure,
        );
    }
}

impl<J: Job> Drop for Recorder<J> {
    fn drop(&mut self) {
        // Aborted (a cancel) or a panic; not while the runtime shuts down (nothing could run the write).
        if !self.saved && tokio::runtime::Handle::try_current().is_ok() {
            let f = if std::thread::panicking() {
                Failure::new(Reason::Stream, J::INTERNAL_ERROR.into())
            } else {
                Failure::new(Reason::Cancelled, "cancelled".into())
            };
            self.save(Some(&f));
        }
    }
}

/// The `reason` of a failure, as `FrugalEditFailed` names it.
fn reason_name(r: Reason) -> String {
    serde_json::to_value(r)
        .ok()
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_default()
}

/// Writes the conversation of a run that ended (see the module's documentation).
pub fn save(
    ctx: &Ctx,
    kind: RequestKind,
    meta: &Meta,
    transcript: Option<Transcript>,
    failure: Option<&Failure>,
) {
    let row = meta.row.load(Ordering::SeqCst);
    let cfg = ctx.config();
    let (Some(t), true, true) = (transcript, row > 0, cfg.history_days > 0) else {
        return;
    };
    let conversation = Conversation {
        request: row,
        project: meta.project.clone(),
        kind: kind.as_str().to_string(),
        model: meta.model.clone(),
        at: jiff::Timestamp::now().as_millisecond(),
        turns: t.turns,
        files: t.files,
        failure: failure.map(|f| (reason_name(f.reason), f.message.clone())),
    };
    let slot = ctx.gate.settings.snapshot().history.clone();
    let ui = ctx.ui.clone();
    ctx.gate.settings.ledger().background.spawn(async move {
        if let Err(e) = slot.run(move |s| s.put(&conversation)).await {
            tracing::warn!("history not saved for request {row}: {e}");
            // One warning per session, whatever the file (the log has each).
            if ui.first_time("history not saved".into()) {
                ui.notify(
                    Level::Warn,
                    "frugal: history not saved (:LlmHistory says why)".into(),
                );
            }
        }
    });
}
