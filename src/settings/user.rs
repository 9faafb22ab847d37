//! The user's settings: what `setup()` gave, resolved against the defaults.
//!
//! The shim checks only the types and shape of `setup()` (so a typo warns at once, without
//! starting the backend) and sends what it got in `hello`. The meaning lives here: defaults
//! and ranges (from the schema, `lua/frugal/settings.json`, read by both sides so they cannot
//! drift: see [`super::schema`]), key-spec forms and budget rules. A bad value keeps its default and gives one warning naming the key;
//! a bad cap also blocks every request until fixed (a cap that could not be read must not
//! become no cap).

use super::keys::KeySpec;
use super::project::BudgetSpec;
use super::schema;
use crate::message::{Level, Notice};
use rmpv::Value;
use serde::Deserialize;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Sent as `HTTP-Referer` for OpenRouter's app attribution.
pub const REFERER: &str = "https://github.com/frugal-nvim/frugal.nvim";

/// Seconds to wait for the response headers.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(30);

/// Settings from the user's (trusted) `setup()`, resolved.
#[derive(Debug, Clone)]
pub struct Config {
    pub base_url: String,
    /// `env:NAME` or `cmd:<shell command>`; [`KeySpec::none`] for `api_key = false`.
    pub api_key: KeySpec,
    /// Whether `setup()` set `api_key` (the default, `env:OPENROUTER_API_KEY`, is an OpenRouter
    /// key: it is never sent to another host).
    pub api_key_set: bool,
    /// A management key (`:LlmKey`): key-management calls only, never a model request.
    pub management_key: KeySpec,
    /// Named extra keys a project file may pick by name.
    pub keys: HashMap<String, KeySpec>,
    pub model: String,
    /// The model `:LlmReview` asks for verdicts on pending hunks (the judge).
    pub judge_model: String,
    /// Upper bound on the answer's length, always sent as `max_tokens`.
    pub max_tokens: u32,
    pub temperature: Option<f64>,
    /// Lines of context sent on each side of the selection.
    pub context_lines: usize,
    /// Upper bound on a request's prompt in bytes (every message: context files, history,
    /// the window): a larger edit is refused before any request.
    pub max_context_bytes: u64,
    /// The project's instruction files (`AGENTS.md`…), relative to its root, in order; empty:
    /// none. A trusted `.frugal.toml` may replace the list (`[context] instructions`).
    pub instructions: Vec<String>,
    /// Upper bound on the instruction files of a request, in bytes in all.
    pub max_instructions_bytes: u64,
    /// Sent as `HTTP-Referer` for OpenRouter's app attribution.
    pub referer: String,
    /// Default caps for projects whose file sets no `[budget]` (or is absent or untrusted).
    pub budget: BudgetSpec,
    /// Caps over all projects together.
    pub global_budget: BudgetSpec,
    /// Holds the ledger and the catalogue cache.
    pub data_dir: PathBuf,
    /// The backend's log level.
    pub log_level: LogLevel,
    /// Send `provider.max_price` at the catalogue price used for the worst case.
    pub max_price: bool,
    /// Below this many answer tokens, lowering `max_tokens` to fit a cap is pointless: refuse.
    pub min_useful_tokens: u32,
    /// Footprint factors for `:LlmUsage` (defaults: Mistral's published figures).
    pub footprint: Option<FootprintSpec>,
    /// Seconds an answer may stay silent (no byte at all, not even a keep-alive comment)
    /// before it is given up.
    pub stall_timeout_s: u64,
    pub history_days: u32,
    /// `setup({ prices })`: per-token prices the user gives (over the catalogue's).
    pub prices: HashMap<String, crate::budget::Price>,
    /// Bad caps in `setup()`: every request is refused until they are fixed (a cap that could
    /// not be read must not become no cap).
    pub config_errors: Vec<String>,
}

/// `setup({ footprint = { gco2e_per_token, ml_water_per_token, source } })`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FootprintSpec {
    pub gco2e_per_token: f64,
    pub ml_water_per_token: f64,
    pub source: String,
}

/// The backend's log level (`setup({ log_level })`, passed as `--log-level`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum LogLevel {
    Trace,
    Debug,
    #[default]
    Info,
    Warn,
    Error,
}

