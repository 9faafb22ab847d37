//! The one door every request to the model goes through. Nothing else in the backend talks to
//! the chat endpoint, so the checks made here — key, model allow-list, price, caps, and the
//! reservation in the ledger — cannot be bypassed.

use crate::budget::{
    CapKind, Caps, ChargeSource, Decision, Price, RequestId, ReserveInput, Settlement, Usd,
};
use crate::settings::{ApiKey, Config};
use crate::openrouter::{ChatEvent, ChatRequest, Usage};
use crate::settings::{project, BudgetCaps, FileState, ProjectSettings};
use crate::state::State;
use crate::protocol::{Failure, Level, Reason};
use futures::Stream;
use std::sync::Arc;
use std::time::Duration;

/// The project a request is charged to, after the trust rules.
#[derive(Debug, Clone)]
pub struct ProjectCtx {
    /// Canonical root: the ledger's project key.
    pub root: String,
    /// Path of its `.frugal.toml` (whether or not it exists).
    pub file: String,
    pub file_state: FileState,
    /// Settings from a trusted, valid file (defaults otherwise).
    pub settings: ProjectSettings,
}

/// A request about to leave.
pub struct Outbound {
    pub project: ProjectCtx,
    pub request: ChatRequest,
    /// Upper bound on the prompt's tokens (see `edit::prompt::prompt_token_bound`).
    pub prompt_bound: u64,
}

/// A request that was let through and answered with a stream.
pub struct Sent<S> {
    pub stream: S,
    pub ticket: Ticket,
    /// The model's price, when known (for the running cost).
    pub price: Option<Price>,
    /// The `max_tokens` actually sent.
    pub max_tokens: u32,
}

/// Per million tokens, as `provider.max_price` wants it.
fn per_million(u: Usd) -> f64 {
    u.to_f64() * 1_000_000.0
}

/// The key for this project: a name from the user's `keys` when the project file picks one.
async fn key_for(cfg: &Config, p: &ProjectCtx) -> Result<ApiKey, Failure> {
    let spec = match &p.settings.key_name {
        Some(name) => cfg.keys.get(name).ok_or_else(|| {
            Failure::new(
                Reason::Config,
                format!(
                    "{} picks key {name:?}, which is not among your setup({{ keys = … }}); add it there or remove `key` from the file",
                    p.file
                ),
            )
        })?,
        None => &cfg.api_key,
    };
    spec.resolve()
        .await
        .map_err(|e| Failure::new(Reason::Config, e.to_string()))
}

/// The caps that apply to a project.
pub struct EffectiveCaps {
    pub project: BudgetCaps,
    pub global: BudgetCaps,
    /// What the project file itself set (to say where a cap comes from).
    pub from_file: BudgetCaps,
}

/// Each field of a trusted file's `[budget]` overrides the user's default for that field;
/// fields it leaves out keep the default (a file setting only `warn_at` must not lift caps).
pub fn effective_caps(cfg: &Config, settings: &ProjectSettings) -> Result<EffectiveCaps, String> {
    let defaults = cfg
        .budget
        .caps()
        .map_err(|e| format!("setup budget: {e}"))?;
    let file = settings.budget.unwrap_or_default();
    let global = cfg
        .global_budget
        .caps()
        .map_err(|e| format!("setup global_budget: {e}"))?;
    Ok(EffectiveCaps {
        project: BudgetCaps {
            daily: file.daily.or(defaults.daily),
            monthly: file.monthly.or(defaults.monthly),
            total: file.total.or(defaults.total),
            per_request: file.per_request.or(defaults.per_request),
            warn_at_milli: file.warn_at_milli.or(defaults.warn_at_milli),
        },
        global,
        from_file: file,
    })
}

