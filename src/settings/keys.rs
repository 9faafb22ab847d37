//! Where an API key comes from (`env:NAME`, `cmd:<command>`) and the key itself, which never
//! reaches a log line, a message or the ledger.

use serde::Deserialize;
use std::fmt;
use std::time::Duration;

/// Where the API key comes from: `env:NAME` or `cmd:<shell command>`. Never the key itself.
#[derive(Clone, Deserialize, PartialEq, Eq, Default)]
#[serde(transparent)]
pub struct KeySpec(pub String);

impl fmt::Debug for KeySpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // A `cmd:` may embed a literal secret (`cmd:echo sk-…`): only its kind is shown.
        match self.0.split_once(':') {
            Some(("env", name)) if is_env_name(name) => write!(f, "env:{name}"),
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
    #[error("must be \"env:NAME\" or \"cmd:<command>\"")]
    BadSpec,
    #[error("must be \"env:NAME\" with NAME an environment variable's name (letters, digits, _), not the key itself")]
    BadEnvName,
}

impl KeySpec {
    /// The variable of a well-formed `env:` spec.
    pub fn env_name(&self) -> Option<&str> {
        match self.0.split_once(':') {
            Some(("env", name)) if is_env_name(name) => Some(name),
            _ => None,
        }
    }

    /// Is this a well-formed spec? `env:` must name a variable (a key pasted after it would
    /// otherwise be treated as a name and echoed); the error never quotes the value.
    pub fn check(&self) -> Result<(), KeyError> {
        match self.0.split_once(':') {
            Some(("env", name)) if is_env_name(name) => Ok(()),
            Some(("env", _)) => Err(KeyError::BadEnvName),
            Some(("cmd", cmd)) if !cmd.trim().is_empty() => Ok(()),
            _ => Err(KeyError::BadSpec),
        }
    }

    /// Resolve the key now. `cmd:` runs through `sh -c` with a time limit.
    pub async fn resolve(&self) -> Result<ApiKey, KeyError> {
        match self.0.split_once(':') {
            Some(("env", name)) if is_env_name(name) => match std::env::var(name) {
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
            _ => Err(self.check().err().unwrap_or(KeyError::BadSpec)),
        }
    }
}

/// A POSIX environment variable name.
fn is_env_name(s: &str) -> bool {
    let mut chars = s.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
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
