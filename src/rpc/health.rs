//! `health`, for `:checkhealth frugal`: the ledger, the endpoint, the project file's validity,
//! the warnings about `setup()`, and the modes of the files frugal keeps.

use crate::openrouter::catalogue::Catalogue;
use crate::openrouter::Endpoint;
use crate::protocol::{Level, Notice};
use crate::services::Settings;
use crate::settings::KeySpec;
use crate::settings::ProjectInput;
use serde::{Deserialize, Serialize};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HealthArgs {
    #[serde(default)]
    pub project: Option<ProjectInput>,
}

/// `health`'s result, for `:checkhealth frugal`: every check the backend makes, in the order
/// shown; the shim shows each under its section with one switch on its level.
#[derive(Debug, Clone, Serialize)]
pub struct HealthReply {
    pub version: &'static str,
    pub checks: Vec<Check>,
    /// Which failed attempts are tried again, and how long at most (`gate::retry`).
    pub retry_policy: String,
    /// How much work placing one block may take (`edit::locate`).
    pub placement: String,
}

/// The `:checkhealth` section a check is shown under (the shim adds its own lines to some).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Section {
    /// The `setup()` warnings of the last `hello`.
    Setup,
    /// `api_key`, every named key, the bound key, `management_key`: present or not (never
    /// the value).
    Keys,
    /// The current project's file: valid or why not.
    Project,
    /// The ledger, the endpoint and its kind, the models `setup({ prices })` prices.
    Ledger,
    /// `judge_model` (`:LlmReview`): in the catalogue, priced, taking structured outputs.
    Judge,
    /// `data_dir`, the ledger and its `-wal`/`-shm`, the catalogue: each one's mode.
    Files,
}

/// How `:checkhealth` shows a check: `vim.health.ok`, `info`, `warn` or `error`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CheckLevel {
    Ok,
    Info,
    Warn,
    Error,
}

/// One line of `:checkhealth`, with what to do about it (shown under warnings and errors).
#[derive(Debug, Clone, Serialize)]
pub struct Check {
    pub section: Section,
    pub level: CheckLevel,
    pub message: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub advice: Option<String>,
}

impl Check {
    fn new(section: Section, level: CheckLevel, message: impl Into<String>) -> Check {
        Check {
            section,
            level,
            message: message.into(),
            advice: None,
        }
    }

    fn advice(mut self, advice: impl Into<String>) -> Check {
        self.advice = Some(advice.into());
        self
    }
}

/// How long the endpoint may take to answer before it is reported unreachable.
const ENDPOINT_TIMEOUT: Duration = Duration::from_secs(5);

pub(super) async fn health(
    settings: &Settings,
    catalogue: &Arc<crate::services::Catalogue>,
    args: HealthArgs,
    warnings: Vec<Notice>,
) -> HealthReply {
    let cfg = settings.config();
    let ledger = settings.with_ledger(|l, _| l.request_count()).await;
    let client = settings.client();
    let mut fetched: Option<Catalogue> = None;
    let base_url = crate::openrouter::client::without_credentials(&cfg.base_url);
    let endpoint = match tokio::time::timeout(ENDPOINT_TIMEOUT, client.models()).await {
        Ok(Ok(body)) => match Catalogue::parse(&body) {
            Ok(c) => Ok(format!(
                "{} answered: {} models in the catalogue ({})",
                base_url,
                c.models.len(),
                match Endpoint::of(&cfg.base_url) {
                    Endpoint::OpenRouter => "OpenRouter: requests carry provider routing, max_price always under a cap",
                    Endpoint::Plain => "not OpenRouter: plain requests, no provider routing, max_price or /generation; under a cap every model needs a price in this catalogue or in setup prices",
                }
            ))
            .inspect(|_| fetched = Some(c)),
            Err(e) => Err(format!("{base_url} answered, but {e}")),
        },
        Ok(Err(e)) => Err(e.to_string()),
        Err(_) => Err(format!(
            "{} did not answer within {} s",
            base_url,
            ENDPOINT_TIMEOUT.as_secs()
        )),
    };
    let mut keys = key_checks(&cfg);
    let mut instructions = Vec::new();
    if let Some(p) = &args.project {
        keys.push(bound_check(&cfg, p));
        instructions = instruction_checks(&cfg, p);
    }
    let project_error = args
        .project
        .and_then(|p| p.settings().err())
        .map(|e| e.to_string());
    let listing = match fetched {
        Some(c) => Some(Arc::new(c)),
        None => catalogue.at_hand().await,
    };
    let mut checks = setup_checks(&warnings);
    checks.extend(keys);
    checks.extend(project_error.map(|e| {
        Check::new(Section::Project, CheckLevel::Error, e)
            .advice("no request is sent for this project until the file is fixed")
    }));
    checks.extend(instructions);
    checks.push(match ledger {
        Ok(n) => Check::new(
            Section::Ledger,
            CheckLevel::Ok,
            format!("ledger {} ({n} requests)", cfg.ledger_path().display()),
        ),
        Err(e) => Check::new(Section::Ledger, CheckLevel::Error, e.to_string()),
    });
    checks.push(history_check(&cfg).await);
    checks.extend(endpoint_checks(&cfg, endpoint));
    let tiers = tier_lines(&[&cfg.model, &cfg.judge_model], listing.as_deref());
    checks.extend(tiers.into_iter().map(|line| {
        Check::new(
            Section::Ledger,
            CheckLevel::Info,
            format!("tiered prices: {line}"),
        )
    }));
    checks.push(judge_check(&cfg.judge_model, listing.as_deref()));
    checks.extend(file_checks(
        &cfg.data_dir,
        &cfg.ledger_path(),
        &cfg.base_url,
    ));
    HealthReply {
        version: env!("CARGO_PKG_VERSION"),
        checks,
        retry_policy: crate::gate::retry::policy(),
        placement: crate::edit::locate::placement_policy(),
    }
}

