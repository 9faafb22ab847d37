//! The edit flow end to end: a real headless Neovim running the plugin, its real backend, and a
//! loopback OpenRouter.

mod common;
use common::*;
use rmpv::Value;
use std::time::Duration;

const SRC: &[&str] = &[
    "local M = {}",
    "",
    "function M.add(a, b)",
    "  return a + b",
    "end",
    "",
    "function M.sub(a, b)",
    "  return a - b",
    "end",
    "",
    "return M",
];

async fn modified(n: &Nvim) -> bool {
    n.lua("return vim.bo.modified").await.as_bool().unwrap()
}

async fn hunk_count(n: &Nvim) -> u64 {
    n.lua("return require('frugal.hunks').count(0)").await.as_u64().unwrap()
}

#[tokio::test]
async fn one_block_preview_accept_undo() {
    let server = FakeOpenRouter::start().await;
    let text = block("  return a + b\n", "  return (a + b) // 1\n");
    server.push("/chat/completions", Reply::sse(answer(&format!("Sure.\n{text}"), 3, 0.00123)));
    let mut n = Nvim::start(&server.url).await;
    n.open("m.lua", SRC).await;
    n.cmd("3,5LlmEdit make add return an integer").await;
    let done = n.wait_event("FrugalEditDone").await;
    assert_eq!(field(&done, "hunks").as_u64(), Some(1));
    assert_eq!(field(&done, "model").as_str(), Some("test/model"));
    assert!((field(&done, "cost_usd").as_f64().unwrap() - 0.00123).abs() < 1e-12);

    // Previewed, not applied.
    assert_eq!(n.lines().await, SRC);
    assert!(!modified(&n).await);
    let marks = n
        .lua("return #vim.api.nvim_buf_get_extmarks(0, vim.api.nvim_get_namespaces().frugal_hunks, 0, -1, {details=true})")
        .await;
    assert_eq!(marks.as_u64(), Some(2), "range mark + virtual lines mark");
    let virt = n
        .lua("local m = vim.api.nvim_buf_get_extmarks(0, vim.api.nvim_get_namespaces().frugal_hunks, 0, -1, {details=true}) for _, x in ipairs(m) do if x[4].virt_lines then return x[4].virt_lines[1][1][1] end end")
        .await;
    assert_eq!(virt.as_str(), Some("  return (a + b) // 1"));

    // The request.
    let reqs = server.chat_requests();
    assert_eq!(reqs.len(), 1);
    let r = &reqs[0];
    assert_eq!(r.headers.get("authorization").map(String::as_str), Some(&*format!("Bearer {API_KEY}")));
    assert_eq!(r.headers.get("x-openrouter-title").map(String::as_str), Some("frugal.nvim"));
    assert!(r.headers.contains_key("http-referer"));
    let body: serde_json::Value = serde_json::from_str(&r.body).unwrap();
    assert_eq!(body["stream"], true);
    assert!(body["max_tokens"].as_u64().unwrap() >= 16);
    assert_eq!(body["model"], "anthropic/claude-sonnet-4.5");
    let user = body["messages"][1]["content"].as_str().unwrap();
    assert!(user.contains("make add return an integer"));
    assert!(user.contains("Selected lines 3-5"));
    assert!(user.contains("m.lua"));

    // Accept the hunk under the cursor.
    n.cmd("call cursor(4, 1)").await;
    n.cmd("LlmAccept").await;
    let mut want: Vec<String> = SRC.iter().map(|s| s.to_string()).collect();
    want[3] = "  return (a + b) // 1".into();
    assert_eq!(n.lines().await, want);
    assert_eq!(hunk_count(&n).await, 0);
    assert!(modified(&n).await);
    // One undo step restores the original.
    n.cmd("undo").await;
    assert_eq!(n.lines().await, SRC);
    n.quit().await;
}
