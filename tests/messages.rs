//! What the user is told (SPEC, "One line, never a prompt"): with Neovim's own `vim.notify`
//! every message is one line that fits the echo area, starts `frugal: ` and is cut with `…`;
//! a notification plugin gets the whole text titled `frugal`; events come before messages.

mod common;
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
    let v = n.lua("return vim.api.nvim_exec2('messages', { output = true }).output").await;
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
        assert!(Instant::now() < end, "no message with {needle:?}; history: {h:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn cells(n: &Nvim, s: &str) -> i64 {
    n.lua_args(
        "return vim.fn.strdisplaywidth(...)",
        vec![Value::from(s)],
    )
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
    assert!(cells(&n, line).await <= space, "{line:?} is wider than {space} cells");
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
