//! `:LlmUsage` and the statusline in a real headless Neovim, over a real ledger the test writes
//! through the library, with the loopback OpenRouter answering `GET /key`.

mod common;
use common::*;
use frugal::budget::{
    ChargeSource, Decision, Ledger, Price, ReserveInput, Settlement, SystemClock, Usd,
};
use std::path::Path;

const SRC: &[&str] = &["x = 1"];
const KEY: &str = r#"{"data":{"label":"sk-or-v1-au7...890","limit":100,"limit_remaining":74.5,"limit_reset":"monthly","usage":25.5,"usage_daily":1.25,"usage_weekly":5.5,"usage_monthly":25.5,"is_free_tier":false,"is_provisioning_key":false,"expires_at":null,"rate_limit":{"requests":1000,"interval":"1h"}}}"#;

fn spend(l: &mut Ledger, project: &str, model: &str, micro_usd: i64, tokens: (u64, u64)) {
    let price = Price {
        prompt: Usd(1_000_000),
        completion: Usd(10_000_000),
        request: Usd::ZERO,
    };
    let input = ReserveInput::new(project, model, 10, 100, price);
    let Decision::Reserved { id, .. } = l.reserve(&input, &SystemClock).unwrap() else {
        panic!()
    };
    let mut s = Settlement::charged(Usd(micro_usd * 1_000_000), ChargeSource::Usage);
    s.tokens_in = Some(tokens.0);
    s.tokens_out = Some(tokens.1);
    l.settle(id, s, &SystemClock).unwrap();
}

/// Writes: this project $0.42 today over two models (plus one reservation in flight of $0.01),
/// another project $2.50.
fn write_ledger(data: &Path, project: &str, other: &str) {
    let mut l = Ledger::open(data.join("ledger.sqlite3")).unwrap();
    spend(
        &mut l,
        project,
        "anthropic/claude-sonnet-4.5",
        300_000,
        (1000, 400),
    );
    spend(
        &mut l,
        project,
        "anthropic/claude-sonnet-4.5",
        100_000,
        (1000, 400),
    );
    spend(
        &mut l,
        project,
        "mistralai/mistral-medium-3",
        20_000,
        (500, 200),
    );
    spend(&mut l, other, "openai/gpt-4o", 2_500_000, (5000, 1000));
    let price = Price {
        prompt: Usd::ZERO,
        completion: Usd(100_000_000),
        request: Usd::ZERO,
    };
    let input = ReserveInput::new(project, "anthropic/claude-sonnet-4.5", 0, 100, price);
    assert!(matches!(
        l.reserve(&input, &SystemClock).unwrap(),
        Decision::Reserved { .. }
    ));
}

async fn setup(server: &FakeOpenRouter) -> (Nvim, String) {
    let mut n = Nvim::start_with(
        &server.url,
        &[(
            "FRUGAL_SETUP",
            r#"{"budget":{"daily_usd":1,"monthly_usd":10}}"#,
        )],
    )
    .await;
    n.open("a.py", SRC).await;
    let data = n.home.path().join("data/nvim/frugal");
    let root = n.home.path().join("proj").canonicalize().unwrap();
    let other = n.home.path().join("other");
    std::fs::create_dir_all(&other).unwrap();
    write_ledger(
        &data,
        root.to_str().unwrap(),
        other.canonicalize().unwrap().to_str().unwrap(),
    );
    n.drain();
    (n, root.display().to_string())
}

async fn float_text(n: &Nvim) -> String {
    n.lua("return table.concat(vim.api.nvim_buf_get_lines(0, 0, -1, false), '\\n')")
        .await
        .as_str()
        .unwrap()
        .to_string()
}

