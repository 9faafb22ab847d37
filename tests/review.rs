//! `:LlmReview` end to end: a real headless Neovim running the plugin, its real backend, and a
//! loopback OpenRouter playing both the editing model and the judge.

mod common;
use common::*;
use rmpv::Value;
use std::path::{Path, PathBuf};

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

const JUDGE: &str = "google/gemini-2.5-flash";

/// The editing model and the judge (listing structured outputs), priced. `judge_completion`:
/// the judge's price per completion token.
fn catalogue(judge_completion: &str) -> String {
    format!(
        r#"{{"data":[
 {{"id":"anthropic/claude-sonnet-4.5","name":"Claude Sonnet 4.5","context_length":200000,
   "pricing":{{"prompt":"0.000003","completion":"0.000015","request":"0"}},
   "top_provider":{{"max_completion_tokens":64000}},"supported_parameters":["max_tokens","temperature"]}},
 {{"id":"{JUDGE}","name":"Gemini 2.5 Flash","context_length":1048576,
   "pricing":{{"prompt":"0.0000003","completion":"{judge_completion}","request":"0"}},
   "top_provider":{{"max_completion_tokens":65535}},
   "supported_parameters":["max_tokens","temperature","response_format","structured_outputs"]}}
]}}"#
    )
}

/// An edit proposing three hunks of `SRC`.
fn edit_answer() -> String {
    format!(
        "{}{}{}",
        block("local M = {}\n", "local M = { version = 1 }\n"),
        block("  return a + b\n", "  return a + b + 0\n"),
        block("  return a - b\n", "  return b - a\n"),
    )
}

async fn start(server: &FakeOpenRouter, setup: &str) -> (Nvim, PathBuf) {
    let n = Nvim::start_with(&server.url, &[("FRUGAL_SETUP", setup)]).await;
    let dir = n.home.path().join("data/nvim/frugal");
    (n, dir)
}

/// Opens `m.lua`, edits it into three pending hunks.
async fn three_hunks(n: &mut Nvim) {
    n.open("m.lua", SRC).await;
    n.cmd("LlmEdit make the module safer").await;
    let done = n.wait_event("FrugalEditDone").await;
    assert_eq!(field(&done, "hunks").as_u64(), Some(3));
}

/// `(kind, state, charged)` of every ledger row, in order.
fn kinds(dir: &Path) -> Vec<(String, String, Option<i64>)> {
    let conn = rusqlite::Connection::open(ledger_path(dir)).unwrap();
    conn.busy_timeout(std::time::Duration::from_secs(5))
        .unwrap();
    let mut st = conn
        .prepare("SELECT kind, state, charged FROM requests ORDER BY id")
        .unwrap();
    st.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .unwrap()
        .map(Result::unwrap)
        .collect()
}

