//! Reservations whose answer never settled them: looked up through `GET /generation`, from a
//! dropped ticket or, at start, for the reservations of backends that stopped (those never
//! sent are released instead: [`crate::budget::Ledger::release_orphans`]).

use crate::budget::{CachePrice, ChargeSource, RequestId, Settlement, Usd};
use crate::services::{Keys, LedgerHandle, Settings};
use crate::settings::ApiKey;
use std::sync::Arc;
use std::time::Duration;

/// Learns what an unsettled request cost from `GET /generation` (retried with backoff for
/// about 15 s: OpenRouter answers 404 for a while after a completion). Only for a request that
/// was sent (may have been billed). Without a generation id there is nothing to look up: the
/// reservation is charged in full, as an estimate. When the
/// lookup keeps failing, the reservation stays counted in full until the next start.
/// Returns the charge OpenRouter reported, when it did. `cache_price` (when the model's is
/// known) prices what its cached prompt tokens saved.
pub async fn reconcile(
    settings: &Settings,
    ledger: &LedgerHandle,
    id: RequestId,
    generation_id: Option<String>,
    keys: &[ApiKey],
    reserved: Usd,
    cache_price: Option<CachePrice>,
) -> Option<Usd> {
    // `/generation` is OpenRouter's: a plain endpoint has nothing to look up (an `id` in its
    // chunks names nothing frugal could ask about), so its reservation is charged in full.
    let plain = !crate::openrouter::Endpoint::of(&settings.config().base_url).is_openrouter();
    let Some(gid) = generation_id.filter(|_| !plain) else {
        let s = Settlement::charged(reserved, ChargeSource::Estimate);
        if let Err(e) = ledger.run(move |l, clock| l.reconcile(id, s, clock)).await {
            tracing::warn!("{e}");
        }
        return None;
    };
    let client = settings.client();
    let mut delay = Duration::from_millis(500);
    let mut waited = Duration::ZERO;
    loop {
        for key in keys {
            match client.generation(key, &gid).await {
                Ok(Some(g)) => {
                    let charged = g.total_cost.unwrap_or(reserved);
                    let s = Settlement {
                        charged,
                        tokens_in: g.tokens_prompt,
                        tokens_out: g.tokens_completion,
                        tokens_cached: g.native_tokens_cached,
                        tokens_reasoning: g.native_tokens_reasoning,
                        cache_saved: super::ticket::cache_saved(
                            g.native_tokens_cached,
                            cache_price,
                        ),
                        source: if g.total_cost.is_some() {
                            ChargeSource::Generation
                        } else {
                            ChargeSource::Estimate
                        },
                    };
                    match ledger.run(move |l, clock| l.reconcile(id, s, clock)).await {
                        Ok(()) => {
                            tracing::info!(request = %id, generation = %gid, cost = %charged, "reconciled")
                        }
                        Err(e) => tracing::warn!("{e}"),
                    }
                    return g.total_cost.map(|_| charged);
                }
                Ok(None) => {}
                Err(e) => tracing::info!(generation = %gid, "generation lookup: {e}"),
            }
        }
        if waited >= Duration::from_secs(15) {
            tracing::warn!(request = %id, generation = %gid, "not reconciled yet; stays reserved until the next start");
            return None;
        }
        tokio::time::sleep(delay).await;
        waited += delay;
        delay = (delay * 2).min(Duration::from_secs(4));
    }
}

/// At start: reservations left by backends that died are released when they were never sent
/// (nothing can have been billed), looked up and reconciled when they may have been.
pub async fn reconcile_orphans(settings: Arc<Settings>, keys: Arc<Keys>) {
    let instance = crate::budget::ledger::process_instance().to_string();
    let pid = std::process::id();
    let ledger = settings.ledger();
    // Hunks their Neovim left pending when its backend died (no exit to abandon them).
    match ledger.run(|l, c| l.abandon_orphan_hunks(c)).await {
        Ok(0) => {}
        Ok(n) => tracing::info!(count = n, "hunks of gone processes: abandoned"),
        Err(e) => tracing::warn!("abandoning hunks of gone processes: {e}"),
    }
    let orphans = match ledger
        .run(move |l, c| l.release_orphans(pid, &instance, c))
        .await
    {
        Ok(o) => o,
        Err(e) => {
            tracing::warn!("{e}");
            return;
        }
    };
    if orphans.is_empty() {
        return;
    }
    let cfg = settings.config();
    let mut api_keys = Vec::new();
    if let Ok(k) = keys.get(&cfg.api_key).await {
        api_keys.push(k);
    }
    for spec in cfg.keys.values() {
        if let Ok(k) = keys.get(spec).await {
            api_keys.push(k);
        }
    }
    tracing::info!(
        count = orphans.len(),
        "reconciling reservations left by a backend that stopped"
    );
    for o in orphans {
        let (settings, ledger) = (settings.clone(), ledger.clone());
        let mut keys = api_keys.clone();
        // A request through the key `:LlmKey create` bound to its project is looked up with it.
        if let Some(b) = crate::settings::bound::load(&cfg.data_dir, &o.project) {
            keys.insert(0, b.key);
        }
        tokio::spawn(async move {
            // The price of a past request is not at hand: its cache saving stays unknown.
            reconcile(
                &settings,
                &ledger,
                o.id,
                o.generation_id,
                &keys,
                o.reserved,
                None,
            )
            .await;
        });
    }
}
