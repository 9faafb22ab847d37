//! Where an API key comes from (`env:NAME`, `cmd:<command>`) and the key itself, which never
//! reaches a log line, a message or the ledger.

use serde::Deserialize;
use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Where the API key comes from: `env:NAME` or `cmd:<shell command>`. Never the key itself.
/// `api_key = false` in `setup()` is [`KeySpec::none`]: no key at all (a server that takes
/// none, such as a local llama.cpp).
#[derive(Clone, Deserialize, PartialEq, Eq, Default)]
#[serde(transparent)]
pub struct KeySpec(pub String);

/// [`KeySpec::none`]'s text: no `env:` or `cmd:` spec can be spelt so (nor given as a string:
/// [`KeySpec::check`] refuses it), only `api_key = false`.
const NO_KEY: &str = "none:";

impl fmt::Debug for KeySpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // A `cmd:` may embed a literal secret (`cmd:echo sk-…`): only its kind is shown.
        match self.0.split_once(':') {
            Some(("env", name)) if is_env_name(name) => write!(f, "env:{name}"),
            Some(("cmd", _)) => f.write_str("cmd:<command>"),
            _ if self.is_none() => f.write_str("none (api_key = false)"),
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
    /// No key: requests carry no `Authorization` header (`setup({ api_key = false })`).
    pub fn none() -> KeySpec {
        KeySpec(NO_KEY.to_string())
    }

    /// Is this [`KeySpec::none`]?
    pub fn is_none(&self) -> bool {
        self.0 == NO_KEY
    }

    /// Is the key printed by a command (`cmd:`)?
    pub fn is_cmd(&self) -> bool {
        matches!(self.0.split_once(':'), Some(("cmd", _)))
    }

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
        if self.is_none() {
            // Empty: the client sends no `Authorization` header for it.
            return Ok(ApiKey(String::new()));
        }
        match self.0.split_once(':') {
            Some(("env", name)) if is_env_name(name) => match std::env::var(name) {
                Ok(v) if !v.trim().is_empty() => Ok(ApiKey(v.trim().to_string())),
                _ => Err(KeyError::EnvMissing(name.to_string())),
            },
            Some(("cmd", cmd)) => {
                let out = tokio::time::timeout(Duration::from_secs(20), run_key_command(cmd))
                    .await
                    .map_err(|_| KeyError::CmdFailed("timed out after 20 s".into()))??;
                // The first line: `pass show` and friends print notes after the secret.
                let key = String::from_utf8_lossy(&out)
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

/// The most a key command may print: a key and a few notes (`pass show`), never more.
const CMD_OUTPUT_BYTES: usize = 64 << 10;

/// Runs a key command through `sh -c` and returns what it printed, read within a bound (an
/// endless printer must not grow the memory until the time limit). Killed when dropped.
async fn run_key_command(cmd: &str) -> Result<Vec<u8>, KeyError> {
    use tokio::io::AsyncReadExt;
    let failed = |e: std::io::Error| KeyError::CmdFailed(e.to_string());
    let mut child = tokio::process::Command::new("sh")
        .arg("-c")
        .arg(cmd)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .map_err(failed)?;
    let mut out = Vec::new();
    if let Some(stdout) = child.stdout.take() {
        stdout
            .take(CMD_OUTPUT_BYTES as u64 + 1)
            .read_to_end(&mut out)
            .await
            .map_err(failed)?;
    }
    if out.len() > CMD_OUTPUT_BYTES {
        return Err(KeyError::CmdFailed(
            "it printed more than 64 KiB; it must print the key on its first line".into(),
        ));
    }
    let status = child.wait().await.map_err(failed)?;
    if !status.success() {
        return Err(KeyError::CmdFailed(format!("exit status {status}")));
    }
    Ok(out)
}

/// The keys of this session, by spec. A `cmd:` key's command (a password manager, often slow
/// or asking for a passphrase) runs once per session, and again after a 401 says its key was
/// refused; the key is held in memory only, never written anywhere. `env:` keys are read each
/// time (that costs nothing).
#[derive(Default)]
pub struct KeyCache {
    /// One slot per `cmd:` spec; its lock is held while the command runs, so two requests
    /// wanting the key at once run it once.
    slots: Mutex<HashMap<String, Arc<tokio::sync::Mutex<Option<ApiKey>>>>>,
}

impl KeyCache {
    fn slot(&self, spec: &KeySpec) -> Arc<tokio::sync::Mutex<Option<ApiKey>>> {
        self.slots
            .lock()
            .expect("key cache lock poisoned")
            .entry(spec.0.clone())
            .or_default()
            .clone()
    }

    /// The key of `spec`: a `cmd:` key from this session's cache, running the command once.
    pub async fn get(&self, spec: &KeySpec) -> Result<ApiKey, KeyError> {
        if !spec.is_cmd() {
            return spec.resolve().await;
        }
        let slot = self.slot(spec);
        let mut held = slot.lock().await;
        if let Some(k) = held.as_ref() {
            return Ok(k.clone());
        }
        let k = spec.resolve().await?;
        *held = Some(k.clone());
        Ok(k)
    }

    /// `key` was refused (401): the next [`KeyCache::get`] runs the command again (unless
    /// another request already did, and holds a different key).
    pub async fn forget(&self, spec: &KeySpec, key: &ApiKey) {
        if !spec.is_cmd() {
            return;
        }
        let slot = self.slot(spec);
        let mut held = slot.lock().await;
        if held.as_ref() == Some(key) {
            *held = None;
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
    async fn no_key_is_an_empty_key_and_cannot_be_spelt() {
        let none = KeySpec::none();
        assert!(none.is_none());
        assert_eq!(none.resolve().await.unwrap().expose(), "");
        assert_eq!(format!("{none:?}"), "none (api_key = false)");
        // Only `api_key = false` makes it: the string is no valid spec.
        assert_eq!(KeySpec("none:".into()).check(), Err(KeyError::BadSpec));
        assert!(!KeySpec("env:NONE".into()).is_none());
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

    #[tokio::test]
    async fn a_cmd_key_runs_once_until_forgotten() {
        let dir = tempfile::tempdir().unwrap();
        let runs = dir.path().join("runs");
        let spec = KeySpec(format!(
            "cmd:echo x >> '{0}'; printf 'sk-or-v1-%s' $(wc -l < '{0}')",
            runs.display()
        ));
        let count = || std::fs::read_to_string(&runs).unwrap().lines().count();
        let cache = KeyCache::default();
        let (a, b) = tokio::join!(cache.get(&spec), cache.get(&spec));
        let k1 = a.unwrap();
        assert_eq!(b.unwrap(), k1);
        assert_eq!(count(), 1, "two requests at once run the command once");
        // Forgetting another key (a stale 401) keeps the cached one.
        cache.forget(&spec, &ApiKey("sk-or-v1-other".into())).await;
        assert_eq!(cache.get(&spec).await.unwrap(), k1);
        assert_eq!(count(), 1);
        cache.forget(&spec, &k1).await;
        let k2 = cache.get(&spec).await.unwrap();
        assert_eq!(count(), 2);
        assert_ne!(k1, k2);
        // env: keys are not cached (nothing to save).
        std::env::set_var("FRUGAL_TEST_KEY_CACHE", "sk-or-v1-env");
        let env = KeySpec("env:FRUGAL_TEST_KEY_CACHE".into());
        assert_eq!(cache.get(&env).await.unwrap().expose(), "sk-or-v1-env");
        assert!(cache.slots.lock().unwrap().len() == 1);
    }

    #[tokio::test]
    async fn a_cmd_that_prints_too_much_is_refused() {
        // 8 MB without a line break: not a key. Refused, with its size, never its output.
        // Endless output is cut at the bound, not read until the time limit.
        for (cmd, output) in [
            ("cmd:head -c 8000000 /dev/zero | tr '\\0' k", "kkkk"),
            ("cmd:yes sk-or-v1-endless", "endless"),
        ] {
            let e = KeySpec(cmd.into()).resolve().await.unwrap_err();
            assert!(
                matches!(&e, KeyError::CmdFailed(m) if m.contains("64 KiB")),
                "{e}"
            );
            assert!(!e.to_string().contains(output));
        }
    }
}
