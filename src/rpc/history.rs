//! `history`, `history_open`, `history_delete`, `history_clear`: `:LlmHistory`'s listing of a
//! project's requests (the ledger's rows joined with the conversation store's text and the
//! hunks' outcomes), one conversation as Markdown, and deleting text. Also the purge of text
//! older than `history_days`, run at each `hello`.

use crate::history::listing::{self, Cursor, Hunks, Row};
use crate::history::Conversation;
use crate::services::Settings;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HistoryArgs {
    /// The project's key in the ledger (`project`'s `root`).
    pub project: String,
    /// Older than this `[created_at, id]` (the `more` of the page before); absent: the newest.
    #[serde(default)]
    pub before: Option<(i64, i64)>,
    #[serde(default)]
    pub limit: Option<usize>,
    /// The window's width: each line fits it (100 when absent).
    #[serde(default)]
    pub width: Option<usize>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EntryArgs {
    pub project: String,
    #[serde(default)]
    pub id: Option<i64>,
}

/// One listed request.
#[derive(Debug, Clone, Serialize)]
pub struct Entry {
    pub id: i64,
    pub line: String,
    /// Whether its text is kept (`<CR>` opens it).
    pub text: bool,
}

/// `history`'s result.
#[derive(Debug, Clone, Serialize)]
pub struct HistoryReply {
    pub entries: Vec<Entry>,
    /// Where the next page starts, when there are older requests.
    pub more: Option<(i64, i64)>,
    /// The store's file.
    pub path: String,
    /// What is wrong with the store, one line naming the file (the listing still shows the
    /// ledger's rows).
    pub problem: Option<String>,
}

/// `history_open`'s result: the conversation as Markdown lines, and its last answer.
#[derive(Debug, Clone, Serialize)]
pub struct OpenReply {
    pub id: i64,
    pub lines: Vec<String>,
    pub answer: String,
}

/// `history_delete` / `history_clear`'s result.
#[derive(Debug, Clone, Serialize)]
pub struct DeleteReply {
    pub deleted: usize,
}

/// A page of the project's requests, newest first.
pub async fn list(settings: &Settings, a: HistoryArgs) -> Result<HistoryReply, String> {
    let limit = a.limit.unwrap_or(listing::PAGE).clamp(1, listing::PAGE);
    let project = a.project.clone();
    let before: Cursor = a.before;
    let (rows, more, tz) = settings
        .with_ledger(move |l, clock| {
            let (rows, more) = listing::page(l, &project, before, limit)?;
            Ok((rows, more, clock.now().time_zone().clone()))
        })
        .await
        .map_err(|e| e.to_string())?;
    let ids: Vec<i64> = rows.iter().map(|r| r.id).collect();
    let hunks = hunk_counts(settings, ids.clone()).await;
    let slot = settings.snapshot().history.clone();
    let project = a.project.clone();
    // With `history_days = 0` no text is kept: the store is not even opened.
    let kept = settings.config().history_days > 0;
    let briefs = async move {
        match kept {
            true => slot.run(move |s| s.briefs(&project, &ids)).await,
            false => Ok(HashMap::new()),
        }
    };
    let slot = settings.snapshot().history.clone();
    let (briefs, problem) = match briefs.await {
        Ok(mut b) => {
            // Written before its row was made: another ledger's (the file moved aside, ids
            // counted again), not this request's.
            let made: HashMap<i64, i64> = rows.iter().map(|r| (r.id, r.created_at)).collect();
            b.retain(|id, brief| made.get(id).is_some_and(|&at| brief.at >= at));
            (b, None)
        }
        Err(e) => {
            tracing::warn!("history: {e}");
            (HashMap::new(), Some(e.to_string()))
        }
    };
    let year = jiff::Timestamp::now().to_zoned(tz.clone()).year();
    // `12-07 23:10` this year, `2025-12-06` before.
    let when = |ms: i64| {
        let Ok(t) = jiff::Timestamp::from_millisecond(ms) else {
            return String::new();
        };
        let z = t.to_zoned(tz.clone());
        let f = if z.year() == year {
            "%m-%d %H:%M"
        } else {
            "%Y-%m-%d"
        };
        z.strftime(f).to_string()
    };
    let width = a.width.unwrap_or(100);
    let entries = listing::lines(&rows, &briefs, &hunks, when, width)
        .into_iter()
        .map(|(id, line)| Entry {
            id,
            line,
            text: briefs.contains_key(&id),
        })
        .collect();
    Ok(HistoryReply {
        entries,
        more: more
            .then(|| rows.last().map(|r: &Row| (r.created_at, r.id)))
            .flatten(),
        path: slot.path.display().to_string(),
        problem,
    })
}

/// What became of each edit's hunks, from the ledger (none when it cannot say: the listing
/// still shows the rows).
async fn hunk_counts(settings: &Settings, ids: Vec<i64>) -> HashMap<i64, Hunks> {
    match settings.with_ledger(move |l, _| l.hunk_counts(&ids)).await {
        Ok(c) => c,
        Err(e) => {
            tracing::warn!("history: hunk outcomes not read: {e}");
            HashMap::new()
        }
    }
}

/// One conversation as Markdown.
pub async fn open(settings: &Settings, a: EntryArgs) -> Result<OpenReply, String> {
    let id = a.id.ok_or("which request?")?;
    let slot = settings.snapshot().history.clone();
    let project = a.project;
    let c = slot
        .run(move |s| s.get(&project, id))
        .await
        .map_err(|e| e.to_string())?
        .ok_or_else(|| format!("request {id} has no text kept"))?;
    Ok(OpenReply {
        id,
        answer: c.turns.last().map(|t| t.answer.clone()).unwrap_or_default(),
        lines: markdown(&c),
    })
}

/// The conversation as Markdown: a title, the files by name, then each turn.
fn markdown(c: &Conversation) -> Vec<String> {
    let when = jiff::Timestamp::from_millisecond(c.at)
        .map(|t| t.to_string())
        .unwrap_or_default();
    let mut out = vec![format!("# {} {} · {} · {when}", c.kind, c.request, c.model)];
    if !c.files.is_empty() {
        out.push(String::new());
        out.push(format!("Files: {}", c.files.join(", ")));
    }
    for t in &c.turns {
        out.push(String::new());
        out.push("## You".into());
        out.push(String::new());
        out.extend(t.instruction.lines().map(str::to_string));
        out.push(String::new());
        out.push("## Answer".into());
        out.push(String::new());
        out.extend(t.answer.lines().map(str::to_string));
    }
    if let Some((reason, message)) = &c.failure {
        out.push(String::new());
        out.push(format!("Failed ({reason}): {message}"));
    }
    out
}

/// Deletes one request's text (`id`), or the project's (`id` absent).
pub async fn delete(settings: &Settings, a: EntryArgs) -> Result<DeleteReply, String> {
    let slot = settings.snapshot().history.clone();
    let project = a.project;
    let deleted = slot
        .run(move |s| match a.id {
            Some(id) => s.delete(&project, id).map(usize::from),
            None => s.clear(&project),
        })
        .await
        .map_err(|e| e.to_string())?;
    Ok(DeleteReply { deleted })
}

/// Purges text older than `history_days` (all of it at 0), at each `hello`. Quiet unless the
/// store is in trouble (then the first write warns).
pub async fn purge(settings: std::sync::Arc<Settings>) {
    let days = settings.config().history_days;
    let slot = settings.snapshot().history.clone();
    if days == 0 && !slot.path.exists() {
        return;
    }
    let now = jiff::Timestamp::now().as_millisecond();
    match slot.run(move |s| s.purge(days, now)).await {
        Ok(n) if n > 0 => {
            tracing::info!("history: {n} conversations older than {days} days purged")
        }
        Ok(_) => {}
        Err(e) => tracing::warn!("history purge: {e}"),
    }
}