pub async fn send(
    state: &Arc<State>,
    mut out: Outbound,
) -> Result<Sent<impl Stream<Item = ChatEvent>>, Failure> {
    let cfg = state.config();
    if let Some(e) = cfg.config_errors.first() {
        return Err(Failure::new(
            Reason::Config,
            format!("refused, nothing sent: {e} (in your frugal setup())"),
        ));
    }
    let p = &out.project;
    let model = out.request.model.clone();
    let key = key_for(&cfg, p).await?;
    if out.request.max_tokens < 16 {
        return Err(Failure::new(
            Reason::Config,
            "max_tokens must be at least 16".into(),
        ));
    }
    if let Some(allow) = &p.settings.allow {
        if !project::allowed(&model, allow) {
            return Err(Failure::new(
                Reason::Config,
                format!(
                    "model {model} is not allowed in this project ([model] allow = {allow:?} in {}); pick another with :LlmModel",
                    p.file
                ),
            ));
        }
    }

    let EffectiveCaps {
        project: project_budget,
        global: global_budget,
        from_file: file_budget,
    } = effective_caps(&cfg, &p.settings).map_err(|e| Failure::new(Reason::Config, e))?;
    let project_caps = Caps::from(project_budget);
    let global_caps = Caps::from(global_budget);
    let capped = project_caps.any() || global_caps.any();

    // Price from the catalogue.
    let catalogue = state.catalogue().await;
    let (price, list_price) = match catalogue.as_ref() {
        Some(c) => match c.get(&model) {
            Some(info) => (info.price, info.list_price),
            None => {
                let near = c.suggest(&model);
                return Err(Failure::new(
                    Reason::Config,
                    format!(
                        "model {model} is not in OpenRouter's catalogue (retired or misspelt?){}; set another with :LlmModel or setup({{ model = … }})",
                        if near.is_empty() { String::new() } else { format!(". Close: {}", near.join(", ")) }
                    ),
                ));
            }
        },
        None => (None, None),
    };
    if price.is_none() && capped {
        return Err(Failure::new(
            Reason::Budget,
            format!(
                "the price of {model} is unknown ({}), and a budget cap applies: a request cannot be bounded. Pick a priced model with :LlmModel",
                if catalogue.is_some() { "variable price in the catalogue" } else { "the model catalogue could not be fetched" }
            ),
        ));
    }
    let reserve_price = price.unwrap_or_default();

    // Reserve the worst case; refuse or lower max_tokens when a cap would be crossed.
    // The reservation runs in a task of its own and comes back as a `Ticket`: if this edit is
    // cancelled while the ledger works, or before the request leaves, the ticket is dropped
    // unsent and releases the reservation (nothing was sent).
    let slot = state.ledger_slot();
    let decision = {
        let root = p.root.clone();
        let model = model.clone();
        let max_tokens = out.request.max_tokens;
        let min_useful = cfg.min_useful_tokens.clamp(16, max_tokens);
        let bound = out.prompt_bound;
        let (tx, rx) = tokio::sync::oneshot::channel();
        let st = state.clone();
        let key = key.clone();
        tokio::spawn(async move {
            let project = root.clone();
            let d = slot
                .run(st.clock.clone(), move |l, clock| {
                    let mut input =
                        ReserveInput::new(&root, &model, bound, max_tokens, reserve_price);
                    input.min_useful_tokens = min_useful;
                    input.project_caps = project_caps;
                    input.global_caps = global_caps;
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
                } => Ok((
                    Ticket {
                        state: st.clone(),
                        slot,
                        id: Some(id),
                        sent: false,
                        key,
                        generation_id: None,
                        price: reserve_price,
                        reserved: worst_case,
                        project,
                        project_budget,
                        global_budget,
                    },
                    max_tokens,
                    lowered_from,
                )),
            });
            // A receiver gone drops the outcome here, and with it the unsent ticket.
            let _ = tx.send(outcome);
        });
        rx.await
            .map_err(|_| Failure::new(Reason::Budget, "the reservation was lost".into()))?
            .map_err(|e| Failure::new(Reason::Budget, format!("{e}; nothing was sent")))?
    };
    let (mut ticket, max_tokens) = match decision {
        Err(r) => {
            // Point at where this cap was set: the project file, or the user's setup().
            let from_file = match r.cap {
                CapKind::Daily => file_budget.daily.is_some(),
                CapKind::Monthly => file_budget.monthly.is_some(),
                CapKind::Total => file_budget.total.is_some(),
                CapKind::PerRequest => file_budget.per_request.is_some(),
            };
            let file = from_file.then_some(p.file.as_str());
            tracing::info!(project = %p.root, %model, "refused: {r}");
            return Err(Failure::new(
                Reason::Budget,
                format!("refused, nothing sent: {}", r.message(file)),
            ));
        }
        Ok((ticket, max_tokens, lowered_from)) => {
            if let Some(from) = lowered_from {
                state.notify(
                    Level::Info,
                    format!(
                        "max_tokens lowered from {from} to {max_tokens} so the answer fits the budget (worst case {})",
                        ticket.reserved
                    ),
                );
            }
            (ticket, max_tokens)
        }
    };
    out.request.max_tokens = max_tokens;

    // Routing: never a pricier provider than the price the worst case used; privacy.
    let mut provider = serde_json::Map::new();
    if let Some(pr) = list_price.filter(|pr| !pr.is_free() && cfg.max_price) {
        provider.insert(
            "max_price".into(),
            serde_json::json!({
                "prompt": per_million(pr.prompt),
                "completion": per_million(pr.completion),
                "request": pr.request.to_f64(),
            }),
        );
    }
    if let Some(dc) = &p.settings.data_collection {
        provider.insert(
            "data_collection".into(),
            serde_json::Value::String(dc.clone()),
        );
    }
    if !provider.is_empty() {
        out.request.provider = Some(serde_json::Value::Object(provider));
    }

    tracing::info!(project = %p.root, %model, max_tokens, reserved = %ticket.reserved, "sending chat request");
    // From here the request may reach the server: a dropped ticket is reconciled, not released.
    ticket.sent = true;
    match state.client().stream_chat(&key, &out.request).await {
        Ok((generation_id, stream)) => {
            if let Some(g) = generation_id {
                ticket.set_generation_id(&g).await;
            }
            Ok(Sent {
                stream,
                ticket,
                price,
                max_tokens,
            })
        }
        Err(e) if !e.maybe_sent => {
            // Refused with a status, or never connected: nothing was generated or billed.
            ticket.sent = false;
            drop(ticket);
            Err(Failure::new(Reason::Http, e.to_string()))
        }
        Err(e) => {
            // Sent, but no answer: it may be billed. The ticket's drop keeps the reservation
            // counted (reconciled when a generation id is known).
            drop(ticket);
            Err(Failure::new(Reason::Http, e.to_string()))
        }
    }
}

