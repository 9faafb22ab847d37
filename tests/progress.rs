//! Issue 17, end to end: the progress line in its own place (a virtual line above the range,
//! worst case first, "waiting for your answer" while confirming), the confirmation's deadline
//! and a "Send" given after it, and a follow-up that replaces instead of stacking. A real
//! Neovim, the real backend and ledger, the loopback server.

mod common;
use common::screen::Snapshot;
use common::*;
use std::time::{Duration, Instant};

const SRC: &[&str] = &[
    "def f(x):",
    "    return x + 1",
    "",
    "def g(y):",
    "    return y",
];

fn bump() -> String {
    block("    return x + 1\n", "    return x + 2\n")
}

/// An answer that streams one whole block, then keeps the connection open.
fn block_then_hang(text: &str) -> Reply {
    Reply::sse(vec![
        Part::Bytes(format!(": OPENROUTER PROCESSING\n\n{}", chunk(text)).into_bytes()),
        Part::Hang,
    ])
}

async fn start(server: &FakeOpenRouter, setup: &str, env: &[(&str, &str)]) -> Nvim {
    server.push("/models", Reply::json(200, MODELS));
    let mut all = vec![("FRUGAL_SETUP", setup)];
    all.extend_from_slice(env);
    Nvim::start_with(&server.url, &all).await
}

/// The progress extmarks of the current buffer: (row, details).
async fn progress_marks(n: &Nvim) -> Vec<(i64, serde_json::Value)> {
    let v = n
        .lua(
            "local ns = vim.api.nvim_get_namespaces().frugal_progress
             if not ns then return '[]' end
             return vim.json.encode(vim.api.nvim_buf_get_extmarks(0, ns, 0, -1, { details = true }))",
        )
        .await;
    let marks: Vec<serde_json::Value> = serde_json::from_str(v.as_str().unwrap()).unwrap();
    marks
        .into_iter()
        .map(|m| (m[1].as_i64().unwrap(), m[3].clone()))
        .collect()
}

/// The text of a progress mark's virtual line(s).
fn virt_text(d: &serde_json::Value) -> String {
    let mut out = String::new();
    for line in d["virt_lines"].as_array().into_iter().flatten() {
        for chunk in line.as_array().into_iter().flatten() {
            out.push_str(chunk[0].as_str().unwrap_or(""));
        }
    }
    out
}

