//! The effective settings the shim hands the backend, and the API key behind them.
//!
//! The shim validates `setup()` keys (so the user sees warnings at start-up without the backend
//! running); here they are decoded leniently with defaults, so an older shim never breaks us.

use crate::project::BudgetSpec;
use serde::Deserialize;
use std::collections::HashMap;
use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

/// Settings from the user's (trusted) `setup()`.
#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct Config {
    pub base_url: String,
    /// `env:NAME` or `cmd:<shell command>`.
    pub api_key: KeySpec,
    /// Named extra keys a project file may pick by name.
    pub keys: HashMap<String, KeySpec>,
    pub model: String,
    /// Upper bound on the answer's length, always sent as `max_tokens`.
    pub max_tokens: u32,
    pub temperature: Option<f64>,
    /// Lines of context sent on each side of the selection.
    pub context_lines: usize,
    /// Sent as `HTTP-Referer` for OpenRouter's app attribution.
    pub referer: String,
    /// Seconds to wait for the response headers.
    pub connect_timeout_s: u64,
    /// Default caps for projects whose file sets no `[budget]` (or is absent or untrusted).
    pub budget: BudgetSpec,
    /// Caps over all projects together.
    pub global_budget: BudgetSpec,
    /// Holds the ledger and the catalogue cache.
    pub data_dir: PathBuf,
    /// Send `provider.max_price` at the catalogue price used for the worst case.
    pub max_price: bool,
    /// Below this many answer tokens, lowering `max_tokens` to fit a cap is pointless: refuse.
    pub min_useful_tokens: u32,
    /// Footprint factors for `:LlmUsage` (defaults: Mistral's published figures).
    pub footprint: Option<FootprintSpec>,
    /// Bad caps in `setup()`: every request is refused until they are fixed (a cap that could
    /// not be read must not become no cap).
    pub config_errors: Vec<String>,
}

/// `setup({ footprint = { gco2e_per_token, ml_water_per_token, source } })`.
#[derive(Debug, Clone, Deserialize)]
pub struct FootprintSpec {
    pub gco2e_per_token: f64,
    pub ml_water_per_token: f64,
    pub source: String,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            base_url: "https://openrouter.ai/api/v1".into(),
            api_key: KeySpec("env:OPENROUTER_API_KEY".into()),
            keys: HashMap::new(),
            model: "anthropic/claude-sonnet-4.5".into(),
            max_tokens: 4096,
            temperature: Some(0.0),
            context_lines: 200,
            referer: "https://github.com/frugal-nvim/frugal.nvim".into(),
            connect_timeout_s: 30,
            budget: BudgetSpec::default(),
            global_budget: BudgetSpec::default(),
            data_dir: std::env::temp_dir().join("frugal"),
            max_price: true,
            min_useful_tokens: 512,
            footprint: None,
            config_errors: Vec::new(),
        }
    }
}

impl Config {
    /// The ledger file in `data_dir`.
    pub fn ledger_path(&self) -> PathBuf {
        self.data_dir.join(crate::budget::ledger::LEDGER_FILE)
    }

    pub fn connect_timeout(&self) -> Duration {
        Duration::from_secs(self.connect_timeout_s.max(1))
    }
}

/// Where the API key comes from: `env:NAME` or `cmd:<shell command>`. Never the key itself.
#[derive(Clone, Deserialize, PartialEq, Eq, Default)]
#[serde(transparent)]
pub struct KeySpec(pub String);

impl fmt::Debug for KeySpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // A `cmd:` may embed a literal secret (`cmd:echo sk-…`): only its kind is shown.
        match self.0.split_once(':') {
            Some(("env", name)) => write!(f, "env:{name}"),
            Some(("cmd", _)) => f.write_str("cmd:<command>"),
            _ => f.write_str("<invalid>"),
        }
    }
}

/// An API key. It has no `Display`, and its `Debug` hides the value, so it cannot reach a log
/// line or a message by accident.
#[derive(Clone, PartialEq, Eq)]
pub struct ApiKey(String);

