//! What the gate decides before it touches the ledger: whether a request may go at all, with
//! which key, under which caps, at which price, routed how. Pure: it takes values and returns
//! values (no I/O, no clock, no `State`), so every refusal is unit-tested without a server.
//!
//! The checks run in three steps because two things in between need I/O, and the order of the
//! refusals is part of the behaviour: [`check_setup`] (the setup is usable, and which key),
//! then the orchestrator resolves the key, then [`Setup::admit`] (max_tokens, allow-list, caps),
//! then it fetches the catalogue, then [`Admission::price`]. A request refused by a cheap check
//! never waits on the network for the catalogue.
//!
//! Pricing is where a cap is made to hold at its edges: under a cap a price must be known and
//! current ([`Prices`]: a catalogue older than [`catalogue::MAX_AGE`] counts as unknown, and so
//! does a model listed free that was charged all the same), and every request to OpenRouter
//! carries `provider.max_price` at the list price — `0` for a model priced 0, which is what
//! bounds a free model's reservation of $0 (OpenRouter then refuses every paid provider).
//! `setup({ max_price = false })` applies only where no cap does. The `provider` object goes to
//! an OpenRouter `base_url` only ([`Endpoint`]).

use super::ProjectCtx;
use crate::budget::{CachePrice, Price, Usd};
use crate::openrouter::catalogue::{self, Catalogue};
use crate::openrouter::Endpoint;
use crate::settings::project;
use crate::settings::{Config, Effective, KeyChoice, KeySpec};
// The caps are resolved with the other effective settings (`settings::effective`).
pub use crate::settings::effective::{effective_caps, CapsError, EffectiveCaps};
use std::time::SystemTime;

/// The smallest `max_tokens` worth sending.
pub const MIN_MAX_TOKENS: u32 = 16;

/// Why a request is refused before anything is reserved or sent. Each variant carries what its
/// message names; the messages are the user's, word for word.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    /// `setup()` has an error (a cap that could not be read): nothing goes until it is fixed.
    #[error("refused, nothing sent: {0} (in your frugal setup())")]
    Setup(String),
    /// The project file picks a key name the user's `setup({ keys = … })` lacks.
    #[error("{file} picks key {name:?}, which is not among your setup({{ keys = … }}); add it there or remove `key` from the file")]
    UnknownKey { file: String, name: String },
    #[error("max_tokens must be at least 16")]
    MaxTokensTooLow { max_tokens: u32 },
    #[error("model {model} is not allowed in this project ([model] allow = {allow:?} in {file}); pick another with :LlmModel")]
    NotAllowed {
        model: String,
        allow: Vec<String>,
        file: String,
    },
    #[error(transparent)]
    Caps(#[from] CapsError),
    #[error("model {model} is not in OpenRouter's catalogue (retired or misspelt?){}; set another with :LlmModel or setup({{ model = … }})", close(.suggestions))]
    NotInCatalogue {
        model: String,
        /// Close ids, for the message.
        suggestions: Vec<String>,
    },
    /// Without a current price the worst case cannot be bounded, so no cap could hold.
    #[error("the price of {model} is unknown ({why}), and a budget cap applies: a request cannot be bounded. {}", why.fix())]
    UnknownPrice { model: String, why: Unpriced },
}

/// Why a model has no price a cap can rely on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Unpriced {
    /// The catalogue has the model without a fixed price (none given, or `-1`: variable).
    NotFixed,
    /// No catalogue could be had (none cached, and fetching failed: `error`).
    NoCatalogue { error: Option<String> },
    /// The cached catalogue is older than [`catalogue::MAX_AGE`] and fetching it again failed.
    TooOld { days: u64, error: Option<String> },
    /// The catalogue lists the model free, yet a request to it was charged in this session:
    /// `max_price` 0, the only bound on a free model, did not hold.
    ChargedWhileFree { charged: Usd },
}

impl std::fmt::Display for Unpriced {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let failed = |e: &Option<String>| e.as_ref().map(|e| format!(": {e}")).unwrap_or_default();
        match self {
            Unpriced::NotFixed => write!(f, "no fixed price in the model catalogue"),
            Unpriced::NoCatalogue { error } => {
                write!(f, "the model catalogue could not be fetched{}", failed(error))
            }
            Unpriced::TooOld { days, error } => write!(
                f,
                "the model catalogue is {days} days old, older than the {} days cached prices are trusted, and fetching it again failed{}",
                catalogue::MAX_AGE.as_secs() / 86_400,
                failed(error)
            ),
            Unpriced::ChargedWhileFree { charged } => write!(
                f,
                "the model catalogue lists it free, yet a request to it was charged {charged} in this session"
            ),
        }
    }
}

impl Unpriced {
    /// What the user can do about it.
    fn fix(&self) -> &'static str {
        match self {
            Unpriced::NotFixed => {
                "Pick a priced model with :LlmModel, or give its price in setup({ prices })"
            }
            Unpriced::ChargedWhileFree { .. } => "Pick a priced model with :LlmModel",
            Unpriced::NoCatalogue { .. } | Unpriced::TooOld { .. } => {
                "Check the network and base_url: the catalogue is fetched again on the next request"
            }
        }
    }
}

impl Refusal {
    /// A budget refusal (the user's caps stop it) rather than a configuration one.
    pub fn is_budget(&self) -> bool {
        matches!(self, Refusal::UnknownPrice { .. })
    }
}

fn close(suggestions: &[String]) -> String {
    if suggestions.is_empty() {
        String::new()
    } else {
        format!(". Close: {}", suggestions.join(", "))
    }
}

