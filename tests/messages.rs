//! What the user is told (SPEC, "One line, never a prompt"): with Neovim's own `vim.notify`
//! every message is one line that fits the echo area, starts `frugal: ` and is cut with `…`;
//! a notification plugin gets the whole text titled `frugal`; events come before messages.

mod common;
use common::screen::Snapshot;
use common::*;
use rmpv::Value;
use std::time::{Duration, Instant};

/// Puts Neovim's own `vim.notify` back (the test harness forwards notifications otherwise).
async fn builtin_notify(n: &Nvim) {
    n.lua("vim.notify = require('frugal_test').builtin_notify")
        .await;
}

/// The message history's lines (`:messages`).
async fn history(n: &Nvim) -> Vec<String> {
    let v = n
        .lua("return vim.api.nvim_exec2('messages', { output = true }).output")
        .await;
    v.as_str()
        .unwrap_or("")
        .lines()
        .map(str::to_string)
        .collect()
}

/// Polls `:messages` until a line holds `needle`; returns the whole history.
async fn wait_history(n: &Nvim, needle: &str) -> Vec<String> {
    let end = Instant::now() + Duration::from_secs(10);
    loop {
        let h = history(n).await;
        if h.iter().any(|l| l.contains(needle)) {
            return h;
        }
        assert!(
            Instant::now() < end,
            "no message with {needle:?}; history: {h:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn cells(n: &Nvim, s: &str) -> i64 {
    n.lua_args("return vim.fn.strdisplaywidth(...)", vec![Value::from(s)])
        .await
        .as_i64()
        .unwrap()
}

#[tokio::test]
async fn a_long_message_is_one_line_that_fits_the_echo_area() {
    let server = FakeOpenRouter::start().await;
    let n = Nvim::start(&server.url).await;
    n.cmd("set columns=80").await;
    builtin_notify(&n).await;
    let long = format!(
        "5 hunks in 3 files proposed by anthropic/claude-sonnet-4.5 ($0.0184):\n{} 文字の説明 {}",
        "word ".repeat(20),
        "終わり".repeat(10)
    );
    n.lua_args(
        "require('frugal.util').notify(..., vim.log.levels.WARN)",
        vec![Value::from(long.as_str())],
    )
    .await;
    let h = wait_history(&n, "5 hunks").await;
    let line = h.iter().find(|l| l.contains("5 hunks")).unwrap();
    let space = n.lua("return vim.v.echospace").await.as_i64().unwrap();
    assert!(line.starts_with("frugal: 5 hunks in 3 files"), "{line:?}");
    assert!(line.ends_with('…'), "{line:?}");
    assert!(
        cells(&n, line).await <= space,
        "{line:?} is wider than {space} cells"
    );
    assert!(!line.contains('\n'));
    n.quit().await;
}

#[tokio::test]
async fn two_messages_in_one_go_are_one_line() {
    let server = FakeOpenRouter::start().await;
    let n = Nvim::start(&server.url).await;
    builtin_notify(&n).await;
    let before = history(&n).await.len();
    n.lua(
        "local u = require('frugal.util')
         u.notify('frugal: ../x is outside the project', vim.log.levels.ERROR)
         u.notify('0 context files')",
    )
    .await;
    let h = wait_history(&n, "outside the project").await;
    let new: Vec<&String> = h[before..].iter().collect();
    assert_eq!(
        new,
        ["frugal: ../x is outside the project · 0 context files"],
        "{h:?}"
    );
    n.quit().await;
}

#[tokio::test]
async fn a_notification_plugin_gets_the_whole_text_titled_frugal() {
    let server = FakeOpenRouter::start().await;
    let mut n = Nvim::start(&server.url).await;
    let long = format!("first line\n{}", "x".repeat(200));
    n.lua_args(
        "require('frugal.util').notify(...)",
        vec![Value::from(long.as_str())],
    )
    .await;
    n.wait_notify("first line").await;
    let (_, args) = n
        .seen
        .iter()
        .find(|(name, _)| name == "notify")
        .unwrap()
        .clone();
    assert_eq!(args[0].as_str(), Some(long.as_str()));
    assert_eq!(args[2].as_str(), Some("frugal"));
    n.quit().await;
}

const SRC: &[&str] = &[
    "def add(a, b):",
    "    return a + b",
    "",
    "def sub(a, b):",
    "    return a - b",
];

#[tokio::test]
async fn an_answer_without_a_block_is_shown_in_a_float_with_its_cost() {
    let server = FakeOpenRouter::start().await;
    server.push("/models", Reply::json(200, MODELS));
    let prose = "I would not change this.\nThe function is already minimal.";
    server.push("/chat/completions", Reply::sse(answer(prose, 7, 0.0123)));
    let mut n = Nvim::start(&server.url).await;
    let dir = n.home.path().join("data/nvim/frugal");
    n.open("a.py", SRC).await;
    n.cmd("LlmEdit simplify").await;
    let failed = n.wait_event("FrugalEditFailed").await;
    assert_eq!(field(&failed, "reason").as_str(), Some("no_match"));
    let cost = field(&failed, "cost_usd").as_f64();
    assert!(
        cost.is_some_and(|c| (c - 0.0123).abs() < 1e-9),
        "{failed:?}"
    );
    let (msg, level) = n.wait_notify("no SEARCH/REPLACE block").await;
    assert_eq!(level, 3, "a warning, not an error: {msg}");
    assert!(msg.contains("$0.0123"), "{msg}");
    // The model's text, in a float that q closes.
    let shown = n
        .lua(
            "local f = require('frugal.float').current()
             if not f then return vim.NIL end
             return table.concat(vim.api.nvim_buf_get_lines(f.buf, 0, -1, false), '\\n')",
        )
        .await;
    assert_eq!(shown.as_str(), Some(prose));
    // Not entered (it came while the user may be typing): it goes when the cursor moves on.
    let here = n.lua("return vim.bo.buftype").await;
    assert_eq!(here.as_str(), Some(""));
    n.lua("vim.api.nvim_feedkeys('j', 'x', false)").await;
    let end = Instant::now() + Duration::from_secs(10);
    while n
        .lua("return require('frugal.float').current() ~= nil")
        .await
        .as_bool()
        != Some(false)
    {
        assert!(Instant::now() < end, "the float stayed open");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // Charged as any answer.
    let rows = wait_rows(&dir, "the settlement", |r| {
        r.len() == 1 && r[0].state != "reserved"
    })
    .await;
    assert_eq!(rows[0].charged, Some(12_300_000_000));
    assert_eq!(n.lines().await, SRC);
    n.quit().await;
}

/// An answer for a.py, lib/util.py (a context file) and a new file, with its project.
async fn three_files(server: &FakeOpenRouter) -> Nvim {
    three_files_in(server, Nvim::start(&server.url).await).await
}

/// [`three_files`] in a Neovim already started (a screen test's).
async fn three_files_in(server: &FakeOpenRouter, n: Nvim) -> Nvim {
    server.push("/models", Reply::json(200, MODELS));
    let text = format!(
        "a.py\n{}lib/util.py\n{}new/extra.py\n{}",
        block("    return a + b\n", "    return b + a\n"),
        block("    return a + b\n", "    return b + a\n"),
        block("", "print(1)\n"),
    );
    server.push("/chat/completions", Reply::sse(answer(&text, 9, 0.0184)));
    let proj = n.home.path().join("proj");
    std::fs::create_dir_all(proj.join(".git")).unwrap();
    std::fs::create_dir_all(proj.join("lib")).unwrap();
    std::fs::write(
        proj.join("lib/util.py"),
        "def add(a, b):\n    return a + b\n",
    )
    .unwrap();
    n.open("a.py", SRC).await;
    builtin_notify(&n).await;
    n.cmd("LlmContext add lib/util.py").await;
    n
}

#[tokio::test]
async fn the_done_message_names_the_files_and_fires_first() {
    let server = FakeOpenRouter::start().await;
    let mut n = three_files(&server).await;
    n.cmd("LlmEdit swap everywhere").await;
    let done = n.wait_event("FrugalEditDone").await;
    let whole = field(&done, "message").as_str().unwrap_or("").to_string();
    assert!(whole.contains("a.py, lib/util.py, new/extra.py"), "{whole}");
    let h = wait_history(&n, "hunks ·").await;
    let line = h.iter().rev().find(|l| l.contains("hunks ·")).unwrap();
    assert_eq!(
        line, "frugal: 3 hunks · a.py util.py +1 new · $0.0184",
        "{h:?}"
    );
    n.quit().await;
}

#[tokio::test]
async fn accept_all_says_what_it_did_and_that_buffers_are_unsaved() {
    let server = FakeOpenRouter::start().await;
    let mut n = three_files(&server).await;
    n.cmd("LlmEdit swap everywhere").await;
    n.wait_event("FrugalEditDone").await;
    n.cmd("LlmAccept!").await;
    let h = wait_history(&n, "accepted").await;
    let line = h.iter().rev().find(|l| l.contains("accepted")).unwrap();
    assert_eq!(
        line, "frugal: accepted 3 hunks, 3 buffers unsaved — :wall",
        "{h:?}"
    );
    n.quit().await;
}

// Screen tests at 80 columns: every command that answers leaves one line starting `frugal: `
// on the message row, no hit-enter prompt, and its event fired with no key pressed.

const W: i64 = 80;
const H: i64 = 24;

/// The message row (the last) once it starts with `frugal: ` and holds `needle`; asserts no
/// hit-enter prompt is up.
async fn said(n: &Nvim, needle: &str) -> Snapshot {
    let s = n
        .wait_screen(needle, |s| {
            let last = s.row(H as usize - 1);
            last.starts_with("frugal: ") && last.contains(needle)
        })
        .await;
    assert!(!s.hit_enter(), "a hit-enter prompt:\n{}", s.dump());
    assert!(!n.blocking().await, "Neovim waits on a key:\n{}", s.dump());
    s
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn screen_an_edit_and_accept_all_answer_in_one_line() {
    let server = FakeOpenRouter::start().await;
    let n = Nvim::start_ui(&server.url, &[], W, H).await;
    let mut n = three_files_in(&server, n).await;
    said(&n, "1 context file").await;
    n.cmd("LlmEdit swap everywhere").await;
    // Fired with no key pressed.
    n.wait_event("FrugalEditDone").await;
    let s = said(&n, "3 hunks · a.py util.py +1 new · $0.0184").await;
    println!("after the edit:\n{}", s.dump());
    n.cmd("LlmAccept!").await;
    let s = said(&n, "accepted 3 hunks, 3 buffers unsaved — :wall").await;
    println!("after :LlmAccept!:\n{}", s.dump());
    drop(n);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn screen_a_failed_edit_and_an_answer_without_a_block() {
    let server = FakeOpenRouter::start().await;
    server.push("/models", Reply::json(200, MODELS));
    let unmatched = block("def mul(a, b):\n    return a * b\n", "x\n");
    server.push(
        "/chat/completions",
        Reply::sse(answer(&unmatched, 5, 0.001)),
    );
    let prose = "I would not change this.\nThe function is already minimal.";
    server.push("/chat/completions", Reply::sse(answer(prose, 7, 0.0123)));
    let mut n = Nvim::start_ui(&server.url, &[], W, H).await;
    n.open("a.py", SRC).await;
    n.cmd("LlmEdit mul").await;
    let failed = n.wait_event("FrugalEditFailed").await;
    assert_eq!(field(&failed, "reason").as_str(), Some("no_match"));
    said(&n, "no block matched the buffer").await;
    n.cmd("LlmEdit simplify").await;
    n.wait_event("FrugalEditFailed").await;
    let s = said(&n, "no edit in the answer · $0.0123").await;
    assert!(s.contains("I would not change this."), "{}", s.dump());
    println!("an answer without a block:\n{}", s.dump());
    drop(n);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn screen_context_key_and_model_answer_in_one_line() {
    let server = FakeOpenRouter::start().await;
    server.push("/models", Reply::json(200, MODELS));
    let n = Nvim::start_ui(&server.url, &[], W, H).await;
    let proj = n.home.path().join("proj");
    std::fs::create_dir_all(proj.join(".git")).unwrap();
    std::fs::create_dir_all(proj.join("lib")).unwrap();
    std::fs::write(proj.join("lib/small.py"), "x = 1\n".repeat(80)).unwrap();
    std::fs::write(proj.join("lib/tiny.py"), "y = 2\n").unwrap();
    n.open("a.py", SRC).await;
    // A refused path and the set: one message.
    n.cmd("LlmContext add ../elsewhere.py").await;
    said(&n, "outside the project").await;
    n.cmd("LlmContext add lib/small.py lib/tiny.py").await;
    said(&n, "2 context files").await;
    // The listing in a float; no file's share reads 0%.
    n.cmd("LlmContext").await;
    let s = said(&n, "context files of").await;
    assert!(s.contains("lib/small.py"), "{}", s.dump());
    let row = s.row(s.find("lib/tiny.py").unwrap().0);
    assert!(row.contains("<0.1% of max_context_bytes"), "{row}");
    let row = s.row(s.find("lib/small.py").unwrap().0);
    assert!(row.contains("0.2% of max_context_bytes"), "{row}");
    println!(":LlmContext:\n{}", s.dump());
    n.cmd("close").await;
    // :LlmKey's answer names the project's path (long): one line, the rest in a float.
    n.cmd("LlmKey").await;
    let s = said(&n, "no key is bound to project").await;
    assert!(s.contains("makes one, capped by"), "{}", s.dump());
    n.cmd("close").await;
    // A typo in a model id: the closest ids suggested.
    n.cmd("LlmModel mistralai/mistral-medium-e").await;
    said(&n, "did you mean mistralai/mistral-medium-3").await;
    drop(n);
}