/// The conversation store of `:LlmHistory`: where it is, how much it holds and for how long,
/// or what is wrong with it (edits go on without it).
async fn history_check(cfg: &crate::settings::Config) -> Check {
    let path = cfg.data_dir.join(crate::history::store::HISTORY_FILE);
    let days = cfg.history_days;
    if days == 0 {
        return Check::new(
            Section::Ledger,
            CheckLevel::Info,
            "history: no conversation text kept (history_days = 0); :LlmHistory lists the ledger's requests",
        );
    }
    if !path.exists() {
        return Check::new(
            Section::Ledger,
            CheckLevel::Ok,
            format!(
                "history {}: none yet (text kept {days} days)",
                path.display()
            ),
        );
    }
    let read = path.clone();
    let counted = tokio::task::spawn_blocking(move || {
        crate::history::Store::open(&read)
            .and_then(|s| s.count())
            .map_err(|e| e.explain(&read))
    })
    .await;
    match counted {
        Ok(Ok(n)) => Check::new(
            Section::Ledger,
            CheckLevel::Ok,
            format!(
                "history {} ({n} conversations, text kept {days} days)",
                path.display()
            ),
        ),
        Ok(Err(why)) => Check::new(Section::Ledger, CheckLevel::Warn, why).advice(
            "move the file aside: a new one is made; edits go on without history meanwhile",
        ),
        Err(e) => Check::new(Section::Ledger, CheckLevel::Warn, e.to_string()),
    }
}

/// The project's instruction files found (sent with every request), and those not sent.
fn instruction_checks(cfg: &crate::settings::Config, p: &ProjectInput) -> Vec<Check> {
    let (line, skipped) = crate::edit::instructions::found_in(cfg, p);
    let mut out = vec![Check::new(Section::Project, CheckLevel::Info, line)];
    out.extend(skipped.into_iter().map(|m| {
        Check::new(Section::Project, CheckLevel::Warn, m)
            .advice("replace it with a text file inside the project, or drop it from the list")
    }));
    out
}

/// The `setup()` warnings of the last `hello`: an error blocks every request.
fn setup_checks(warnings: &[Notice]) -> Vec<Check> {
    if warnings.is_empty() {
        return vec![Check::new(
            Section::Setup,
            CheckLevel::Ok,
            "no problem found in setup()",
        )];
    }
    warnings
        .iter()
        .map(|w| match w.level {
            Level::Error => Check::new(Section::Setup, CheckLevel::Error, w.message.clone())
                .advice("no request is sent until it is fixed in your setup()"),
            Level::Warn | Level::Info => {
                Check::new(Section::Setup, CheckLevel::Warn, w.message.clone())
            }
        })
        .collect()
}

