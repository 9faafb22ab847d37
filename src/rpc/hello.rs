//! `hello`: the shim's `setup()` and where Neovim keeps its data → the effective settings, and
//! the warnings about `setup()` that the shim shows at the first command.

use super::Handler;
use crate::openrouter::catalogue;
use crate::protocol::{
    Answer, Hello, HelloReply, Level, Notice, ProtocolError, SettingsView, PROTOCOL,
};
use crate::settings::Config;

impl Handler {
    pub(super) fn hello(&self, hello: Hello) -> Result<Answer, ProtocolError> {
        let given = hello.config_map()?;
        let (config, warnings) = Config::resolve(&given, hello.data_home.as_deref());
        tracing::info!(base_url = %crate::openrouter::client::without_credentials(&config.base_url), model = %config.model, api_key = ?config.api_key, data_dir = %config.data_dir.display(), "configured");
        let notices: Vec<Notice> = warnings
            .into_iter()
            .map(|w| Notice {
                level: w.level,
                message: w.message,
            })
            .collect();
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
