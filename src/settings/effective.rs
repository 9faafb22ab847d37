//! The effective settings of one request or one report: what the user wrote (`setup()`, the
//! project file, the session's `:LlmModel`) resolved once into the values the request runs with
//! (ripgrep's `LowArgs` → `HiArgs`). The model, the judge, the caps, the key choice and the
//! routing are decided here only; the gate, the runners, `:LlmUsage`, `:LlmKey` and `:LlmModel`
//! read them from an [`Effective`] rather than merging again.

use super::bound::{self, BoundKey};
use super::{BudgetCaps, Config, KeySpec, ProjectSettings};
use crate::budget::CapKind;

/// What a request or a report runs with.
#[derive(Debug, Clone)]
pub struct Effective {
    /// The model of an edit: the session's (`:LlmModel`), else the project's `[model] default`,
    /// else `setup({ model })`.
    pub model: String,
    /// The model `:LlmReview` asks (`setup({ judge_model })`).
    pub judge_model: String,
    /// The caps: the project file's `[budget]` over `setup({ budget })`, and the global ones;
    /// an error while a cap in `setup()` cannot be read (never no cap).
    pub caps: Result<EffectiveCaps, CapsError>,
    /// Which key the project's requests use.
    pub key: KeyChoice,
    /// How OpenRouter may route the request.
    pub routing: Routing,
}

impl Effective {
    /// Resolves `cfg` (the user's settings) and `settings` (a trusted project file's, the
    /// defaults otherwise) with the session's model, when one is chosen. Pure: the bound key,
    /// a file, is looked up only by [`KeyChoice::used`].
    pub fn resolve(cfg: &Config, settings: &ProjectSettings, session_model: Option<&str>) -> Self {
        let model = session_model
            .map(str::to_string)
            .or_else(|| settings.default_model.clone())
            .unwrap_or_else(|| cfg.model.clone());
        let key = match &settings.key_name {
            Some(name) => KeyChoice::Named {
                name: name.clone(),
                spec: cfg.keys.get(name).cloned(),
                api_key: cfg.api_key.clone(),
            },
            None => KeyChoice::Unnamed {
                api_key: cfg.api_key.clone(),
            },
        };
        Effective {
            model,
            judge_model: cfg.judge_model.clone(),
            caps: effective_caps(cfg, settings),
            key,
            routing: Routing {
                max_price: cfg.max_price,
                data_collection: settings.data_collection.clone(),
            },
        }
    }
}

/// OpenRouter's routing preferences as the settings give them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Routing {
    /// `setup({ max_price })`: route no dearer than the list price (always so under a cap).
    pub max_price: bool,
    /// The project's `[privacy] data_collection`.
    pub data_collection: Option<String>,
}

/// The key a project's requests use, as the settings choose it.
#[derive(Debug, Clone)]
pub enum KeyChoice {
    /// The project file names one of the user's `keys` (`spec` is `None` for a name the user
    /// has not defined: the gate refuses such a request).
    Named {
        name: String,
        spec: Option<KeySpec>,
        api_key: KeySpec,
    },
    /// The key bound by `:LlmKey create` when there is one, else `api_key`.
    Unnamed { api_key: KeySpec },
}

/// The key a project's requests use, once the bound key is looked up.
#[derive(Debug, Clone)]
pub enum UsedKey {
    /// A key spec, and what the ledger records as `key_id` (`named:<name>`; `None` for
    /// `api_key`).
    Spec(KeySpec, Option<String>),
    /// Bound by `:LlmKey create`.
    Bound(BoundKey),
}

impl KeyChoice {
    /// The key used for `project`: a named key from the user's `keys`, else the one bound by
    /// `:LlmKey create`, else `api_key`. A name the user has not defined shows `api_key` (the
    /// gate refuses such requests before any key is used).
    pub fn used(&self, cfg: &Config, project: Option<&str>) -> UsedKey {
        match self {
            KeyChoice::Named {
                name,
                spec: Some(spec),
                ..
            } => UsedKey::Spec(spec.clone(), Some(format!("named:{name}"))),
            KeyChoice::Named {
                spec: None,
                api_key,
                ..
            } => UsedKey::Spec(api_key.clone(), None),
            KeyChoice::Unnamed { api_key } => {
                // As the gate picks it: a bound key only on OpenRouter.
                match project.and_then(|root| bound::in_use(cfg, root, None)) {
                    Some(b) => UsedKey::Bound(b),
                    None => UsedKey::Spec(api_key.clone(), None),
                }
            }
        }
    }
}

