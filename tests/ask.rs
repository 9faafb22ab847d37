//! `:LlmAsk` and `:LlmApply` end to end: a real headless Neovim running the plugin, its real
//! backend, and a loopback OpenRouter.

mod common;
use common::*;
use rmpv::Value;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

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

/// An answer streamed in two halves, the second held until `gate` opens.
fn gated(first: &str, rest: &str, cost: f64, gate: Arc<tokio::sync::Notify>) -> Reply {
    let mut head = String::from(": OPENROUTER PROCESSING\n\n");
    head.push_str(&chunk(first));
    let mut tail = chunk(rest);
    tail.push_str(&finish_chunk("stop"));
    tail.push_str(&usage_chunk(120, 40, cost));
    tail.push_str("data: [DONE]\n\n");
    Reply::sse(vec![
        Part::Bytes(head.into_bytes()),
        Part::Gate(gate),
        Part::Bytes(tail.into_bytes()),
    ])
}

/// `(role, text)` of each message of a request's body (a content given as parts is joined).
fn messages(body: &str) -> Vec<(String, String)> {
    let v: serde_json::Value = serde_json::from_str(body).unwrap();
    v["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            let text = match &m["content"] {
                serde_json::Value::String(s) => s.clone(),
                serde_json::Value::Array(parts) => parts
                    .iter()
                    .filter_map(|p| p["text"].as_str())
                    .collect::<Vec<_>>()
                    .join(""),
                other => panic!("content {other}"),
            };
            (m["role"].as_str().unwrap().to_string(), text)
        })
        .collect()
}

/// The ledger's `kind` of every request, in order.
fn kinds(dir: &Path) -> Vec<String> {
    let conn = rusqlite::Connection::open(ledger_path(dir)).unwrap();
    conn.busy_timeout(Duration::from_secs(5)).unwrap();
    let mut st = conn
        .prepare("SELECT kind FROM requests ORDER BY id")
        .unwrap();
    st.query_map([], |r| r.get(0))
        .unwrap()
        .map(Result::unwrap)
        .collect()
}

/// The tab page's ask buffer: `{ buf, name, filetype, buftype, modifiable, windows, text }`.
async fn ask_state(n: &Nvim) -> Value {
    n.lua(
        "local b = vim.t.frugal_ask_buf
         if not b then return vim.NIL end
         return { buf = b, name = vim.api.nvim_buf_get_name(b), filetype = vim.bo[b].filetype,
                  buftype = vim.bo[b].buftype, modifiable = vim.bo[b].modifiable,
                  windows = #vim.fn.win_findbuf(b),
                  text = table.concat(vim.api.nvim_buf_get_lines(b, 0, -1, false), '\\n') }",
    )
    .await
}

