//! `:LlmKey`: the project's own OpenRouter key, capped by OpenRouter itself. `create` makes a
//! key with the management key (`setup({ management_key })`) and binds it to the project
//! (see `settings::bound`); `limit` and `disable` change it on OpenRouter; without a
//! subcommand it is shown. Every failure changes nothing and says what to do; neither the
//! management key nor the bound key ever reaches a message.

use crate::openrouter::keys::{KeyRecord, NewKey, RESETS};
use crate::openrouter::Client;
use crate::openrouter::{ApiError, Endpoint};
use crate::services::{Keys, Settings};
use crate::settings::bound::{self, BoundKey};
use crate::settings::{ApiKey, Config, KeySpec, ProjectInput};
use serde::{Deserialize, Serialize};
use std::time::Duration;

/// The `:LlmKey` subcommand.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyAction {
    Show,
    Create,
    Limit,
    Disable,
}

/// `key`, `key_create`, `key_limit`, `key_disable`: the project, and the command's words after
/// the subcommand (checked by the backend, which words what is wrong).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeyArgs {
    pub project: ProjectInput,
    #[serde(default)]
    pub args: Vec<String>,
}

/// The answer to a `:LlmKey` command: what to tell the user, and whether a key is bound to the
/// project afterwards.
#[derive(Debug, Clone, Serialize)]
pub struct KeyReply {
    pub message: String,
    pub bound: bool,
    /// `:LlmKey create` had no limit and no cap to take one from: the shim asks for one
    /// (`message` says why) and sends the command again with it.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub ask_limit: bool,
}

const KEY_INFO_TIMEOUT: Duration = Duration::from_secs(10);
/// `:LlmKey` with a base_url that is not OpenRouter's: one line (the log has the rest).
const PLAIN_REFUSED: &str = "frugal: :LlmKey refused: base_url is not OpenRouter; nothing sent";
const USAGE: &str =
    ":LlmKey | :LlmKey create [limit_usd] [daily|weekly|monthly] | :LlmKey limit {usd} | :LlmKey disable";

pub(super) async fn key(
    settings: &Settings,
    keys: &Keys,
    action: KeyAction,
    args: KeyArgs,
) -> Result<KeyReply, String> {
    let cfg = settings.config();
    let svc = &KeyServices { settings, keys };
    let p = &args.project;
    // The management key and a bound key go to OpenRouter only: with another base_url,
    // nothing is sent (not even `GET /key` with the bound key to show it).
    if !Endpoint::of(&cfg.base_url).is_openrouter() {
        tracing::info!(
            "{action:?} refused: {}; the management key and a bound key are sent to OpenRouter only",
            crate::openrouter::keys::NOT_OPENROUTER
        );
        return Err(PLAIN_REFUSED.into());
    }
    match action {
        KeyAction::Show => show(svc, &cfg, p).await,
        KeyAction::Create => create(svc, &cfg, p, &args.args).await,
        KeyAction::Limit => limit(svc, &cfg, p, &args.args).await,
        KeyAction::Disable => disable(svc, &cfg, p).await,
    }
}

/// What `:LlmKey` touches: the client of the settings in force and the session's keys.
struct KeyServices<'a> {
    settings: &'a Settings,
    keys: &'a Keys,
}

impl KeyServices<'_> {
    fn client(&self) -> Client {
        self.settings.client()
    }
}

/// Stores the key just created and bound; when that fails, disables it again on OpenRouter (a
/// key nobody holds must not stay usable) and says what to do.
async fn store_or_disable(
    client: &Client,
    management: &ApiKey,
    data_dir: &std::path::Path,
    b: &BoundKey,
) -> Result<std::path::PathBuf, String> {
    match bound::store(data_dir, b) {
        Ok(f) => Ok(f),
        Err(e) => {
            let undone = client
                .patch_key(management, &b.hash, serde_json::json!({ "disabled": true }))
                .await
                .is_ok();
            Err(format!(
                "created {} on OpenRouter but could not store it under {}: {e}; {}",
                b.name,
                bound::dir(data_dir).display(),
                if undone {
                    "it was disabled again. Fix the directory and run :LlmKey create again"
                } else {
                    "disable it on https://openrouter.ai/settings/keys"
                }
            ))
        }
    }
}