/// The reservation of a request in flight. Settled with the usage chunk; dropped unsettled
/// (cancel, cut stream, error) it is reconciled through `GET /generation` in the background.
pub struct Ticket {
    state: Arc<State>,
    /// The ledger the reservation is in (even if `data_dir` changes meanwhile).
    slot: Arc<crate::state::LedgerSlot>,
    /// `None` once settled.
    id: Option<RequestId>,
    /// Whether the request may have left: a dropped unsent ticket releases its reservation, a
    /// sent one is reconciled.
    sent: bool,
    key: ApiKey,
    generation_id: Option<String>,
    price: Price,
    reserved: Usd,
    project: String,
    project_budget: BudgetCaps,
    global_budget: BudgetCaps,
}

impl Ticket {
    pub async fn set_generation_id(&mut self, gid: &str) {
        if self.generation_id.as_deref() == Some(gid) {
            return;
        }
        self.generation_id = Some(gid.to_string());
        if let Some(id) = self.id {
            let g = gid.to_string();
            if let Err(e) = self
                .slot
                .run(self.state.clock.clone(), move |l, _| {
                    l.set_generation_id(id, &g)
                })
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

    /// Settles with the usage chunk; returns the charge in USD.
    pub async fn settle(mut self, usage: &Usage) -> Option<f64> {
        let id = self.id.take()?;
        let (charged, source) = match usage.cost.map(Usd::from_cost_f64) {
            Some(Ok(c)) => (c, ChargeSource::Usage),
            _ => (
                self.price
                    .worst_case(usage.prompt_tokens, usage.completion_tokens)
                    .unwrap_or(self.reserved),
                ChargeSource::Estimate,
            ),
        };
        let s = Settlement {
            charged,
            tokens_in: Some(usage.prompt_tokens),
            tokens_out: Some(usage.completion_tokens),
            tokens_cached: usage
                .prompt_tokens_details
                .as_ref()
                .and_then(|d| d.cached_tokens),
            tokens_reasoning: usage
                .completion_tokens_details
                .as_ref()
                .and_then(|d| d.reasoning_tokens),
            source,
        };
        match self
            .slot
            .run(self.state.clock.clone(), move |l, clock| {
                l.settle(id, s, clock)
            })
            .await
        {
            Ok(()) => {
                warn_if_crossed(
                    &self.state,
                    &self.project,
                    &self.project_budget,
                    &self.global_budget,
                )
                .await;
                Some(charged.to_f64())
            }
            Err(e) => {
                tracing::error!("settling request {id}: {e}");
                None
            }
        }
    }
}

impl Drop for Ticket {
    fn drop(&mut self) {
        let Some(id) = self.id.take() else { return };
        let Ok(rt) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let state = self.state.clone();
        let slot = self.slot.clone();
        if !self.sent {
            // Never left: nothing can have been billed.
            rt.spawn(async move {
                if let Err(e) = slot
                    .run(state.clock.clone(), move |l, c| l.fail(id, c))
                    .await
                {
                    tracing::warn!("{e}");
                }
            });
            return;
        }
        let gid = self.generation_id.take();
        let keys = vec![self.key.clone()];
        let reserved = self.reserved;
        rt.spawn(async move { reconcile(&state, &slot, id, gid, &keys, reserved).await });
    }
}

/// Learns what an unsettled request cost from `GET /generation` (retried with backoff for
/// about 15 s: OpenRouter answers 404 for a while after a completion). Without a generation id
/// there is nothing to look up: the reservation is charged in full, as an estimate. When the
/// lookup keeps failing, the reservation stays counted in full until the next start.
pub async fn reconcile(
    state: &Arc<State>,
    slot: &Arc<crate::state::LedgerSlot>,
    id: RequestId,
    generation_id: Option<String>,
    keys: &[ApiKey],
    reserved: Usd,
) {
    let Some(gid) = generation_id else {
        let s = Settlement::charged(reserved, ChargeSource::Estimate);
        if let Err(e) = slot
            .run(state.clock.clone(), move |l, clock| {
                l.reconcile(id, s, clock)
            })
            .await
        {
            tracing::warn!("{e}");
        }
        return;
    };
    let client = state.client();
    let mut delay = Duration::from_millis(500);
    let mut waited = Duration::ZERO;
    loop {
        for key in keys {
            match client.generation(key, &gid).await {
                Ok(Some(g)) => {
                    let charged = g
                        .total_cost
                        .and_then(|c| Usd::from_cost_f64(c).ok())
                        .unwrap_or(reserved);
                    let s = Settlement {
                        charged,
                        tokens_in: g.tokens_prompt,
                        tokens_out: g.tokens_completion,
                        tokens_cached: g.native_tokens_cached,
                        tokens_reasoning: g.native_tokens_reasoning,
                        source: if g.total_cost.is_some() {
                            ChargeSource::Generation
                        } else {
                            ChargeSource::Estimate
                        },
                    };
                    match slot
                        .run(state.clock.clone(), move |l, clock| {
                            l.reconcile(id, s, clock)
                        })
                        .await
                    {
                        Ok(()) => {
                            tracing::info!(request = %id, generation = %gid, cost = %charged, "reconciled")
                        }
                        Err(e) => tracing::warn!("{e}"),
                    }
                    return;
                }
                Ok(None) => {}
                Err(e) => tracing::info!(generation = %gid, "generation lookup: {e}"),
            }
        }
        if waited >= Duration::from_secs(15) {
            tracing::warn!(request = %id, generation = %gid, "not reconciled yet; stays reserved until the next start");
            return;
        }
        tokio::time::sleep(delay).await;
        waited += delay;
        delay = (delay * 2).min(Duration::from_secs(4));
    }
}

/// At start: reservations left by backends that died are looked up and reconciled.
pub async fn reconcile_orphans(state: Arc<State>) {
    let instance = crate::budget::ledger::process_instance().to_string();
    let pid = std::process::id();
    let orphans = match state.ledger(move |l, _| l.orphans(pid, &instance)).await {
        Ok(o) => o,
        Err(e) => {
            tracing::warn!("{e}");
            return;
        }
    };
    if orphans.is_empty() {
        return;
    }
    let cfg = state.config();
    let mut keys = Vec::new();
    if let Ok(k) = cfg.api_key.resolve().await {
        keys.push(k);
    }
    for spec in cfg.keys.values() {
        if let Ok(k) = spec.resolve().await {
            keys.push(k);
        }
    }
    tracing::info!(
        count = orphans.len(),
        "reconciling reservations left by a backend that stopped"
    );
    let slot = state.ledger_slot();
    for o in orphans {
        let state = state.clone();
        let keys = keys.clone();
        let slot = slot.clone();
        tokio::spawn(async move {
            reconcile(&state, &slot, o.id, o.generation_id, &keys, o.reserved).await
        });
    }
}

/// Tells the user, once per period, when spend crosses `warn_at` of a cap.
async fn warn_if_crossed(state: &Arc<State>, project: &str, pb: &BudgetCaps, gb: &BudgetCaps) {
    for (scope, budget, whose) in [(project, pb, "this project's"), ("", gb, "the global")] {
        let Some(milli) = budget.warn_at_milli else {
            continue;
        };
        let scope_s = scope.to_string();
        let b = *budget;
        let res = state
            .ledger(move |l, clock| {
                let now = clock.now();
                let spend = l.spend(
                    if scope_s.is_empty() {
                        None
                    } else {
                        Some(&scope_s)
                    },
                    clock,
                )?;
                let mut crossed = Vec::new();
                for (kind, cap, used, start) in [
                    (
                        CapKind::Daily,
                        b.daily,
                        spend.today,
                        crate::budget::day_bounds(&now).0,
                    ),
                    (
                        CapKind::Monthly,
                        b.monthly,
                        spend.month,
                        crate::budget::month_bounds(&now).0,
                    ),
                    (CapKind::Total, b.total, spend.total, 0),
                ] {
                    let Some(cap) = cap else { continue };
                    if cap.0 > 0
                        && (used.0 as i128) * 1000 >= (cap.0 as i128) * (milli as i128)
                        && l.warn_once(&scope_s, kind, start)?
                    {
                        crossed.push((kind, cap, used));
                    }
                }
                Ok(crossed)
            })
            .await;
        match res {
            Ok(crossed) => {
                for (kind, cap, used) in crossed {
                    let pct = (used.0 as f64 / cap.0 as f64 * 100.0).floor();
                    state.notify(
                        Level::Warn,
                        format!(
                            "{pct}% of {whose} {} cap used: {used} of {cap}",
                            match kind {
                                CapKind::Daily => "daily",
                                CapKind::Monthly => "monthly",
                                CapKind::Total => "total",
                                CapKind::PerRequest => "per-request",
                            }
                        ),
                    );
                }
            }
            Err(e) => tracing::warn!("{e}"),
        }
    }
}