/// A usable setup, and the key the project's requests use (still to be resolved).
#[derive(Debug, Clone, Copy)]
pub struct Setup<'a> {
    config: &'a Config,
    key: &'a KeySpec,
}

/// The first step: refuses while `setup()` has errors, then picks the key: a name from the
/// user's `keys` when the project file picks one, else `api_key`.
pub fn check_setup<'a>(config: &'a Config, project: &ProjectCtx) -> Result<Setup<'a>, Refusal> {
    if let Some(e) = config.config_errors.first() {
        return Err(Refusal::Setup(e.clone()));
    }
    // The choice is the effective settings'; the spec is borrowed from `config`.
    let key = match Effective::resolve(config, &project.settings, None).key {
        KeyChoice::Named {
            name, spec: None, ..
        } => {
            return Err(Refusal::UnknownKey {
                file: project.file.clone(),
                name,
            })
        }
        KeyChoice::Named { name, .. } => &config.keys[&name],
        KeyChoice::Unnamed { .. } => &config.api_key,
    };
    Ok(Setup { config, key })
}

/// A request let through the checks that need no price.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Admission {
    pub model: String,
    /// As asked for (the ledger may lower it to fit a cap).
    pub max_tokens: u32,
    /// Below this many answer tokens, lowering `max_tokens` is pointless: the ledger refuses.
    pub min_useful_tokens: u32,
    pub caps: EffectiveCaps,
    /// `setup({ max_price })`: route no dearer than the list price (always so under a cap).
    max_price: bool,
    /// The project's `[privacy] data_collection`.
    data_collection: Option<String>,
    /// Whether OpenRouter-only fields may be sent.
    endpoint: Endpoint,
    /// The model's price from `setup({ prices })`, which wins over the catalogue's.
    user_price: Option<Price>,
}

impl<'a> Setup<'a> {
    pub fn key(&self) -> &'a KeySpec {
        self.key
    }

    /// The second step: `max_tokens`, the project's allow-list, and the caps.
    pub fn admit(
        &self,
        project: &ProjectCtx,
        model: &str,
        max_tokens: u32,
    ) -> Result<Admission, Refusal> {
        if max_tokens < MIN_MAX_TOKENS {
            return Err(Refusal::MaxTokensTooLow { max_tokens });
        }
        if let Some(allow) = &project.settings.allow {
            if !project::allowed(model, allow) {
                return Err(Refusal::NotAllowed {
                    model: model.to_string(),
                    allow: allow.clone(),
                    file: project.file.clone(),
                });
            }
        }
        let effective = Effective::resolve(self.config, &project.settings, Some(model));
        let caps = effective.caps?;
        Ok(Admission {
            model: model.to_string(),
            max_tokens,
            min_useful_tokens: self
                .config
                .min_useful_tokens
                .clamp(MIN_MAX_TOKENS, max_tokens),
            caps,
            max_price: effective.routing.max_price,
            data_collection: effective.routing.data_collection,
            endpoint: Endpoint::of(&self.config.base_url),
            user_price: self.config.prices.get(model).copied(),
        })
    }
}

/// A request ready for the ledger: its price and its routing.
#[derive(Debug, Clone, PartialEq)]
pub struct Plan {
    pub model: String,
    pub max_tokens: u32,
    pub min_useful_tokens: u32,
    pub caps: EffectiveCaps,
    /// The price the worst case uses, when known (`None` only when no cap applies): the
    /// dearest that can apply to the prompt's bound (tiers included).
    pub price: Option<Price>,
    /// The plain list price (no cache-write or reasoning surcharge, no tier): what a request
    /// likely costs per token, for the foresight.
    pub list_price: Option<Price>,
    /// Where the user's prices come from: `setup({ prices })` or the catalogue.
    pub priced_by_user: bool,
    /// OpenRouter's `provider` object (`None` for any other endpoint).
    pub provider: Option<Provider>,
    /// What cached prompt tokens save, when the catalogue gives a cache-read price.
    pub cache_price: Option<CachePrice>,
    /// The model's context window in tokens (the catalogue's `context_length`), when known.
    pub context_length: Option<u64>,
    /// Whether the model takes `cache_control` breakpoints here (Anthropic and Gemini through
    /// OpenRouter): the request's cache marks are sent only then.
    pub cache_breakpoints: bool,
}

impl Plan {
    /// The price to reserve with: an unknown price (allowed only uncapped) reserves nothing.
    pub fn reserve_price(&self) -> Price {
        self.price.unwrap_or_default()
    }

    /// The prompt's worst case in tokens: see [`prompt_bound`].
    pub fn prompt_bound(&self, bound: u64) -> u64 {
        prompt_bound(bound, self.context_length)
    }
}

/// The prompt tokens a request can be billed for at most: its bound, capped by the model's
/// context window when the catalogue gives one. A prompt longer than the window is refused by
/// the provider (400, `context_length_exceeded`), not billed; OpenRouter's `middle-out`
/// transform, where it applies, shortens it to fit. Either way no more than `context_length`
/// prompt tokens are ever billed. A window of 0 is no information.
pub fn prompt_bound(bound: u64, context_length: Option<u64>) -> u64 {
    match context_length {
        Some(window) if window > 0 => bound.min(window),
        _ => bound,
    }
}

pub use crate::openrouter::provider::{Decimal, MaxPrice, Provider};

/// What the gate knows about prices when it prices a request.
#[derive(Debug, Clone, Copy)]
pub struct Prices<'a> {
    /// The catalogue in hand (`None`: none could be had).
    pub catalogue: Option<&'a Catalogue>,
    /// To age the catalogue.
    pub now: SystemTime,
    /// Why the last fetch of the catalogue failed, if it did (for the refusal's message).
    pub fetch_error: Option<&'a str>,
    /// Models the catalogue lists free that were charged in this session, and the largest
    /// charge.
    pub charged_while_free: &'a [(String, Usd)],
}