impl UsedKey {
    /// What the ledger records as the key (never the key itself).
    pub fn key_id(&self) -> Option<String> {
        match self {
            UsedKey::Spec(_, id) => id.clone(),
            UsedKey::Bound(b) => Some(b.key_id()),
        }
    }
}

/// A cap in `setup({ budget })` or `setup({ global_budget })` that cannot be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("setup {field}: {message}")]
pub struct CapsError {
    /// `budget` or `global_budget`.
    pub field: &'static str,
    pub message: String,
}

/// The caps that apply to a project.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EffectiveCaps {
    pub project: BudgetCaps,
    pub global: BudgetCaps,
    /// What the project file itself set (to say where a cap comes from).
    pub from_file: BudgetCaps,
}

impl EffectiveCaps {
    /// Whether any cap, project or global, applies.
    pub fn any(&self) -> bool {
        self.project.caps.any() || self.global.caps.any()
    }

    /// Whether the project file set this cap (else it came from the user's `setup()`).
    pub fn set_in_file(&self, kind: CapKind) -> bool {
        self.from_file.caps.get(kind).is_some()
    }
}

/// Each field of a trusted file's `[budget]` overrides the user's default for that field;
/// fields it leaves out keep the default (a file setting only `warn_at` must not lift caps).
pub fn effective_caps(
    cfg: &Config,
    settings: &ProjectSettings,
) -> Result<EffectiveCaps, CapsError> {
    let defaults = cfg.budget.caps().map_err(|e| CapsError {
        field: "budget",
        message: e.to_string(),
    })?;
    let file = settings.budget.unwrap_or_default();
    let global = cfg.global_budget.caps().map_err(|e| CapsError {
        field: "global_budget",
        message: e.to_string(),
    })?;
    Ok(EffectiveCaps {
        project: file.over(defaults),
        global,
        from_file: file,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;
    use std::path::Path;

    fn cfg() -> Config {
        let mut c = Config::resolve(&HashMap::new(), Some(Path::new("/nonexistent"))).0;
        c.model = "setup/model".into();
        c.judge_model = "setup/judge".into();
        c.keys
            .insert("client".into(), KeySpec("env:OR_CLIENT".into()));
        c
    }

    #[test]
    fn the_model_is_the_sessions_else_the_projects_else_setups() {
        let c = cfg();
        let mut s = ProjectSettings::default();
        assert_eq!(Effective::resolve(&c, &s, None).model, "setup/model");
        s.default_model = Some("file/model".into());
        assert_eq!(Effective::resolve(&c, &s, None).model, "file/model");
        let e = Effective::resolve(&c, &s, Some("session/model"));
        assert_eq!(e.model, "session/model");
        assert_eq!(e.judge_model, "setup/judge", "the judge is setup's only");
    }

    #[test]
    fn the_key_is_named_else_bound_else_api_key() {
        let c = cfg();
        let mut s = ProjectSettings::default();
        let used = Effective::resolve(&c, &s, None).key.used(&c, Some("/p"));
        assert!(matches!(&used, UsedKey::Spec(k, None) if k.0 == "env:OPENROUTER_API_KEY"));
        assert_eq!(used.key_id(), None);
        s.key_name = Some("client".into());
        let used = Effective::resolve(&c, &s, None).key.used(&c, Some("/p"));
        assert!(matches!(&used, UsedKey::Spec(k, _) if k.0 == "env:OR_CLIENT"));
        assert_eq!(used.key_id().as_deref(), Some("named:client"));
        s.key_name = Some("nosuch".into());
        let used = Effective::resolve(&c, &s, None).key.used(&c, Some("/p"));
        assert!(matches!(&used, UsedKey::Spec(k, None) if k.0 == "env:OPENROUTER_API_KEY"));
    }

    #[test]
    fn routing_and_caps_come_from_both_files() {
        let mut c = cfg();
        c.max_price = false;
        c.budget.daily_usd = Some(1.0);
        let mut s = ProjectSettings {
            data_collection: Some("deny".into()),
            ..ProjectSettings::default()
        };
        let e = Effective::resolve(&c, &s, None);
        assert_eq!(
            e.routing,
            Routing {
                max_price: false,
                data_collection: Some("deny".into())
            }
        );
        assert!(e.caps.unwrap().project.caps.daily.is_some());
        c.global_budget.daily_usd = Some(-1.0);
        s.data_collection = None;
        let e = Effective::resolve(&c, &s, None);
        assert_eq!(e.caps.unwrap_err().field, "global_budget");
    }
}
