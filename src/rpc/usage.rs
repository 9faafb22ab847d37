//! `:LlmUsage` and the statusline on the backend side: the report is built here from the ledger
//! (lines + highlight ranges); the shim only displays it.

use crate::protocol::{Event, Level, UsageReport};
use crate::services::{Keys, Settings, Ui};
use crate::settings::bound;
use crate::settings::{Config, Effective, ProjectInput, ProjectSettings, UsedKey};
use crate::usage::{self, FileStatus, FootprintFactors, KeyInfo, Report, ReportRequest};
use serde::Deserialize;
use std::sync::Arc;
use std::time::{Duration, Instant};

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UsageArgs {
    #[serde(default)]
    pub project: Option<ProjectInput>,
    #[serde(default)]
    pub all: bool,
    #[serde(default)]
    pub width: usize,
    #[serde(default)]
    pub token: u64,
}

/// How long `GET /key` figures are reused, and how long the fetch may take.
const KEY_TTL: Duration = Duration::from_secs(60);
const KEY_TIMEOUT: Duration = Duration::from_millis(2500);

/// The project's settings and its file's state, as the report shows it.
pub(super) fn settings_of(p: &ProjectInput) -> (ProjectSettings, FileStatus) {
    let (state, settings) = p.resolve();
    (settings, FileStatus::from(&state))
}

/// The key a project's requests use, as the gate picks it (see [`Effective`]).
fn used_key(cfg: &Config, settings: &ProjectSettings, root: Option<&str>) -> UsedKey {
    Effective::resolve(cfg, settings, None).key.used(cfg, root)
}

/// What a key's `GET /key` figures are cached under (never the key itself).
fn cache_id(used: &UsedKey) -> String {
    match used {
        UsedKey::Spec(s, _) => s.0.clone(),
        UsedKey::Bound(b) => b.key_id(),
    }
}

fn key_info_now(keys: &Keys, base_url: &str, used: &UsedKey) -> Option<KeyInfo> {
    let (at, data) = keys.info(base_url, &cache_id(used))?;
    if at.elapsed() > KEY_TTL {
        return None;
    }
    Some(match data {
        Some(d) => KeyInfo::Known {
            label: d.label.clone(),
            limit: d.limit,
            limit_remaining: d.limit_remaining,
            limit_reset: d.limit_reset.clone(),
            usage: d.usage,
            usage_daily: d.usage_daily,
            usage_monthly: d.usage_monthly,
        },
        None => KeyInfo::Unreachable,
    })
}

/// The project's settings, its file state and path.
fn project_of(args: &UsageArgs) -> (ProjectSettings, FileStatus, Option<String>) {
    match &args.project {
        Some(p) => {
            let (s, st) = settings_of(p);
            (s, st, Some(p.file.clone()))
        }
        None => (ProjectSettings::default(), FileStatus::Absent, None),
    }
}

fn request_for(
    cfg: &Config,
    args: &UsageArgs,
    used: &UsedKey,
    key_info: KeyInfo,
) -> Result<ReportRequest, String> {
    let (settings, file_state, file_path) = project_of(args);
    let caps = Effective::resolve(cfg, &settings, None)
        .caps
        .map_err(|e| e.to_string())?;
    Ok(ReportRequest {
        project: args.project.as_ref().map(|p| p.root.clone()),
        all: args.all || args.project.is_none(),
        project_caps: caps.project.caps,
        global_caps: caps.global.caps,
        project_warn_at_milli: caps.project.warn_at_milli,
        global_warn_at_milli: caps.global.warn_at_milli,
        file_state,
        file_path,
        key_info,
        key_id: used.key_id(),
        bound_key: match used {
            UsedKey::Bound(b) => Some(b.name.clone()),
            UsedKey::Spec(..) => None,
        },
        footprint: cfg
            .footprint
            .as_ref()
            .map(|f| FootprintFactors {
                gco2e_per_token: f.gco2e_per_token,
                ml_water_per_token: f.ml_water_per_token,
                source: f.source.clone(),
            })
            .unwrap_or_default(),
        width: args.width,
    })
}

/// The report as the float shows it.
pub fn report_reply(r: Report) -> UsageReport {
    UsageReport {
        ok: true,
        title: r.title,
        lines: r.lines,
        highlights: r.highlights,
        width: r.width,
        data: r.data,
    }
}

async fn build(settings: &Settings, req: ReportRequest) -> Result<Report, String> {
    settings
        .with_ledger(move |l, clock| usage::build(l, clock, &req))
        .await
        .map_err(|e| e.to_string())
}

/// Builds the report now from what is known; when the key's figures are stale, fetches them in
/// the background and sends the window a fresh report once they are in (never a wait).
pub async fn usage(
    settings: &Arc<Settings>,
    keys: &Arc<Keys>,
    ui: &Arc<Ui>,
    args: UsageArgs,
) -> Result<UsageReport, String> {
    let cfg = settings.config();
    let root = args.project.as_ref().map(|p| p.root.as_str());
    let used = used_key(&cfg, &project_of(&args).0, root);
    let cached = key_info_now(keys, &cfg.base_url, &used);
    let stale = cached.is_none();
    let req = request_for(&cfg, &args, &used, cached.unwrap_or(KeyInfo::Unknown))?;
    let started = Instant::now();
    let report = build(settings, req).await?;
    tracing::debug!(
        ms = started.elapsed().as_millis() as u64,
        "usage report built"
    );
    if stale {
        let (settings, keys, ui) = (settings.clone(), keys.clone(), ui.clone());
        tokio::spawn(async move {
            fetch_key_info(&settings, &keys, &ui, &used).await;
            let cfg = settings.config();
            let info = key_info_now(&keys, &cfg.base_url, &used).unwrap_or(KeyInfo::Unreachable);
            let Ok(req) = request_for(&cfg, &args, &used, info) else {
                return;
            };
            match build(&settings, req).await {
                Ok(r) => ui.send(Event::Usage {
                    token: args.token,
                    report: Box::new(report_reply(r)),
                }),
                Err(e) => tracing::warn!("usage report: {e}"),
            }
        });
    }
    Ok(report_reply(report))
}

async fn fetch_key_info(settings: &Settings, keys: &Keys, ui: &Ui, used: &UsedKey) {
    // `GET /key` is OpenRouter's: another host is asked nothing, and gets no key for it.
    let base_url = settings.config().base_url.clone();
    if !crate::settings::Endpoint::of(&base_url).is_openrouter() {
        keys.set_info(&base_url, cache_id(used), Instant::now(), None);
        return;
    }
    let key = match used {
        UsedKey::Spec(spec, _) => keys.get(spec).await,
        UsedKey::Bound(b) => Ok(b.key.clone()),
    };
    let data = match key {
        Ok(key) => match settings.client().key_info(&key, KEY_TIMEOUT).await {
            Ok(d) => Some(d),
            Err(e) if e.status == Some(401) => {
                if let UsedKey::Bound(b) = used {
                    ui.notify(Level::Warn, bound::deleted_message(b));
                }
                tracing::info!("key info unavailable: {e}");
                None
            }
            Err(e) => {
                tracing::info!("key info unavailable: {e}");
                None
            }
        },
        Err(e) => {
            tracing::info!("key info unavailable: {e}");
            None
        }
    };
    keys.set_info(&base_url, cache_id(used), Instant::now(), data);
}