/// Polls until the progress line holds `needle`; returns its row and details.
async fn wait_progress(n: &Nvim, needle: &str) -> (i64, serde_json::Value) {
    let end = Instant::now() + DEADLINE;
    loop {
        let marks = progress_marks(n).await;
        if let Some(m) = marks.iter().find(|(_, d)| virt_text(d).contains(needle)) {
            return m.clone();
        }
        assert!(
            Instant::now() < end,
            "no progress line with {needle:?}: {marks:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The progress is a virtual line above the edited range, never text at the end of a code
/// line; its worst case comes first; it goes when the edit is cancelled.
#[tokio::test]
async fn the_progress_is_a_line_above_the_range_worst_case_first() {
    let server = FakeOpenRouter::start().await;
    server.push("/chat/completions", Reply::hanging());
    let mut n = start(&server, "{}", &[]).await;
    n.open("a.py", SRC).await;
    n.cmd("2,2LlmEdit bump").await;
    let (row, d) = wait_progress(&n, "at most $").await;
    assert_eq!(row, 1, "above the range's first line: {d}");
    assert_eq!(d["virt_lines_above"], serde_json::json!(true), "{d}");
    assert!(d.get("virt_text").is_none(), "no text at a line's end: {d}");
    let text = virt_text(&d);
    let body = text.split("frugal: ").nth(1).unwrap_or("");
    assert!(body.starts_with("at most $"), "worst case first: {text}");
    assert!(body.contains(" · likely ~$"), "{text}");
    n.cmd("LlmCancel").await;
    n.wait_event("FrugalEditFailed").await;
    assert!(progress_marks(&n).await.is_empty(), "cleared on cancel");
    n.quit().await;
}

/// A range starting at line 1: its progress line sits above row 0, which a window shows only
/// with 'topfill'; the window showing it scrolls it into view.
#[tokio::test]
async fn the_progress_above_line_1_is_shown() {
    let server = FakeOpenRouter::start().await;
    server.push("/chat/completions", Reply::hanging());
    let mut n = start(&server, "{}", &[]).await;
    n.open("a.py", SRC).await;
    n.cmd("LlmEdit bump").await;
    let (row, _) = wait_progress(&n, "frugal: ").await;
    assert_eq!(row, 0);
    let topfill = n.lua("return vim.fn.winsaveview().topfill").await;
    assert_eq!(
        topfill.as_i64(),
        Some(1),
        "the virtual line above line 1 is in view"
    );
    n.cmd("LlmCancel").await;
    n.wait_event("FrugalEditFailed").await;
    n.quit().await;
}

/// Replaces `vim.ui.select` with one that records each question and keeps its callback
/// (`_G.answer(i, choice)` answers the i-th).
async fn keep_questions(n: &Nvim) {
    n.lua(
        "_G.asked = {} vim.ui.select = function(items, opts, cb)
           table.insert(_G.asked, { prompt = opts.prompt, items = items, cb = cb }) end
         _G.answer = function(i, choice) local a = _G.asked[i] a.cb(a.items[choice], choice) end",
    )
    .await;
}

async fn wait_asked(n: &Nvim, count: usize) -> Vec<String> {
    let end = Instant::now() + DEADLINE;
    loop {
        let v = n
            .lua("return vim.tbl_map(function(a) return a.prompt end, _G.asked)")
            .await;
        let prompts: Vec<String> = v
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|p| p.as_str().map(String::from))
                    .collect()
            })
            .unwrap_or_default();
        if prompts.len() >= count {
            return prompts;
        }
        assert!(Instant::now() < end, "asked {prompts:?}, wanted {count}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

const DEAR: &str = r#"{"budget":{"confirm_above_usd":0.001}}"#;

/// While the user is asked, the progress line says so (nothing was sent); the question says
/// until when it waits (local time).
#[tokio::test]
async fn the_question_tells_its_deadline_and_progress_waits_for_the_answer() {
    let server = FakeOpenRouter::start().await;
    server.push("/chat/completions", Reply::sse(answer(&bump(), 6, 0.001)));
    let mut n = start(&server, DEAR, &[]).await;
    keep_questions(&n).await;
    n.open("a.py", SRC).await;
    n.cmd("LlmEdit bump").await;
    let prompts = wait_asked(&n, 1).await;
    let (_, d) = wait_progress(&n, "waiting for your answer").await;
    assert!(!virt_text(&d).contains("waiting for the model"), "{d}");
    let until = n.lua("return os.date('%H:%M', os.time() + 60)").await;
    let until = until.as_str().unwrap();
    assert!(
        prompts[0].contains("waits 60 s, until ") && prompts[0].contains(until),
        "{}",
        prompts[0]
    );
    n.lua("_G.answer(1, 1)").await;
    n.wait_event("FrugalEditDone").await;
    assert_eq!(server.chat_requests().len(), 1);
    n.quit().await;
}

/// The confirmation's wait, shortened for the test (the backend reads it at start).
const SHORT_WAIT: (&str, &str) = ("FRUGAL_CONFIRM_WAIT_MS", "300");

/// Waits for the question, lets it run out (released, `cancelled`), then answers "Send".
async fn late_send(n: &mut Nvim) {
    wait_asked(n, 1).await;
    let failed = n.wait_event("FrugalEditFailed").await;
    assert_eq!(field(&failed, "reason").as_str(), Some("cancelled"));
    n.lua("_G.answer(1, 1)").await;
}

/// A "Send" after the deadline starts a new request for the same instruction: new events, a
/// new ledger row; not asked again (its worst case did not rise above what was shown).
#[tokio::test]
async fn a_late_send_starts_a_new_request() {
    let server = FakeOpenRouter::start().await;
    server.push("/chat/completions", Reply::sse(answer(&bump(), 6, 0.001)));
    let mut n = start(&server, DEAR, &[SHORT_WAIT]).await;
    let dir = n.home.path().join("data/nvim/frugal");
    keep_questions(&n).await;
    n.open("a.py", SRC).await;
    n.cmd("LlmEdit bump").await;
    late_send(&mut n).await;
    let done = n.wait_event("FrugalEditDone").await;
    assert_eq!(field(&done, "hunks").as_u64(), Some(1));
    assert_eq!(server.chat_requests().len(), 1);
    assert!(
        body(&server.chat_requests()[0])
            .to_string()
            .contains("bump"),
        "the same instruction"
    );
    assert_eq!(wait_asked(&n, 1).await.len(), 1, "not asked again");
    let rows = wait_rows(&dir, "two requests", |r| {
        r.len() == 2 && r.iter().any(|r| r.state == "settled")
    })
    .await;
    assert!(rows.iter().any(|r| r.state == "failed"), "{rows:?}");
    n.quit().await;
}

/// A late "Send" whose request now costs more at worst than the question showed (the buffer
/// grew meanwhile) is asked again; confirmed, it is sent.
#[tokio::test]
async fn a_late_send_is_asked_again_when_its_worst_case_rose() {
    let server = FakeOpenRouter::start().await;
    server.push("/chat/completions", Reply::sse(answer(&bump(), 6, 0.001)));
    let mut n = start(&server, DEAR, &[SHORT_WAIT]).await;
    keep_questions(&n).await;
    n.open("a.py", SRC).await;
    n.cmd("LlmEdit bump").await;
    wait_asked(&n, 1).await;
    let failed = n.wait_event("FrugalEditFailed").await;
    assert_eq!(field(&failed, "reason").as_str(), Some("cancelled"));
    n.lua("vim.api.nvim_buf_set_lines(0, -1, -1, false, vim.fn['repeat']({ '# more text to send' }, 200))")
        .await;
    n.lua("_G.answer(1, 1)").await;
    let prompts = wait_asked(&n, 2).await;
    assert!(prompts[1].contains("costs at most $"), "{}", prompts[1]);
    assert!(
        server.chat_requests().is_empty(),
        "not sent before the answer"
    );
    n.lua("_G.answer(2, 1)").await;
    n.wait_event("FrugalEditDone").await;
    assert_eq!(server.chat_requests().len(), 1);
    n.quit().await;
}

/// A review's late "Send" reviews the pending hunks anew.
#[tokio::test]
async fn a_late_send_of_a_review_reviews_again() {
    let server = FakeOpenRouter::start().await;
    server.push("/chat/completions", Reply::sse(answer(&bump(), 6, 0.001)));
    let judge = r#"{"verdicts":[{"hunk":1,"verdict":"ok","reason":"fine"}]}"#;
    server.push("/chat/completions", Reply::sse(answer(judge, 9, 0.001)));
    let setup =
        r#"{"budget":{"confirm_above_usd":0.001},"judge_model":"anthropic/claude-sonnet-4.5"}"#;
    let mut n = start(&server, setup, &[SHORT_WAIT]).await;
    keep_questions(&n).await;
    n.lua("local select = vim.ui.select vim.ui.select = function(items, opts, cb) select(items, opts, cb) if #_G.asked == 1 then _G.answer(1, 1) end end")
        .await;
    n.open("a.py", SRC).await;
    n.cmd("LlmEdit bump").await;
    n.wait_event("FrugalEditDone").await;
    n.cmd("LlmReview").await;
    wait_asked(&n, 2).await;
    let failed = n.wait_event("FrugalEditFailed").await;
    assert_eq!(field(&failed, "reason").as_str(), Some("cancelled"));
    n.lua("_G.answer(2, 1)").await;
    let done = n.wait_event("FrugalReviewDone").await;
    assert_eq!(field(&done, "verdicts").as_array().map(Vec::len), Some(1));
    assert_eq!(server.chat_requests().len(), 2);
    n.quit().await;
}

/// A late "Send" while the buffer has another request in flight is refused, in one line.
#[tokio::test]
async fn a_late_send_is_refused_while_the_buffer_is_busy() {
    let server = FakeOpenRouter::start().await;
    server.push("/chat/completions", Reply::hanging());
    let mut n = start(&server, DEAR, &[SHORT_WAIT]).await;
    keep_questions(&n).await;
    n.open("a.py", SRC).await;
    n.cmd("LlmEdit bump").await;
    wait_asked(&n, 1).await;
    let failed = n.wait_event("FrugalEditFailed").await;
    assert_eq!(field(&failed, "reason").as_str(), Some("cancelled"));
    // Another edit, confirmed at once, streams in the buffer.
    n.cmd("LlmEdit other").await;
    wait_asked(&n, 2).await;
    n.lua("_G.answer(2, 1)").await;
    server
        .wait_until("the second edit sent", |s| s.chat_requests().len() == 1)
        .await;
    n.lua("_G.answer(1, 1)").await;
    let (msg, _) = n.wait_notify("late Send not sent").await;
    assert!(!msg.contains('\n') && msg.chars().count() <= 68, "{msg}");
    assert_eq!(server.chat_requests().len(), 1, "nothing more sent");
    n.cmd("LlmCancel").await;
    n.quit().await;
}

/// A late "Send" when the caps no longer allow the request: refused (reason `budget`),
/// nothing sent.
#[tokio::test]
async fn a_late_send_is_refused_when_the_caps_no_longer_allow_it() {
    let server = FakeOpenRouter::start().await;
    let mut n = start(&server, DEAR, &[SHORT_WAIT]).await;
    keep_questions(&n).await;
    n.open("a.py", SRC).await;
    n.cmd("LlmEdit bump").await;
    wait_asked(&n, 1).await;
    let failed = n.wait_event("FrugalEditFailed").await;
    assert_eq!(field(&failed, "reason").as_str(), Some("cancelled"));
    // Meanwhile the project's cap was lowered under the request's worst case.
    let file = n.home.path().join("proj/.frugal.toml");
    std::fs::write(&file, "[budget]\ntotal_usd = 0.0001\n").unwrap();
    n.lua(&format!(
        "local b = vim.fn.bufadd('{0}') vim.fn.bufload(b) assert(vim.secure.trust({{ action = 'allow', bufnr = b }})) vim.api.nvim_buf_delete(b, {{ force = true }})",
        file.display()
    ))
    .await;
    n.lua("_G.answer(1, 1)").await;
    let failed = n.wait_event("FrugalEditFailed").await;
    assert_eq!(
        field(&failed, "reason").as_str(),
        Some("budget"),
        "{failed:?}"
    );
    assert!(server.chat_requests().is_empty(), "nothing sent");
    n.quit().await;
}

/// The hunks' namespace extmarks of the current buffer, as (row, details).
async fn hunk_marks(n: &Nvim) -> Vec<(i64, serde_json::Value)> {
    let v = n
        .lua(
            "local ns = vim.api.nvim_get_namespaces().frugal_hunks
             return vim.json.encode(vim.api.nvim_buf_get_extmarks(0, ns, 0, -1, { details = true }))",
        )
        .await;
    let marks: Vec<serde_json::Value> = serde_json::from_str(v.as_str().unwrap()).unwrap();
    marks
        .into_iter()
        .map(|m| (m[1].as_i64().unwrap(), m[3].clone()))
        .collect()
}

/// Every virtual line's text among the hunks' marks.
async fn shown_new_lines(n: &Nvim) -> String {
    hunk_marks(n)
        .await
        .iter()
        .map(|(_, d)| virt_text(d))
        .collect::<Vec<_>>()
        .join("\n")
}

async fn count(n: &Nvim) -> u64 {
    n.lua("return require('frugal.hunks').count(0)")
        .await
        .as_u64()
        .unwrap()
}

/// A first edit proposing `return x + 2`, done.
async fn first_proposal(server: &FakeOpenRouter, n: &mut Nvim) {
    server.push("/chat/completions", Reply::sse(answer(&bump(), 6, 0.001)));
    n.open("a.py", SRC).await;
    n.cmd("LlmEdit bump").await;
    n.wait_event("FrugalEditDone").await;
    assert!(shown_new_lines(n).await.contains("return x + 2"));
}

/// While the refinement streams, the hunks it will replace are hidden: one proposal on the
/// lines, never two; cancelled, the earlier hunks come back unchanged.
#[tokio::test]
async fn a_follow_up_while_it_streams_shows_one_proposal_and_cancel_restores() {
    let server = FakeOpenRouter::start().await;
    let mut n = start(&server, "{}", &[]).await;
    first_proposal(&server, &mut n).await;
    server.push(
        "/chat/completions",
        block_then_hang(&block("    return x + 1\n", "    return x + 3\n")),
    );
    n.cmd("LlmEdit rather 3").await;
    let end = Instant::now() + DEADLINE;
    while !shown_new_lines(&n).await.contains("return x + 3") {
        assert!(Instant::now() < end, "{:?}", hunk_marks(&n).await);
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let shown = shown_new_lines(&n).await;
    assert!(!shown.contains("return x + 2"), "stacked: {shown}");
    assert_eq!(count(&n).await, 1);
    n.cmd("LlmCancel").await;
    n.wait_event("FrugalEditFailed").await;
    let shown = shown_new_lines(&n).await;
    assert!(shown.contains("return x + 2"), "back: {shown}");
    assert!(!shown.contains("return x + 3"), "{shown}");
    assert_eq!(count(&n).await, 1);
    assert_eq!(n.lines().await, SRC);
    // Still the proposal a follow-up refines, and accepted as it was.
    n.cmd("LlmAccept!").await;
    assert_eq!(n.lines().await[1], "    return x + 2");
    n.quit().await;
}

/// Hidden from the start of the refinement; when it fails, the earlier hunks come back; when
/// one arrives, they are replaced and the message says it refined them.
#[tokio::test]
async fn a_follow_up_hides_then_restores_on_failure_and_replaces_on_done() {
    let server = FakeOpenRouter::start().await;
    let mut n = start(&server, "{}", &[]).await;
    first_proposal(&server, &mut n).await;
    let gate = std::sync::Arc::new(tokio::sync::Notify::new());
    server.push(
        "/chat/completions",
        Reply {
            status: 400,
            headers: vec![("Content-Type".into(), "application/json".into())],
            parts: vec![
                Part::Gate(gate.clone()),
                Part::Bytes(br#"{"error":{"code":400,"message":"boom"}}"#.to_vec()),
            ],
        },
    );
    n.cmd("LlmEdit rather 3").await;
    server
        .wait_until("the follow-up sent", |s| s.chat_requests().len() == 2)
        .await;
    assert_eq!(count(&n).await, 0, "hidden while it streams");
    assert!(!shown_new_lines(&n).await.contains("return x + 2"));
    gate.notify_one();
    n.wait_event("FrugalEditFailed").await;
    assert_eq!(count(&n).await, 1, "back after the failure");
    assert!(shown_new_lines(&n).await.contains("return x + 2"));
    n.quit().await;
}

/// The refinement's answer replaces the earlier hunks (settled as replaced) and its message
/// says which turn it is.
#[tokio::test]
async fn a_follow_up_done_says_it_refined() {
    let server = FakeOpenRouter::start().await;
    let mut n = start(&server, "{}", &[]).await;
    first_proposal(&server, &mut n).await;
    server.push(
        "/chat/completions",
        Reply::sse(answer(
            &block("    return x + 1\n", "    return x + 3\n"),
            6,
            0.001,
        )),
    );
    n.cmd("LlmEdit rather 3").await;
    n.wait_event("FrugalEditDone").await;
    assert_eq!(count(&n).await, 1);
    let shown = shown_new_lines(&n).await;
    assert!(
        shown.contains("return x + 3") && !shown.contains("return x + 2"),
        "{shown}"
    );
    let (msg, _) = n.wait_notify("refined, turn 2").await;
    assert!(!msg.contains('\n'), "{msg}");
    n.quit().await;
}

fn body(r: &Recorded) -> serde_json::Value {
    serde_json::from_str(&r.body).unwrap()
}

// ---------------------------------------------------------------------------------------------
// What a person sees (a UI attached: tests/common/screen.rs)
// ---------------------------------------------------------------------------------------------

/// The progress line of an edit of line 1 is on screen, above line 1, worst case first.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn screen_the_progress_line_above_line_1() {
    let server = FakeOpenRouter::start().await;
    server.push("/chat/completions", Reply::hanging());
    let mut n = Nvim::start_ui(&server.url, &[("FRUGAL_SETUP", "{}")], 80, 24).await;
    server.push("/models", Reply::json(200, MODELS));
    n.open("a.py", SRC).await;
    n.cmd("LlmEdit bump").await;
    let s = n
        .wait_screen("the progress line above line 1", |s| {
            s.row(0).contains("frugal: at most $") && s.row(1).starts_with("def f(x):")
        })
        .await;
    assert!(s.row(0).contains(" · likely ~$"), "{}", s.dump());
    assert!(
        !s.row(1).contains("frugal"),
        "not at a line's end:\n{}",
        s.dump()
    );
    n.cmd("LlmCancel").await;
    n.wait_event("FrugalEditFailed").await;
    let s = n
        .wait_screen("the progress gone", |s| s.row(0).starts_with("def f(x):"))
        .await;
    assert!(!s.text().contains("at most $"), "{}", s.dump());
    eprintln!("after a cancel:\n{}", s.dump());
    n.quit().await;
}

/// The text of the screen with its rows joined (a wrapped line reads whole).
fn flat(s: &Snapshot) -> String {
    (0..s.height)
        .map(|r| format!("{:<w$}", s.row(r), w = s.width))
        .collect()
}

/// The confirmation with the built-in `vim.ui.select`: its deadline on screen, the progress
/// line waiting for the answer; once answered, no hit-enter prompt, the request sent.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn screen_the_confirmation_shows_its_deadline() {
    let server = FakeOpenRouter::start().await;
    server.push("/models", Reply::json(200, MODELS));
    server.push("/chat/completions", Reply::hanging());
    let mut n = Nvim::start_ui(&server.url, &[("FRUGAL_SETUP", DEAR)], 80, 24).await;
    n.open("a.py", SRC).await;
    n.cmd("LlmEdit bump").await;
    let s = n
        .wait_screen("the question", |s| flat(s).contains("waits 60 s, until "))
        .await;
    eprintln!("the question at 80 columns:\n{}", s.dump());
    let until = n.lua("return os.date('%H:%M', os.time() + 60)").await;
    assert!(flat(&s).contains(until.as_str().unwrap()), "{}", s.dump());
    assert!(
        s.row(0).contains("at most $") && s.row(0).contains("waiting for your answer"),
        "{}",
        s.dump()
    );
    n.api.input("1<CR>").await.unwrap();
    server
        .wait_until("the request sent", |s| s.chat_requests().len() == 1)
        .await;
    let s = n
        .wait_screen("the progress after the answer", |s| {
            s.row(0).contains("at most $") && !s.row(0).contains("your answer")
        })
        .await;
    assert!(!s.hit_enter(), "a prompt waits:\n{}", s.dump());
    n.cmd("LlmCancel").await;
    n.wait_event("FrugalEditFailed").await;
    n.quit().await;
}

/// Waits for `needle` on screen; a hit-enter prompt on the way (the done message is long
/// until the messages of issue 17 are one line) is answered.
async fn see_past_prompt(n: &Nvim, needle: &str) {
    let s = n
        .wait_screen(needle, |s| s.hit_enter() || s.contains(needle))
        .await;
    if s.hit_enter() {
        n.api.input("<CR>").await.unwrap();
        n.wait_screen(needle, |s| s.contains(needle)).await;
    }
}

/// A follow-up while it streams, at 80 columns: one proposal on the lines (the new one),
/// never the earlier one beside it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn screen_a_follow_up_while_it_streams_shows_one_proposal() {
    let server = FakeOpenRouter::start().await;
    server.push("/models", Reply::json(200, MODELS));
    server.push("/chat/completions", Reply::sse(answer(&bump(), 6, 0.001)));
    let mut n = Nvim::start_ui(&server.url, &[("FRUGAL_SETUP", "{}")], 80, 24).await;
    n.open("a.py", SRC).await;
    n.cmd("LlmEdit bump").await;
    see_past_prompt(&n, "return x + 2").await;
    n.wait_event("FrugalEditDone").await;
    server.push(
        "/chat/completions",
        block_then_hang(&block("    return x + 1\n", "    return x + 3\n")),
    );
    n.cmd("LlmEdit rather 3").await;
    let s = n
        .wait_screen("the refinement's hunk", |s| s.contains("return x + 3"))
        .await;
    eprintln!("during a follow-up:\n{}", s.dump());
    assert!(!s.contains("return x + 2"), "stacked:\n{}", s.dump());
    for r in 0..s.height {
        assert!(
            s.row(r).matches("frugal ").count() <= 1,
            "two labels on a row:\n{}",
            s.dump()
        );
    }
    n.cmd("LlmCancel").await;
    n.wait_event("FrugalEditFailed").await;
    let s = n
        .wait_screen("the earlier proposal back", |s| s.contains("return x + 2"))
        .await;
    assert!(!s.contains("return x + 3"), "{}", s.dump());
    n.quit().await;
}

/// The texts of the ask buffer's marks (its progress line is there, on the question).
async fn ask_marks_text(n: &Nvim) -> String {
    let v = n
        .lua(
            "for _, b in ipairs(vim.api.nvim_list_bufs()) do
               if vim.api.nvim_buf_get_name(b):find('frugal://ask/', 1, true) then
                 local out = {}
                 for _, m in ipairs(vim.api.nvim_buf_get_extmarks(b, -1, 0, -1, { details = true })) do
                   local d = m[4]
                   for _, l in ipairs(d.virt_lines or {}) do
                     for _, c in ipairs(l) do table.insert(out, c[1]) end
                   end
                   for _, c in ipairs(d.virt_text or {}) do table.insert(out, c[1]) end
                 end
                 return table.concat(out, '')
               end
             end
             return ''",
        )
        .await;
    v.as_str().unwrap_or("").to_string()
}

/// An ask's progress line shows what an edit's does, worst case first (its foresight was read
/// as text and every progress event after it failed).
#[tokio::test]
async fn an_asks_progress_shows_the_worst_case_first() {
    let server = FakeOpenRouter::start().await;
    server.push("/chat/completions", Reply::hanging());
    let mut n = start(&server, "{}", &[]).await;
    n.open("a.py", SRC).await;
    n.cmd("LlmAsk why?").await;
    let end = Instant::now() + DEADLINE;
    loop {
        let text = ask_marks_text(&n).await;
        if text.contains("frugal: at most $") && text.contains(" tok · ") {
            break;
        }
        assert!(
            Instant::now() < end,
            "no progress with the worst case: {text:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    n.cmd("LlmCancel").await;
    n.wait_event("FrugalEditFailed").await;
    n.quit().await;
}

/// A late "Send" of a question asks it anew (an ask is confirmed like an edit).
#[tokio::test]
async fn a_late_send_of_an_ask_asks_again() {
    let server = FakeOpenRouter::start().await;
    server.push(
        "/chat/completions",
        Reply::sse(answer("Because it bumps.", 6, 0.001)),
    );
    let mut n = start(&server, DEAR, &[SHORT_WAIT]).await;
    keep_questions(&n).await;
    n.open("a.py", SRC).await;
    n.cmd("LlmAsk why?").await;
    late_send(&mut n).await;
    let done = n.wait_event("FrugalAskDone").await;
    assert!(field(&done, "cost_usd").as_f64().is_some());
    assert_eq!(server.chat_requests().len(), 1);
    assert!(body(&server.chat_requests()[0])
        .to_string()
        .contains("why?"));
    n.quit().await;
}