/// The endpoint's answer (or why none), its kind, and the models `setup({ prices })` prices.
fn endpoint_checks(cfg: &crate::settings::Config, endpoint: Result<String, String>) -> Vec<Check> {
    let mut out = vec![match endpoint {
        Ok(line) => Check::new(Section::Ledger, CheckLevel::Ok, line),
        Err(line) => Check::new(Section::Ledger, CheckLevel::Warn, line)
            .advice("check base_url and the network; edits fail until it answers"),
    }];
    let plain = !Endpoint::of(&cfg.base_url).is_openrouter();
    out.push(Check::new(
        Section::Ledger,
        CheckLevel::Info,
        format!(
            "endpoint kind: {}",
            if plain {
                "plain OpenAI-compatible"
            } else {
                "OpenRouter"
            }
        ),
    ));
    let priced = priced(&cfg.prices);
    if priced.is_empty() && plain {
        out.push(Check::new(
            Section::Ledger,
            CheckLevel::Info,
            "setup prices names no model: under a cap, models this endpoint lists without a price are refused",
        ));
    }
    out.extend(priced.into_iter().map(|line| {
        Check::new(
            Section::Ledger,
            CheckLevel::Info,
            format!("priced by setup prices: {line}"),
        )
    }));
    out
}

/// The tiers of `models` (each once), one line each: from which prompt size, at which price.
fn tier_lines(models: &[&str], catalogue: Option<&Catalogue>) -> Vec<String> {
    let Some(c) = catalogue else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for (i, id) in models.iter().enumerate() {
        if models[..i].contains(id) {
            continue;
        }
        let Some(m) = c.get(id) else { continue };
        for t in &m.tiers {
            let base = m
                .list_price
                .map(|p| format!(" (base {})", super::models::price_text(p)))
                .unwrap_or_default();
            out.push(format!(
                "{id}: from {} prompt tokens, {}{base}; a request whose prompt may reach it is reserved and routed (max_price) at it",
                t.min_prompt_tokens,
                super::models::price_text(t.list_price)
            ));
        }
    }
    out
}

/// `judge_model`: whether `:LlmReview` can price it (under a cap it must), and whether it
/// takes the verdicts' JSON schema.
fn judge_check(model: &str, catalogue: Option<&Catalogue>) -> Check {
    let Some(c) = catalogue else {
        return Check {
            section: Section::Judge,
            level: CheckLevel::Info,
            message: format!(
                "judge_model {model} (:LlmReview): no model catalogue at hand to check it"
            ),
            advice: None,
        };
    };
    let Some(m) = c.get(model) else {
        let close = c.suggest(model, std::time::SystemTime::now());
        // A warning, not an error: only :LlmReview needs it.
        return Check {
            section: Section::Judge,
            level: CheckLevel::Warn,
            message: format!("judge_model {model} (:LlmReview) is not in the model catalogue: reviews are refused"),
            advice: Some(format!(
                "set setup({{ judge_model = … }}) to a model of the catalogue{}",
                if close.is_empty() { String::new() } else { format!(", e.g. {}", close.join(", ")) }
            )),
        };
    };
    let schema = if m.structured_outputs() {
        "asked for JSON through its schema (structured outputs)"
    } else {
        "no structured outputs: asked for JSON in words, read tolerantly"
    };
    match m.list_price {
        Some(p) => Check {
            section: Section::Judge,
            level: CheckLevel::Ok,
            message: format!(
                "judge_model {model} (:LlmReview): {}; {schema}",
                super::models::price_text(p)
            ),
            advice: None,
        },
        None => Check {
            section: Section::Judge,
            level: CheckLevel::Warn,
            message: format!(
                "judge_model {model} (:LlmReview) has no fixed price in the catalogue; {schema}"
            ),
            advice: Some(
                "under a budget cap reviews are refused: pick a priced judge_model".into(),
            ),
        },
    }
}

/// `setup({ prices })`, as the user wrote it: USD per million tokens.
fn priced(prices: &std::collections::HashMap<String, crate::budget::Price>) -> Vec<String> {
    let mut out: Vec<String> = prices
        .iter()
        .map(|(model, p)| {
            format!(
                "{model}: ${} / ${} per million prompt / completion tokens{}",
                p.prompt.per_million_decimal(),
                p.completion.per_million_decimal(),
                if p.is_free() { " (free)" } else { "" }
            )
        })
        .collect();
    out.sort();
    out
}