/// Polls the ask buffer until `f` holds.
async fn wait_ask(n: &Nvim, what: &str, f: impl Fn(&Value) -> bool) -> Value {
    let end = Instant::now() + DEADLINE;
    loop {
        let s = ask_state(n).await;
        if !s.is_nil() && f(&s) {
            return s;
        }
        assert!(Instant::now() < end, "timed out waiting for {what}: {s:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn text_of(s: &Value) -> String {
    field(s, "text").as_str().unwrap().to_string()
}

/// Moves to the window showing the ask buffer.
async fn into_ask(n: &Nvim) {
    n.lua("vim.api.nvim_set_current_win(vim.fn.win_findbuf(vim.t.frugal_ask_buf)[1])")
        .await;
}

#[tokio::test]
async fn an_ask_streams_into_the_tab_ask_buffer_then_continues_and_restarts() {
    let server = FakeOpenRouter::start().await;
    let gate = Arc::new(tokio::sync::Notify::new());
    server.push(
        "/chat/completions",
        gated(
            "`add` returns ",
            "the sum of `a` and `b`.\n",
            0.002,
            gate.clone(),
        ),
    );
    server.push(
        "/chat/completions",
        Reply::sse(answer("`sub` returns the difference.\n", 5, 0.001)),
    );
    server.push(
        "/chat/completions",
        Reply::sse(answer("Fresh answer.\n", 5, 0.001)),
    );
    let mut n = Nvim::start(&server.url).await;
    let dir = n.home.path().join("data/nvim/frugal");
    n.open("m.lua", SRC).await;
    let code_buf = n.lua("return vim.api.nvim_get_current_buf()").await;
    n.cmd("3,5LlmAsk what does add return?").await;

    // While it streams: the first half is shown, in a split, not modifiable.
    let s = wait_ask(&n, "the first half of the answer", |s| {
        text_of(s).contains("`add` returns")
    })
    .await;
    assert_eq!(field(&s, "name").as_str(), Some("frugal://ask/1"));
    assert_eq!(field(&s, "filetype").as_str(), Some("markdown"));
    assert_eq!(field(&s, "buftype").as_str(), Some("nofile"));
    assert_eq!(field(&s, "modifiable").as_bool(), Some(false));
    assert_eq!(field(&s, "windows").as_u64(), Some(1));
    let text = text_of(&s);
    assert!(text.starts_with("## what does add return?\n"), "{text}");
    assert!(text.contains("m.lua, lines 3-5"), "{text}");
    assert_eq!(
        n.lua("return vim.api.nvim_get_current_buf()").await,
        code_buf,
        "the cursor stays in the code"
    );
    gate.notify_one();
    let done = n.wait_event("FrugalAskDone").await;
    let ask_buf = field(&s, "buf").clone();
    assert_eq!(field(&done, "buf"), &code_buf);
    assert_eq!(field(&done, "ask_buf"), &ask_buf);
    assert_eq!(field(&done, "model").as_str(), Some("test/model"));
    assert!((field(&done, "cost_usd").as_f64().unwrap() - 0.002).abs() < 1e-12);
    assert!(field(&done, "reserved_usd").as_f64().is_some(), "{done:?}");
    let s = ask_state(&n).await;
    assert_eq!(field(&s, "modifiable").as_bool(), Some(true));
    let answer = n
        .lua("local a = vim.b[vim.t.frugal_ask_buf].frugal_answer return { a.text, a.request, a.buf }")
        .await;
    let answer = answer.as_array().unwrap();
    assert_eq!(
        answer[0].as_str(),
        Some("`add` returns the sum of `a` and `b`.\n")
    );
    assert_eq!(answer[1].as_i64(), Some(1), "the ledger row");
    assert_eq!(&answer[2], &code_buf);
    assert!(
        text_of(&s).contains("`add` returns the sum of `a` and `b`."),
        "{s:?}"
    );
    let first = messages(&server.chat_requests()[0].body);
    assert!(first[0].1.contains("SEARCH/REPLACE"), "{first:?}");
    let last = &first.last().unwrap().1;
    assert!(last.contains("lines 3-5"), "{last}");
    assert!(
        last.ends_with("Question: what does add return?\n"),
        "{last}"
    );

    // No block in that answer: nothing to apply, no request.
    into_ask(&n).await;
    n.cmd("LlmApply").await;
    n.wait_notify("holds no SEARCH/REPLACE block").await;

    // Continued from the ask buffer: the first turn goes along.
    n.cmd("LlmAsk and sub?").await;
    n.wait_event("FrugalAskDone").await;
    let second = messages(&server.chat_requests()[1].body);
    assert!(
        second
            .iter()
            .any(|(r, t)| r == "user" && t.contains("what does add return?")),
        "{second:?}"
    );
    assert!(
        second
            .iter()
            .any(|(r, t)| r == "assistant" && t == "`add` returns the sum of `a` and `b`.\n"),
        "{second:?}"
    );
    assert!(second.last().unwrap().1.ends_with("Question: and sub?\n"));
    let s = ask_state(&n).await;
    assert_eq!(field(&s, "buf"), &ask_buf, "the same buffer, reused");
    assert_eq!(field(&s, "windows").as_u64(), Some(1));
    let text = text_of(&s);
    assert!(text.contains("## what does add return?"), "{text}");
    assert!(text.contains("## and sub?"), "{text}");

    // Afresh with `!`: no earlier turn, the buffer starts over.
    n.cmd("LlmAsk! what is M?").await;
    n.wait_event("FrugalAskDone").await;
    let third = messages(&server.chat_requests()[2].body);
    assert!(!third.iter().any(|(r, _)| r == "assistant"), "{third:?}");
    let text = text_of(&ask_state(&n).await);
    assert!(!text.contains("and sub?"), "{text}");
    assert!(text.starts_with("## what is M?"), "{text}");

    // Recorded as asks, and shown apart by `frugal usage --json`.
    wait_rows(&dir, "three settled", |r| {
        r.len() == 3 && r.iter().all(|r| r.state == "settled")
    })
    .await;
    assert_eq!(kinds(&dir), ["ask", "ask", "ask"]);
    let root = n.home.path().join("proj").canonicalize().unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_frugal"))
        .args(["usage", "--json", "--data-dir"])
        .arg(&dir)
        .arg("--project")
        .arg(&root)
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["asks"]["requests"], 3, "{v}");
    assert_eq!(v["asks"]["spent"]["picos"], 4_000_000_000_i64, "{v}");
    assert_eq!(v["reviews"]["requests"], 0, "{v}");
    n.quit().await;
}

#[tokio::test]
async fn apply_proposes_the_last_answers_blocks_with_no_request() {
    let server = FakeOpenRouter::start().await;
    let text = format!(
        "Two changes:\n\n{}\nand in util.lua:\n\nutil.lua\n{}\nand one more:\n\n{}",
        block("  return a + b\n", "  return a + b + 0\n"),
        block("return 1\n", "return 2\n"),
        block("  return a - b\n", "  return b - a\n"),
    );
    server.push("/chat/completions", Reply::sse(answer(&text, 7, 0.003)));
    let mut n = Nvim::start(&server.url).await;
    let util = n.home.path().join("proj/util.lua");
    n.open("m.lua", SRC).await;
    std::fs::write(&util, "return 1\n").unwrap();
    let code_buf = n.lua("return vim.api.nvim_get_current_buf()").await;

    // Nothing asked yet: nothing to apply.
    n.cmd("LlmApply").await;
    n.wait_notify("no answer to apply in this buffer").await;

    n.cmd("LlmAsk make it safer").await;
    n.wait_event("FrugalAskDone").await;
    // Since the answer, `sub` changed: its block no longer matches.
    n.cmd("8s/a - b/a - b - 0/").await;
    into_ask(&n).await;
    n.drain();
    n.cmd("LlmApply").await;
    let done = n.wait_event("FrugalEditDone").await;
    assert_eq!(server.chat_requests().len(), 1, "no request for :LlmApply");
    assert_eq!(field(&done, "cost_usd").as_f64(), Some(0.0));
    assert_eq!(field(&done, "buf"), &code_buf);
    assert_eq!(field(&done, "hunks").as_u64(), Some(1));
    let files = field(&done, "files").as_array().unwrap().clone();
    let paths: Vec<&str> = files
        .iter()
        .map(|f| field(f, "path").as_str().unwrap())
        .collect();
    assert_eq!(paths, ["m.lua", "util.lua"], "{done:?}");
    let unmatched = field(&done, "unmatched").as_array().unwrap();
    assert_eq!(unmatched.len(), 1, "{done:?}");
    assert_eq!(unmatched[0].as_str(), Some("return a - b"));
    let (msg, _) = n.wait_notify("matched nowhere").await;
    assert!(msg.contains("return a - b"), "{msg}");

    // The hunks are an edit's: accepted as any.
    n.lua(&format!("vim.api.nvim_set_current_buf({code_buf})"))
        .await;
    n.cmd("call cursor(4, 1)").await;
    n.cmd("LlmAccept").await;
    let lines = n.lines().await;
    assert_eq!(lines[3], "  return a + b + 0");
    assert_eq!(
        lines[7], "  return a - b - 0",
        "the stale block changed nothing"
    );
    let util_pending = n
        .lua_args(
            "return require('frugal.hunks').count(vim.fn.bufnr(...))",
            vec![Value::from(util.to_str().unwrap())],
        )
        .await;
    assert_eq!(util_pending.as_u64(), Some(1));
    n.quit().await;
}

#[tokio::test]
async fn an_ask_under_a_spent_cap_is_refused_before_any_request() {
    let server = FakeOpenRouter::start().await;
    server.push("/models", Reply::json(200, MODELS));
    // Charged above the cap (more than it reserved): the cap is spent.
    server.push(
        "/chat/completions",
        Reply::sse(answer("It adds.\n", 5, 0.2)),
    );
    let mut n = Nvim::start_with(
        &server.url,
        &[("FRUGAL_SETUP", r#"{"budget":{"daily_usd":0.1}}"#)],
    )
    .await;
    let dir = n.home.path().join("data/nvim/frugal");
    n.open("m.lua", SRC).await;
    n.cmd("LlmAsk what does add do?").await;
    n.wait_event("FrugalAskDone").await;
    wait_rows(&dir, "the settlement", |r| {
        r.len() == 1 && r[0].state != "reserved"
    })
    .await;
    n.cmd("LlmAsk and now?").await;
    let failed = n.wait_event("FrugalEditFailed").await;
    assert_eq!(
        field(&failed, "reason").as_str(),
        Some("budget"),
        "{failed:?}"
    );
    let msg = field(&failed, "message").as_str().unwrap();
    assert!(msg.contains("daily cap $0.1000"), "{msg}");
    assert_eq!(
        server.chat_requests().len(),
        1,
        "no request under the spent cap"
    );
    n.quit().await;
}

#[tokio::test]
async fn llm_cancel_in_the_ask_buffer_stops_the_answer() {
    let server = FakeOpenRouter::start().await;
    let mut head = String::from(": OPENROUTER PROCESSING\n\n");
    head.push_str(&chunk("Let me think about "));
    server.push(
        "/chat/completions",
        Reply::sse(vec![Part::Bytes(head.into_bytes()), Part::Hang]),
    );
    let mut n = Nvim::start(&server.url).await;
    n.open("m.lua", SRC).await;
    let code_buf = n.lua("return vim.api.nvim_get_current_buf()").await;
    n.cmd("LlmAsk why?").await;
    wait_ask(&n, "the answer's start", |s| {
        text_of(s).contains("Let me think about")
    })
    .await;
    // Meanwhile the buffer asked about is busy, and an edit there says with what.
    n.cmd("LlmEdit bump").await;
    n.wait_notify("a question is still streaming in this buffer")
        .await;
    assert_eq!(server.chat_requests().len(), 1);
    into_ask(&n).await;
    n.cmd("LlmCancel").await;
    let failed = n.wait_event("FrugalEditFailed").await;
    assert_eq!(field(&failed, "reason").as_str(), Some("cancelled"));
    assert_eq!(field(&failed, "buf"), &code_buf);
    server
        .wait_until("the connection closed", |s| s.client_closed() >= 1)
        .await;
    let s = ask_state(&n).await;
    assert_eq!(field(&s, "modifiable").as_bool(), Some(true));
    assert!(text_of(&s).contains("(the answer stopped here)"), "{s:?}");
    n.quit().await;
}

/// Streaming does not lag the editor: an answer of 300 pieces paced over 1.5 s reaches the ask
/// buffer in a few dozen appends at most (batched every 50 ms), never one per piece, and whole.
#[tokio::test]
async fn a_long_streamed_answer_is_appended_in_batches() {
    let server = FakeOpenRouter::start().await;
    let mut parts = vec![Part::Bytes(b": OPENROUTER PROCESSING\n\n".to_vec())];
    let mut whole = String::new();
    for i in 0..300u64 {
        let piece = if i % 10 == 9 {
            format!("w{i}\n")
        } else {
            format!("w{i} ")
        };
        whole.push_str(&piece);
        parts.push(Part::At(Duration::from_millis(i * 5)));
        parts.push(Part::Bytes(chunk(&piece).into_bytes()));
    }
    let mut tail = finish_chunk("stop");
    tail.push_str(&usage_chunk(120, 300, 0.001));
    tail.push_str("data: [DONE]\n\n");
    parts.push(Part::Bytes(tail.into_bytes()));
    server.push("/chat/completions", Reply::sse(parts));
    let mut n = Nvim::start(&server.url).await;
    n.open("m.lua", SRC).await;
    n.lua(
        "local askbuf = require('frugal.askbuf')
         local append = askbuf.append
         _G.frugal_appends = 0
         askbuf.append = function(...) _G.frugal_appends = _G.frugal_appends + 1; return append(...) end",
    )
    .await;
    n.cmd("LlmAsk list the words").await;
    n.wait_event("FrugalAskDone").await;
    let appends = n.lua("return _G.frugal_appends").await.as_u64().unwrap();
    eprintln!("300 pieces over 1.5 s: {appends} appends");
    assert!((2..=60).contains(&appends), "{appends} appends");
    let text = text_of(&ask_state(&n).await);
    assert!(text.trim_end().ends_with(whole.trim_end()), "{text}");
    n.quit().await;
}

/// A piece that comes just after another, then a pause: it is shown during the pause, not held
/// until the next piece (the batching sends on a timer).
#[tokio::test]
async fn a_piece_before_a_pause_is_shown_during_the_pause() {
    let server = FakeOpenRouter::start().await;
    let gate = Arc::new(tokio::sync::Notify::new());
    let mut head = String::from(": OPENROUTER PROCESSING\n\n");
    head.push_str(&chunk("first "));
    let mut tail = chunk(" third\n");
    tail.push_str(&finish_chunk("stop"));
    tail.push_str(&usage_chunk(120, 40, 0.001));
    tail.push_str("data: [DONE]\n\n");
    server.push(
        "/chat/completions",
        Reply::sse(vec![
            Part::Bytes(head.into_bytes()),
            Part::At(Duration::from_millis(10)),
            Part::Bytes(chunk("second").into_bytes()),
            Part::Gate(gate.clone()),
            Part::Bytes(tail.into_bytes()),
        ]),
    );
    let mut n = Nvim::start(&server.url).await;
    n.open("m.lua", SRC).await;
    n.cmd("LlmAsk count").await;
    wait_ask(&n, "the piece before the pause", |s| {
        text_of(s).contains("first second")
    })
    .await;
    gate.notify_one();
    n.wait_event("FrugalAskDone").await;
    assert!(text_of(&ask_state(&n).await).contains("first second third"));
    n.quit().await;
}

/// What a person sees at 80 columns: the code above, the ask buffer in a split below with the
/// question's heading over the answer, and the one-line "answered" message, cost first (no prompt).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn screen_the_answer_shows_in_a_split_under_the_code() {
    let server = FakeOpenRouter::start().await;
    server.push(
        "/chat/completions",
        Reply::sse(answer("`add` returns the sum.\n", 4, 0.002)),
    );
    let mut n = Nvim::start_ui(&server.url, &[], 80, 24).await;
    n.open("m.lua", SRC).await;
    n.cmd("3,5LlmAsk what does add return?").await;
    n.wait_event("FrugalAskDone").await;
    let s = n
        .wait_screen("the answer and the message", |s| {
            s.contains("`add` returns the sum.")
                && s.contains("frugal: answered · $0.0020 · test/model")
        })
        .await;
    let (code_row, _) = s.find("local M = {}").expect("the code");
    let (heading, _) = s.find("## what does add return?").expect("the heading");
    let (answer_row, _) = s.find("`add` returns the sum.").unwrap();
    assert!(code_row < heading && heading < answer_row, "{}", s.dump());
    assert!(
        s.contains("frugal://ask/1"),
        "the split's status line:\n{}",
        s.dump()
    );
    assert!(!s.hit_enter(), "{}", s.dump());
    n.quit().await;
}

/// `:LlmApply` is generic: any buffer whose `b:frugal_answer` names only its project (`root`,
/// as a history conversation does) proposes the blocks that name their files; one naming none
/// is reported, not applied.
#[tokio::test]
async fn apply_works_from_any_buffer_holding_an_answer_of_a_project() {
    let server = FakeOpenRouter::start().await;
    let mut n = Nvim::start(&server.url).await;
    n.open("m.lua", SRC).await;
    let util = n.home.path().join("proj/util.lua");
    std::fs::write(&util, "return 1\n").unwrap();
    let root = n.home.path().join("proj");
    let text = format!(
        "util.lua\n{}\n{}",
        block("return 1\n", "return 2\n"),
        block("  return a + b\n", "  return b + a\n"),
    );
    n.lua_args(
        "local text, root = ...
         vim.cmd('enew')
         vim.bo.buftype = 'nofile'
         vim.b.frugal_answer = { text = text, request = 7, root = root }",
        vec![
            Value::from(text.as_str()),
            Value::from(root.to_str().unwrap()),
        ],
    )
    .await;
    n.cmd("LlmApply").await;
    let done = n.wait_event("FrugalEditDone").await;
    assert!(server.chat_requests().is_empty(), "no request");
    assert_eq!(field(&done, "cost_usd").as_f64(), Some(0.0));
    let files = field(&done, "files").as_array().unwrap().clone();
    let paths: Vec<&str> = files
        .iter()
        .map(|f| field(f, "path").as_str().unwrap())
        .collect();
    assert_eq!(paths, ["util.lua"], "{done:?}");
    let (msg, _) = n.wait_notify("names no file").await;
    assert!(msg.contains("return a + b"), "{msg}");
    n.quit().await;
}

/// One ask buffer per tab page, even when tab numbers shift: a tab page that takes the number
/// of one closed before it gets a buffer of its own (the other tab page's keeps its answer and
/// is named after its own number now).
#[tokio::test]
async fn each_tab_page_keeps_its_own_ask_buffer_when_numbers_shift() {
    let server = FakeOpenRouter::start().await;
    for text in ["First answer.", "Second answer."] {
        server.push("/chat/completions", Reply::sse(answer(text, 9, 0.001)));
    }
    let mut n = Nvim::start(&server.url).await;
    n.open("m.lua", SRC).await;
    n.cmd("tabnew").await;
    n.open("m.lua", SRC).await;
    n.cmd("LlmAsk why?").await;
    n.wait_event("FrugalAskDone").await;
    let first = n.lua("return vim.t.frugal_ask_buf").await;
    // Tab page 1 closes: the asking one is number 1 now; a new one becomes number 2.
    n.cmd("1tabclose").await;
    n.cmd("tabnew").await;
    n.open("m.lua", SRC).await;
    n.cmd("LlmAsk and how?").await;
    n.wait_event("FrugalAskDone").await;
    let second = n.lua("return vim.t.frugal_ask_buf").await;
    assert_ne!(first, second, "one ask buffer per tab page");
    let names = n
        .lua_args(
            "local a, b = ... return { vim.api.nvim_buf_get_name(a), vim.api.nvim_buf_get_name(b),
               table.concat(vim.api.nvim_buf_get_lines(a, 0, -1, false), '\\n') }",
            vec![first.clone(), second.clone()],
        )
        .await;
    let names = names.as_array().unwrap();
    assert_eq!(names[0].as_str(), Some("frugal://ask/1"));
    assert_eq!(names[1].as_str(), Some("frugal://ask/2"));
    assert!(names[2].as_str().unwrap().contains("First answer."));
    n.quit().await;
}