/// `:LlmKey create [limit_usd] [daily|weekly|monthly]`.
async fn create(
    svc: &KeyServices<'_>,
    cfg: &Config,
    p: &ProjectInput,
    words: &[String],
) -> Result<KeyReply, String> {
    let (_, settings) = p.resolve();
    let (limit, reset) = match parse_create(words)? {
        (Some(l), r) => (l, r),
        (None, period) => match limit_from_caps(cfg, p, period) {
            Ok(picked) => picked,
            Err(message) => {
                return Ok(KeyReply {
                    message,
                    bound: false,
                    ask_limit: true,
                })
            }
        },
    };
    let management = management_key(svc, cfg).await?;
    let client = svc.client();
    let what = "the key was not created";
    refuse_live_key(&client, &management, cfg, p).await?;
    let name = format!("frugal: {}", folder_name(&p.root));
    let new = NewKey {
        name: &name,
        limit: Some(limit),
        limit_reset: reset,
    };
    let (record, key) = client
        .create_key(&management, &new)
        .await
        .map_err(|e| api_error(&e, &cfg.management_key, what))?;
    let b = BoundKey {
        project: p.root.clone(),
        hash: record.hash.clone(),
        name: if record.name.is_empty() {
            name.clone()
        } else {
            record.name.clone()
        },
        label: record.figures.label.clone(),
        key,
    };
    let file = store_or_disable(&client, &management, &cfg.data_dir, &b).await?;
    tracing::info!(project = %p.root, hash = %b.short_hash(), "key created and bound");
    let mut message = format!(
        "created {} ({}) with a limit of {} and bound it to project {}: its requests use it from now on (stored in {}, mode 0600)",
        b.name,
        b.label,
        limit_text(Some(limit), reset.map(str::to_string).as_deref()),
        p.root,
        file.display()
    );
    if let Some(n) = settings.key_name {
        message.push_str(&format!(
            ". Note: {} names key \"{n}\", which wins over the bound key while it does",
            p.file
        ));
    }
    Ok(KeyReply {
        message,
        bound: true,
        ask_limit: false,
    })
}

/// Refuses to replace a bound key that still works: its limit may be what a team relies on.
async fn refuse_live_key(
    client: &Client,
    management: &ApiKey,
    cfg: &Config,
    p: &ProjectInput,
) -> Result<(), String> {
    let what = "the key was not created";
    if let Some(old) = bound::load(&cfg.data_dir, &p.root) {
        match client.get_key(management, &old.hash).await {
            Ok(Some(r)) if !r.disabled => {
                return Err(format!(
                    "project {} already has a key: {} (hash {}…). To replace it, run :LlmKey disable first, then :LlmKey create; to change its limit, :LlmKey limit {{usd}}",
                    p.root,
                    old.name,
                    old.short_hash()
                ))
            }
            Ok(_) => {} // disabled or deleted on OpenRouter: replaced below
            Err(e) => return Err(api_error(&e, &cfg.management_key, what)),
        }
    }
    Ok(())
}