impl<'a> Prices<'a> {
    /// A catalogue and nothing else known.
    pub fn of(catalogue: Option<&'a Catalogue>) -> Prices<'a> {
        Prices {
            catalogue,
            now: SystemTime::now(),
            fetch_error: None,
            charged_while_free: &[],
        }
    }

    /// Whole days since the catalogue was fetched, when that is past [`catalogue::MAX_AGE`].
    fn too_old(&self, c: &Catalogue) -> Option<u64> {
        let age = c.age(self.now);
        (age > catalogue::MAX_AGE).then_some(age.as_secs() / 86_400)
    }
}

/// Why a catalogue price cannot bound a capped request (`None`: it can): no catalogue, one too
/// old, a price that is not fixed, or a model listed free that was charged in this session.
fn unpriced(prices: &Prices, model: &str, price: Option<Price>) -> Option<Unpriced> {
    let error = prices.fetch_error.map(str::to_string);
    match prices.catalogue {
        None => Some(Unpriced::NoCatalogue { error }),
        Some(c) => match prices.too_old(c) {
            Some(days) => Some(Unpriced::TooOld { days, error }),
            None if price.is_none() => Some(Unpriced::NotFixed),
            None => prices
                .charged_while_free
                .iter()
                .find(|(m, _)| *m == model)
                .filter(|_| price.is_some_and(|p| p.is_free()))
                .map(|(_, charged)| Unpriced::ChargedWhileFree { charged: *charged }),
        },
    }
}

impl Admission {
    /// The last step: the model's price, which must be known and current under a cap, and the
    /// routing. `bound` is the prompt's token bound (see [`Plan::prompt_bound`]): where the
    /// catalogue prices a model higher from a prompt size up (`pricing.overrides`), the tiers
    /// that bound reaches set the worst case and `max_price`.
    pub fn price(self, prices: &Prices, bound: u64) -> Result<Plan, Refusal> {
        let model = self.model;
        let capped = self.caps.any();
        let (price, list_price, route_price, cache_price, context_length) =
            match (self.user_price, prices.catalogue) {
                // The user's price wins, and needs no catalogue (nor its age): the user vouches
                // for it; the catalogue may still tell the context window and the cache price.
                (Some(p), c) => {
                    let info = c.and_then(|c| c.get(&model));
                    (
                        Some(p),
                        Some(p),
                        Some(p),
                        info.and_then(|i| i.cache_price),
                        info.and_then(|i| i.context_length),
                    )
                }
                (None, Some(c)) => match c.get(&model) {
                    Some(info) => {
                        let (price, route) =
                            info.prices_for(prompt_bound(bound, info.context_length));
                        (
                            price,
                            info.list_price,
                            route,
                            info.cache_price,
                            info.context_length,
                        )
                    }
                    None => {
                        return Err(Refusal::NotInCatalogue {
                            suggestions: c.suggest(&model, prices.now),
                            model,
                        })
                    }
                },
                (None, None) => (None, None, None, None, None),
            };
        if capped && self.user_price.is_none() {
            if let Some(why) = unpriced(prices, &model, price) {
                return Err(Refusal::UnknownPrice { model, why });
            }
        }

        // Routing, OpenRouter only: never a pricier provider than the list price the worst
        // case was computed from — the tier's, when the prompt may reach one (a model priced
        // 0: no paid provider); privacy.
        let provider = self.endpoint.is_openrouter().then(|| Provider {
            max_price: route_price
                .filter(|_| capped || self.max_price)
                .map(MaxPrice::of),
            data_collection: self.data_collection,
            require_parameters: true,
        });
        Ok(Plan {
            cache_breakpoints: self.endpoint.takes_cache_control(&model),
            model,
            max_tokens: self.max_tokens,
            min_useful_tokens: self.min_useful_tokens,
            caps: self.caps,
            price,
            list_price,
            priced_by_user: self.user_price.is_some(),
            provider,
            cache_price,
            context_length,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::budget::{CapKind, Caps};
    use crate::settings::{BudgetCaps, BudgetSpec, FileState, ProjectSettings};

    /// Sonnet is priced (its worst price per prompt token is the cache write, 3.75 $/M, above
    /// the 3 $/M list price), `openrouter/auto` has a variable price, the `:free` model is free.
    const CATALOGUE: &str = r#"{"data":[
      {"id":"anthropic/claude-sonnet-4.5","context_length":200000,"pricing":{"prompt":"0.000003","completion":"0.000015","request":"0","input_cache_read":"0.0000003","input_cache_write":"0.00000375"}},
      {"id":"anthropic/claude-opus-4.1","pricing":{"prompt":"0.000015","completion":"0.000075"}},
      {"id":"mistralai/mistral-medium-3","pricing":{"prompt":"0.0000004","completion":"0.000002"}},
      {"id":"openrouter/auto","pricing":{"prompt":"-1","completion":"-1"}},
      {"id":"meta-llama/llama-3.3-70b-instruct:free","pricing":{"prompt":"0","completion":"0","request":"0"}}
    ]}"#;
    const SONNET: &str = "anthropic/claude-sonnet-4.5";
    const FREE: &str = "meta-llama/llama-3.3-70b-instruct:free";
    const MISTRAL: &str = "mistralai/mistral-medium-3";
    const FILE: &str = "/p/.frugal.toml";

    fn catalogue() -> Catalogue {
        Catalogue::parse(CATALOGUE).unwrap()
    }

    fn usd(s: &str) -> Usd {
        Usd::parse_decimal(s).unwrap()
    }

    fn project(settings: ProjectSettings) -> ProjectCtx {
        ProjectCtx {
            root: "/p".into(),
            file: FILE.into(),
            file_state: FileState::Trusted,
            settings,
        }
    }

    fn daily_default(daily: f64) -> Config {
        Config {
            budget: BudgetSpec {
                daily_usd: Some(daily),
                ..BudgetSpec::default()
            },
            ..Config::default()
        }
    }

    /// All three steps, as `send` runs them (minus the key's resolution).
    fn admit_all(
        cfg: &Config,
        p: &ProjectCtx,
        catalogue: Option<&Catalogue>,
        model: &str,
        max_tokens: u32,
    ) -> Result<Plan, Refusal> {
        check_setup(cfg, p)?
            .admit(p, model, max_tokens)?
            .price(&Prices::of(catalogue), 10_000)
    }

    #[test]
    fn setup_errors_and_key_choice() {
        let keys = [("client".to_string(), KeySpec("env:CLIENT_KEY".into()))];
        let cfg = Config {
            keys: keys.into_iter().collect(),
            ..Config::default()
        };
        let named = |name: &str| ProjectSettings {
            key_name: Some(name.into()),
            ..ProjectSettings::default()
        };
        let broken = Config {
            config_errors: vec!["budget.daily_usd must be a number".into()],
            ..cfg.clone()
        };
        let cases: [(&Config, ProjectSettings, Result<&str, &str>); 4] = [
            (&cfg, ProjectSettings::default(), Ok("env:OPENROUTER_API_KEY")),
            (&cfg, named("client"), Ok("env:CLIENT_KEY")),
            (
                &cfg,
                named("nosuch"),
                Err("/p/.frugal.toml picks key \"nosuch\", which is not among your setup({ keys = … }); add it there or remove `key` from the file"),
            ),
            // Setup errors come first, whatever the project picks.
            (
                &broken,
                named("nosuch"),
                Err("refused, nothing sent: budget.daily_usd must be a number (in your frugal setup())"),
            ),
        ];
        for (cfg, settings, want) in cases {
            let got = check_setup(cfg, &project(settings))
                .map(|s| s.key().0.as_str())
                .map_err(|r| r.to_string());
            assert_eq!(got, want.map_err(String::from));
        }
    }

    #[test]
    fn max_tokens_and_allow_list() {
        let cfg = Config::default();
        let allow = |patterns: &[&str]| ProjectSettings {
            allow: Some(patterns.iter().map(|p| p.to_string()).collect()),
            ..ProjectSettings::default()
        };
        let cases: [(ProjectSettings, &str, u32, Option<&str>); 6] = [
            (ProjectSettings::default(), SONNET, 16, None),
            (ProjectSettings::default(), SONNET, 15, Some("max_tokens must be at least 16")),
            (allow(&["anthropic/*"]), SONNET, 4096, None),
            (allow(&["mistralai/*", SONNET]), SONNET, 4096, None),
            (
                allow(&["mistralai/*"]),
                SONNET,
                4096,
                Some("model anthropic/claude-sonnet-4.5 is not allowed in this project ([model] allow = [\"mistralai/*\"] in /p/.frugal.toml); pick another with :LlmModel"),
            ),
            // max_tokens is checked before the allow-list.
            (allow(&["mistralai/*"]), SONNET, 8, Some("max_tokens must be at least 16")),
        ];
        for (settings, model, max_tokens, want) in cases {
            let p = project(settings);
            let got = check_setup(&cfg, &p)
                .unwrap()
                .admit(&p, model, max_tokens)
                .err()
                .map(|r| r.to_string());
            assert_eq!(got.as_deref(), want, "{model} {max_tokens}");
        }
    }

    #[test]
    fn min_useful_tokens_is_clamped_into_16_to_max_tokens() {
        for (min_useful, max_tokens, want) in [(512, 4096, 512), (512, 100, 100), (4, 4096, 16)] {
            let cfg = Config {
                min_useful_tokens: min_useful,
                ..Config::default()
            };
            let p = project(ProjectSettings::default());
            let a = check_setup(&cfg, &p)
                .unwrap()
                .admit(&p, SONNET, max_tokens)
                .unwrap();
            assert_eq!(a.min_useful_tokens, want, "{min_useful} {max_tokens}");
            assert_eq!(a.max_tokens, max_tokens);
        }
    }

    #[test]
    fn file_caps_override_the_defaults_field_by_field() {
        let cfg = Config {
            budget: BudgetSpec {
                daily_usd: Some(1.0),
                monthly_usd: Some(10.0),
                warn_at: Some(0.8),
                ..BudgetSpec::default()
            },
            global_budget: BudgetSpec {
                total_usd: Some(100.0),
                ..BudgetSpec::default()
            },
            ..Config::default()
        };
        let file = |b: BudgetCaps| ProjectSettings {
            budget: Some(b),
            ..ProjectSettings::default()
        };
        let defaults = BudgetCaps {
            caps: Caps {
                daily: Some(usd("1")),
                monthly: Some(usd("10")),
                ..Caps::default()
            },
            warn_at_milli: Some(800),
            confirm_above: None,
        };
        let cases = [
            // No file budget: the defaults.
            (ProjectSettings::default(), defaults),
            // A file setting only warn_at keeps every default cap.
            (
                file(BudgetCaps {
                    warn_at_milli: Some(500),
                    ..BudgetCaps::default()
                }),
                BudgetCaps {
                    warn_at_milli: Some(500),
                    ..defaults
                },
            ),
            // A file daily cap replaces the default daily cap only.
            (
                file(BudgetCaps {
                    caps: Caps {
                        daily: Some(usd("0.25")),
                        per_request: Some(usd("0.01")),
                        ..Caps::default()
                    },
                    ..BudgetCaps::default()
                }),
                BudgetCaps {
                    caps: Caps {
                        daily: Some(usd("0.25")),
                        per_request: Some(usd("0.01")),
                        ..defaults.caps
                    },
                    ..defaults
                },
            ),
        ];
        for (settings, want) in cases {
            let caps = effective_caps(&cfg, &settings).unwrap();
            assert_eq!(caps.project, want);
            assert_eq!(caps.from_file, settings.budget.unwrap_or_default());
            assert_eq!(
                caps.global,
                BudgetCaps {
                    caps: Caps {
                        total: Some(usd("100")),
                        ..Caps::default()
                    },
                    ..BudgetCaps::default()
                }
            );
        }
    }

    /// `confirm_above_usd`: set in one place it applies; set in both, the lower wins (asking
    /// is the careful side: a project cannot silence the user's threshold, nor the reverse).
    #[test]
    fn confirm_above_the_lower_of_file_and_setup_wins() {
        let setup = |v: Option<f64>| Config {
            budget: BudgetSpec {
                confirm_above_usd: v,
                ..BudgetSpec::default()
            },
            ..Config::default()
        };
        let file = |v: Option<&str>| ProjectSettings {
            budget: Some(BudgetCaps {
                confirm_above: v.map(usd),
                ..BudgetCaps::default()
            }),
            ..ProjectSettings::default()
        };
        let cases = [
            (None, None, None),
            (Some(0.05), None, Some("0.05")),
            (None, Some("0.02"), Some("0.02")),
            (Some(0.05), Some("0.02"), Some("0.02")),
            (Some(0.01), Some("0.02"), Some("0.01")),
            (Some(0.0), Some("0.02"), Some("0")),
        ];
        for (in_setup, in_file, want) in cases {
            let caps = effective_caps(&setup(in_setup), &file(in_file)).unwrap();
            assert_eq!(
                caps.project.confirm_above,
                want.map(usd),
                "{in_setup:?} {in_file:?}"
            );
            // Not a cap: it never makes a request "capped".
            assert!(!caps.any());
        }
        // Read like the caps: a negative amount is an error naming the field.
        let bad = setup(Some(-1.0));
        let p = project(ProjectSettings::default());
        let r = admit_all(&bad, &p, Some(&catalogue()), SONNET, 4096).unwrap_err();
        assert_eq!(
            r.to_string(),
            "setup budget: confirm_above_usd must be a positive amount of USD, got -1"
        );
    }

    #[test]
    fn where_a_cap_was_set() {
        let settings = ProjectSettings {
            budget: Some(BudgetCaps {
                caps: Caps {
                    monthly: Some(usd("5")),
                    ..Caps::default()
                },
                ..BudgetCaps::default()
            }),
            ..ProjectSettings::default()
        };
        let caps = effective_caps(&daily_default(1.0), &settings).unwrap();
        assert!(caps.set_in_file(CapKind::Monthly));
        assert!(!caps.set_in_file(CapKind::Daily));
        assert!(!caps.set_in_file(CapKind::Total));
        assert!(!caps.set_in_file(CapKind::PerRequest));
    }

    #[test]
    fn unreadable_setup_caps_are_refused() {
        let bad = BudgetSpec {
            daily_usd: Some(-1.0),
            ..BudgetSpec::default()
        };
        let cases = [
            (
                Config {
                    budget: bad.clone(),
                    ..Config::default()
                },
                "setup budget: daily_usd must be a positive amount of USD, got -1",
            ),
            (
                Config {
                    global_budget: bad,
                    ..Config::default()
                },
                "setup global_budget: daily_usd must be a positive amount of USD, got -1",
            ),
        ];
        for (cfg, want) in cases {
            let p = project(ProjectSettings::default());
            let got = admit_all(&cfg, &p, Some(&catalogue()), SONNET, 4096).unwrap_err();
            assert_eq!(got.to_string(), want);
            assert!(!got.is_budget());
        }
    }

    #[test]
    fn prices_and_unknown_prices() {
        let cat = catalogue();
        let uncapped = Config::default();
        let capped = daily_default(1.0);
        let global_capped = Config {
            global_budget: BudgetSpec {
                monthly_usd: Some(3.0),
                ..BudgetSpec::default()
            },
            ..Config::default()
        };
        let sonnet_worst = Price {
            prompt: usd("0.00000375"),
            completion: usd("0.000015"),
            request: Usd::ZERO,
        };
        let variable = "the price of openrouter/auto is unknown (no fixed price in the model catalogue), and a budget cap applies: a request cannot be bounded. Pick a priced model with :LlmModel, or give its price in setup({ prices })";
        let no_catalogue = "the price of anthropic/claude-sonnet-4.5 is unknown (the model catalogue could not be fetched), and a budget cap applies: a request cannot be bounded. Check the network and base_url: the catalogue is fetched again on the next request";
        /// The price admitted, or the refusal's message.
        type Want = Result<Option<Price>, &'static str>;
        let cases: [(&Config, Option<&Catalogue>, &str, Want); 7] = [
            // The worst-case price, not the list price.
            (&capped, Some(&cat), SONNET, Ok(Some(sonnet_worst))),
            (&capped, Some(&cat), FREE, Ok(Some(Price::default()))),
            (&capped, Some(&cat), "openrouter/auto", Err(variable)),
            (&global_capped, Some(&cat), "openrouter/auto", Err(variable)),
            (&capped, None, SONNET, Err(no_catalogue)),
            // Without caps an unknown price goes (nothing to bound).
            (&uncapped, Some(&cat), "openrouter/auto", Ok(None)),
            (&uncapped, None, SONNET, Ok(None)),
        ];
        for (cfg, catalogue, model, want) in cases {
            let p = project(ProjectSettings::default());
            let got = admit_all(cfg, &p, catalogue, model, 4096);
            match want {
                Ok(price) => {
                    let plan = got.unwrap();
                    assert_eq!(plan.price, price, "{model}");
                    assert_eq!(plan.reserve_price(), price.unwrap_or_default());
                }
                Err(msg) => {
                    let r = got.unwrap_err();
                    assert_eq!(r.to_string(), msg);
                    assert!(r.is_budget());
                }
            }
        }
    }

    #[test]
    fn the_prompt_bound_is_capped_by_the_context_window() {
        let cases: [(u64, Option<u64>, u64); 7] = [
            (1_000, Some(200_000), 1_000),
            (200_000, Some(200_000), 200_000),
            (350_000, Some(200_000), 200_000),
            (u64::MAX, Some(8_192), 8_192),
            (5_000, None, 5_000),
            // A window of 0 says nothing.
            (5_000, Some(0), 5_000),
            (0, Some(8_192), 0),
        ];
        for (bound, window, want) in cases {
            assert_eq!(prompt_bound(bound, window), want, "{bound} {window:?}");
        }
        // From the catalogue, through the plan; a model without a window keeps its bound.
        let cat = catalogue();
        let p = project(ProjectSettings::default());
        let plan = admit_all(&Config::default(), &p, Some(&cat), SONNET, 4096).unwrap();
        assert_eq!(plan.context_length, Some(200_000));
        assert_eq!(plan.prompt_bound(1_000_000), 200_000);
        let plan = admit_all(&Config::default(), &p, Some(&cat), MISTRAL, 4096).unwrap();
        assert_eq!(plan.prompt_bound(1_000_000), 1_000_000);
    }

    #[test]
    fn cache_price_and_breakpoints_in_the_plan() {
        let cat = catalogue();
        let p = project(ProjectSettings::default());
        let plain = Config {
            base_url: "http://127.0.0.1:8080/v1".into(),
            ..Config::default()
        };
        let sonnet_cache = Some(CachePrice {
            prompt: usd("0.000003"),
            read: usd("0.0000003"),
        });
        let cases: [(&Config, &str, Option<CachePrice>, bool); 4] = [
            (&Config::default(), SONNET, sonnet_cache, true),
            (&Config::default(), MISTRAL, None, false),
            // A plain endpoint never gets breakpoints, whatever the model is called.
            (&plain, SONNET, sonnet_cache, false),
            (&plain, MISTRAL, None, false),
        ];
        for (cfg, model, cache_price, breakpoints) in cases {
            let plan = admit_all(cfg, &p, Some(&cat), model, 4096).unwrap();
            assert_eq!(plan.cache_price, cache_price, "{model}");
            assert_eq!(
                plan.cache_breakpoints, breakpoints,
                "{} {model}",
                cfg.base_url
            );
        }
    }

    #[test]
    fn a_model_missing_from_the_catalogue_is_refused_with_close_ids() {
        let cases = [
            (
                catalogue(),
                "anthropic/claude-sonet-4.5",
                "model anthropic/claude-sonet-4.5 is not in OpenRouter's catalogue (retired or misspelt?). Close: anthropic/claude-sonnet-4.5, anthropic/claude-opus-4.1, openrouter/auto; set another with :LlmModel or setup({ model = … })",
            ),
            (
                Catalogue::default(),
                "nosuch/model",
                "model nosuch/model is not in OpenRouter's catalogue (retired or misspelt?); set another with :LlmModel or setup({ model = … })",
            ),
        ];
        for (cat, model, want) in cases {
            // Refused even without caps: the model does not exist.
            let p = project(ProjectSettings::default());
            let r = admit_all(&Config::default(), &p, Some(&cat), model, 4096).unwrap_err();
            assert_eq!(r.to_string(), want);
            assert!(!r.is_budget());
        }
    }

    #[test]
    fn routing_max_price_and_data_collection() {
        let cat = catalogue();
        let privacy = |dc: &str| ProjectSettings {
            data_collection: Some(dc.into()),
            ..ProjectSettings::default()
        };
        let no_max_price = Config {
            max_price: false,
            ..Config::default()
        };
        // The list price per million tokens, exactly, not the dearer cache-write price.
        let sonnet_max = r#""max_price":{"prompt":3,"completion":15,"request":0}"#;
        let free_max = r#""max_price":{"prompt":0,"completion":0,"request":0}"#;
        let sent = |fields: &[&str]| {
            let mut all = fields.to_vec();
            all.push(r#""require_parameters":true"#);
            format!("{{{}}}", all.join(","))
        };
        let cases = [
            (
                Config::default(),
                ProjectSettings::default(),
                SONNET,
                sent(&[sonnet_max]),
            ),
            (
                no_max_price.clone(),
                ProjectSettings::default(),
                SONNET,
                sent(&[]),
            ),
            // A model priced 0 gets a ceiling of 0: no paid provider.
            (
                Config::default(),
                ProjectSettings::default(),
                FREE,
                sent(&[free_max]),
            ),
            (
                Config::default(),
                privacy("deny"),
                SONNET,
                sent(&[sonnet_max, r#""data_collection":"deny""#]),
            ),
            (
                no_max_price,
                privacy("allow"),
                SONNET,
                sent(&[r#""data_collection":"allow""#]),
            ),
            (
                Config::default(),
                privacy("deny"),
                FREE,
                sent(&[free_max, r#""data_collection":"deny""#]),
            ),
            // A variable price has no ceiling to send (allowed only uncapped).
            (
                Config::default(),
                ProjectSettings::default(),
                "openrouter/auto",
                sent(&[]),
            ),
        ];
        for (cfg, settings, model, want) in cases {
            let p = project(settings);
            let plan = admit_all(&cfg, &p, Some(&cat), model, 4096).unwrap();
            let got = serde_json::to_string(&plan.provider.unwrap()).unwrap();
            assert_eq!(got, want, "{model}");
        }
    }

    #[test]
    fn routing_requires_parameters() {
        // A provider that ignored max_tokens could answer past the worst case reserved.
        let cat = catalogue();
        let no_max_price = Config {
            max_price: false,
            ..Config::default()
        };
        for cfg in [Config::default(), no_max_price] {
            for model in [SONNET, FREE] {
                let p = project(ProjectSettings::default());
                let plan = admit_all(&cfg, &p, Some(&cat), model, 4096).unwrap();
                assert!(plan.provider.unwrap().require_parameters, "{model}");
            }
        }
    }

    /// Under a cap every request to OpenRouter carries a `max_price` bounding it: 0 for a model
    /// priced 0 (no paid provider may serve it), and whatever `setup({ max_price })` says.
    #[test]
    fn under_a_cap_every_openrouter_request_carries_max_price() {
        let cat = catalogue();
        let capped_no_max_price = Config {
            max_price: false,
            ..daily_default(1.0)
        };
        let cases = [
            (
                daily_default(1.0),
                FREE,
                r#"{"prompt":0,"completion":0,"request":0}"#,
            ),
            (
                capped_no_max_price.clone(),
                FREE,
                r#"{"prompt":0,"completion":0,"request":0}"#,
            ),
            (
                capped_no_max_price,
                SONNET,
                r#"{"prompt":3,"completion":15,"request":0}"#,
            ),
        ];
        for (cfg, model, want) in cases {
            let p = project(ProjectSettings::default());
            let plan = admit_all(&cfg, &p, Some(&cat), model, 4096).unwrap();
            let sent = serde_json::to_string(&plan.provider).unwrap();
            assert!(
                sent.contains(&format!(r#""max_price":{want}"#)),
                "{model}: {sent}"
            );
        }
    }

    /// `max_price` is the list price per million tokens, exactly: 0.4 $/M, not the float
    /// 0.39999999999999997 that would shut out the provider priced 0.4.
    #[test]
    fn max_price_is_exact() {
        let p = project(ProjectSettings::default());
        let plan = admit_all(
            &Config::default(),
            &p,
            Some(&catalogue()),
            "mistralai/mistral-medium-3",
            4096,
        )
        .unwrap();
        let sent = serde_json::to_string(&plan.provider).unwrap();
        assert!(
            sent.contains(r#""max_price":{"prompt":0.4,"completion":2,"request":0}"#),
            "{sent}"
        );
    }

    /// OpenRouter-only fields go to OpenRouter only; another endpoint gets a plain request.
    #[test]
    fn a_plain_endpoint_gets_no_provider_object() {
        for base_url in [
            "https://api.openai.com/v1",
            "http://127.0.0.1:8080/v1",
            "https://openrouter.ai.example.com/api/v1",
        ] {
            let cfg = Config {
                base_url: base_url.into(),
                ..daily_default(1.0)
            };
            let p = project(ProjectSettings {
                data_collection: Some("deny".into()),
                ..ProjectSettings::default()
            });
            let plan = admit_all(&cfg, &p, Some(&catalogue()), SONNET, 4096).unwrap();
            assert!(plan.provider.is_none(), "{base_url}");
        }
    }

    /// A catalogue whose refreshes keep failing is not trusted forever under a cap.
    #[test]
    fn a_catalogue_too_old_is_unknown_under_a_cap() {
        let mut cat = catalogue();
        let day = std::time::Duration::from_secs(24 * 3600);
        cat.fetched = Some(std::time::SystemTime::now() - 8 * day - day / 2);
        let p = project(ProjectSettings::default());
        let r = admit_all(&daily_default(1.0), &p, Some(&cat), SONNET, 4096).unwrap_err();
        assert!(r.is_budget());
        assert!(
            r.to_string().contains("the model catalogue is 8 days old"),
            "{r}"
        );
        // Without a cap there is nothing to bound: the old prices serve.
        assert!(admit_all(&Config::default(), &p, Some(&cat), SONNET, 4096).is_ok());
    }

    /// Each reason a price cannot bound a request under a cap, word for word.
    #[test]
    fn unknown_prices_say_why_and_what_to_do() {
        let mut old = catalogue();
        let day = std::time::Duration::from_secs(24 * 3600);
        let now = std::time::SystemTime::now();
        old.fetched = Some(now - 9 * day);
        let fresh = catalogue();
        let charged = [(FREE.to_string(), usd("0.01"))];
        let error = "OpenRouter answered 503: catalogue down";
        let prices = |catalogue, fetch_error, charged_while_free| Prices {
            catalogue,
            now,
            fetch_error,
            charged_while_free,
        };
        let cases = [
            (
                prices(None, Some(error), &[]),
                SONNET,
                "the price of anthropic/claude-sonnet-4.5 is unknown (the model catalogue could not be fetched: OpenRouter answered 503: catalogue down), and a budget cap applies: a request cannot be bounded. Check the network and base_url: the catalogue is fetched again on the next request",
            ),
            (
                prices(Some(&old), Some(error), &[]),
                SONNET,
                "the price of anthropic/claude-sonnet-4.5 is unknown (the model catalogue is 9 days old, older than the 7 days cached prices are trusted, and fetching it again failed: OpenRouter answered 503: catalogue down), and a budget cap applies: a request cannot be bounded. Check the network and base_url: the catalogue is fetched again on the next request",
            ),
            // Too old is too old even for a model priced 0.
            (
                prices(Some(&old), None, &[]),
                FREE,
                "the price of meta-llama/llama-3.3-70b-instruct:free is unknown (the model catalogue is 9 days old, older than the 7 days cached prices are trusted, and fetching it again failed), and a budget cap applies: a request cannot be bounded. Check the network and base_url: the catalogue is fetched again on the next request",
            ),
            (
                prices(Some(&fresh), None, &charged),
                FREE,
                "the price of meta-llama/llama-3.3-70b-instruct:free is unknown (the model catalogue lists it free, yet a request to it was charged $0.0100 in this session), and a budget cap applies: a request cannot be bounded. Pick a priced model with :LlmModel",
            ),
        ];
        let p = project(ProjectSettings::default());
        let capped = daily_default(1.0);
        for (prices, model, want) in cases {
            let admission = check_setup(&capped, &p)
                .unwrap()
                .admit(&p, model, 4096)
                .unwrap();
            let r = admission.price(&prices, 10_000).unwrap_err();
            assert_eq!(r.to_string(), want);
            assert!(r.is_budget());
            // Without a cap there is nothing to bound: the request goes.
            let uncapped = Config::default();
            let admission = check_setup(&uncapped, &p)
                .unwrap()
                .admit(&p, model, 4096)
                .unwrap();
            assert!(admission.price(&prices, 10_000).is_ok(), "{model} uncapped");
        }
        // A charge on a free model says nothing about a priced one (the catalogue repriced
        // it, or another model was charged).
        let other = [(SONNET.to_string(), usd("0.01"))];
        for (model, charged) in [(SONNET, &other[..]), (SONNET, &charged[..])] {
            let admission = check_setup(&capped, &p)
                .unwrap()
                .admit(&p, model, 4096)
                .unwrap();
            assert!(admission
                .price(&prices(Some(&fresh), None, charged), 10_000)
                .is_ok());
        }
    }

    /// `setup({ prices })` prices a model the catalogue does not (or does not list at all),
    /// wins over the catalogue's price, needs no catalogue, and routes at that price.
    #[test]
    fn user_prices_win_and_need_no_catalogue() {
        let mine = Price {
            prompt: usd("0.00000015"),
            completion: usd("0.00000035"),
            request: Usd::ZERO,
        };
        let with_prices = |base_url: &str| Config {
            base_url: base_url.into(),
            prices: [
                ("local/llama".to_string(), Price::default()),
                ("mistral-small".to_string(), mine),
                (SONNET.to_string(), mine),
                ("openrouter/auto".to_string(), mine),
            ]
            .into_iter()
            .collect(),
            ..daily_default(1.0)
        };
        let p = project(ProjectSettings::default());
        let cat = catalogue();
        let mut old = catalogue();
        old.fetched = Some(SystemTime::now() - catalogue::MAX_AGE * 2);
        let plain = with_prices("http://127.0.0.1:8080/v1");
        let or = with_prices("https://openrouter.ai/api/v1");
        let cases: [(&Config, Option<&Catalogue>, &str, Price); 6] = [
            // No catalogue at all (a server without /models), or one without the model.
            (&plain, None, "mistral-small", mine),
            (&plain, Some(&cat), "mistral-small", mine),
            (&plain, Some(&old), "local/llama", Price::default()),
            // Over the catalogue's price (and its dearer cache-write price).
            (&or, Some(&cat), SONNET, mine),
            // A variable price made fixed.
            (&or, Some(&cat), "openrouter/auto", mine),
            (&or, Some(&old), SONNET, mine),
        ];
        for (cfg, c, model, want) in cases {
            let plan = admit_all(cfg, &p, c, model, 4096).unwrap();
            assert_eq!(plan.price, Some(want), "{model}");
            assert_eq!(plan.list_price, Some(want), "{model}");
            assert!(plan.priced_by_user);
        }
        let plan = admit_all(&or, &p, Some(&cat), SONNET, 4096).unwrap();
        let sent = serde_json::to_string(&plan.provider).unwrap();
        assert!(
            sent.contains(r#""max_price":{"prompt":0.15,"completion":0.35,"request":0}"#),
            "{sent}"
        );
        // A model it does not name keeps the catalogue's rules.
        let r = admit_all(&plain, &p, Some(&cat), "anthropic/claude-opus-4.1", 4096).unwrap();
        assert!(!r.priced_by_user);
        let r = admit_all(&plain, &p, None, "other", 4096).unwrap_err();
        assert!(r.is_budget(), "{r}");
    }

    /// A plain endpoint gets no `provider`, capped or not; its caps still need a price.
    #[test]
    fn a_plain_endpoint_is_still_capped_by_price() {
        let plain = |cfg: Config| Config {
            base_url: "http://127.0.0.1:8080/v1".into(),
            ..cfg
        };
        let p = project(ProjectSettings::default());
        let cat = catalogue();
        let plan = admit_all(&plain(Config::default()), &p, Some(&cat), SONNET, 4096).unwrap();
        assert_eq!(plan.provider, None);
        let r = admit_all(
            &plain(daily_default(1.0)),
            &p,
            Some(&cat),
            "openrouter/auto",
            4096,
        )
        .unwrap_err();
        assert!(r.is_budget(), "{r}");
    }
}
