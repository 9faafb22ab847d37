//! The reservation of one request, from the ledger's `reserve` to its settlement: settled with
//! the usage chunk; dropped unsent, released (nothing was billed); dropped sent and unsettled
//! (cancel, cut stream, error), reconciled through `GET /generation` in the background.
//! Whether it was sent is in the ledger (`requests.sent`, written before the request leaves),
//! so that what is decided at exit ([`release_unsent`]) and at the next start after a crash
//! (`reconcile::reconcile_orphans`) does not depend on this process's memory.

use super::policy::Plan;
use super::reconcile::reconcile;
use super::warn::warn_if_crossed;
use crate::budget::Clock;
use crate::budget::{
    CachePrice, ChargeSource, Decision, Price, Refusal, RequestId, RequestKind, ReserveInput,
    Settlement, Usd,
};
use crate::openrouter::Usage;
use crate::services::{Catalogue, LedgerHandle, LedgerRunError, LedgerSlot, Settings, Ui};
use crate::settings::ApiKey;
use crate::settings::BudgetCaps;
use std::sync::{Arc, Mutex, Weak};

/// The reservation of a request in flight. Settled with the usage chunk; dropped unsettled
/// (cancel, cut stream, error) it is reconciled through `GET /generation` in the background.
pub struct Ticket {
    /// The ledger the reservation is in (even if `data_dir` changes meanwhile).
    ledger: LedgerHandle,
    /// Where a dropped sent ticket is looked up (`GET /generation` on the endpoint in force).
    settings: Arc<Settings>,
    /// Told when a charge proves its price wrong.
    catalogue: Arc<Catalogue>,
    /// Told when spend crosses `warn_at` of a cap.
    ui: Arc<Ui>,
    /// `None` once settled.
    id: Option<RequestId>,
    /// Whether the request may have left: a dropped unsent ticket releases its reservation, a
    /// sent one is reconciled.
    sent: bool,
    key: ApiKey,
    generation_id: Option<String>,
    price: Price,
    /// The catalogue's price, when known: a charge above the worst case at it proves it wrong.
    believed: Option<Price>,
    model: String,
    /// What cached prompt tokens save, when the catalogue says.
    cache_price: Option<CachePrice>,
    reserved: Usd,
    project: String,
    project_budget: BudgetCaps,
    global_budget: BudgetCaps,
}

/// A reservation made: the ticket, and the `max_tokens` that fits the caps.
pub struct Reserved {
    pub ticket: Ticket,
    pub max_tokens: u32,
    /// The `max_tokens` asked for, when it had to be lowered to fit.
    pub lowered_from: Option<u32>,
}