/// `:LlmKey`: the bound key's name, limit, usage, remaining, reset. From `GET /keys/{hash}`
/// with the management key, or else `GET /key` with the key itself.
async fn show(svc: &KeyServices<'_>, cfg: &Config, p: &ProjectInput) -> Result<KeyReply, String> {
    let Some(b) = bound::load(&cfg.data_dir, &p.root) else {
        return Ok(KeyReply {
            message: format!(
                "no key is bound to project {}: its requests use {}. :LlmKey create [limit_usd] [daily|weekly|monthly] makes one, capped by OpenRouter itself",
                p.root,
                match p.resolve().1.key_name {
                    Some(n) => format!("the named key \"{n}\" ({})", p.file),
                    None => "api_key".to_string(),
                }
            ),
            bound: false,
            ask_limit: false,
        });
    };
    let client = svc.client();
    let record = match svc.keys.get(&cfg.management_key).await {
        Ok(management) => client
            .get_key(&management, &b.hash)
            .await
            .map_err(|e| api_error(&e, &cfg.management_key, "cannot show the key"))?,
        Err(_) => match client.key_info(&b.key, KEY_INFO_TIMEOUT).await {
            Ok(figures) => Some(KeyRecord {
                hash: b.hash.clone(),
                name: b.name.clone(),
                disabled: false,
                figures,
            }),
            Err(e) if e.status == Some(401) => None,
            Err(e) => return Err(format!("cannot show the key: {e}")),
        },
    };
    let Some(record) = record else {
        return Err(gone(&b));
    };
    let r = &record.figures;
    let mut lines = vec![format!(
        "project {}: key {} ({}, hash {}…){}",
        p.root,
        b.name,
        if r.label.is_empty() {
            &b.label
        } else {
            &r.label
        },
        b.short_hash(),
        if record.disabled {
            " — DISABLED on OpenRouter: :LlmKey disable unbinds it"
        } else {
            ""
        }
    )];
    lines.push(format!(
        "limit: {}; remaining: {}",
        limit_text(r.limit, r.limit_reset.as_deref()),
        r.limit_remaining.map_or("no limit".into(), money)
    ));
    lines.push(format!(
        "usage: {} all time, {} today, {} this month (UTC periods, every machine using the key)",
        money(r.usage),
        money(r.usage_daily),
        money(r.usage_monthly)
    ));
    if let Some(n) = p.resolve().1.key_name {
        lines.push(format!(
            "not in use: {} names key \"{n}\", which wins",
            p.file
        ));
    }
    Ok(KeyReply {
        message: lines.join("\n"),
        bound: true,
        ask_limit: false,
    })
}

/// `:LlmKey limit {usd}`.
async fn limit(
    svc: &KeyServices<'_>,
    cfg: &Config,
    p: &ProjectInput,
    words: &[String],
) -> Result<KeyReply, String> {
    let usd = match words {
        [one] => parse_usd(one)?,
        _ => {
            return Err(format!(
                ":LlmKey limit takes one amount in USD, e.g. :LlmKey limit 5 ({USAGE})"
            ))
        }
    };
    let b = bound_or_say(cfg, p)?;
    let management = management_key(svc, cfg).await?;
    let r = svc
        .client()
        .patch_key(&management, &b.hash, serde_json::json!({ "limit": usd }))
        .await
        .map_err(|e| api_error(&e, &cfg.management_key, "the limit was not changed"))?
        .ok_or_else(|| gone(&b))?;
    Ok(KeyReply {
        message: format!(
            "limit of {} set to {}",
            b.name,
            limit_text(
                r.figures.limit.or(Some(usd)),
                r.figures.limit_reset.as_deref()
            )
        ),
        bound: true,
        ask_limit: false,
    })
}

/// `:LlmKey disable`: disabled on OpenRouter, then unbound (a key already deleted there is
/// just unbound).
async fn disable(
    svc: &KeyServices<'_>,
    cfg: &Config,
    p: &ProjectInput,
) -> Result<KeyReply, String> {
    let b = bound_or_say(cfg, p)?;
    let management = management_key(svc, cfg).await?;
    let found = svc
        .client()
        .patch_key(
            &management,
            &b.hash,
            serde_json::json!({ "disabled": true }),
        )
        .await
        .map_err(|e| api_error(&e, &cfg.management_key, "the key was not disabled"))?
        .is_some();
    bound::remove(&cfg.data_dir, &p.root).map_err(|e| {
        format!(
            "disabled {} on OpenRouter, but could not unbind it (delete {}): {e}",
            b.name,
            bound::path(&cfg.data_dir, &p.root).display()
        )
    })?;
    tracing::info!(project = %p.root, hash = %b.short_hash(), "key disabled and unbound");
    Ok(KeyReply {
        message: format!(
            "{} {} and unbound it from project {}: its requests use {} again",
            if found {
                "disabled"
            } else {
                "OpenRouter no longer knows"
            },
            b.name,
            p.root,
            match p.resolve().1.key_name {
                Some(n) => format!("the named key \"{n}\""),
                None => "api_key".to_string(),
            }
        ),
        bound: false,
        ask_limit: false,
    })
}