/// The verdict notes shown on the buffer's hunks: (row, text, highlight group), by row. A
/// verdict is virtual lines under its hunk (SPEC: readable in full): their text joined.
async fn notes(n: &Nvim) -> Vec<(u64, String, String)> {
    let v = n
        .lua(
            "local ns = vim.api.nvim_get_namespaces().frugal_hunks
             local out = {}
             for _, m in ipairs(vim.api.nvim_buf_get_extmarks(0, ns, 0, -1, { details = true })) do
               local text, group = {}, nil
               for _, line in ipairs(m[4].virt_lines or {}) do
                 local l = ''
                 for _, c in ipairs(line) do
                   if c[2] and c[2]:match('^FrugalReview') then
                     l, group = l .. c[1], c[2]
                   end
                 end
                 table.insert(text, (l:gsub('%s+$', '')))
               end
               if group then
                 table.insert(out, { m[2], table.concat(text, ' '), group })
               end
             end
             table.sort(out, function(a, b) return a[1] < b[1] end)
             return out",
        )
        .await;
    v.as_array()
        .unwrap()
        .iter()
        .map(|t| {
            let t = t.as_array().unwrap();
            (
                t[0].as_u64().unwrap(),
                t[1].as_str().unwrap().to_string(),
                t[2].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

fn verdicts_of(data: &Value) -> Vec<(String, u64, String, String)> {
    field(data, "verdicts")
        .as_array()
        .unwrap()
        .iter()
        .map(|v| {
            (
                field(v, "path").as_str().unwrap().to_string(),
                field(v, "line").as_u64().unwrap(),
                field(v, "verdict").as_str().unwrap().to_string(),
                field(v, "reason").as_str().unwrap().to_string(),
            )
        })
        .collect()
}

#[tokio::test]
async fn three_verdicts_on_three_hunks_priced_recorded_and_shown_apart() {
    let server = FakeOpenRouter::start().await;
    server.push("/models", Reply::json(200, &catalogue("0.0000025")));
    server.push(
        "/chat/completions",
        Reply::sse(answer(&edit_answer(), 9, 0.003)),
    );
    let judge = r#"{"verdicts":[{"hunk":1,"verdict":"ok","reason":"adds a version field"},{"hunk":2,"verdict":"risky","reason":"a no-op that hides intent"},{"hunk":3,"verdict":"wrong","reason":"swaps the operands"}]}"#;
    server.push("/chat/completions", Reply::sse(answer(judge, 11, 0.0021)));
    let (mut n, dir) = start(&server, "{}").await;
    three_hunks(&mut n).await;

    n.cmd("LlmReview").await;
    let done = n.wait_event("FrugalReviewDone").await;
    let v = verdicts_of(&done);
    let want = [
        ("m.lua", 1, "ok", "adds a version field"),
        ("m.lua", 4, "risky", "a no-op that hides intent"),
        ("m.lua", 8, "wrong", "swaps the operands"),
    ];
    assert_eq!(v.len(), 3, "{v:?}");
    for (got, want) in v.iter().zip(want) {
        assert_eq!(
            (got.0.as_str(), got.1, got.2.as_str(), got.3.as_str()),
            want
        );
    }
    assert!((field(&done, "cost_usd").as_f64().unwrap() - 0.0021).abs() < 1e-12);
    assert_eq!(
        field(&done, "buf").as_u64(),
        n.lua("return vim.api.nvim_get_current_buf()")
            .await
            .as_u64()
    );

    // Shown on each hunk, in the verdict's colour.
    let shown = notes(&n).await;
    assert_eq!(
        shown,
        vec![
            (
                0,
                "  ✓ ok: adds a version field".into(),
                "FrugalReviewOk".into()
            ),
            (
                3,
                "  ⚠ risky: a no-op that hides intent".into(),
                "FrugalReviewRisky".into()
            ),
            (
                7,
                "  ✗ wrong: swaps the operands".into(),
                "FrugalReviewWrong".into()
            ),
        ]
    );
    // The verdict's colour on CursorLine's background, apart from a removed line's
    // (SPEC: distinguishable from FrugalDelete).
    for (group, target) in [
        ("FrugalReviewOk", "DiagnosticOk"),
        ("FrugalReviewRisky", "DiagnosticWarn"),
        ("FrugalReviewWrong", "DiagnosticError"),
    ] {
        let hl = |g: &str| {
            format!("local h = vim.api.nvim_get_hl(0, {{ name = '{g}', link = false }}) return {{ h.fg or -1, h.bg or -1 }}")
        };
        let got = n.lua(&hl(group)).await;
        let fg = n.lua(&hl(target)).await;
        let line = n.lua(&hl("CursorLine")).await;
        let delete = n.lua(&hl("FrugalDelete")).await;
        assert_eq!(
            got.as_array().unwrap()[0],
            fg.as_array().unwrap()[0],
            "{group}"
        );
        assert_eq!(
            got.as_array().unwrap()[1],
            line.as_array().unwrap()[1],
            "{group}"
        );
        assert_ne!(got, delete, "{group}");
    }
    // The buffer is still untouched.
    assert_eq!(n.lines().await, SRC);

    // What the judge was sent: its model, the schema, the instruction and the numbered hunks.
    let reqs = server.chat_requests();
    assert_eq!(reqs.len(), 2);
    let body: serde_json::Value = serde_json::from_str(&reqs[1].body).unwrap();
    assert_eq!(body["model"], JUDGE);
    assert_eq!(body["stream"], true);
    assert_eq!(body["response_format"]["type"], "json_schema");
    assert_eq!(body["response_format"]["json_schema"]["strict"], true);
    assert_eq!(
        body["response_format"]["json_schema"]["schema"]["required"],
        serde_json::json!(["verdicts"])
    );
    assert!(body["provider"]["max_price"].is_object(), "{body}");
    let user = body["messages"][1]["content"].as_str().unwrap();
    assert!(user.contains("make the module safer"), "{user}");
    for h in [
        "Hunk 1: m.lua, line 1\n",
        "-local M = {}\n+local M = { version = 1 }\n",
        "Hunk 2: m.lua, line 4\n",
        " function M.add(a, b)\n-  return a + b\n+  return a + b + 0\n end\n",
        "Hunk 3: m.lua, line 8\n",
        "-  return a - b\n+  return b - a\n",
    ] {
        assert!(user.contains(h), "{h:?} not in {user}");
    }
    assert!(!reqs[1].body.contains(API_KEY));
    // The first request (the edit) asked for no schema.
    assert!(!reqs[0].body.contains("response_format"));

    // Recorded as a review, settled with its cost.
    let rows = wait_rows(&dir, "both settled", |r| {
        r.len() == 2 && r.iter().all(|x| x.state == "settled")
    })
    .await;
    assert_eq!(rows[1].model, JUDGE);
    assert_eq!(
        kinds(&dir),
        vec![
            ("edit".into(), "settled".into(), Some(3_000_000_000)),
            ("review".into(), "settled".into(), Some(2_100_000_000)),
        ]
    );

    // :LlmUsage shows review spend apart.
    n.cmd("LlmUsage").await;
    let text = n
        .lua("return table.concat(vim.api.nvim_buf_get_lines(0, 0, -1, false), '\\n')")
        .await;
    let text = text.as_str().unwrap();
    assert!(
        text.contains("reviews") && text.contains("1 request, $0.0021"),
        "{text}"
    );
    n.cmd("close").await;

    // So does `frugal usage --json`.
    let proj = n.home.path().join("proj");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_frugal"))
        .args(["usage", "--json", "--data-dir"])
        .arg(&dir)
        .arg("--project")
        .arg(&proj)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let j: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(j["reviews"]["requests"], 1);
    assert_eq!(j["reviews"]["cost"]["picos"], 2_100_000_000i64);
    assert_eq!(j["spend"]["total"]["spent"]["picos"], 5_100_000_000i64);

    // Accepting or rejecting a hunk takes its verdict away with it.
    n.cmd("call cursor(8, 1)").await;
    n.cmd("LlmReject").await;
    n.cmd("call cursor(1, 1)").await;
    n.cmd("LlmAccept").await;
    let shown = notes(&n).await;
    assert_eq!(shown.len(), 1, "{shown:?}");
    assert!(shown[0].1.contains("risky"), "{shown:?}");
    n.quit().await;
}

#[tokio::test]
async fn an_answer_in_the_wrong_shape_gives_no_verdict_for_each_hunk() {
    let server = FakeOpenRouter::start().await;
    server.push("/models", Reply::json(200, &catalogue("0.0000025")));
    server.push(
        "/chat/completions",
        Reply::sse(answer(&edit_answer(), 9, 0.0)),
    );
    let judge = "All three look fine to me!\n```json\n{\"verdicts\": \"ok\"}\n```";
    server.push("/chat/completions", Reply::sse(answer(judge, 7, 0.0004)));
    let (mut n, dir) = start(&server, "{}").await;
    three_hunks(&mut n).await;
    n.cmd("LlmReview").await;
    let done = n.wait_event("FrugalReviewDone").await;
    let v = verdicts_of(&done);
    assert_eq!(v.len(), 3);
    assert!(
        v.iter()
            .all(|x| x.2 == "none" && x.3.starts_with("no verdict")),
        "{v:?}"
    );
    n.wait_notify("no verdict: the judge's answer held no")
        .await;
    let shown = notes(&n).await;
    assert_eq!(shown.len(), 3);
    assert!(
        shown
            .iter()
            .all(|s| s.1.starts_with("  ? no verdict") && s.2 == "FrugalReviewNone"),
        "{shown:?}"
    );
    // Still charged, and recorded as a review.
    wait_rows(&dir, "both settled", |r| {
        r.len() == 2 && r.iter().all(|x| x.state == "settled")
    })
    .await;
    assert_eq!(kinds(&dir)[1].0, "review");
    n.quit().await;
}

#[tokio::test]
async fn nothing_pending_is_refused_without_a_request() {
    let server = FakeOpenRouter::start().await;
    let (mut n, _dir) = start(&server, "{}").await;
    n.open("m.lua", SRC).await;
    n.cmd("LlmReview").await;
    let (msg, level) = n.wait_notify("nothing to review").await;
    assert!(msg.contains("no proposed hunk is pending"), "{msg}");
    assert_eq!(level, 3, "a warning");
    assert!(server.requests().is_empty(), "{:?}", server.requests());
    n.quit().await;
}

#[tokio::test]
async fn a_cap_too_low_for_the_review_refuses_it_without_http() {
    let server = FakeOpenRouter::start().await;
    // The judge at $1000 per million answer tokens: even its smallest useful answer (512
    // tokens, $0.51) passes the $0.25 per-request cap, which the edit fits.
    server.push("/models", Reply::json(200, &catalogue("0.001")));
    server.push(
        "/chat/completions",
        Reply::sse(answer(&edit_answer(), 9, 0.002)),
    );
    let (mut n, dir) = start(&server, r#"{"budget":{"per_request_usd":0.25}}"#).await;
    three_hunks(&mut n).await;
    n.cmd("LlmReview").await;
    let failed = n.wait_event("FrugalEditFailed").await;
    assert_eq!(field(&failed, "reason").as_str(), Some("budget"));
    let msg = field(&failed, "message").as_str().unwrap().to_string();
    assert!(
        msg.contains("nothing sent") && msg.contains("per_request_usd"),
        "{msg}"
    );
    n.wait_notify("nothing sent").await;
    assert_eq!(
        server.chat_requests().len(),
        1,
        "only the edit reached the server"
    );
    assert_eq!(kinds(&dir).len(), 1, "no review row");
    // The hunks stay pending, without verdicts.
    assert_eq!(
        n.lua("return require('frugal.hunks').count(0)")
            .await
            .as_u64(),
        Some(3)
    );
    assert!(notes(&n).await.is_empty());
    n.quit().await;
}

#[tokio::test]
async fn a_review_while_an_edit_streams_is_refused() {
    let server = FakeOpenRouter::start().await;
    server.push("/chat/completions", Reply::hanging());
    let (mut n, _dir) = start(&server, "{}").await;
    n.open("m.lua", SRC).await;
    n.cmd("LlmEdit anything").await;
    server
        .wait_until("the edit reached the server", |s| {
            s.chat_requests().len() == 1
        })
        .await;
    n.cmd("LlmReview").await;
    n.wait_notify("an edit is still streaming in this buffer")
        .await;
    assert_eq!(server.chat_requests().len(), 1);
    n.cmd("LlmCancel").await;
    n.wait_event("FrugalEditFailed").await;
    n.quit().await;
}

#[tokio::test]
async fn an_edit_while_a_review_runs_is_refused_sends_nothing_and_keeps_the_hunks() {
    let server = FakeOpenRouter::start().await;
    server.push("/models", Reply::json(200, &catalogue("0.0000025")));
    server.push(
        "/chat/completions",
        Reply::sse(answer(&edit_answer(), 9, 0.0)),
    );
    server.push(
        "/chat/completions",
        Reply::sse(vec![
            Part::Bytes(b": OPENROUTER PROCESSING\n\n".to_vec()),
            Part::Hang,
        ]),
    );
    let (mut n, _dir) = start(&server, "{}").await;
    three_hunks(&mut n).await;
    n.cmd("LlmReview").await;
    server
        .wait_until("the review's request", |s| s.chat_requests().len() == 2)
        .await;
    // One request per buffer, decided by the shim before anything else happens: `!` drops
    // nothing while the review runs.
    n.cmd("LlmEdit! afresh").await;
    let (msg, level) = n
        .wait_notify("an edit is still streaming in this buffer")
        .await;
    assert!(msg.contains(":LlmCancel"), "{msg}");
    assert_eq!(level, 4);
    assert_eq!(
        n.lua("return require('frugal.hunks').count(0)")
            .await
            .as_u64(),
        Some(3),
        "the hunks stay pending"
    );
    assert_eq!(server.chat_requests().len(), 2, "the edit sent nothing");
    n.cmd("LlmCancel").await;
    let failed = n.wait_event("FrugalEditFailed").await;
    assert_eq!(field(&failed, "reason").as_str(), Some("cancelled"));
    n.quit().await;
}

#[tokio::test]
async fn checkhealth_reports_the_judge_model_and_its_price() {
    let server = FakeOpenRouter::start().await;
    server.respond_with(|r| {
        if r.path.ends_with("/models") {
            Reply::json(200, &catalogue("0.0000025"))
        } else {
            Reply::json(500, "{}")
        }
    });
    let (n, _dir) = start(&server, "{}").await;
    n.open("m.lua", SRC).await;
    n.cmd("checkhealth frugal").await;
    let text = n
        .lua("return table.concat(vim.api.nvim_buf_get_lines(0, 0, -1, false), '\\n')")
        .await;
    let text = text.as_str().unwrap();
    assert!(
        text.contains("judge_model google/gemini-2.5-flash (:LlmReview): $0.30 in / $2.50 out per M tokens; asked for JSON through its schema"),
        "{text}"
    );
    n.quit().await;
}

/// Polls a Lua expression until it is true, failing the test at the deadline.
async fn wait_lua(n: &Nvim, what: &str, expr: &str) {
    let end = std::time::Instant::now() + DEADLINE;
    while n.lua(&format!("return {expr}")).await.as_bool() != Some(true) {
        assert!(
            std::time::Instant::now() < end,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn progress_shows_while_the_judge_thinks_and_cancel_keeps_the_hunks() {
    let server = FakeOpenRouter::start().await;
    server.push("/models", Reply::json(200, &catalogue("0.0000025")));
    server.push(
        "/chat/completions",
        Reply::sse(answer(&edit_answer(), 9, 0.0)),
    );
    server.push(
        "/chat/completions",
        Reply::sse(vec![
            Part::Bytes(b": OPENROUTER PROCESSING\n\n".to_vec()),
            Part::Hang,
        ]),
    );
    let (mut n, dir) = start(&server, "{}").await;
    three_hunks(&mut n).await;
    n.cmd("LlmReview").await;
    n.wait_notify("asking google/gemini-2.5-flash for a verdict on 3 hunks")
        .await;
    let progress = "#vim.api.nvim_buf_get_extmarks(0, vim.api.nvim_get_namespaces().frugal_progress, 0, -1, {})";
    wait_lua(&n, "the progress line", &format!("{progress} == 1")).await;
    // The same figures as an edit's: the judge's worst case first (issue 17).
    wait_lua(
        &n,
        "the review's worst case on its progress line",
        "(function() local m = vim.api.nvim_buf_get_extmarks(0, vim.api.nvim_get_namespaces().frugal_progress, 0, -1, { details = true })[1]
         local l = m and m[4].virt_lines and m[4].virt_lines[1][1][1] or ''
         return l:find('frugal: at most %$', 1) ~= nil and l:find(' · likely ~%$', 1) ~= nil end)()",
    )
    .await;
    // No edit may start meanwhile, and a second review is refused.
    n.cmd("LlmReview").await;
    n.wait_notify("a review of this buffer's hunks is already running")
        .await;
    // Cancelled once the judge has the request (before, there is no connection to close).
    server
        .wait_until("the review's request", |s| s.chat_requests().len() == 2)
        .await;

    n.cmd("LlmCancel").await;
    let failed = n.wait_event("FrugalEditFailed").await;
    assert_eq!(field(&failed, "reason").as_str(), Some("cancelled"));
    server
        .wait_until("the connection closed", |s| s.client_closed() >= 1)
        .await;
    assert_eq!(n.lua(&format!("return {progress}")).await.as_u64(), Some(0));
    assert_eq!(
        n.lua("return require('frugal.hunks').count(0)")
            .await
            .as_u64(),
        Some(3),
        "the hunks stay pending"
    );
    assert_eq!(kinds(&dir)[1].0, "review");
    n.quit().await;
}

#[tokio::test]
async fn a_refusal_by_the_endpoint_fires_edit_failed_and_releases_the_reservation() {
    let server = FakeOpenRouter::start().await;
    server.push("/models", Reply::json(200, &catalogue("0.0000025")));
    server.push(
        "/chat/completions",
        Reply::sse(answer(&edit_answer(), 9, 0.0)),
    );
    server.push(
        "/chat/completions",
        Reply::json(
            400,
            r#"{"error":{"code":400,"message":"response_format is not supported"}}"#,
        ),
    );
    let (mut n, dir) = start(&server, "{}").await;
    three_hunks(&mut n).await;
    n.cmd("LlmReview").await;
    let failed = n.wait_event("FrugalEditFailed").await;
    assert_eq!(field(&failed, "reason").as_str(), Some("http"));
    let msg = field(&failed, "message").as_str().unwrap();
    assert!(msg.contains("response_format is not supported"), "{msg}");
    assert!(!msg.contains(API_KEY));
    let rows = wait_rows(&dir, "the review released", |r| {
        r.len() == 2 && r[1].state == "failed"
    })
    .await;
    assert_eq!(rows[1].model, JUDGE);
    assert!(notes(&n).await.is_empty());
    n.quit().await;
}