impl LogLevel {
    pub fn parse(s: &str) -> Option<LogLevel> {
        Some(match s {
            "trace" => LogLevel::Trace,
            "debug" => LogLevel::Debug,
            "info" => LogLevel::Info,
            "warn" => LogLevel::Warn,
            "error" => LogLevel::Error,
            _ => return None,
        })
    }

    pub fn tracing(self) -> tracing::Level {
        match self {
            LogLevel::Trace => tracing::Level::TRACE,
            LogLevel::Debug => tracing::Level::DEBUG,
            LogLevel::Info => tracing::Level::INFO,
            LogLevel::Warn => tracing::Level::WARN,
            LogLevel::Error => tracing::Level::ERROR,
        }
    }
}

impl Default for Config {
    /// The defaults alone, `data_dir` under Neovim's data directory found from the environment.
    fn default() -> Self {
        Config::resolve(&HashMap::new(), None).0
    }
}

/// What a bad value does: keeps the default, or (caps) blocks every request until fixed.
const DEFAULT_USED: &str = "default used";
const BLOCKED: &str = "no request is sent until it is fixed";

impl Config {
    /// The ledger file in `data_dir`.
    pub fn ledger_path(&self) -> PathBuf {
        self.data_dir.join(crate::budget::ledger::LEDGER_FILE)
    }

    /// Connecting never takes longer than an answer may stay silent.
    pub fn connect_timeout(&self) -> Duration {
        CONNECT_TIMEOUT.min(self.stall_timeout())
    }

    pub fn stall_timeout(&self) -> Duration {
        Duration::from_secs(self.stall_timeout_s)
    }

    /// Resolves what `setup()` gave over the defaults. `data_home` is Neovim's
    /// `stdpath("data")` (from the shim); without it, it is found the way Neovim finds it.
    /// Never fails: every bad value is a warning and keeps its default.
    pub fn resolve(
        given: &HashMap<String, Value>,
        data_home: Option<&Path>,
    ) -> (Config, Vec<Notice>) {
        let d = |k: &str| schema::default(k).clone();
        let dstr = |k: &str| d(k).as_str().unwrap_or_default().to_string();
        let dnum = |k: &str| d(k).as_f64().unwrap_or_default();
        let data_dir = data_home
            .map(|home| home.join("frugal"))
            .or_else(|| super::paths::default_data_dir(|k| std::env::var_os(k)))
            .unwrap_or_else(|| std::env::temp_dir().join("frugal"));
        let mut c = Config {
            base_url: dstr("base_url"),
            api_key: KeySpec(dstr("api_key")),
            api_key_set: false,
            management_key: KeySpec(dstr("management_key")),
            keys: HashMap::new(),
            model: dstr("model"),
            judge_model: dstr("judge_model"),
            max_tokens: dnum("max_tokens") as u32,
            temperature: Some(dnum("temperature")),
            context_lines: dnum("context_lines") as usize,
            max_context_bytes: dnum("max_context_bytes") as u64,
            instructions: d("instructions")
                .as_array()
                .map(|a| {
                    a.iter()
                        .filter_map(|p| p.as_str().map(String::from))
                        .collect()
                })
                .unwrap_or_default(),
            max_instructions_bytes: dnum("max_instructions_bytes") as u64,
            referer: REFERER.into(),
            budget: BudgetSpec::default(),
            global_budget: BudgetSpec::default(),
            data_dir,
            log_level: LogLevel::parse(&dstr("log_level")).unwrap_or_default(),
            max_price: d("max_price").as_bool().unwrap_or(true),
            min_useful_tokens: dnum("min_useful_tokens") as u32,
            footprint: None,
            stall_timeout_s: dnum("stall_timeout_s") as u64,
            history_days: dnum("history_days") as u32,
            prices: HashMap::new(),
            config_errors: Vec::new(),
        };
        let mut warnings = Vec::new();
        let mut keys: Vec<&String> = given.keys().collect();
        keys.sort();
        for key in keys {
            let v = &given[key];
            if v.is_nil() {
                continue;
            }
            if key == "prices" {
                match super::prices::parse(v) {
                    Ok((prices, problems)) => {
                        c.prices = prices;
                        warnings.extend(problems.into_iter().map(|message| Notice {
                            level: Level::Warn,
                            message,
                        }));
                    }
                    Err(want) => warnings.push(Notice {
                        level: Level::Warn,
                        message: format!(
                            "setup key prices must be a {want}, got {} (ignored)",
                            type_name(v)
                        ),
                    }),
                }
                continue;
            }
            let is_cap = key == "budget" || key == "global_budget";
            // `confirm_above_usd` is a project's (and setup budget's) only: over all projects
            // it means nothing. Named and dropped, the rest of the caps still read.
            let stripped;
            let v = if key == "global_budget" {
                match without_field(v, "confirm_above_usd") {
                    Some(rest) => {
                        warnings.push(Notice {
                            level: Level::Warn,
                            message: "setup key global_budget has confirm_above_usd, which applies per project only: set it in setup budget or in [budget] of .frugal.toml (ignored)".into(),
                        });
                        stripped = rest;
                        &stripped
                    }
                    None => v,
                }
            } else {
                v
            };
            if let Err(problem) = of_type(key, v).and_then(|()| c.set(key, v)) {
                let message = match problem {
                    Problem::Unknown => format!("unknown setup key {key:?} (ignored)"),
                    Problem::Type(want) => format!(
                        "setup key {key} must be a {want}, got {} ({})",
                        type_name(v),
                        if is_cap { BLOCKED } else { DEFAULT_USED }
                    ),
                    Problem::Value(what) => format!(
                        "setup key {key} {what} ({})",
                        if is_cap { BLOCKED } else { DEFAULT_USED }
                    ),
                };
                if is_cap {
                    c.config_errors.push(message.clone());
                }
                // A cap that could not be read blocks every request: an error, not a remark.
                warnings.push(Notice {
                    level: if is_cap { Level::Error } else { Level::Warn },
                    message,
                });
            }
        }
        (c, warnings)
    }

