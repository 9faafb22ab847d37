//! `status`: the statusline text of a project (today's spend, its daily cap, a blocking
//! project file).

use super::usage::settings_of;
use crate::services::Settings;
use crate::settings::{Effective, ProjectInput};
use crate::usage::FileStatus;
use serde::{Deserialize, Serialize};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StatusArgs {
    pub project: ProjectInput,
}

/// `status`' result: the statusline text of a project.
#[derive(Debug, Clone, Serialize)]
pub struct StatusReply {
    pub root: String,
    pub text: String,
}

/// `$0.42/$1.00 today` when a daily cap applies, `$0.42 today` otherwise; followed by
/// ` · .frugal.toml invalid` while the project file blocks requests.
pub async fn status(settings: &Settings, project: ProjectInput) -> Result<StatusReply, String> {
    let (cfg, ledger) = (settings.config(), settings.ledger());
    let (settings, file) = settings_of(&project);
    let daily = Effective::resolve(&cfg, &settings, None)
        .caps
        .ok()
        .and_then(|c| c.project.caps.daily);
    let root = project.root.clone();
    let r = root.clone();
    let spend = ledger
        .run(move |l, clock| l.spend(Some(&r), clock))
        .await
        .map_err(|e| e.to_string())?;
    let mut text = match daily {
        Some(cap) => format!("{}/{} today", spend.today, cap),
        None => format!("{} today", spend.today),
    };
    if let FileStatus::Invalid(_) = file {
        // No request is sent for the project until the file is fixed: say so where it shows.
        text.push_str(" · .frugal.toml invalid");
    }
    Ok(StatusReply { root, text })
}