async fn wait_text(n: &Nvim, needle: &str) -> String {
    let end = std::time::Instant::now() + DEADLINE;
    loop {
        let t = float_text(n).await;
        if t.contains(needle) {
            return t;
        }
        assert!(
            std::time::Instant::now() < end,
            "{needle:?} never shown in:\n{t}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn the_float_shows_the_ledger_figures_and_key_info() {
    let server = FakeOpenRouter::start().await;
    server.push("/key", Reply::json(200, KEY));
    let (n, root) = setup(&server).await;
    n.cmd("LlmUsage").await;
    let cfg = n.lua("return vim.api.nvim_win_get_config(0)").await;
    assert_eq!(field(&cfg, "relative").as_str(), Some("editor"));
    let title = format!("{:?}", field(&cfg, "title"));
    assert!(title.contains("frugal"), "{title}");
    assert_eq!(
        n.lua("return vim.bo.buftype").await.as_str(),
        Some("nofile")
    );
    let text = float_text(&n).await;
    assert!(text.contains(&root), "{text}");
    // Today: $0.42 settled + $0.01 reserved = $0.43 against $1.00.
    assert!(text.contains("$0.4300"), "{text}");
    assert!(text.contains("43%"), "{text}");
    assert!(text.contains("$1.00"), "{text}");
    assert!(
        text.contains("reserved") && text.contains("$0.0100"),
        "{text}"
    );
    // Models sorted by cost.
    let sonnet = text.find("anthropic/claude-sonnet-4.5").unwrap();
    let mistral = text.find("mistralai/mistral-medium-3").unwrap();
    assert!(sonnet < mistral, "{text}");
    assert!(text.contains("$0.0200"), "{text}");
    assert!(
        !text.contains("openai/gpt-4o"),
        "another project's model: {text}"
    );
    assert!(
        text.contains("Mistral"),
        "the footprint names its source: {text}"
    );
    // The key's figures arrive after the window opened, without a wait.
    let text = wait_text(&n, "$74.50").await;
    assert!(text.contains("monthly"), "{text}");
    assert!(!text.contains(API_KEY));
    // Highlights are set.
    let hl = n.lua("return #vim.api.nvim_buf_get_extmarks(0, vim.api.nvim_get_namespaces().frugal_usage, 0, -1, {})").await;
    assert!(hl.as_u64().unwrap() > 5);
    n.quit().await;
}

#[tokio::test]
async fn all_view_q_closes_and_wipes() {
    let server = FakeOpenRouter::start().await;
    let (n, root) = setup(&server).await;
    n.cmd("LlmUsage all").await;
    let text = float_text(&n).await;
    assert!(text.contains(&root), "{text}");
    assert!(text.contains("/other"), "{text}");
    assert!(text.contains("$2.50"), "{text}");
    let buf = n
        .lua("return vim.api.nvim_get_current_buf()")
        .await
        .as_u64()
        .unwrap();
    // `a` toggles back to the project.
    n.lua("vim.api.nvim_feedkeys('a', 'x', false)").await;
    let text = float_text(&n).await;
    assert!(!text.contains("/other"), "{text}");
    n.lua("vim.api.nvim_feedkeys('q', 'x', false)").await;
    let floats = n.lua("return #vim.tbl_filter(function(w) return vim.api.nvim_win_get_config(w).relative ~= '' end, vim.api.nvim_list_wins())").await;
    assert_eq!(floats.as_u64(), Some(0));
    let valid = n
        .lua(&format!("return vim.api.nvim_buf_is_valid({buf})"))
        .await;
    assert_eq!(valid.as_bool(), Some(false), "the buffer is wiped");
    n.quit().await;
}

#[tokio::test]
async fn key_info_unreachable_when_the_endpoint_fails_or_hangs() {
    for reply in [
        Reply::json(500, r#"{"error":{"code":500,"message":"boom"}}"#),
        Reply::sse(vec![Part::Hang]),
    ] {
        let server = FakeOpenRouter::start().await;
        server.push("/key", reply);
        let (n, _root) = setup(&server).await;
        let t0 = std::time::Instant::now();
        n.cmd("LlmUsage").await;
        assert!(t0.elapsed() < DEADLINE);
        wait_text(&n, "unreachable").await;
        // r refreshes without error; Esc closes.
        n.lua("vim.api.nvim_feedkeys('r', 'x', false)").await;
        n.lua("vim.api.nvim_feedkeys(vim.keycode('<Esc>'), 'x', false)")
            .await;
        let floats = n.lua("return #vim.tbl_filter(function(w) return vim.api.nvim_win_get_config(w).relative ~= '' end, vim.api.nvim_list_wins())").await;
        assert_eq!(floats.as_u64(), Some(0));
        n.quit().await;
    }
}

#[tokio::test]
async fn the_float_follows_the_editor_size() {
    let server = FakeOpenRouter::start().await;
    let (n, _root) = setup(&server).await;
    n.cmd("set columns=120 lines=50").await;
    n.cmd("LlmUsage").await;
    let w1 = n
        .lua("return vim.api.nvim_win_get_width(0)")
        .await
        .as_u64()
        .unwrap();
    n.cmd("set columns=50").await;
    n.cmd("doautocmd VimResized").await;
    let w2 = n
        .lua("return vim.api.nvim_win_get_width(0)")
        .await
        .as_u64()
        .unwrap();
    assert!(w2 <= 46 && w2 < w1, "{w1} -> {w2}");
    n.quit().await;
}

#[tokio::test]
async fn statusline_is_cached_and_refreshed_by_events() {
    let server = FakeOpenRouter::start().await;
    let (n, _root) = setup(&server).await;
    // Before the backend runs: empty, and it is not started for the statusline.
    assert_eq!(
        n.lua("return require('frugal').statusline()")
            .await
            .as_str(),
        Some("")
    );
    assert!(n.backend_pid().await.is_none());
    n.lua("require('frugal.rpc').ensure()").await;
    n.cmd("doautocmd BufEnter").await;
    let end = std::time::Instant::now() + DEADLINE;
    loop {
        let s = n.lua("return require('frugal').statusline()").await;
        if s.as_str() == Some("$0.4300/$1.00 today") {
            break;
        }
        assert!(std::time::Instant::now() < end, "statusline: {s:?}");
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    n.quit().await;
}

/// An edit against an Anthropic model through OpenRouter: the system prompt goes as a text part
/// marked `cache_control`, the usage chunk's cached tokens reach the ledger with what they saved
/// at the catalogue's cache-read price, and `:LlmUsage` and `frugal usage --json` show both.
#[tokio::test]
async fn a_cached_prompt_is_marked_and_its_saving_shown() {
    let server = FakeOpenRouter::start().await;
    server.push("/models", Reply::json(200, MODELS));
    let usage = serde_json::json!({
        "id": "gen-test-1", "object": "chat.completion.chunk", "choices": [],
        "usage": {"prompt_tokens": 14_000, "completion_tokens": 20, "total_tokens": 14_020,
                  "cost": 0.00918, "is_byok": false,
                  "prompt_tokens_details": {"cached_tokens": 12_300, "cache_write_tokens": 0},
                  "completion_tokens_details": {"reasoning_tokens": 0}}
    });
    let mut body = String::from(": OPENROUTER PROCESSING\n\n");
    body.push_str(&chunk(&block("x = 1\n", "x = 2\n")));
    body.push_str(&finish_chunk("stop"));
    body.push_str(&format!("data: {usage}\n\ndata: [DONE]\n\n"));
    server.push(
        "/chat/completions",
        Reply::sse(vec![Part::Bytes(body.into_bytes())]),
    );
    // The default model, anthropic/claude-sonnet-4.5: $3/M prompt, $0.30/M cache read.
    let mut n = Nvim::start(&server.url).await;
    n.open("a.py", SRC).await;
    n.cmd("LlmEdit bump").await;
    n.wait_event("FrugalEditDone").await;

    let sent: serde_json::Value = serde_json::from_str(&server.chat_requests()[0].body).unwrap();
    let system = &sent["messages"][0];
    assert_eq!(system["role"], "system");
    assert_eq!(system["content"][0]["type"], "text");
    assert_eq!(system["content"][0]["cache_control"]["type"], "ephemeral");
    assert!(
        system["content"][0]["text"]
            .as_str()
            .unwrap()
            .contains("SEARCH/REPLACE"),
        "{system}"
    );
    assert!(
        sent["messages"][1]["content"].is_string(),
        "only the stable part is marked: {sent}"
    );

    // 12,300 × ($3 − $0.30)/M = $0.03321, exactly.
    let data = n.home.path().join("data/nvim/frugal");
    // Settled just after FrugalEditDone.
    wait_rows(&data, "the settlement", |r| {
        r.first().is_some_and(|r| r.state == "settled")
    })
    .await;
    let ledger = rusqlite::Connection::open(ledger_path(&data)).unwrap();
    let (cached, saved): (i64, i64) = ledger
        .query_row("SELECT tokens_cached, cache_saved FROM requests", [], |r| {
            Ok((r.get(0)?, r.get(1)?))
        })
        .unwrap();
    assert_eq!((cached, saved), (12_300, 33_210_000_000));

    n.cmd("LlmUsage").await;
    wait_text(
        &n,
        "cache: 12,300 prompt tokens read from cache, saved $0.0332",
    )
    .await;

    let root = n.home.path().join("proj").canonicalize().unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_frugal"))
        .args(["usage", "--json", "--data-dir"])
        .arg(&data)
        .arg("--project")
        .arg(&root)
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["cache"]["tokens_cached"], 12_300);
    assert_eq!(v["cache"]["saved"]["picos"], 33_210_000_000_i64);
    assert_eq!(v["models"][0]["model"], "anthropic/claude-sonnet-4.5");
    assert_eq!(v["models"][0]["tokens_cached"], 12_300);
    assert_eq!(v["models"][0]["cache_saved"]["text"], "$0.0332");
    n.quit().await;
}

/// A plain endpoint gets plain string contents, whatever the model is called.
#[tokio::test]
async fn a_plain_endpoint_gets_no_cache_control() {
    let server = FakeOpenRouter::start().await;
    server.push(
        "/chat/completions",
        Reply::sse(answer(&block("x = 1\n", "x = 2\n"), 8, 0.001)),
    );
    let mut n = Nvim::start_with(
        &server.plain_url,
        &[("FRUGAL_SETUP", r#"{"api_key":"env:OPENROUTER_API_KEY"}"#)],
    )
    .await;
    n.open("a.py", SRC).await;
    n.cmd("LlmEdit bump").await;
    n.wait_event("FrugalEditDone").await;
    let sent: serde_json::Value = serde_json::from_str(&server.chat_requests()[0].body).unwrap();
    assert_eq!(sent["model"], "anthropic/claude-sonnet-4.5");
    assert!(sent["messages"][0]["content"].is_string(), "{sent}");
    assert!(!server.chat_requests()[0].body.contains("cache_control"));
    n.quit().await;
}