impl fmt::Debug for ApiKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ApiKey(<redacted>)")
    }
}

impl ApiKey {
    pub fn new(value: String) -> Self {
        ApiKey(value)
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

/// Why no key could be had; the message names the source, never a value.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum KeyError {
    #[error("the API key environment variable {0} is not set (setup: api_key = \"env:{0}\"); export it before starting Neovim")]
    EnvMissing(String),
    #[error("the api_key command failed ({0}); check setup({{ api_key = \"cmd:…\" }})")]
    CmdFailed(String),
    #[error("the api_key command printed nothing; check setup({{ api_key = \"cmd:…\" }})")]
    CmdEmpty,
    #[error("api_key must be \"env:NAME\" or \"cmd:<command>\", got {0:?}")]
    BadSpec(String),
}

impl KeySpec {
    /// Resolve the key now. `cmd:` runs through `sh -c` with a time limit.
    pub async fn resolve(&self) -> Result<ApiKey, KeyError> {
        match self.0.split_once(':') {
            Some(("env", name)) => match std::env::var(name) {
                Ok(v) if !v.trim().is_empty() => Ok(ApiKey(v.trim().to_string())),
                _ => Err(KeyError::EnvMissing(name.to_string())),
            },
            Some(("cmd", cmd)) => {
                let out = tokio::time::timeout(
                    Duration::from_secs(20),
                    tokio::process::Command::new("sh")
                        .arg("-c")
                        .arg(cmd)
                        .stdin(std::process::Stdio::null())
                        .stderr(std::process::Stdio::null())
                        .kill_on_drop(true)
                        .output(),
                )
                .await
                .map_err(|_| KeyError::CmdFailed("timed out after 20 s".into()))?
                .map_err(|e| KeyError::CmdFailed(e.to_string()))?;
                if !out.status.success() {
                    return Err(KeyError::CmdFailed(format!("exit status {}", out.status)));
                }
                // The first line: `pass show` and friends print notes after the secret.
                let key = String::from_utf8_lossy(&out.stdout)
                    .lines()
                    .map(str::trim)
                    .find(|l| !l.is_empty())
                    .unwrap_or("")
                    .to_string();
                if key.is_empty() {
                    return Err(KeyError::CmdEmpty);
                }
                Ok(ApiKey(key))
            }
            _ => Err(KeyError::BadSpec(format!("{self:?}"))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_never_shows_secrets() {
        let key = ApiKey("sk-or-v1-secret".into());
        assert!(!format!("{key:?}").contains("secret"));
        let spec = KeySpec("cmd:echo sk-or-v1-secret".into());
        assert!(!format!("{spec:?}").contains("secret"));
    }

    #[tokio::test]
    async fn resolves_env_and_cmd() {
        std::env::set_var("FRUGAL_TEST_KEY_X", "sk-or-v1-abc");
        let k = KeySpec("env:FRUGAL_TEST_KEY_X".into())
            .resolve()
            .await
            .unwrap();
        assert_eq!(k.expose(), "sk-or-v1-abc");
        let k = KeySpec("cmd:printf 'sk-or-v1-cmd\\nurl: openrouter.ai\\n'".into())
            .resolve()
            .await
            .unwrap();
        assert_eq!(k.expose(), "sk-or-v1-cmd");
        let e = KeySpec("env:FRUGAL_TEST_KEY_MISSING".into())
            .resolve()
            .await
            .unwrap_err();
        assert!(e.to_string().contains("FRUGAL_TEST_KEY_MISSING"));
        let e = KeySpec("cmd:false".into()).resolve().await.unwrap_err();
        assert!(matches!(e, KeyError::CmdFailed(_)));
        let e = KeySpec("sk-or-v1-literal".into())
            .resolve()
            .await
            .unwrap_err();
        assert!(!e.to_string().contains("literal"));
    }
}