    /// Sets one key from `setup()`, or says what is wrong with the value.
    fn set(&mut self, key: &str, v: &Value) -> Result<(), Problem> {
        match key {
            "base_url" => {
                let s = string(v)?;
                if !(s.starts_with("http://") || s.starts_with("https://")) {
                    return Err(Problem::Value("must start with http:// or https://".into()));
                }
                self.base_url = s;
            }
            "api_key" => {
                let spec = match v {
                    // No key at all: a server that takes none (a local llama.cpp).
                    Value::Boolean(false) => KeySpec::none(),
                    Value::Boolean(true) => {
                        return Err(Problem::Value(
                            "must be \"env:NAME\", \"cmd:<command>\" or false (no key)".into(),
                        ))
                    }
                    _ => KeySpec(string(v)?),
                };
                if !spec.is_none() {
                    spec.check().map_err(|e| Problem::Value(e.to_string()))?;
                }
                self.api_key = spec;
                self.api_key_set = true;
            }
            "management_key" => {
                let spec = KeySpec(string(v)?);
                spec.check().map_err(|e| Problem::Value(e.to_string()))?;
                self.management_key = spec;
            }
            "keys" => {
                let Value::Map(entries) = v else {
                    return Err(Problem::Type("table".into()));
                };
                let mut keys = HashMap::new();
                for (name, spec) in entries {
                    let name = name.as_str().map(str::to_string);
                    let spec = spec.as_str().map(|s| KeySpec(s.to_string()));
                    match (name, spec) {
                        (Some(name), Some(spec)) if spec.check().is_ok() => {
                            keys.insert(name, spec);
                        }
                        (name, _) => {
                            return Err(Problem::Value(format!(
                                "entry {:?} must be \"env:NAME\" or \"cmd:<command>\"",
                                name.unwrap_or_default()
                            )))
                        }
                    }
                }
                self.keys = keys;
            }
            "model" => {
                let s = string(v)?;
                if s.trim().is_empty() {
                    return Err(Problem::Value("must not be empty".into()));
                }
                self.model = s;
            }
            "judge_model" => {
                let s = string(v)?;
                if s.trim().is_empty() {
                    return Err(Problem::Value("must not be empty".into()));
                }
                self.judge_model = s;
            }
            "budget" | "global_budget" => {
                let spec = budget(v)?;
                if key == "budget" {
                    self.budget = spec;
                } else {
                    self.global_budget = spec;
                }
            }
            "data_dir" => {
                self.data_dir = super::paths::expand(&string(v)?, |k| std::env::var_os(k))
                    .map_err(Problem::Value)?
            }
            "log_level" => {
                self.log_level = LogLevel::parse(&string(v)?).ok_or_else(|| {
                    Problem::Value("must be one of trace, debug, info, warn, error".into())
                })?
            }
            // Ranges from the schema; each fits its field's type (u32 for token counts).
            "max_tokens" => self.max_tokens = ranged(key, v)? as u32,
            "min_useful_tokens" => self.min_useful_tokens = ranged(key, v)? as u32,
            "context_lines" => self.context_lines = ranged(key, v)? as usize,
            "max_context_bytes" => self.max_context_bytes = ranged(key, v)? as u64,
            "stall_timeout_s" => self.stall_timeout_s = ranged(key, v)? as u64,
            "max_instructions_bytes" => self.max_instructions_bytes = ranged(key, v)? as u64,
            "instructions" => self.instructions = path_list(v).map_err(Problem::Value)?,
            "history_days" => self.history_days = ranged(key, v)? as u32,
            "temperature" => self.temperature = Some(ranged(key, v)?),
            "max_price" => {
                self.max_price = v.as_bool().ok_or_else(|| Problem::Type("boolean".into()))?;
            }
            "footprint" => {
                self.footprint = match v {
                    Value::Boolean(false) => None,
                    Value::Map(_) => Some(rmpv::ext::from_value(v.clone()).map_err(|_| {
                        Problem::Value(
                            "needs gco2e_per_token (number), ml_water_per_token (number) and source (string)"
                                .into(),
                        )
                    })?),
                    Value::Boolean(true) => {
                        return Err(Problem::Value("must be a table or false".into()))
                    }
                    _ => return Err(Problem::Type("table or boolean".into())),
                }
            }
            _ => return Err(Problem::Unknown),
        }
        Ok(())
    }
}

