//! `:LlmHistory` end to end: a real Neovim, its backend, the loopback OpenRouter, the ledger
//! and the conversation store (`history.sqlite3`) in a `data_dir` that outlives a restart.

mod common;
use common::*;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

const SRC: &[&str] = &[
    "local M = {}",
    "",
    "function M.add(a, b)",
    "  return a + b",
    "end",
    "",
    "return M",
];

/// A data dir and a project that outlive one Neovim (a restart keeps both).
struct Keep {
    dir: tempfile::TempDir,
}

impl Keep {
    fn new() -> Keep {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("proj")).unwrap();
        Keep { dir }
    }
    fn data(&self) -> PathBuf {
        self.dir.path().join("data")
    }
    fn file(&self) -> PathBuf {
        self.dir.path().join("proj/m.lua")
    }
    fn store(&self) -> PathBuf {
        self.data().join("history.sqlite3")
    }
    fn setup(&self, extra: &str) -> String {
        let data = self.data().display().to_string();
        format!(r#"{{"data_dir":{data:?}{extra}}}"#)
    }
    async fn start(&self, server: &FakeOpenRouter, extra: &str) -> Nvim {
        let n = Nvim::start_with(&server.url, &[("FRUGAL_SETUP", &self.setup(extra))]).await;
        if !self.file().exists() {
            std::fs::write(self.file(), SRC.join("\n") + "\n").unwrap();
        }
        n.cmd(&format!("edit {}", self.file().display())).await;
        n.lua(&format!(
            "vim.g.frugal_test_file = {:?}",
            self.file().display().to_string()
        ))
        .await;
        n
    }
}

