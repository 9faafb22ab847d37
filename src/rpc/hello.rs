//! `hello`: the shim's `setup()` and where Neovim keeps its data → the effective settings, and
//! the warnings about `setup()` that the shim shows at the first command.

use super::wire::Answer;
use super::Handler;
use crate::openrouter::catalogue;
use crate::protocol::{Level, Notice, ProtocolError, PROTOCOL};
use crate::settings::Config;
use rmpv::Value;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::path::PathBuf;

/// `hello`: the user's `setup()` and where Neovim keeps its data.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Hello {
    /// `setup()` as given, minus the keys only the shim uses; checked key by key.
    #[serde(default = "nil")]
    pub config: Value,
    /// `stdpath("data")`.
    #[serde(default)]
    pub data_home: Option<PathBuf>,
}

fn nil() -> Value {
    Value::Nil
}

impl Hello {
    /// The config table by key (an empty Lua table may arrive as an array).
    pub fn config_map(&self) -> Result<HashMap<String, Value>, ProtocolError> {
        match &self.config {
            Value::Nil => Ok(HashMap::new()),
            Value::Array(a) if a.is_empty() => Ok(HashMap::new()),
            Value::Map(entries) => entries
                .iter()
                .map(|(k, v)| match k.as_str() {
                    Some(k) => Ok((k.to_string(), v.clone())),
                    None => Err(ProtocolError::Malformed {
                        method: "hello",
                        message: "config keys must be strings".into(),
                    }),
                })
                .collect(),
            _ => Err(ProtocolError::Malformed {
                method: "hello",
                message: "config must be a table".into(),
            }),
        }
    }
}

/// `hello`'s result.
#[derive(Debug, Clone, Serialize)]
pub struct HelloReply {
    pub version: &'static str,
    /// [`PROTOCOL`].
    pub protocol: u32,
    pub pid: u32,
    /// Today's log file (the base path carries the UTC date as suffix).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub log_file: Option<String>,
    /// What is wrong in `setup()`: the shim shows each once.
    pub warnings: Vec<Notice>,
    /// The settings in effect that the shim needs or shows.
    pub settings: SettingsView,
}

/// The effective settings the shim uses (`context_lines` for the window it sends) or shows.
#[derive(Debug, Clone, Serialize)]
pub struct SettingsView {
    pub model: String,
    /// The model `:LlmReview` asks, as resolved here (the shim shows it).
    pub judge_model: String,
    pub context_lines: usize,
    pub base_url: String,
    pub data_dir: String,
    pub stall_timeout_s: u64,
}

impl Handler {
    pub(super) fn hello(&self, hello: Hello) -> Result<Answer, ProtocolError> {
        let given = hello.config_map()?;
        // What is wrong in `setup()`: the shim shows each once.
        let (config, notices) = Config::resolve(&given, hello.data_home.as_deref());
        tracing::info!(base_url = %crate::openrouter::client::without_credentials(&config.base_url), model = %config.model, api_key = ?config.api_key, data_dir = %config.data_dir.display(), "configured");
        for n in &notices {
            if n.level != Level::Info {
                tracing::warn!("setup: {}", n.message);
            }
        }
        *self.warnings.lock().expect("warnings lock poisoned") = notices.clone();
        let settings = SettingsView {
            model: config.model.clone(),
            judge_model: config.judge_model.clone(),
            context_lines: config.context_lines,
            // For display only (:checkhealth): a proxy's `user:password@` stays here.
            base_url: crate::openrouter::client::without_credentials(&config.base_url),
            data_dir: config.data_dir.display().to_string(),
            stall_timeout_s: config.stall_timeout_s,
        };
        // Private from the start, whatever an older frugal or another umask left: the data
        // directory and the catalogue caches (every endpoint's) here; the ledger's files when
        // it opens (just below).
        let dir = config.data_dir.clone();
        if dir.is_dir() {
            let caches = std::fs::read_dir(&dir).into_iter().flatten().flatten();
            let caches = caches
                .filter(|e| catalogue::is_cache_file(&e.file_name().to_string_lossy()))
                .map(|e| crate::settings::paths::private_file(&e.path()));
            for r in std::iter::once(crate::settings::paths::private_dir(&dir)).chain(caches) {
                if let Err(e) = r {
                    tracing::warn!("cannot make {} private: {e}", dir.display());
                }
            }
        }
        let s = &self.services;
        if s.settings.set_config(config) {
            // Another data_dir: its own catalogue cache.
            s.catalogue.forget();
        }
        s.catalogue.warm_up();
        // Text older than `history_days` goes (all of it at 0).
        tokio::spawn(super::history::purge(s.settings.clone()));
        tokio::spawn(crate::gate::reconcile_orphans(
            s.settings.clone(),
            s.keys.clone(),
        ));
        Ok(Answer::Hello(HelloReply {
            version: env!("CARGO_PKG_VERSION"),
            protocol: PROTOCOL,
            pid: std::process::id(),
            log_file: self.log_file.as_ref().map(|p| {
                let d = time::OffsetDateTime::now_utc().date();
                format!(
                    "{}.{:04}-{:02}-{:02}",
                    p.display(),
                    d.year(),
                    d.month() as u8,
                    d.day()
                )
            }),
            warnings: notices,
            settings,
        }))
    }
}