fn bound_or_say(cfg: &Config, p: &ProjectInput) -> Result<BoundKey, String> {
    bound::load(&cfg.data_dir, &p.root).ok_or_else(|| {
        format!(
            "no key is bound to project {}: :LlmKey create [limit_usd] [daily|weekly|monthly] makes one",
            p.root
        )
    })
}

/// The bound key is gone on OpenRouter.
fn gone(b: &BoundKey) -> String {
    format!(
        "the key bound to project {} ({}, hash {}…) was deleted on OpenRouter. Run :LlmKey create to make a new one (it replaces this binding), or :LlmKey disable to unbind it",
        b.project,
        b.name,
        b.short_hash()
    )
}

/// The management key, or why there is none: the setting and the variable named.
async fn management_key(svc: &KeyServices<'_>, cfg: &Config) -> Result<ApiKey, String> {
    let spec = &cfg.management_key;
    svc.keys.get(spec).await.map_err(|_| match spec.env_name() {
        Some(var) => format!(
            "no management key: setup management_key is \"env:{var}\" and {var} is not set. Create a management key at https://openrouter.ai/settings/management-keys, export it as {var} before starting Neovim (or set setup({{ management_key = \"cmd:…\" }})); nothing was changed"
        ),
        None => "no management key: the management_key command failed or printed nothing (setup management_key = \"cmd:…\"); nothing was changed".to_string(),
    })
}

/// A key-management call that failed, worded for the user: never the key.
fn api_error(e: &ApiError, spec: &KeySpec, what: &str) -> String {
    let source = match spec.env_name() {
        Some(v) => format!("management_key (environment variable {v})"),
        None => "management_key (printed by its command)".to_string(),
    };
    match e.status {
        _ if e.not_an_answer => format!("{what}: {}", e.message),
        Some(401) => format!(
            "{what}: OpenRouter refused the {source} (401: {}): it is wrong, disabled or deleted. Nothing was changed",
            e.message
        ),
        Some(403) => format!(
            "{what}: the {source} is not a management key (OpenRouter answered 403 on /keys: {}). An ordinary API key cannot manage keys: create a management key at https://openrouter.ai/settings/management-keys. Nothing was changed",
            e.message
        ),
        None => format!(
            "{what}: OpenRouter unreachable ({}); is base_url right and the network up? Nothing was changed",
            e.message
        ),
        Some(_) => format!("{what}: {e}. Nothing was changed"),
    }
}

/// `[limit_usd] [daily|weekly|monthly]`, either or both, in that order.
fn parse_create(words: &[String]) -> Result<(Option<f64>, Option<&'static str>), String> {
    let period = |w: &str| {
        RESETS
            .iter()
            .copied()
            .find(|r| *r == w)
            .ok_or_else(|| format!("unknown period {w:?}: daily, weekly or monthly ({USAGE})"))
    };
    match words {
        [] => Ok((None, None)),
        [one] if one.parse::<f64>().is_err() && !one.starts_with('$') => {
            Ok((None, Some(period(one)?)))
        }
        [one] => Ok((Some(parse_usd(one)?), None)),
        [l, r] => Ok((Some(parse_usd(l)?), Some(period(r)?))),
        _ => Err(format!("too many arguments ({USAGE})")),
    }
}