/// Polls a Lua expression until it is true.
async fn wait_lua(n: &Nvim, what: &str, expr: &str) {
    let end = Instant::now() + DEADLINE;
    loop {
        if n.lua(&format!("return {expr}")).await.as_bool() == Some(true) {
            return;
        }
        assert!(
            Instant::now() < end,
            "timed out waiting for {what} ({expr})"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Runs `:LlmHistory` and returns its buffer's lines once listed.
async fn history(n: &Nvim) -> Vec<String> {
    n.cmd("LlmHistory").await;
    wait_lua(n, "the history buffer", "vim.b.frugal_history ~= nil").await;
    n.lines().await
}

/// An edit answered with one block and its cost; waits for its hunk.
async fn edit(
    n: &mut Nvim,
    server: &FakeOpenRouter,
    instruction: &str,
    from: &str,
    to: &str,
    cost: f64,
) {
    server.push(
        "/chat/completions",
        Reply::sse(answer(&block(from, to), 7, cost)),
    );
    n.lua("local f = vim.g.frugal_test_file; if vim.api.nvim_buf_get_name(0) ~= f then vim.cmd.edit(f) end").await;
    n.cmd(&format!("LlmEdit {instruction}")).await;
    let done = n.wait_event("FrugalEditDone").await;
    assert_eq!(field(&done, "hunks").as_u64(), Some(1));
}

/// The store's conversations: (request, instruction) by request.
fn stored(path: &Path) -> Vec<(i64, String)> {
    let conn = rusqlite::Connection::open(path).unwrap();
    conn.busy_timeout(Duration::from_secs(5)).unwrap();
    let mut st = conn
        .prepare("SELECT request, instruction FROM conversations ORDER BY request")
        .unwrap();
    st.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap()
        .map(Result::unwrap)
        .collect()
}

async fn wait_stored(path: &Path, count: usize) -> Vec<(i64, String)> {
    let end = Instant::now() + DEADLINE;
    loop {
        let got = if path.exists() { stored(path) } else { vec![] };
        if got.len() == count {
            return got;
        }
        assert!(
            Instant::now() < end,
            "timed out waiting for {count} conversations: {got:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Polls the ledger's hunk outcomes until they are `fates` (by request, then hunk).
async fn wait_fates(data: &Path, fates: &[&str]) {
    let end = Instant::now() + DEADLINE;
    loop {
        let conn = rusqlite::Connection::open(ledger_path(data)).unwrap();
        conn.busy_timeout(Duration::from_secs(5)).unwrap();
        let got: Vec<String> = conn
            .prepare("SELECT fate FROM hunk_outcomes ORDER BY request_id, hunk")
            .and_then(|mut st| st.query_map([], |r| r.get(0))?.collect())
            .unwrap_or_default();
        if got == fates {
            return;
        }
        assert!(
            Instant::now() < end,
            "timed out waiting for the fates {fates:?}: {got:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn edits_a_review_and_an_ask_are_listed_after_a_restart_opened_and_deleted() {
    let server = FakeOpenRouter::start().await;
    let keep = Keep::new();
    // The project's instructions go with every request: named in the history, not kept.
    std::fs::write(
        keep.file().with_file_name("AGENTS.md"),
        "Keep it short (agents-rule).\n",
    )
    .unwrap();
    let mut n = keep.start(&server, "").await;
    // An accepted edit, a rejected one, and a review of the second before it was rejected.
    edit(
        &mut n,
        &server,
        "say hello",
        "local M = {}\n",
        "local M = { hello = true }\n",
        0.0031,
    )
    .await;
    n.cmd("LlmAccept").await;
    edit(
        &mut n,
        &server,
        "swap the operands",
        "  return a + b\n",
        "  return b + a\n",
        0.0042,
    )
    .await;
    let judge = r#"{"verdicts":[{"hunk":1,"verdict":"ok","reason":"commutes"}]}"#;
    server.push("/chat/completions", Reply::sse(answer(judge, 11, 0.0007)));
    n.cmd("LlmReview").await;
    n.wait_event("FrugalReviewDone").await;
    n.cmd("LlmReject!").await;
    // And a question (`:LlmAsk`), the newest.
    server.push(
        "/chat/completions",
        Reply::sse(answer(
            "Addition commutes, so the order is style.",
            9,
            0.0011,
        )),
    );
    n.cmd("LlmAsk why would the operands be swapped?").await;
    n.wait_event("FrugalAskDone").await;
    wait_stored(&keep.store(), 4).await;
    wait_fates(&keep.data(), &["accepted", "rejected"]).await;
    n.quit().await;

    let n = keep.start(&server, "").await;
    let lines = history(&n).await;
    let mut entries: Vec<&String> = lines.iter().filter(|l| l.contains(" $0")).collect();
    assert_eq!(entries.len(), 4, "{lines:#?}");
    let asked = entries.remove(0);
    assert!(
        asked.contains("ask") && asked.contains("why would the op"),
        "{asked}"
    );
    assert!(
        asked.contains("answered") && asked.ends_with("$0.0011"),
        "{asked}"
    );
    assert!(
        entries[0].contains("review") && entries[0].contains("swap the operands"),
        "{}",
        entries[0]
    );
    assert!(
        entries[0].contains("reviewed") && entries[0].ends_with("$0.0007"),
        "{}",
        entries[0]
    );
    assert!(
        entries[1].contains("edit") && entries[1].contains("swap the operands"),
        "{}",
        entries[1]
    );
    assert!(
        entries[1].contains("rejected") && entries[1].ends_with("$0.0042"),
        "{}",
        entries[1]
    );
    assert!(
        entries[2].contains("say hello") && entries[2].contains("1/1 accepted"),
        "{}",
        entries[2]
    );
    assert!(entries[2].ends_with("$0.0031"), "{}", entries[2]);

    // <CR> opens the oldest: the instruction and the answer, as Markdown, with its answer held
    // for :LlmApply.
    let row = lines.iter().position(|l| l.contains("say hello")).unwrap() + 1;
    n.cmd(&format!("{row}")).await;
    n.lua("vim.api.nvim_feedkeys(vim.keycode('<CR>'), 'x', false)")
        .await;
    wait_lua(
        &n,
        "the conversation",
        "vim.api.nvim_buf_get_name(0):find('frugal://history/', 1, true) ~= nil",
    )
    .await;
    let text = n.lines().await.join("\n");
    assert!(text.contains("say hello"), "{text}");
    assert!(text.contains("AGENTS.md (instructions)"), "{text}");
    assert!(!text.contains("agents-rule"), "named, not kept: {text}");
    assert!(text.contains("local M = { hello = true }"), "{text}");
    assert_eq!(
        n.lua("return vim.bo.filetype").await.as_str(),
        Some("markdown")
    );
    let held = n.lua("return vim.b.frugal_answer.text").await;
    assert!(
        held.as_str().unwrap().contains(">>>>>>> REPLACE"),
        "{held:?}"
    );
    assert!(n
        .lua("return vim.b.frugal_answer.request")
        .await
        .as_i64()
        .is_some());

    // dd deletes that entry's text; the row stays.
    n.cmd("bwipeout").await;
    let lines = history(&n).await;
    let row = lines.iter().position(|l| l.contains("say hello")).unwrap() + 1;
    n.cmd(&format!("{row}")).await;
    n.lua("vim.api.nvim_feedkeys('dd', 'x', false)").await;
    wait_stored(&keep.store(), 3).await;
    wait_lua(&n, "the listing redrawn", "table.concat(vim.api.nvim_buf_get_lines(0, 0, -1, false), '\\n'):find('no text kept', 1, true) ~= nil").await;

    // clear! deletes the project's text.
    n.cmd("LlmHistory clear!").await;
    wait_stored(&keep.store(), 0).await;
    let lines = history(&n).await;
    assert_eq!(
        lines
            .iter()
            .filter(|l| l.contains("(no text kept)"))
            .count(),
        4,
        "{lines:#?}"
    );

    // No key in the store, and it is private.
    let bytes = std::fs::read(keep.store()).unwrap();
    assert!(!bytes
        .windows(API_KEY.len())
        .any(|w| w == API_KEY.as_bytes()));
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(keep.store())
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    n.quit().await;
}

#[tokio::test]
async fn history_days_0_keeps_no_text_but_lists_every_request() {
    let server = FakeOpenRouter::start().await;
    let keep = Keep::new();
    let mut n = keep.start(&server, r#","history_days":0"#).await;
    edit(
        &mut n,
        &server,
        "say hello",
        "local M = {}\n",
        "local M = { hello = true }\n",
        0.0031,
    )
    .await;
    n.cmd("LlmAccept").await;
    wait_rows(&keep.data(), "settled", |r| {
        r.len() == 1 && r[0].state == "settled"
    })
    .await;
    let lines = history(&n).await;
    let entries: Vec<&String> = lines.iter().filter(|l| l.contains(" $0")).collect();
    assert_eq!(entries.len(), 1, "{lines:#?}");
    assert!(
        entries[0].contains("(no text kept)") && entries[0].ends_with("$0.0031"),
        "{}",
        entries[0]
    );
    assert!(!keep.store().exists(), "no store with history_days = 0");
    n.quit().await;
}

#[tokio::test]
async fn a_lowered_history_days_purges_older_text_at_the_next_start() {
    let server = FakeOpenRouter::start().await;
    let keep = Keep::new();
    let mut n = keep.start(&server, "").await;
    edit(
        &mut n,
        &server,
        "say hello",
        "local M = {}\n",
        "local M = { hello = true }\n",
        0.0031,
    )
    .await;
    wait_stored(&keep.store(), 1).await;
    n.quit().await;
    // Ten days old: kept at 90 days, not at 5.
    let conn = rusqlite::Connection::open(keep.store()).unwrap();
    conn.execute("UPDATE conversations SET at = at - 10 * 86400000", [])
        .unwrap();
    drop(conn);
    let n = keep.start(&server, "").await;
    let _ = history(&n).await;
    assert_eq!(stored(&keep.store()).len(), 1, "90 days keeps it");
    n.quit().await;
    let n = keep.start(&server, r#","history_days":5"#).await;
    let lines = history(&n).await;
    wait_stored(&keep.store(), 0).await;
    assert_eq!(
        lines.iter().filter(|l| l.contains(" $0")).count(),
        1,
        "{lines:#?}"
    );
    n.quit().await;
}

#[tokio::test]
async fn a_corrupt_store_warns_once_edits_go_on_and_history_names_the_file() {
    let server = FakeOpenRouter::start().await;
    let keep = Keep::new();
    std::fs::create_dir_all(keep.data()).unwrap();
    std::fs::write(keep.store(), "garbage, not a database; ".repeat(400)).unwrap();
    let mut n = keep.start(&server, "").await;
    edit(
        &mut n,
        &server,
        "say hello",
        "local M = {}\n",
        "local M = { hello = true }\n",
        0.0031,
    )
    .await;
    n.cmd("LlmAccept").await;
    let (msg, level) = n.wait_notify("history not saved").await;
    assert!(msg.starts_with("frugal: "), "{msg}");
    assert_eq!(level, 3, "a warning: {msg}");
    assert!(
        n.log_holds("history.sqlite3").await,
        "the log names the file"
    );
    edit(
        &mut n,
        &server,
        "swap",
        "  return a + b\n",
        "  return b + a\n",
        0.001,
    )
    .await;
    n.cmd("LlmHistory").await;
    let (msg, _) = n.wait_notify("history damaged").await;
    let dir = keep.data().display().to_string();
    assert!(
        msg.starts_with("frugal: ") && msg.ends_with(&format!("{dir}/history.sqlite3")),
        "{msg}"
    );
    let warned = n
        .notifications()
        .iter()
        .filter(|(m, _)| m.contains("not saved"))
        .count();
    assert_eq!(
        warned,
        1,
        "one warning per session: {:?}",
        n.notifications()
    );
    // The listing still shows the ledger's rows.
    wait_lua(&n, "the listing", "vim.b.frugal_history ~= nil").await;
    assert_eq!(
        n.lines()
            .await
            .iter()
            .filter(|l| l.contains("(no text kept)"))
            .count(),
        2
    );
    // `:checkhealth frugal` says what is wrong with it, naming the file.
    n.cmd("checkhealth frugal").await;
    let health = n
        .lua("return table.concat(vim.api.nvim_buf_get_lines(0, 0, -1, false), '\\n')")
        .await;
    let health = health.as_str().unwrap();
    let line = health
        .lines()
        .find(|l| l.contains("history.sqlite3"))
        .unwrap_or_else(|| panic!("no history line: {health}"));
    assert!(line.contains("WARNING"), "{line}");
    n.quit().await;
}

#[tokio::test]
async fn a_cancelled_edit_keeps_its_instruction_and_says_cancelled() {
    let server = FakeOpenRouter::start().await;
    server.push("/chat/completions", Reply::hanging());
    let keep = Keep::new();
    let mut n = keep.start(&server, "").await;
    n.cmd("LlmEdit make it faster").await;
    server
        .wait_until("the answer streaming", |s| s.chat_requests().len() == 1)
        .await;
    wait_rows(&keep.data(), "reserved", |r| r.len() == 1).await;
    n.cmd("LlmCancel").await;
    let failed = n.wait_event("FrugalEditFailed").await;
    assert_eq!(field(&failed, "reason").as_str(), Some("cancelled"));
    wait_stored(&keep.store(), 1).await;
    let lines = history(&n).await;
    let entries: Vec<&String> = lines.iter().filter(|l| l.contains(" $0")).collect();
    assert_eq!(entries.len(), 1, "{lines:#?}");
    assert!(
        entries[0].contains("make it faster") && entries[0].contains("failed: cancelled"),
        "{}",
        entries[0]
    );
    n.quit().await;
}

/// What a person sees at 80 columns: a project with none, the listing, and a damaged store
/// named in one line; no hit-enter prompt (the built-in `vim.notify`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_screen_none_the_listing_and_a_damaged_store_in_one_line() {
    let server = FakeOpenRouter::start().await;
    let keep = Keep::new();
    // A long data_dir: the message must still fit.
    let deep = keep
        .dir
        .path()
        .join("a/rather/deep/directory/for/the/frugal/data");
    std::fs::create_dir_all(&deep).unwrap();
    let setup = format!(r#"{{"data_dir":{:?}}}"#, deep.display().to_string());
    let n = Nvim::start_ui(&server.url, &[("FRUGAL_SETUP", &setup)], 80, 24).await;
    std::fs::write(keep.file(), SRC.join("\n") + "\n").unwrap();
    n.cmd(&format!("edit {}", keep.file().display())).await;
    n.cmd("LlmHistory").await;
    let s = n.wait_screen("none", |s| s.contains("no requests")).await;
    let (row, _) = s.find("no requests").unwrap();
    assert_eq!(
        s.row(row).trim_end(),
        "frugal: no requests in this project yet",
        "{}",
        s.dump()
    );
    assert!(!s.hit_enter(), "{}", s.dump());

    // A request in the ledger (its text not kept).
    let root = n
        .lua("return require('frugal.project').where(0, { start = true }).root")
        .await;
    let conn = rusqlite::Connection::open(ledger_path(&deep)).unwrap();
    conn.execute(
        "INSERT INTO requests (project, model, created_at, settled_at, state, reserved, charged,
           owner_pid, owner_instance, kind)
         VALUES (?1, 'vendor/model', 1765000000000, 1765000000000, 'settled', 0, 3100000000, 1, 't', 'edit')",
        [root.as_str().unwrap()],
    )
    .unwrap();
    drop(conn);
    n.cmd("LlmHistory").await;
    let s = n
        .wait_screen("the listing", |s| s.contains("no text kept"))
        .await;
    let (row, _) = s.find("no text kept").unwrap();
    assert!(
        s.row(row).starts_with("2025-12-06") && s.row(row).contains(" edit "),
        "{}",
        s.dump()
    );
    assert!(s.row(row).trim_end().ends_with("$0.0031"), "{}", s.dump());
    assert!(!s.hit_enter(), "{}", s.dump());

    // Damaged: the next backend finds garbage; the listing names it in one line.
    n.cmd(&format!("edit {}", keep.file().display())).await;
    let store = deep.join("history.sqlite3");
    n.lua("require('frugal.rpc').stop()").await;
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", store.display()));
    }
    std::fs::write(&store, "garbage, not a database; ".repeat(400)).unwrap();
    n.cmd("LlmHistory").await;
    let s = n
        .wait_screen("the message", |s| s.contains("history damaged"))
        .await;
    let (row, _) = s.find("history damaged").unwrap();
    assert!(
        s.row(row).starts_with("frugal: history damaged"),
        "{}",
        s.dump()
    );
    assert!(
        s.row(row).trim_end().ends_with("history.sqlite3"),
        "{}",
        s.dump()
    );
    assert!(!s.hit_enter(), "{}", s.dump());
    drop(n);
}

/// A store another process keeps locked for writing (past the busy timeout): edits still work,
/// with one warning; `:LlmHistory` still lists every request of the ledger.
#[tokio::test]
async fn a_locked_store_warns_once_and_edits_go_on() {
    let server = FakeOpenRouter::start().await;
    let keep = Keep::new();
    let mut n = keep.start(&server, "").await;
    edit(
        &mut n,
        &server,
        "say hello",
        "local M = {}\n",
        "local M = { hello = true }\n",
        0.0031,
    )
    .await;
    n.cmd("LlmAccept").await;
    wait_stored(&keep.store(), 1).await;
    // Another process takes the store and keeps it.
    let lock = rusqlite::Connection::open(keep.store()).unwrap();
    lock.busy_timeout(Duration::from_secs(5)).unwrap();
    // Its write lock (readers still read: WAL).
    lock.execute_batch("BEGIN IMMEDIATE;").unwrap();
    edit(
        &mut n,
        &server,
        "swap",
        "  return a + b\n",
        "  return b + a\n",
        0.001,
    )
    .await;
    let (msg, level) = n.wait_notify("history not saved").await;
    assert!(msg.starts_with("frugal: "), "{msg}");
    assert_eq!(level, 3, "a warning: {msg}");
    n.cmd("LlmReject!").await;
    edit(
        &mut n,
        &server,
        "again",
        "  return a + b\n",
        "  return a + b + 0\n",
        0.001,
    )
    .await;
    // The list reads on: every request, the one not saved without its text.
    let listed = history(&n).await;
    assert_eq!(
        listed.iter().filter(|l| l.contains(" $0")).count(),
        3,
        "{listed:#?}"
    );
    assert!(
        listed.iter().any(|l| l.contains("(no text kept)")),
        "{listed:#?}"
    );
    let warned = n
        .notifications()
        .iter()
        .filter(|(m, _)| m.contains("not saved"))
        .count();
    assert_eq!(
        warned,
        1,
        "one warning per session: {:?}",
        n.notifications()
    );
    drop(lock);
    n.quit().await;
}