/// `api_key`, every named key, then `management_key` (optional: only `:LlmKey` needs it).
fn key_checks(cfg: &crate::settings::Config) -> Vec<Check> {
    let mut named: Vec<_> = cfg
        .keys
        .iter()
        .map(|(n, s)| (format!("keys.{n}"), s))
        .collect();
    named.sort_by(|a, b| a.0.cmp(&b.0));
    let mut out: Vec<Check> = std::iter::once(("api_key".to_string(), &cfg.api_key))
        .chain(named)
        .map(|(label, spec)| key_check(&label, spec))
        .collect();
    if let Some(c) = where_keys_go(cfg) {
        out.push(c);
    }
    let mut m = key_check("management_key", &cfg.management_key);
    if m.level == CheckLevel::Error && cfg.management_key.env_name().is_some() {
        // Not an error: only :LlmKey create/limit/disable need it.
        m.level = CheckLevel::Info;
        m.message = format!(
            "{} (only :LlmKey needs a management key: create one at https://openrouter.ai/settings/management-keys)",
            m.message
        );
        m.advice = None;
    }
    out.push(m);
    out
}

/// With a base_url that is not OpenRouter: which key goes there (only an `api_key` set in
/// setup, or none), and that the management key and bound keys do not.
fn where_keys_go(cfg: &crate::settings::Config) -> Option<Check> {
    if Endpoint::of(&cfg.base_url).is_openrouter() {
        return None;
    }
    const ONLY: &str =
        "the management key and the bound key are sent to OpenRouter only (:LlmKey is refused here)";
    Some(if !cfg.api_key_set {
        Check {
            section: Section::Keys,
            level: CheckLevel::Error,
            message: format!(
                "base_url is not OpenRouter and api_key is not set in setup(): the default (env:OPENROUTER_API_KEY, an OpenRouter key) is never sent there, so every request is refused; {ONLY}"
            ),
            advice: Some(
                "set setup({ api_key = \"env:NAME\" }) to this endpoint's key, or api_key = false for a server that takes no key".into(),
            ),
        }
    } else {
        Check {
            section: Section::Keys,
            level: CheckLevel::Info,
            message: format!(
                "base_url is not OpenRouter: its requests carry {}; {ONLY}",
                if cfg.api_key.is_none() {
                    "no key (api_key = false)".to_string()
                } else {
                    "api_key as set in setup() (or a key the project file names)".to_string()
                }
            ),
            advice: None,
        }
    })
}

/// The key `:LlmKey create` bound to the current project: its name and hash prefix, never the
/// key, and whether the project file's `key` overrides it.
fn bound_check(cfg: &crate::settings::Config, p: &crate::settings::ProjectInput) -> Check {
    let Some(b) = crate::settings::bound::load(&cfg.data_dir, &p.root) else {
        return Check {
            section: Section::Keys,
            level: CheckLevel::Info,
            message: format!(
                "no key bound to project {} (:LlmKey create makes one, capped by OpenRouter)",
                p.root
            ),
            advice: None,
        };
    };
    let file = crate::settings::bound::path(&cfg.data_dir, &p.root);
    let mode = std::fs::metadata(&file).map(|m| mode_of(&m)).unwrap_or(0);
    let over = match p.resolve().1.key_name {
        Some(n) => format!("; not in use: {} names key \"{n}\", which wins", p.file),
        None if !Endpoint::of(&cfg.base_url).is_openrouter() => {
            "; not in use: base_url is not OpenRouter, and a bound key goes to OpenRouter only"
                .to_string()
        }
        None => String::new(),
    };
    Check {
        section: Section::Keys,
        level: if mode & 0o077 == 0 {
            CheckLevel::Ok
        } else {
            CheckLevel::Error
        },
        message: format!(
            "bound key of project {}: {} (hash {}…), stored in {} (mode {mode:04o}){over}",
            p.root,
            b.name,
            b.short_hash(),
            file.display()
        ),
        advice: (mode & 0o077 != 0).then(|| format!("chmod 600 {}", file.display())),
    }
}