/// An amount in USD: a positive number, `$` allowed in front.
fn parse_usd(word: &str) -> Result<f64, String> {
    let w = word.strip_prefix('$').unwrap_or(word);
    match w.parse::<f64>() {
        Ok(x) if x.is_finite() && x > 0.0 && x <= 1_000_000.0 => Ok(x),
        _ => Err(format!(
            "{word:?} is not an amount in USD: give a positive number, e.g. 5 or 0.50 ({USAGE})"
        )),
    }
}

/// The limit from the project's caps: monthly cap + monthly reset, else daily cap + daily
/// reset, else total cap without reset. With a period asked, that period's cap.
fn limit_from_caps(
    cfg: &Config,
    p: &ProjectInput,
    period: Option<&'static str>,
) -> Result<(f64, Option<&'static str>), String> {
    let (_, settings) = p.resolve();
    let caps = crate::settings::Effective::resolve(cfg, &settings, None)
        .caps
        .map_err(|e| e.to_string())?
        .project
        .caps;
    let pick = match period {
        Some("monthly") => caps.monthly.map(|c| (c, Some("monthly"))),
        Some("daily") => caps.daily.map(|c| (c, Some("daily"))),
        Some(_) => None,
        None => caps
            .monthly
            .map(|c| (c, Some("monthly")))
            .or(caps.daily.map(|c| (c, Some("daily"))))
            .or(caps.total.map(|c| (c, None))),
    };
    match pick {
        Some((usd, reset)) => Ok((usd.to_f64(), reset)),
        None => Err(format!(
            "no limit given and project {} has no {}cap to take it from: say the limit, e.g. :LlmKey create 5 monthly ({USAGE})",
            p.root,
            period.map(|p| format!("{p} ")).unwrap_or_default()
        )),
    }
}

/// The project's folder name (the key's name on OpenRouter).
fn folder_name(root: &str) -> &str {
    let trimmed = root.trim_end_matches('/');
    trimmed
        .rsplit('/')
        .next()
        .filter(|s| !s.is_empty())
        .unwrap_or(trimmed)
}

fn money(x: f64) -> String {
    crate::budget::Usd::from_cost_f64(x)
        .map(|u| u.text(2))
        .unwrap_or_else(|_| format!("${x:.2}"))
}

fn limit_text(limit: Option<f64>, reset: Option<&str>) -> String {
    match (limit, reset) {
        (None, _) => "no limit".into(),
        (Some(l), Some(r)) => format!("{}, reset {r}", money(l)),
        (Some(l), None) => format!("{} (no reset)", money(l)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(w: &[&str]) -> Vec<String> {
        w.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn create_arguments() {
        assert_eq!(parse_create(&[]).unwrap(), (None, None));
        assert_eq!(parse_create(&words(&["5"])).unwrap(), (Some(5.0), None));
        assert_eq!(
            parse_create(&words(&["$2.5", "weekly"])).unwrap(),
            (Some(2.5), Some("weekly"))
        );
        assert_eq!(
            parse_create(&words(&["daily"])).unwrap(),
            (None, Some("daily"))
        );
        assert!(parse_create(&words(&["5", "yearly"]))
            .unwrap_err()
            .contains("unknown period \"yearly\""));
        assert!(parse_create(&words(&["-1"]))
            .unwrap_err()
            .contains("not an amount"));
        assert!(parse_create(&words(&["1", "daily", "x"]))
            .unwrap_err()
            .contains("too many"));
    }

    #[test]
    fn the_plain_endpoint_refusal_is_one_line() {
        assert!(PLAIN_REFUSED.starts_with("frugal: :LlmKey"));
        assert!(PLAIN_REFUSED.chars().count() <= crate::openrouter::client::LINE_CELLS);
    }

    #[test]
    fn names_and_money() {
        assert_eq!(folder_name("/home/u/proj"), "proj");
        assert_eq!(folder_name("/home/u/proj/"), "proj");
        assert_eq!(
            limit_text(Some(5.0), Some("monthly")),
            "$5.00, reset monthly"
        );
        assert_eq!(limit_text(None, None), "no limit");
    }
}