/// Whether `key` is a backend setting and `v` of a type the schema takes for it.
fn of_type(key: &str, v: &Value) -> Result<(), Problem> {
    match schema::schema().get(key) {
        Some(e) if !e.shim_only => {
            if e.types.iter().any(|t| t == type_name(v)) {
                Ok(())
            } else {
                Err(Problem::Type(e.types.join(" or ")))
            }
        }
        _ => Err(Problem::Unknown),
    }
}

/// What is wrong with one `setup()` value.
enum Problem {
    Unknown,
    /// The types the value must have (`table or boolean`).
    Type(String),
    /// The rest of "setup key X …": what the value must be.
    Value(String),
}

fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Nil => "nil",
        Value::Boolean(_) => "boolean",
        Value::Integer(_) | Value::F32(_) | Value::F64(_) => "number",
        Value::String(_) | Value::Binary(_) => "string",
        Value::Array(_) | Value::Map(_) => "table",
        Value::Ext(..) => "userdata",
    }
}

fn string(v: &Value) -> Result<String, Problem> {
    v.as_str()
        .map(str::to_string)
        .ok_or_else(|| Problem::Type("string".into()))
}

fn number(v: &Value) -> Result<f64, Problem> {
    match v {
        Value::Integer(i) => Ok(i.as_f64().unwrap_or(f64::NAN)),
        Value::F32(x) => Ok(*x as f64),
        Value::F64(x) => Ok(*x),
        _ => Err(Problem::Type("number".into())),
    }
    .and_then(|x| {
        if x.is_finite() {
            Ok(x)
        } else {
            Err(Problem::Value("must be a finite number".into()))
        }
    })
}

/// A number in the schema's range for `key`.
fn ranged(key: &str, v: &Value) -> Result<f64, Problem> {
    let x = number(v)?;
    match schema::entry(key).range {
        Some(r) if !r.contains(x) => Err(Problem::Value(r.must_be())),
        _ => Ok(x),
    }
}

