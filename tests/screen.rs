//! The screen harness itself (tests/common/screen.rs): it must see what a person sees, or the
//! screen tests built on it prove nothing. Each check here could fail if the grid were misread.
mod common;
use common::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_grid_shows_text_highlights_and_a_hit_enter_prompt() {
    let server = FakeOpenRouter::start().await;
    let nvim = Nvim::start_ui(&server.url, &[], 80, 24).await;
    nvim.open("a.py", &["def f():", "    return 1"]).await;
    let s = nvim
        .wait_screen("the file", |s| s.row(0).starts_with("def f():"))
        .await;
    assert_eq!(s.width, 80);
    assert_eq!(s.height, 24);
    assert!(s.row(1).starts_with("    return 1"), "{}", s.dump());
    assert!(!s.hit_enter(), "no prompt yet:\n{}", s.dump());

    // A highlight from an extmark is read back by its colour and group.
    nvim.lua(
        "vim.api.nvim_set_hl(0, 'ScreenProbe', { bg = 0x123456 })
         vim.api.nvim_buf_set_extmark(0, vim.api.nvim_create_namespace('probe'), 1, 4,
           { end_col = 10, hl_group = 'ScreenProbe' })",
    )
    .await;
    let s = nvim
        .wait_screen("the probe", |s| s.bg_at(1, 4) == Some(0x123456))
        .await;
    assert!(
        s.groups_at(1, 4).iter().any(|g| g == "ScreenProbe"),
        "{:?}",
        s.groups_at(1, 4)
    );
    assert_ne!(s.bg_at(1, 3), Some(0x123456));
    assert_eq!(nvim.hl_bg("ScreenProbe").await, Some(0x123456));

    // A one-line message that fits: no prompt; the message row holds it.
    nvim.cmd("echo 'short and sweet'").await;
    let s = nvim.screen().await;
    assert!(!s.hit_enter(), "{}", s.dump());
    assert!(s.row(23).starts_with("short and sweet"), "{}", s.dump());

    // A message wider than the screen raises the hit-enter prompt, and the harness says so.
    let long = "x".repeat(120);
    nvim.lua(&format!(
        "vim.schedule(function() vim.notify('{long}') end)"
    ))
    .await;
    let s = nvim
        .wait_screen("the prompt", |s| s.contains("Press ENTER"))
        .await;
    assert!(s.hit_enter());
    assert!(nvim.blocking().await);
    drop(nvim);
}
