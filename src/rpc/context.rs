//! `context`: the `:LlmContext` listing. The project's instruction files, then each context
//! file, with its size and its share of an edit's worst case, priced with the catalogue at
//! hand (never waiting on the network).

use crate::edit::files;
use crate::edit::instructions;
use crate::edit::prompt::{self, ContextText};
use crate::edit::request::{decode_context, ContextFile};
use crate::protocol::{text, ProtocolError};
use crate::services::{Catalogue, Settings};
use crate::settings::ProjectInput;
use rmpv::Value;
use serde::Serialize;
use std::sync::Arc;

/// `context`: the `:LlmContext` listing of a project's context files.
#[derive(Debug)]
pub struct ContextArgs {
    /// The project file (`<checkout>/.frugal.toml`): its directory is the paths' root.
    pub file: String,
    /// The model an edit would use now.
    pub model: Option<String>,
    pub files: Vec<ContextFile>,
    /// The project (as for an edit), for a trusted file's `[context] instructions`.
    pub project: Option<ProjectInput>,
}

impl ContextArgs {
    pub(super) fn decode(v: Value) -> Result<ContextArgs, ProtocolError> {
        let malformed = |message: String| ProtocolError::Malformed {
            method: "context",
            message,
        };
        let Value::Map(entries) = v else {
            return Err(malformed("expected a table of named arguments".into()));
        };
        let (mut file, mut model, mut files, mut project) = (None, None, Vec::new(), None);
        for (k, v) in entries {
            match k.as_str() {
                Some("file") => file = text(v),
                Some("model") => model = text(v),
                Some("files") => files = decode_context(v)?,
                Some("project") if !v.is_nil() => {
                    project = Some(crate::protocol::decode("context", v)?)
                }
                Some("project") => {}
                other => return Err(malformed(format!("unknown field {}", other.unwrap_or("?")))),
            }
        }
        let file = file.ok_or_else(|| malformed("missing file".into()))?;
        Ok(ContextArgs {
            file,
            model,
            files,
            project,
        })
    }
}

/// `context`'s result: the listing's lines.
#[derive(Debug, Clone, Serialize)]
pub struct ContextReply {
    pub lines: Vec<String>,
}

/// A share as the listing shows it: whole percents from 10%, one decimal below, `<0.1%` for a
/// share too small for that (never `0%` for a file that has bytes).
fn percent(share: f64) -> String {
    let p = 100.0 * share;
    if p >= 9.95 {
        format!("{p:.0}%")
    } else if p >= 0.05 {
        format!("{p:.1}%")
    } else if p > 0.0 {
        "<0.1%".to_string()
    } else {
        "0%".to_string()
    }
}

pub(super) async fn listing(
    settings: &Settings,
    catalogue: &Arc<Catalogue>,
    args: ContextArgs,
) -> ContextReply {
    let cfg = settings.config();
    let root = files::checkout_root(&args.file);
    let project = args.project.map(|p| p.resolve().1).unwrap_or_default();
    let found = instructions::read(
        &root,
        instructions::list(&cfg, &project),
        cfg.max_instructions_bytes,
    );
    let mut lines = Vec::new();
    let mut loaded: Vec<(String, Vec<String>)> = Vec::new();
    let mut refused = Vec::new();
    for c in &args.files {
        let read = files::inside(&root, &c.path).and_then(|rel| {
            let text = match &c.lines {
                Some(l) => l.clone(),
                None => files::read_lines(&root, &rel, cfg.max_context_bytes)?,
            };
            Ok((rel, text))
        });
        match read {
            Ok(file) => loaded.push(file),
            Err(why) => refused.push(format!("  {}  ✗ {why}", c.path)),
        }
    }
    let context: Vec<ContextText> = loaded
        .iter()
        .map(|(path, lines)| ContextText { path, lines })
        .collect();
    let messages = prompt::stable(&found.files, &context);
    let bound = prompt::prompt_token_bound(&messages);
    let model = args.model.unwrap_or_else(|| cfg.model.clone());
    let price = catalogue.at_hand().await.and_then(|cat| {
        let m = cat.get(&model)?;
        m.prices_for(crate::gate::policy::prompt_bound(bound, m.context_length))
            .0
    });
    // The worst case of an edit sending these files and nothing else: the window and the
    // instruction come on top.
    let worst = price.and_then(|p| p.worst_case(bound, cfg.max_tokens as u64));
    // One meaning before and after the catalogue is at hand: the file's share of what a request
    // may send. (Its share of the worst case was 0% for any ordinary file: the completion's
    // bound outweighs it.)
    let share = |bytes: u64| {
        format!(
            "{:>5} of max_context_bytes",
            percent(bytes as f64 / cfg.max_context_bytes.max(1) as f64)
        )
    };
    let width = loaded
        .iter()
        .map(|(p, _)| p.len())
        .chain(found.files.iter().map(|f| f.path.len()))
        .max()
        .unwrap_or(0);
    let mut total = 0u64;
    if !found.files.is_empty() || !found.skipped.is_empty() {
        lines.push(format!("instructions of {}:", root.display()));
    }
    for f in &found.files {
        let bytes = f.bytes();
        total += bytes;
        let cut = if f.cut {
            format!(
                ", cut to {} (max_instructions_bytes)",
                files::size_text(bytes)
            )
        } else {
            String::new()
        };
        lines.push(format!(
            "  {:<width$}  {:>9}  {}{cut}",
            f.path,
            files::size_text(f.size),
            share(bytes)
        ));
    }
    for s in &found.skipped {
        lines.push(format!("  {}  ✗ {}: not sent", s.path, s.why));
    }
    if args.files.is_empty() {
        lines.push(
            "no context files for this project (:LlmContext add {path}, or @path in an instruction)"
                .into(),
        );
        if found.files.is_empty() {
            return ContextReply { lines };
        }
    } else {
        lines.push(format!("context files of {}:", root.display()));
        lines.extend(refused);
    }
    for (path, text) in &loaded {
        let bytes: u64 = text.iter().map(|l| l.len() as u64 + 1).sum();
        total += bytes;
        lines.push(format!(
            "  {path:<width$}  {:>9}  {}",
            files::size_text(bytes),
            share(bytes)
        ));
    }
    lines.push(match worst {
        Some(w) => format!(
            "{} in all; worst case of an edit with them on {model}: {w} plus the lines sent (max_context_bytes {})",
            files::size_text(total),
            files::size_text(cfg.max_context_bytes)
        ),
        None => format!(
            "{} in all (max_context_bytes {}); {model} has no price at hand for a worst case",
            files::size_text(total),
            files::size_text(cfg.max_context_bytes)
        ),
    });
    ContextReply { lines }
}

#[cfg(test)]
mod tests {
    use super::percent;

    #[test]
    fn a_share_is_never_zero_for_a_file_with_bytes() {
        assert_eq!(percent(2_000.0 / 200_000.0), "1.0%");
        assert_eq!(percent(50.0 / 200_000.0), "<0.1%");
        assert_eq!(percent(30_000.0 / 200_000.0), "15%");
        assert_eq!(percent(0.0), "0%");
    }
}