/// A list of paths (`instructions`): strings, none empty; an empty table is an empty list
/// (an empty Lua table may arrive as a map). The error is the rest of "setup key X …".
pub fn path_list(v: &Value) -> Result<Vec<String>, String> {
    let items = match v {
        Value::Array(items) => items,
        Value::Map(m) if m.is_empty() => return Ok(Vec::new()),
        _ => return Err("must be a list of paths relative to the project root".into()),
    };
    items
        .iter()
        .enumerate()
        .map(|(i, p)| match p.as_str() {
            Some(s) if !s.trim().is_empty() && !s.contains('\0') => Ok(s.to_string()),
            _ => Err(format!(
                "entry {} must be a path relative to the project root",
                i + 1
            )),
        })
        .collect()
}

/// The table `v` without `field`, when it has it.
fn without_field(v: &Value, field: &str) -> Option<Value> {
    let Value::Map(entries) = v else { return None };
    entries
        .iter()
        .any(|(k, _)| k.as_str() == Some(field))
        .then(|| {
            Value::Map(
                entries
                    .iter()
                    .filter(|(k, _)| k.as_str() != Some(field))
                    .cloned()
                    .collect(),
            )
        })
}

/// A `budget` / `global_budget` table: known fields, each a valid amount.
fn budget(v: &Value) -> Result<BudgetSpec, Problem> {
    let Value::Map(entries) = v else {
        return Err(Problem::Type("table".into()));
    };
    // An empty Lua table may arrive as an array.
    let spec: BudgetSpec = if entries.is_empty() {
        BudgetSpec::default()
    } else {
        for (k, _) in entries {
            let k = k.as_str().unwrap_or_default();
            if !BudgetSpec::FIELDS.contains(&k) {
                return Err(Problem::Value(format!(
                    "has an unknown field {k:?} (known: {})",
                    BudgetSpec::FIELDS.join(", ")
                )));
            }
        }
        rmpv::ext::from_value(v.clone())
            .map_err(|e| Problem::Value(format!("has a bad field: {e}")))?
    };
    spec.caps()
        .map_err(|e| Problem::Value(format!("field {e}")))?;
    Ok(spec)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn given(pairs: &[(&str, Value)]) -> HashMap<String, Value> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.clone()))
            .collect()
    }

    #[test]
    fn defaults_come_from_the_shared_file() {
        let (c, w) = Config::resolve(&HashMap::new(), Some(Path::new("/data")));
        assert!(w.is_empty());
        assert_eq!(c.base_url, "https://openrouter.ai/api/v1");
        assert_eq!(c.model, "anthropic/claude-sonnet-4.5");
        assert_eq!(c.judge_model, "google/gemini-2.5-flash");
        assert_eq!(c.max_tokens, 4096);
        assert_eq!(c.context_lines, 200);
        assert_eq!(c.max_context_bytes, 200_000);
        assert_eq!(c.min_useful_tokens, 512);
        assert_eq!(c.data_dir, PathBuf::from("/data/frugal"));
        assert!(c.max_price);
        assert_eq!(c.log_level, LogLevel::Info);
        assert_eq!(c.stall_timeout(), Duration::from_secs(60));
        assert_eq!(c.connect_timeout(), Duration::from_secs(30));
        assert_eq!(
            c.instructions,
            [
                "AGENTS.md",
                "CLAUDE.md",
                "CONVENTIONS.md",
                ".cursorrules",
                ".github/copilot-instructions.md"
            ]
        );
        assert_eq!(c.max_instructions_bytes, 20_000);
    }

    #[test]
    fn instructions_are_a_list_of_paths_and_an_empty_table_turns_them_off() {
        let list = Value::Array(vec!["docs/STYLE.md".into(), "AGENTS.md".into()]);
        let (c, w) = Config::resolve(&given(&[("instructions", list)]), None);
        assert!(w.is_empty(), "{w:?}");
        assert_eq!(c.instructions, ["docs/STYLE.md", "AGENTS.md"]);
        let (c, w) = Config::resolve(&given(&[("instructions", Value::Map(vec![]))]), None);
        assert!(w.is_empty() && c.instructions.is_empty());
        for bad in [
            Value::Array(vec![Value::from(3)]),
            Value::Array(vec!["".into()]),
            Value::Map(vec![("a".into(), "b".into())]),
        ] {
            let (c, w) = Config::resolve(&given(&[("instructions", bad)]), None);
            assert_eq!(c.instructions.len(), 5, "default kept");
            assert!(
                w[0].message.starts_with("setup key instructions must be")
                    || w[0].message.starts_with("setup key instructions entry 1"),
                "{}",
                w[0].message
            );
        }
        let (c, _) = Config::resolve(&given(&[("max_instructions_bytes", Value::from(0))]), None);
        assert_eq!(c.max_instructions_bytes, 0);
    }

    #[test]
    fn max_context_bytes_is_checked() {
        for bad in [Value::from(-1), Value::from(0.5), Value::from(10)] {
            let (c, w) = Config::resolve(&given(&[("max_context_bytes", bad)]), None);
            assert_eq!(c.max_context_bytes, 200_000);
            assert!(
                w[0].message
                    .starts_with("setup key max_context_bytes must be"),
                "{}",
                w[0].message
            );
        }
        let (c, w) = Config::resolve(&given(&[("max_context_bytes", Value::from(5000))]), None);
        assert!(w.is_empty());
        assert_eq!(c.max_context_bytes, 5000);
    }

    #[test]
    fn stall_timeout_s_is_checked() {
        for bad in [
            Value::from(0),
            Value::from(1.5),
            Value::from(86_400),
            Value::from("60"),
        ] {
            let (c, w) = Config::resolve(&given(&[("stall_timeout_s", bad)]), None);
            assert_eq!(c.stall_timeout_s, 60);
            assert_eq!(w.len(), 1);
            assert!(
                w[0].message
                    .starts_with("setup key stall_timeout_s must be"),
                "{w:?}"
            );
        }
        let (c, w) = Config::resolve(&given(&[("stall_timeout_s", Value::from(5))]), None);
        assert!(w.is_empty());
        assert_eq!(c.stall_timeout(), Duration::from_secs(5));
        assert_eq!(c.connect_timeout(), Duration::from_secs(5));
    }

    #[test]
    fn bad_values_keep_their_defaults_with_one_warning_each() {
        let (c, w) = Config::resolve(
            &given(&[
                ("max_tokens", Value::from(8)),
                ("log_level", Value::from("loud")),
                ("model", Value::from(42)),
                ("temperature", Value::from(3.5)),
                ("api_key", Value::from("sk-or-v1-literal")),
                ("nosuch", Value::from(1)),
            ]),
            None,
        );
        assert_eq!(c.max_tokens, 4096);
        assert_eq!(c.model, "anthropic/claude-sonnet-4.5");
        assert_eq!(w.len(), 6, "{w:?}");
        let all: Vec<&str> = w.iter().map(|w| w.message.as_str()).collect();
        assert!(all
            .iter()
            .any(|m| m.starts_with("setup key max_tokens must be a whole number of at least 16")));
        assert!(all
            .iter()
            .any(|m| m.starts_with("setup key log_level must be one of")));
        assert!(all
            .iter()
            .any(|m| m.starts_with("setup key model must be a string, got number")));
        assert!(all
            .iter()
            .any(|m| m.starts_with("unknown setup key \"nosuch\"")));
        assert!(all.iter().all(|m| !m.contains("literal")), "{all:?}");
        assert!(c.config_errors.is_empty());
    }

    #[test]
    fn judge_model_is_a_non_empty_string() {
        let (c, w) = Config::resolve(
            &given(&[("judge_model", Value::from("openai/gpt-4o"))]),
            None,
        );
        assert!(w.is_empty(), "{w:?}");
        assert_eq!(c.judge_model, "openai/gpt-4o");
        for bad in [Value::from(""), Value::from(3)] {
            let (c, w) = Config::resolve(&given(&[("judge_model", bad)]), None);
            assert_eq!(c.judge_model, "google/gemini-2.5-flash");
            assert_eq!(w.len(), 1);
            assert!(
                w[0].message.starts_with("setup key judge_model must"),
                "{w:?}"
            );
        }
    }

    #[test]
    fn management_key_takes_the_forms_of_api_key() {
        let (c, w) = Config::resolve(&HashMap::new(), None);
        assert!(w.is_empty());
        assert_eq!(
            c.management_key.env_name(),
            Some("OPENROUTER_MANAGEMENT_KEY")
        );
        let (c, w) = Config::resolve(
            &given(&[("management_key", Value::from("cmd:pass show or-mgmt"))]),
            None,
        );
        assert!(w.is_empty(), "{w:?}");
        assert!(c.management_key.is_cmd());
        let (c, w) = Config::resolve(
            &given(&[("management_key", Value::from("sk-or-v1-MGMTLITERAL"))]),
            None,
        );
        assert_eq!(w.len(), 1);
        assert!(
            w[0].message.starts_with("setup key management_key must be"),
            "{w:?}"
        );
        assert!(!w[0].message.contains("MGMTLITERAL"));
        assert_eq!(
            c.management_key.env_name(),
            Some("OPENROUTER_MANAGEMENT_KEY"),
            "the default kept"
        );
        assert!(c.config_errors.is_empty(), "requests are not blocked");
    }

    #[test]
    fn api_key_set_explicitly_or_false_for_no_key() {
        let (c, _) = Config::resolve(&HashMap::new(), None);
        assert!(!c.api_key_set, "the default is not set by the user");
        assert_eq!(c.api_key.env_name(), Some("OPENROUTER_API_KEY"));
        let (c, w) = Config::resolve(
            &given(&[("api_key", Value::from("env:OPENROUTER_API_KEY"))]),
            None,
        );
        assert!(w.is_empty(), "{w:?}");
        assert!(c.api_key_set, "the same value, set explicitly");
        let (c, w) = Config::resolve(&given(&[("api_key", Value::from(false))]), None);
        assert!(w.is_empty(), "{w:?}");
        assert!(c.api_key_set && c.api_key.is_none());
        for bad in [
            Value::from(true),
            Value::from(3),
            Value::from("sk-or-v1-LIT"),
        ] {
            let (c, w) = Config::resolve(&given(&[("api_key", bad)]), None);
            assert!(!c.api_key_set, "a bad value keeps the default, unset");
            assert_eq!(w.len(), 1);
            assert!(
                w[0].message.starts_with("setup key api_key must be"),
                "{w:?}"
            );
            assert!(!w[0].message.contains("LIT"), "{w:?}");
        }
    }

    #[test]
    fn a_huge_max_tokens_is_a_warning_not_a_dead_backend() {
        let (c, w) = Config::resolve(&given(&[("max_tokens", Value::from(5e9))]), None);
        assert_eq!(c.max_tokens, 4096);
        assert_eq!(w.len(), 1);
    }

    #[test]
    fn data_dir_is_expanded_and_must_be_absolute() {
        let home = std::env::var("HOME").expect("HOME is set for the tests");
        let (c, w) = Config::resolve(&given(&[("data_dir", Value::from("~/x"))]), None);
        assert!(w.is_empty(), "{w:?}");
        assert_eq!(c.data_dir, Path::new(&home).join("x"));
        let (c, w) = Config::resolve(
            &given(&[("data_dir", Value::from("frugal-data"))]),
            Some(Path::new("/data")),
        );
        assert_eq!(
            c.data_dir,
            PathBuf::from("/data/frugal"),
            "the default kept"
        );
        assert_eq!(w.len(), 1);
        assert!(
            w[0].message
                .starts_with("setup key data_dir must be an absolute path"),
            "{w:?}"
        );
        assert!(w[0].message.ends_with("(default used)"), "{w:?}");
        assert!(c.config_errors.is_empty());
    }

    #[test]
    fn bad_caps_block_requests() {
        let b = vec![
            (Value::from("daily_usd"), Value::from(1)),
            (Value::from("monthly"), Value::from(5)),
        ];
        let (c, w) = Config::resolve(&given(&[("budget", Value::Map(b))]), None);
        assert_eq!(w.len(), 1);
        assert!(
            w[0].message
                .starts_with("setup key budget has an unknown field \"monthly\""),
            "{w:?}"
        );
        assert!(w[0]
            .message
            .contains("no request is sent until it is fixed"));
        assert_eq!(w[0].level, Level::Error, "it blocks every request");
        assert_eq!(c.config_errors.len(), 1);
        let neg = vec![(Value::from("daily_usd"), Value::from(-1))];
        let (c, _) = Config::resolve(&given(&[("global_budget", Value::Map(neg))]), None);
        assert_eq!(c.config_errors.len(), 1, "{:?}", c.config_errors);
    }

    #[test]
    fn confirm_above_usd_is_a_budget_field_not_a_global_one() {
        let with = |v: Value| {
            Value::Map(vec![
                (Value::from("daily_usd"), Value::from(1)),
                (Value::from("confirm_above_usd"), v),
            ])
        };
        let (c, w) = Config::resolve(&given(&[("budget", with(Value::from(0.05)))]), None);
        assert!(w.is_empty(), "{w:?}");
        assert_eq!(
            c.budget.caps().unwrap().confirm_above,
            Some(crate::budget::Usd::parse_decimal("0.05").unwrap())
        );
        // In global_budget it is named and ignored; the caps beside it still hold.
        let (c, w) = Config::resolve(&given(&[("global_budget", with(Value::from(0.05)))]), None);
        assert_eq!(w.len(), 1, "{w:?}");
        assert_eq!(w[0].level, Level::Warn);
        assert!(
            w[0].message
                .starts_with("setup key global_budget has confirm_above_usd"),
            "{w:?}"
        );
        assert!(c.config_errors.is_empty());
        assert!(c.global_budget.caps().unwrap().caps.daily.is_some());
        assert_eq!(c.global_budget.confirm_above_usd, None);
        // A bad value in budget is read like a bad cap.
        let (c, w) = Config::resolve(&given(&[("budget", with(Value::from(-2)))]), None);
        assert_eq!(w[0].level, Level::Error, "{w:?}");
        assert!(w[0].message.contains("confirm_above_usd"), "{w:?}");
        assert_eq!(c.config_errors.len(), 1);
    }

    #[test]
    fn prices_are_read_entry_by_entry() {
        let entry = |p: Value, c: Value| {
            Value::Map(vec![
                (Value::from("prompt"), p),
                (Value::from("completion"), c),
            ])
        };
        let prices = Value::Map(vec![
            (
                Value::from("local/llama"),
                entry(Value::from(0), Value::from(0)),
            ),
            (Value::from("bad"), entry(Value::from(-1), Value::from(0))),
        ]);
        let (c, w) = Config::resolve(&given(&[("prices", prices)]), None);
        assert_eq!(c.prices.len(), 1);
        assert!(c.prices["local/llama"].is_free());
        assert_eq!(w.len(), 1, "{w:?}");
        assert_eq!(
            w[0].level,
            Level::Warn,
            "an unpriced model is refused under a cap"
        );
        assert!(w[0].message.contains("prices entry \"bad\""), "{w:?}");
        assert!(c.config_errors.is_empty());
        let (c, w) = Config::resolve(&given(&[("prices", Value::from("cheap"))]), None);
        assert!(c.prices.is_empty());
        assert_eq!(
            w[0].message,
            "setup key prices must be a table, got string (ignored)"
        );
    }

    #[test]
    fn good_values_are_taken() {
        let budget = Value::Map(vec![(Value::from("daily_usd"), Value::from(0.5))]);
        let keys = Value::Map(vec![(Value::from("client"), Value::from("env:OR_CLIENT"))]);
        let (c, w) = Config::resolve(
            &given(&[
                ("base_url", Value::from("http://127.0.0.1:9/api/v1/")),
                ("max_tokens", Value::from(100)),
                ("temperature", Value::from(0.7)),
                ("budget", budget),
                ("keys", keys),
                ("max_price", Value::from(false)),
                ("footprint", Value::from(false)),
            ]),
            None,
        );
        assert!(w.is_empty(), "{w:?}");
        assert_eq!(c.base_url, "http://127.0.0.1:9/api/v1/");
        assert_eq!(c.max_tokens, 100);
        assert_eq!(c.temperature, Some(0.7));
        assert_eq!(c.budget.daily_usd, Some(0.5));
        assert!(c.keys.contains_key("client"));
        assert!(!c.max_price);
    }
}