/// The modes of `data_dir` and of what frugal keeps in it: private, or readable by others.
fn file_checks(dir: &Path, ledger: &Path, base_url: &str) -> Vec<Check> {
    let with = |suffix: &str| {
        let mut p = ledger.as_os_str().to_owned();
        p.push(suffix);
        std::path::PathBuf::from(p)
    };
    let files = [
        ("data_dir", dir.to_path_buf(), 0o700),
        ("ledger", ledger.to_path_buf(), 0o600),
        ("ledger WAL", with("-wal"), 0o600),
        ("ledger shared memory", with("-shm"), 0o600),
        (
            "catalogue cache",
            Catalogue::cache_path(dir, base_url),
            0o600,
        ),
    ];
    let mut out = Vec::new();
    for (label, path, want) in files {
        let mode = match std::fs::metadata(&path) {
            Ok(m) => mode_of(&m),
            Err(_) if label == "data_dir" => {
                out.push(Check {
                    section: Section::Files,
                    level: CheckLevel::Info,
                    message: format!(
                        "data_dir {} does not exist yet (created {want:o} at the first edit)",
                        path.display()
                    ),
                    advice: None,
                });
                break;
            }
            Err(_) => continue,
        };
        out.push(if mode & 0o077 == 0 {
            Check {
                section: Section::Files,
                level: CheckLevel::Ok,
                message: format!("{label} {}: mode {mode:04o} (private)", path.display()),
                advice: None,
            }
        } else {
            Check {
                section: Section::Files,
                level: CheckLevel::Warn,
                message: format!(
                    "{label} {}: mode {mode:04o}, other users can read it",
                    path.display()
                ),
                advice: Some(format!(
                    "chmod {want:o} {} (frugal does so at start unless it is not yours, or a shared directory)",
                    path.display()
                )),
            }
        });
    }
    out
}

#[cfg(unix)]
fn mode_of(m: &std::fs::Metadata) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    m.permissions().mode() & 0o7777
}

#[cfg(not(unix))]
fn mode_of(_m: &std::fs::Metadata) -> u32 {
    0
}

/// Is the key there? An `env:` key is looked up in the backend's environment (what requests
/// will use); a `cmd:` key is not run here.
fn key_check(label: &str, spec: &KeySpec) -> Check {
    if spec.is_none() {
        return Check {
            section: Section::Keys,
            level: CheckLevel::Info,
            message: format!("{label} = false: requests carry no key"),
            advice: None,
        };
    }
    if let Some(name) = spec.env_name() {
        return match std::env::var(name) {
            Ok(v) if !v.trim().is_empty() => Check {
                section: Section::Keys,
                level: CheckLevel::Ok,
                message: format!("{label}: environment variable {name} is set (value not shown)"),
                advice: None,
            },
            _ => Check {
                section: Section::Keys,
                level: CheckLevel::Error,
                message: format!("{label}: environment variable {name} is not set"),
                advice: Some(format!("export {name}=sk-or-v1-… before starting Neovim")),
            },
        };
    }
    match spec.check() {
        Ok(()) => Check {
            section: Section::Keys,
            level: CheckLevel::Info,
            message: format!("{label}: read from a command when first needed"),
            advice: None,
        },
        Err(e) => Check {
            section: Section::Keys,
            level: CheckLevel::Error,
            message: format!("{label}: {e}"),
            advice: None,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_judge_is_checked_against_the_catalogue() {
        let c = Catalogue::parse(
            r#"{"data":[
              {"id":"google/gemini-2.5-flash","pricing":{"prompt":"0.0000003","completion":"0.0000025"},
               "supported_parameters":["structured_outputs"]},
              {"id":"x/variable","pricing":{"prompt":"-1","completion":"-1"}}
            ]}"#,
        )
        .unwrap();
        let ok = judge_check("google/gemini-2.5-flash", Some(&c));
        assert_eq!(ok.level, CheckLevel::Ok);
        assert!(
            ok.message.contains("$0.30 in / $2.50 out per M tokens"),
            "{}",
            ok.message
        );
        assert!(ok.message.contains("structured outputs"), "{}", ok.message);
        let unpriced = judge_check("x/variable", Some(&c));
        assert_eq!(unpriced.level, CheckLevel::Warn);
        assert!(
            unpriced.message.contains("no structured outputs"),
            "{}",
            unpriced.message
        );
        let missing = judge_check("google/gemini-9", Some(&c));
        assert_eq!(missing.level, CheckLevel::Warn);
        assert!(missing.advice.unwrap().contains("google/gemini-2.5-flash"));
        assert_eq!(judge_check("a/b", None).level, CheckLevel::Info);
    }
}