/// Why no reservation came back.
#[derive(Debug, thiserror::Error)]
pub enum ReserveError {
    /// The task making it ended without an answer.
    #[error("the reservation was lost")]
    Lost,
    #[error(transparent)]
    Ledger(#[from] LedgerRunError),
}

/// What the ledger records about a request beside its plan.
#[derive(Debug, Clone)]
pub struct Facts {
    /// The prompt's token bound, already capped at the model's context window.
    pub prompt_bound: u64,
    /// The prompt's size in bytes (foresight learns bytes per token from it).
    pub prompt_bytes: u64,
    pub kind: RequestKind,
    /// Which key the request goes through (`bound:<hash>`, `named:<name>`), never the key.
    pub key_id: Option<String>,
}

impl Ticket {
    /// Reserves the worst case of `plan` for `project`'s request in the current ledger; the
    /// ledger refuses, or lowers `max_tokens`, when a cap would be crossed.
    ///
    /// The reservation runs in a task of its own and comes back as a `Ticket`: if this edit is
    /// cancelled while the ledger works, or before the request leaves, the ticket is dropped
    /// unsent and releases the reservation (nothing was sent).
    pub async fn reserve(
        gate: &super::Gate,
        key: ApiKey,
        project: &str,
        plan: &Plan,
        facts: Facts,
    ) -> Result<Result<Reserved, Refusal>, ReserveError> {
        let Facts {
            prompt_bound,
            prompt_bytes,
            kind,
            key_id,
        } = facts;
        let ledger = gate.settings.ledger();
        remember(&ledger.slot);
        let root = project.to_string();
        let model = plan.model.clone();
        let max_tokens = plan.max_tokens;
        let min_useful = plan.min_useful_tokens;
        let price = plan.reserve_price();
        let believed = plan.price;
        let cache_price = plan.cache_price;
        let caps = plan.caps;
        let (tx, rx) = tokio::sync::oneshot::channel();
        let (settings, catalogue, ui) = (
            gate.settings.clone(),
            gate.catalogue.clone(),
            gate.ui.clone(),
        );
        tokio::spawn(async move {
            let project = root.clone();
            let ticket_model = model.clone();
            let d = ledger
                .run(move |l, clock| {
                    let mut input =
                        ReserveInput::new(&root, &model, prompt_bound, max_tokens, price);
                    input.min_useful_tokens = min_useful;
                    input.prompt_bytes = Some(prompt_bytes);
                    input.project_caps = caps.project.caps;
                    input.global_caps = caps.global.caps;
                    input.kind = kind;
                    input.key_id = key_id.as_deref();
                    l.reserve(&input, clock)
                })
                .await;
            let outcome = d.map(|d| match d {
                Decision::Refused(r) => Err(r),
                Decision::Reserved {
                    id,
                    max_tokens,
                    worst_case,
                    lowered_from,
                } => Ok(Reserved {
                    ticket: Ticket {
                        ledger,
                        settings,
                        catalogue,
                        ui,
                        id: Some(id),
                        sent: false,
                        key,
                        generation_id: None,
                        price,
                        believed,
                        model: ticket_model,
                        cache_price,
                        reserved: worst_case,
                        project,
                        project_budget: caps.project,
                        global_budget: caps.global,
                    },
                    max_tokens,
                    lowered_from,
                }),
            });
            // A receiver gone drops the outcome here, and with it the unsent ticket.
            let _ = tx.send(outcome);
        });
        Ok(rx.await.map_err(|_| ReserveError::Lost)??)
    }

    /// The request's ledger row (`None` once settled).
    pub fn row(&self) -> Option<RequestId> {
        self.id
    }

    /// The worst case reserved.
    pub fn reserved(&self) -> Usd {
        self.reserved
    }

    /// From here the request may reach the server: recorded in the ledger, on disk, before it
    /// returns (so a process that dies from here on leaves a row that is reconciled, never
    /// released), and a dropped ticket is reconciled, not released. `Err` when it could not
    /// be recorded, or the reservation was released meanwhile (the process is exiting): the
    /// request must not be sent.
    pub(super) async fn mark_sent(&mut self) -> Result<(), LedgerRunError> {
        let Some(id) = self.id else { return Ok(()) };
        self.ledger.run(move |l, _| l.mark_sent(id)).await?;
        // Only once it is on disk: a ticket dropped while the mark is written (a cancel) was
        // never sent, and is released.
        self.sent = true;
        Ok(())
    }

    /// The attempt was answered with a status before any answer byte, or never connected:
    /// nothing was generated or billed. Until it is sent again, dropping the ticket (a cancel
    /// during the wait before a retry) releases the reservation, and so does the exit of the
    /// process, or the next start after its death (the ledger is told too; should that write
    /// fail, the row is charged as sent: the safe side).
    pub(super) async fn unsent(&mut self) {
        self.sent = false;
        let Some(id) = self.id else { return };
        if let Err(e) = self.ledger.run(move |l, _| l.mark_unsent(id)).await {
            tracing::warn!("{e}");
        }
    }

    /// The request never reached the server (refused with a status, or never connected):
    /// nothing was generated or billed, so the reservation is released.
    pub(super) fn release(mut self) {
        self.sent = false;
    }

    pub async fn set_generation_id(&mut self, gid: &str) {
        if self.generation_id.as_deref() == Some(gid) {
            return;
        }
        self.generation_id = Some(gid.to_string());
        if let Some(id) = self.id {
            let g = gid.to_string();
            if let Err(e) = self
                .ledger
                .run(move |l, _| l.set_generation_id(id, &g))
                .await
            {
                tracing::warn!("{e}");
            }
        }
    }

    /// The key this request uses, to redact provider text that might echo it.
    pub fn key(&self) -> ApiKey {
        self.key.clone()
    }

    /// The request goes again with another key (a `cmd:` key printed anew after a 401): the
    /// one to look its generation up with, and to redact.
    pub(super) fn set_key(&mut self, key: ApiKey) {
        self.key = key;
    }

    /// Settles with the usage chunk and returns the charge at once; the ledger's write, which
    /// ends in an fsync (`synchronous=FULL`), runs in the background: nobody needs to wait for
    /// it to see the answer's end. The process waits for it before it exits
    /// ([`LedgerHandle::background`]); until it is written the reservation counts in full, so a cap
    /// can only be held more strictly meanwhile, never passed. What the charge proves about
    /// the catalogue's price is noted at once, before the next request can be priced.
    pub fn settle(mut self, usage: &Usage) -> Option<Usd> {
        let (charged, source) = charge_of(usage, self.price, self.reserved);
        let id = self.id.take()?;
        if source == ChargeSource::Usage {
            self.check_charge(charged);
        }
        let tokens_cached = usage
            .prompt_tokens_details
            .as_ref()
            .and_then(|d| d.cached_tokens);
        let s = Settlement {
            charged,
            tokens_in: Some(usage.prompt_tokens),
            tokens_out: Some(usage.completion_tokens),
            tokens_cached,
            tokens_reasoning: usage
                .completion_tokens_details
                .as_ref()
                .and_then(|d| d.reasoning_tokens),
            cache_saved: cache_saved(tokens_cached, self.cache_price),
            source,
        };
        let background = self.ledger.background.clone();
        background.spawn(async move {
            let written = self
                .ledger
                .run(move |l, clock| l.settle(id, s, clock))
                .await;
            match written {
                Ok(()) => {
                    warn_if_crossed(
                        &self.ledger,
                        &self.ui,
                        &self.project,
                        &self.project_budget,
                        &self.global_budget,
                    )
                    .await
                }
                Err(e) => tracing::error!("settling request {id}: {e}"),
            }
        });
        Some(charged)
    }
}

/// The ledgers this process reserved in: the current `data_dir`'s, and an earlier one's while
/// a ticket of it lives (a slot nobody holds has no reservation in flight).
static SLOTS: Mutex<Vec<Weak<LedgerSlot>>> = Mutex::new(Vec::new());

fn remember(slot: &Arc<LedgerSlot>) {
    let mut slots = SLOTS.lock().expect("slots lock poisoned");
    slots.retain(|w| w.strong_count() > 0);
    if !slots
        .iter()
        .any(|w| std::ptr::eq(w.as_ptr(), Arc::as_ptr(slot)))
    {
        slots.push(Arc::downgrade(slot));
    }
}

/// At exit: every reservation of this process that is not on the wire (waiting for the user
/// to confirm, waiting to retry after a 429, not yet sent) is released, charged nothing. Those
/// marked sent stay reserved, reconciled at the next start. A ledger this process never
/// reserved in is not even opened.
pub async fn release_unsent(clock: Arc<dyn Clock>) {
    let slots: Vec<Arc<LedgerSlot>> = SLOTS
        .lock()
        .expect("slots lock poisoned")
        .iter()
        .filter_map(Weak::upgrade)
        .collect();
    for slot in slots {
        match slot.run(clock.clone(), |l, c| l.release_unsent(c)).await {
            Ok(0) => {}
            Ok(n) => tracing::info!(count = n, "released requests never sent"),
            Err(e) => tracing::warn!("releasing requests never sent: {e}"),
        }
        // Neovim quit with these hunks pending.
        match slot.run(clock.clone(), |l, c| l.abandon_own_hunks(c)).await {
            Ok(0) => {}
            Ok(n) => tracing::info!(count = n, "hunks left pending: abandoned"),
            Err(e) => tracing::warn!("abandoning pending hunks: {e}"),
        }
    }
}

/// What the cached prompt tokens saved, when both their number and the cache-read price are
/// known (gross: see [`CachePrice`]).
pub(super) fn cache_saved(tokens_cached: Option<u64>, price: Option<CachePrice>) -> Option<Usd> {
    price?.saved(tokens_cached?)
}

/// What an answer with `usage` is charged: its `usage.cost` when the endpoint reports one
/// (OpenRouter); else its tokens × `price` (a plain endpoint priced by `setup({ prices })`),
/// an estimate; the reservation when even that cannot be computed.
pub fn charge_of(usage: &Usage, price: Price, reserved: Usd) -> (Usd, ChargeSource) {
    match usage.cost {
        Some(c) => (c, ChargeSource::Usage),
        _ => (
            price
                .worst_case(usage.prompt_tokens, usage.completion_tokens)
                .unwrap_or(reserved),
            ChargeSource::Estimate,
        ),
    }
}

impl Ticket {
    /// A charge OpenRouter reported above the worst case reserved proves the catalogue's price
    /// wrong (a model listed free that is charged, above all): see
    /// [`Catalogue::charged_above_reserved`]. Our own estimates prove nothing.
    fn check_charge(&self, charged: Usd) {
        if let Some(believed) = self.believed.filter(|_| charged > self.reserved) {
            self.catalogue
                .charged_above_reserved(&self.model, believed, charged, self.reserved);
        }
    }
}

impl Drop for Ticket {
    fn drop(&mut self) {
        let Some(id) = self.id.take() else { return };
        let Ok(rt) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let ledger = self.ledger.clone();
        if !self.sent {
            // Never left: nothing can have been billed. Written before the process exits.
            let background = ledger.background.clone();
            background.spawn(async move {
                if let Err(e) = ledger.run(move |l, c| l.fail(id, c)).await {
                    tracing::warn!("{e}");
                }
            });
            return;
        }
        let gid = self.generation_id.take();
        let keys = vec![self.key.clone()];
        let reserved = self.reserved;
        let cache_price = self.cache_price;
        let (model, believed) = (std::mem::take(&mut self.model), self.believed);
        let (settings, catalogue) = (self.settings.clone(), self.catalogue.clone());
        rt.spawn(async move {
            let charged =
                reconcile(&settings, &ledger, id, gid, &keys, reserved, cache_price).await;
            if let (Some(charged), Some(believed)) = (charged, believed) {
                if charged > reserved {
                    catalogue.charged_above_reserved(&model, believed, charged, reserved);
                }
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn usage(prompt: u64, completion: u64, cost: Option<f64>) -> Usage {
        // From the text, as the wire gives it (a cost is read from its raw JSON).
        let v = serde_json::json!({
            "prompt_tokens": prompt,
            "completion_tokens": completion,
            "cost": cost,
        });
        serde_json::from_str(&v.to_string()).unwrap()
    }

    #[test]
    fn the_charge_is_the_reported_cost_else_tokens_times_prices() {
        // 0.15 / 0.35 USD per million tokens.
        let price = Price {
            prompt: Usd(150_000),
            completion: Usd(350_000),
            request: Usd::ZERO,
        };
        let reserved = Usd::parse_decimal("0.01").unwrap();
        assert_eq!(
            charge_of(&usage(120, 40, Some(0.00123)), price, reserved),
            (Usd::parse_decimal("0.00123").unwrap(), ChargeSource::Usage)
        );
        // No cost: 120 × 0.15e-6 + 40 × 0.35e-6 = $0.000032, exactly.
        assert_eq!(
            charge_of(&usage(120, 40, None), price, reserved),
            (
                Usd::parse_decimal("0.000032").unwrap(),
                ChargeSource::Estimate
            )
        );
        // A self-hosted model priced 0.
        assert_eq!(
            charge_of(&usage(120, 40, None), Price::default(), reserved),
            (Usd::ZERO, ChargeSource::Estimate)
        );
        // Tokens past what i64 picodollars hold: the reservation.
        assert_eq!(
            charge_of(&usage(u64::MAX, 40, None), price, reserved),
            (reserved, ChargeSource::Estimate)
        );
    }
}
