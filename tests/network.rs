//! The network's edges end to end: answers that never end or go silent, 200 answers that are
//! not an answer, retries (and what each attempt leaves in the ledger), routing refusals, and
//! where a refused key came from. A real headless Neovim, the real backend, a real SQLite
//! ledger, and the loopback OpenRouter.

mod common;
use common::*;
use std::path::{Path, PathBuf};
use std::time::Duration;

const SRC: &[&str] = &["def f(x):", "    return x + 1", ""];

fn good_answer(cost: f64) -> Reply {
    Reply::sse(answer(
        &block("    return x + 1\n", "    return x + 2\n"),
        6,
        cost,
    ))
}

/// A `/generation` answer for `gen-test-1`, so a cut stream is reconciled at `cost`.
fn generation(cost: f64) -> Reply {
    Reply::json(
        200,
        &format!(
            r#"{{"data":{{"id":"gen-test-1","total_cost":{cost},"tokens_prompt":100,"tokens_completion":7,"cancelled":true}}}}"#
        ),
    )
}

async fn start(server: &FakeOpenRouter, setup: &str) -> (Nvim, PathBuf) {
    start_at(server, &server.url, setup, &[]).await
}

async fn start_at(
    server: &FakeOpenRouter,
    url: &str,
    setup: &str,
    env: &[(&str, &str)],
) -> (Nvim, PathBuf) {
    server.push("/models", Reply::json(200, MODELS));
    let mut all = vec![("FRUGAL_SETUP", setup)];
    all.extend_from_slice(env);
    let n = Nvim::start_with(url, &all).await;
    let dir = n.home.path().join("data/nvim/frugal");
    record_progress(&n).await;
    (n, dir)
}

/// Keeps every progress line the plugin shows (the spinner text), in order.
async fn record_progress(n: &Nvim) {
    n.lua(
        r#"local e = require('frugal.edit')
        local seen = {}
        rawset(e, 'last_progress', nil)
        rawset(e, 'progress_seen', seen)
        setmetatable(e, { __newindex = function(t, k, v)
          if k == 'last_progress' then table.insert(seen, v) else rawset(t, k, v) end
        end })"#,
    )
    .await;
}

async fn progress_lines(n: &Nvim) -> Vec<String> {
    let v = n.lua("return require('frugal.edit').progress_seen").await;
    v.as_array()
        .map(|a| {
            a.iter()
                .map(|l| l.as_str().unwrap_or("").to_string())
                .collect()
        })
        .unwrap_or_default()
}

/// Polls the progress lines until one contains `needle`.
async fn wait_progress(n: &Nvim, needle: &str) -> String {
    let end = std::time::Instant::now() + DEADLINE;
    loop {
        if let Some(l) = progress_lines(n)
            .await
            .into_iter()
            .find(|l| l.contains(needle))
        {
            return l;
        }
        assert!(
            std::time::Instant::now() < end,
            "no progress line with {needle:?}: {:?}",
            progress_lines(n).await
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Runs `:LlmEdit` and waits for its failure: (reason, message).
async fn edit_fails(n: &mut Nvim) -> (String, String) {
    n.cmd("LlmEdit bump").await;
    let failed = n.wait_event("FrugalEditFailed").await;
    let reason = field(&failed, "reason").as_str().unwrap_or("").to_string();
    let message = field(&failed, "message").as_str().unwrap_or("").to_string();
    eprintln!("FrugalEditFailed {reason}: {message}");
    (reason, message)
}

/// Not the key, nor any part of it that would help guess it.
fn no_secret(n: &mut Nvim, msg: &str) {
    const PART: &str = "TESTSECRET";
    assert!(API_KEY.contains(PART));
    assert!(!msg.contains(PART), "{msg}");
    n.drain();
    for (note, _) in n.notifications() {
        assert!(!note.contains(PART), "{note}");
    }
    assert!(!n.log_text().contains(PART), "the key reached the log");
}

// ---------------------------------------------------------------------------------------------
// Answers that never end
// ---------------------------------------------------------------------------------------------

/// Each body streams far more than the bound (64 MiB against about 1.1 MiB); the backend must
/// stop reading at the bound, close the connection, fail with reason `stream` naming the
/// bound, and reconcile the reservation through /generation.
#[tokio::test]
async fn endless_answers_are_cut_at_a_byte_bound_and_reconciled() {
    const TOTAL: usize = 64 << 20;
    let server = FakeOpenRouter::start().await;
    let cases: Vec<(&str, Vec<Part>)> = vec![
        (
            "endless prose",
            vec![Part::Repeat {
                bytes: chunk("lorem ipsum dolor sit amet ").into_bytes(),
                total: TOTAL,
            }],
        ),
        (
            "one data line that never ends",
            vec![
                Part::Bytes(
                    br#"data: {"id":"gen-test-1","choices":[{"index":0,"delta":{"content":""#
                        .to_vec(),
                ),
                Part::Repeat {
                    bytes: vec![b'a'; 4096],
                    total: TOTAL,
                },
            ],
        ),
        (
            "an endless SEARCH block",
            vec![
                Part::Bytes(chunk("<<<<<<< SEARCH\n").into_bytes()),
                Part::Repeat {
                    bytes: chunk("x = 1\n").into_bytes(),
                    total: TOTAL,
                },
            ],
        ),
        (
            "keep-alive comments forever",
            vec![Part::Repeat {
                bytes: b": OPENROUTER PROCESSING\n\n".to_vec(),
                total: TOTAL,
            }],
        ),
    ];
    let (mut n, dir) = start(&server, r#"{"max_tokens":100}"#).await;
    n.open("a.py", SRC).await;
    for (i, (what, parts)) in cases.into_iter().enumerate() {
        server.push("/chat/completions", Reply::sse(parts));
        server.push("/generation", generation(0.0005));
        let (reason, msg) = edit_fails(&mut n).await;
        assert_eq!(reason, "stream", "{what}: {msg}");
        assert!(msg.contains("max_tokens = 100"), "{what}: {msg}");
        assert!(msg.contains("1.1 MiB"), "{what}: {msg}");
        server
            .wait_until("the client to hang up", |s| s.client_closed() == i + 1)
            .await;
        let rows = wait_rows(&dir, "reconciled", |r| {
            r.len() == i + 1 && r[i].state == "reconciled"
        })
        .await;
        assert_eq!(rows[i].charged, Some(500_000_000), "{what}");
        assert_eq!(n.lines().await, SRC, "{what}");
    }
    assert_eq!(server.chat_requests().len(), 4, "never retried");
    n.quit().await;
}

#[tokio::test]
async fn a_stream_silent_for_stall_timeout_s_fails_and_is_reconciled() {
    let server = FakeOpenRouter::start().await;
    // Keep-alive comments more often than the stall bound keep the stream alive.
    let mut parts = Vec::new();
    for _ in 0..5 {
        parts.push(Part::Bytes(b": OPENROUTER PROCESSING\n\n".to_vec()));
        parts.push(Part::Delay(Duration::from_millis(300)));
    }
    parts.extend(answer(
        &block("    return x + 1\n", "    return x + 2\n"),
        6,
        0.001,
    ));
    server.push("/chat/completions", Reply::sse(parts));
    // Then one that goes silent inside a block.
    server.push(
        "/chat/completions",
        Reply::sse(vec![
            Part::Bytes(
                format!(": OPENROUTER PROCESSING\n\n{}", chunk("<<<<<<< SEARCH\n")).into_bytes(),
            ),
            Part::Hang,
        ]),
    );
    server.push("/generation", generation(0.0007));
    let (mut n, dir) = start(&server, r#"{"stall_timeout_s":1}"#).await;
    n.open("a.py", SRC).await;
    n.cmd("LlmEdit bump").await;
    n.wait_event("FrugalEditDone").await;
    n.cmd("LlmReject!").await;

    let (reason, msg) = edit_fails(&mut n).await;
    assert_eq!(reason, "stream", "{msg}");
    assert!(msg.contains("stall_timeout_s"), "{msg}");
    server
        .wait_until("the client to hang up", |s| s.client_closed() == 1)
        .await;
    let rows = wait_rows(&dir, "reconciled", |r| {
        r.len() == 2 && r[1].state == "reconciled"
    })
    .await;
    assert_eq!(rows[1].charged, Some(700_000_000));
    assert_eq!(server.chat_requests().len(), 2);
    n.quit().await;
}

/// The answer ended (finish reason, usage) but the server neither sent `[DONE]` nor closed: the
/// silence that follows ends the stream, it does not throw the answer away.
#[tokio::test]
async fn a_finished_answer_whose_connection_stays_open_is_kept() {
    let server = FakeOpenRouter::start().await;
    let mut body = chunk(&block("    return x + 1\n", "    return x + 2\n"));
    body.push_str(&finish_chunk("stop"));
    body.push_str(&usage_chunk(100, 20, 0.0009));
    server.push(
        "/chat/completions",
        Reply::sse(vec![Part::Bytes(body.into_bytes()), Part::Hang]),
    );
    let (mut n, dir) = start(&server, r#"{"stall_timeout_s":1}"#).await;
    n.open("a.py", SRC).await;
    n.cmd("LlmEdit bump").await;
    let done = n.wait_event("FrugalEditDone").await;
    assert_eq!(field(&done, "hunks").as_u64(), Some(1));
    server
        .wait_until("the client to hang up", |s| s.client_closed() == 1)
        .await;
    let rows = wait_rows(&dir, "settled", |r| r.len() == 1 && r[0].state == "settled").await;
    assert_eq!(rows[0].charged, Some(900_000_000));
    n.quit().await;
}

/// No status line at all within `stall_timeout_s`: the request left, so it may be billed (its
/// reservation is kept and counted in full, there being no generation id), and the retry goes
/// through the caps again under a reservation of its own.
#[tokio::test]
async fn no_answer_at_all_keeps_the_reservation_and_retries_under_a_new_one() {
    let server = FakeOpenRouter::start().await;
    server.push("/chat/completions", Reply::silent());
    server.push("/chat/completions", good_answer(0.001));
    let (mut n, dir) = start(&server, r#"{"stall_timeout_s":1}"#).await;
    n.open("a.py", SRC).await;
    n.cmd("LlmEdit bump").await;
    n.wait_event("FrugalEditDone").await;
    let rows = wait_rows(&dir, "two reservations", |r| {
        r.len() == 2 && r[0].state == "reconciled" && r[1].state == "settled"
    })
    .await;
    assert_eq!(rows[0].charged, Some(rows[0].reserved), "counted in full");
    assert_eq!(rows[0].charge_source.as_deref(), Some("estimate"));
    assert_eq!(rows[1].charged, Some(1_000_000_000));
    assert_eq!(server.chat_requests().len(), 2);
    wait_progress(&n, "retrying").await;
    n.quit().await;
}

// ---------------------------------------------------------------------------------------------
// 200 answers that are not an event stream
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn html_200_says_what_came_back_points_at_base_url_and_charges_nothing() {
    let server = FakeOpenRouter::start().await;
    let body = format!(
        "<!DOCTYPE html>\n<html><head><title>Hotel Wi-Fi \x1b[31mSign in</title></head>\n<body>Authorization: Bearer {API_KEY}{}</body></html>",
        " padding".repeat(2000)
    );
    server.push(
        "/chat/completions",
        Reply {
            status: 200,
            headers: vec![("Content-Type".into(), "text/html; charset=utf-8".into())],
            parts: vec![Part::Bytes(body.into_bytes())],
        },
    );
    let (mut n, dir) = start(&server, "{}").await;
    n.open("a.py", SRC).await;
    let (reason, msg) = edit_fails(&mut n).await;
    assert_eq!(reason, "http", "{msg}");
    assert!(msg.contains("text/html"), "{msg}");
    assert!(msg.contains("<!DOCTYPE html>"), "{msg}");
    assert!(msg.contains("base_url"), "{msg}");
    assert!(
        !msg.contains('\x1b'),
        "control characters are not shown: {msg:?}"
    );
    assert!(msg.len() < 600, "short: {msg}");
    no_secret(&mut n, &msg);
    let rows = wait_rows(&dir, "released", |r| r.len() == 1 && r[0].state == "failed").await;
    assert_eq!(rows[0].charged, Some(0));
    assert_eq!(server.chat_requests().len(), 1, "not retried");
    assert_eq!(n.lines().await, SRC);
    n.quit().await;
}

#[tokio::test]
async fn json_200_completion_is_applied_and_settled_from_its_usage() {
    let server = FakeOpenRouter::start().await;
    let content = block("    return x + 1\n", "    return x + 2\n");
    let body = serde_json::json!({
        "id": "gen-json-1", "object": "chat.completion", "model": "test/model", "created": 1760706313,
        "choices": [{"index": 0, "message": {"role": "assistant", "content": content}, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 90, "completion_tokens": 30, "total_tokens": 120, "cost": 0.0021}
    });
    server.push("/chat/completions", Reply::json(200, &body.to_string()));
    let (mut n, dir) = start(&server, "{}").await;
    n.open("a.py", SRC).await;
    n.cmd("LlmEdit bump").await;
    let done = n.wait_event("FrugalEditDone").await;
    assert_eq!(field(&done, "hunks").as_u64(), Some(1));
    assert!((field(&done, "cost_usd").as_f64().unwrap() - 0.0021).abs() < 1e-12);
    let rows = wait_rows(&dir, "settled", |r| r.len() == 1 && r[0].state == "settled").await;
    assert_eq!(rows[0].charged, Some(2_100_000_000));
    assert_eq!(rows[0].charge_source.as_deref(), Some("usage"));
    assert_eq!(rows[0].tokens_out, Some(30));
    assert_eq!(rows[0].generation_id.as_deref(), Some("gen-json-1"));
    n.cmd("LlmAccept!").await;
    assert_eq!(n.lines().await[1], "    return x + 2");
    n.quit().await;
}

// ---------------------------------------------------------------------------------------------
// Retries
// ---------------------------------------------------------------------------------------------

const RATE_LIMITED: &str = r#"{"error":{"code":429,"message":"Rate limit exceeded: free-models-per-min","metadata":{"error_type":"rate_limit_exceeded"}}}"#;

#[tokio::test]
async fn rate_limit_is_retried_after_retry_after_under_the_same_reservation() {
    let server = FakeOpenRouter::start().await;
    server.push(
        "/chat/completions",
        Reply::status(429, &[("Retry-After", "1")], RATE_LIMITED),
    );
    server.push("/chat/completions", good_answer(0.001));
    let (mut n, dir) = start(&server, "{}").await;
    n.open("a.py", SRC).await;
    n.cmd("LlmEdit bump").await;
    n.wait_event("FrugalEditDone").await;
    let line = wait_progress(&n, "rate limited, retrying in 1 s (1/3)").await;
    assert!(line.contains("frugal"), "{line}");
    assert_eq!(server.chat_requests().len(), 2);
    let rows = wait_rows(&dir, "one settled row", |r| {
        r.len() == 1 && r[0].state == "settled"
    })
    .await;
    assert_eq!(rows[0].charged, Some(1_000_000_000));
    n.quit().await;
}

#[tokio::test]
async fn bad_gateway_and_overloaded_are_retried_with_backoff() {
    let server = FakeOpenRouter::start().await;
    server.push(
        "/chat/completions",
        Reply::json(502, r#"{"error":{"code":502,"message":"Upstream error"}}"#),
    );
    server.push(
        "/chat/completions",
        Reply::json(529, r#"{"error":{"code":529,"message":"Overloaded"}}"#),
    );
    server.push("/chat/completions", good_answer(0.001));
    let (mut n, dir) = start(&server, "{}").await;
    n.open("a.py", SRC).await;
    n.cmd("LlmEdit bump").await;
    n.wait_event("FrugalEditDone").await;
    wait_progress(&n, "(1/3)").await;
    wait_progress(&n, "(2/3)").await;
    assert_eq!(server.chat_requests().len(), 3);
    wait_rows(&dir, "one settled row", |r| {
        r.len() == 1 && r[0].state == "settled"
    })
    .await;
    n.quit().await;
}

#[tokio::test]
async fn rate_limit_gives_up_after_three_retries_and_charges_nothing() {
    let server = FakeOpenRouter::start().await;
    let past_ms = (std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis()
        - 1000)
        .to_string();
    let waits: [(&str, &str); 4] = [
        ("Retry-After", "0"),
        ("X-RateLimit-Reset", &past_ms),
        ("Retry-After", "Thu, 01 Jan 1970 00:00:00 GMT"),
        ("Retry-After", "0"),
    ];
    for h in waits {
        server.push("/chat/completions", Reply::status(429, &[h], RATE_LIMITED));
    }
    let (mut n, dir) = start(&server, "{}").await;
    n.open("a.py", SRC).await;
    let (reason, msg) = edit_fails(&mut n).await;
    assert_eq!(reason, "http", "{msg}");
    assert!(msg.contains("rate limited"), "{msg}");
    assert!(msg.contains("3 retries"), "{msg}");
    assert_eq!(server.chat_requests().len(), 4);
    let rows = wait_rows(&dir, "released", |r| r.len() == 1 && r[0].state == "failed").await;
    assert_eq!(rows[0].charged, Some(0));
    wait_progress(&n, "(3/3)").await;
    n.quit().await;
}

#[tokio::test]
async fn a_retry_after_beyond_the_wait_bound_is_reported_not_waited_for() {
    let server = FakeOpenRouter::start().await;
    server.push(
        "/chat/completions",
        Reply::status(429, &[("Retry-After", "120")], RATE_LIMITED),
    );
    let (mut n, dir) = start(&server, "{}").await;
    n.open("a.py", SRC).await;
    let (reason, msg) = edit_fails(&mut n).await;
    assert_eq!(reason, "http", "{msg}");
    assert!(msg.contains("rate limited"), "{msg}");
    assert!(msg.contains("2 min"), "{msg}");
    assert_eq!(server.chat_requests().len(), 1);
    wait_rows(&dir, "released", |r| r.len() == 1 && r[0].state == "failed").await;
    n.quit().await;
}

/// The wait (25 s) is longer than the test's deadline: only a cancel that ends the wait at once
/// releases the reservation in time.
#[tokio::test]
async fn cancel_during_a_retry_wait_stops_at_once_and_releases() {
    let server = FakeOpenRouter::start().await;
    server.push(
        "/chat/completions",
        Reply::status(429, &[("Retry-After", "25")], RATE_LIMITED),
    );
    server.push("/chat/completions", good_answer(0.001));
    let (mut n, dir) = start(&server, "{}").await;
    n.open("a.py", SRC).await;
    n.cmd("LlmEdit bump").await;
    wait_progress(&n, "rate limited, retrying in").await;
    n.cmd("LlmCancel").await;
    let failed = n.wait_event("FrugalEditFailed").await;
    assert_eq!(field(&failed, "reason").as_str(), Some("cancelled"));
    let rows = wait_rows(&dir, "released", |r| r.len() == 1 && r[0].state == "failed").await;
    assert_eq!(rows[0].charged, Some(0));
    assert_eq!(server.chat_requests().len(), 1, "no retry after the cancel");
    n.quit().await;
}

/// Nothing listens at base_url: every attempt fails before the request is sent, so the retries
/// share one reservation, released at the end.
#[tokio::test]
async fn an_unreachable_endpoint_is_retried_then_explained() {
    let server = FakeOpenRouter::start().await;
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        format!("http://{}/api/v1", l.local_addr().unwrap())
    };
    let (mut n, dir) = start_at(
        &server,
        &closed,
        r#"{"api_key":"env:OPENROUTER_API_KEY"}"#,
        &[],
    )
    .await;
    n.open("a.py", SRC).await;
    let (reason, msg) = edit_fails(&mut n).await;
    assert_eq!(reason, "http", "{msg}");
    assert!(msg.contains("base_url"), "{msg}");
    assert!(msg.contains("3 retries"), "{msg}");
    wait_progress(&n, "could not connect, retrying in").await;
    let rows = wait_rows(&dir, "released", |r| {
        !r.is_empty() && r.iter().all(|r| r.state == "failed")
    })
    .await;
    assert_eq!(rows.len(), 1, "one reservation for all attempts: {rows:?}");
    n.quit().await;
}

#[tokio::test]
async fn a_cut_attempt_keeps_its_reservation_and_retries_under_a_new_one() {
    let server = FakeOpenRouter::start().await;
    server.push("/chat/completions", Reply::reset());
    server.push(
        "/chat/completions",
        Reply::json(524, "<html>A timeout occurred</html>"),
    );
    server.push("/chat/completions", good_answer(0.001));
    let (mut n, dir) = start(&server, "{}").await;
    n.open("a.py", SRC).await;
    n.cmd("LlmEdit bump").await;
    n.wait_event("FrugalEditDone").await;
    // The answer's settlement is written just after FrugalEditDone, not before it.
    let rows = wait_rows(&dir, "three reservations", |r| {
        r.len() == 3
            && r[0].state == "reconciled"
            && r[1].state == "reconciled"
            && r[2].state == "settled"
    })
    .await;
    for r in &rows[..2] {
        assert_eq!(
            r.charged,
            Some(r.reserved),
            "may have been billed: counted in full"
        );
    }
    assert_eq!(rows[2].state, "settled");
    assert_eq!(server.chat_requests().len(), 3);
    n.quit().await;
}

async fn setup_again(n: &Nvim, extra: &str) {
    n.lua(&format!(
        "require('frugal').setup(vim.tbl_extend('force', {{ binary = vim.env.FRUGAL_BIN, base_url = vim.env.FRUGAL_URL, log_level = 'debug' }}, vim.json.decode([[{extra}]])))"
    ))
    .await;
}

#[tokio::test]
async fn a_cut_attempt_is_retried_only_when_the_caps_allow_another_reservation() {
    let server = FakeOpenRouter::start().await;
    server.push("/chat/completions", good_answer(0.0));
    let (mut n, dir) = start(&server, r#"{"max_tokens":600}"#).await;
    n.open("a.py", SRC).await;
    // A first edit learns what one reservation of this edit is.
    n.cmd("LlmEdit bump").await;
    n.wait_event("FrugalEditDone").await;
    n.cmd("LlmReject!").await;
    let one =
        wait_rows(&dir, "settled", |r| r.len() == 1 && r[0].state == "settled").await[0].reserved;
    // Room for one reservation and a half: a cut attempt leaves no room for a second.
    let cap = one as f64 * 1.5 / PS;
    setup_again(
        &n,
        &format!(r#"{{"max_tokens":600,"budget":{{"daily_usd":{cap}}}}}"#),
    )
    .await;
    server.push("/chat/completions", Reply::reset());
    server.push("/chat/completions", good_answer(0.001));
    let (reason, msg) = edit_fails(&mut n).await;
    assert_eq!(reason, "budget", "{msg}");
    assert!(msg.contains("may have been billed"), "{msg}");
    assert!(msg.contains("daily cap"), "{msg}");
    assert_eq!(server.chat_requests().len(), 2, "no retry beyond the cap");
    let rows = rows(&dir);
    assert_eq!(rows.len(), 2, "{rows:?}");
    assert_ne!(
        rows[1].state, "failed",
        "the cut attempt stays counted: {rows:?}"
    );
    n.quit().await;
}

#[tokio::test]
async fn a_routing_refusal_is_explained_not_retried() {
    let server = FakeOpenRouter::start().await;
    server.push(
        "/chat/completions",
        Reply::json(
            503,
            r#"{"error":{"code":503,"message":"No allowed providers are available for the selected model."}}"#,
        ),
    );
    let (mut n, dir) = start(&server, "{}").await;
    n.open("a.py", SRC).await;
    let (reason, msg) = edit_fails(&mut n).await;
    assert_eq!(reason, "http", "{msg}");
    assert!(msg.contains("503"), "{msg}");
    assert!(msg.contains("max_price"), "{msg}");
    assert!(msg.contains("require_parameters"), "{msg}");
    assert_eq!(server.chat_requests().len(), 1);
    wait_rows(&dir, "released", |r| r.len() == 1 && r[0].state == "failed").await;
    n.quit().await;
}

// ---------------------------------------------------------------------------------------------
// 401 and where the key came from
// ---------------------------------------------------------------------------------------------

fn unauthorized() -> Reply {
    Reply::json(
        401,
        &format!(r#"{{"error":{{"code":401,"message":"User not found. ({API_KEY})"}}}}"#),
    )
}

#[tokio::test]
async fn unauthorized_names_the_environment_variable_never_the_key() {
    let server = FakeOpenRouter::start().await;
    server.push("/chat/completions", unauthorized());
    let (mut n, dir) = start(&server, "{}").await;
    n.open("a.py", SRC).await;
    let (reason, msg) = edit_fails(&mut n).await;
    assert_eq!(reason, "http", "{msg}");
    assert!(msg.contains("OPENROUTER_API_KEY"), "{msg}");
    assert!(msg.contains("restart Neovim"), "{msg}");
    no_secret(&mut n, &msg);
    wait_rows(&dir, "released", |r| r.len() == 1 && r[0].state == "failed").await;
    n.quit().await;
}

async fn trust_project_file(n: &Nvim, text: &str) {
    let path = n.home.path().join("proj/.frugal.toml");
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(&path, text).unwrap();
    // `allow` trusts a buffer's exact content.
    n.lua(&format!(
        "local b = vim.fn.bufadd('{0}') vim.fn.bufload(b) assert(vim.secure.trust({{ action = 'allow', bufnr = b }})) vim.api.nvim_buf_delete(b, {{ force = true }})",
        path.display()
    ))
    .await;
}

#[tokio::test]
async fn unauthorized_names_the_named_key_of_the_project() {
    let server = FakeOpenRouter::start().await;
    server.push("/chat/completions", unauthorized());
    let (mut n, _dir) = start_at(
        &server,
        &server.url,
        r#"{"keys":{"client":"env:CLIENT_KEY"}}"#,
        &[("CLIENT_KEY", API_KEY)],
    )
    .await;
    trust_project_file(&n, "key = \"client\"\n").await;
    n.open("a.py", SRC).await;
    let (reason, msg) = edit_fails(&mut n).await;
    assert_eq!(reason, "http", "{msg}");
    assert!(msg.contains("\"client\""), "{msg}");
    assert!(msg.contains("CLIENT_KEY"), "{msg}");
    assert!(msg.contains(".frugal.toml"), "{msg}");
    no_secret(&mut n, &msg);
    n.quit().await;
}

fn key_script(dir: &Path) -> (PathBuf, PathBuf, String) {
    let count = dir.join("runs");
    let keyfile = dir.join("keyfile");
    let script = dir.join("print-key.sh");
    std::fs::write(
        &script,
        format!(
            "echo run >> '{}'\ncat '{}'\n",
            count.display(),
            keyfile.display()
        ),
    )
    .unwrap();
    (count, keyfile, format!("cmd:sh '{}'", script.display()))
}

fn runs(count: &Path) -> usize {
    std::fs::read_to_string(count)
        .map(|s| s.lines().count())
        .unwrap_or(0)
}

fn bearer(r: &Recorded) -> String {
    r.headers.get("authorization").cloned().unwrap_or_default()
}

#[tokio::test]
async fn a_cmd_key_runs_once_per_session_and_again_after_a_401() {
    const FIRST: &str = "sk-or-v1-FIRST-0a1b2c3d";
    const SECOND: &str = "sk-or-v1-SECOND-4e5f6a7b";
    let server = FakeOpenRouter::start().await;
    let tmp = tempfile::tempdir().unwrap();
    let (count, keyfile, spec) = key_script(tmp.path());
    std::fs::write(&keyfile, format!("{FIRST}\n")).unwrap();
    let setup = serde_json::json!({ "api_key": spec }).to_string();
    let (mut n, _dir) = start(&server, &setup).await;
    n.open("a.py", SRC).await;

    for _ in 0..2 {
        server.push("/chat/completions", good_answer(0.0));
        n.cmd("LlmEdit bump").await;
        n.wait_event("FrugalEditDone").await;
        n.cmd("LlmReject!").await;
    }
    assert_eq!(runs(&count), 1, "the command ran once for two requests");

    // The key was rotated: the 401 runs the command again, and the request is sent again with
    // the new key.
    std::fs::write(&keyfile, format!("{SECOND}\n")).unwrap();
    server.push("/chat/completions", unauthorized());
    server.push("/chat/completions", good_answer(0.0));
    n.cmd("LlmEdit bump").await;
    n.wait_event("FrugalEditDone").await;
    n.cmd("LlmReject!").await;
    assert_eq!(runs(&count), 2);
    let reqs = server.chat_requests();
    assert_eq!(reqs.len(), 4);
    assert_eq!(bearer(&reqs[2]), format!("Bearer {FIRST}"));
    assert_eq!(bearer(&reqs[3]), format!("Bearer {SECOND}"));

    // Refused again with the same key: reported, naming the command but not its text.
    server.push("/chat/completions", unauthorized());
    let (reason, msg) = edit_fails(&mut n).await;
    assert_eq!(reason, "http", "{msg}");
    assert!(msg.contains("api_key command"), "{msg}");
    assert!(!msg.contains("print-key"), "{msg}");
    assert!(!msg.contains(SECOND) && !msg.contains(FIRST), "{msg}");
    // The body echoed another key than the one sent: masked all the same.
    no_secret(&mut n, &msg);
    assert_eq!(runs(&count), 3);
    assert_eq!(
        server.chat_requests().len(),
        5,
        "the same key is not sent twice"
    );
    n.quit().await;
}

#[tokio::test]
async fn the_catalogue_is_fetched_when_the_backend_starts_and_the_first_edit_shares_it() {
    let server = FakeOpenRouter::start().await;
    // A slow catalogue, held until the test lets it go: the edit below arrives while it is
    // under way and must wait for it rather than ask again.
    let gate = std::sync::Arc::new(tokio::sync::Notify::new());
    let mut slow = Reply::json(200, MODELS);
    slow.parts.insert(0, Part::Gate(gate.clone()));
    server.push("/models", slow);
    let mut n = Nvim::start_with(&server.url, &[]).await;
    let models = |s: &FakeOpenRouter| {
        s.requests()
            .iter()
            .filter(|r| r.path.ends_with("/models"))
            .count()
    };
    // Started by a command that is not an edit: the catalogue is asked for at once.
    n.lua("require('frugal.rpc').ensure()").await;
    server
        .wait_until("the catalogue asked for at start", |s| models(s) == 1)
        .await;
    assert!(server.chat_requests().is_empty());
    n.open("w.py", SRC).await;
    server.push("/chat/completions", good_answer(0.001));
    n.cmd("LlmEdit bump").await;
    gate.notify_one();
    let done = n.wait_event("FrugalEditDone").await;
    assert_eq!(field(&done, "hunks").as_u64(), Some(1));
    assert_eq!(models(&server), 1, "one catalogue fetch for both");
    assert_eq!(server.chat_requests().len(), 1);
    n.quit().await;
}

// ---------------------------------------------------------------------------------------------
// Keys go only where they belong (SPEC, Security)
// ---------------------------------------------------------------------------------------------

/// The `Authorization` header of every request the server got (`""` for none), by path.
fn authorizations(server: &FakeOpenRouter) -> Vec<(String, String)> {
    server
        .requests()
        .iter()
        .map(|r| (r.path.clone(), bearer(r)))
        .collect()
}

/// A text as the built-in `vim.notify` shows it at 80 columns (the shim's cut, 68 cells).
async fn one_line(n: &Nvim, text: &str) -> String {
    n.lua_args(
        "return require('frugal.util').one_line(..., 68)",
        vec![rmpv::Value::from(text)],
    )
    .await
    .as_str()
    .unwrap_or("")
    .to_string()
}

/// A notification as the one-line rule wants it: one line, `frugal: ` first, at most 68 cells
/// (every character here is one cell wide).
fn assert_one_line(line: &str) {
    assert!(line.starts_with("frugal: "), "{line:?}");
    assert!(!line.contains('\n'), "{line:?}");
    assert!(
        line.chars().count() <= 68,
        "{} cells: {line:?}",
        line.chars().count()
    );
}

/// With a `base_url` that is not OpenRouter and `api_key` left at its default, the user's
/// OpenRouter key is never sent: the edit is refused before any request, naming the setting and
/// the fix. Set explicitly (even to the same variable), it is sent; `api_key = false` sends no
/// key at all (a keyless llama.cpp server).
#[tokio::test]
async fn the_default_api_key_is_never_sent_to_another_host() {
    let server = FakeOpenRouter::start().await;
    let (mut n, dir) = start_at(&server, &server.plain_url, "{}", &[]).await;
    n.open("a.py", SRC).await;
    let (reason, msg) = edit_fails(&mut n).await;
    assert_eq!(reason, "config", "{msg}");
    assert!(msg.contains("api_key"), "{msg}");
    assert!(msg.contains("setup("), "the fix: {msg}");
    assert!(msg.contains("nothing was sent"), "{msg}");
    assert!(server.chat_requests().is_empty(), "the request was sent");
    assert!(
        authorizations(&server).iter().all(|(_, a)| a.is_empty()),
        "a key went to the plain endpoint: {:?}",
        authorizations(&server)
    );
    assert!(rows(&dir).is_empty(), "nothing reserved");
    // A notification plugin (the harness's vim.notify) gets the whole text (SPEC, "One line,
    // never a prompt"); the built-in one shows its one-line form (tests/messages.rs).
    let (line, level) = n.wait_notify("api_key").await;
    assert_eq!(level, 4, "{line}");
    assert_eq!(line, msg);
    assert_one_line(&one_line(&n, &line).await);
    no_secret(&mut n, &msg);

    // Set explicitly: the user chose to send it there.
    setup_again(&n, r#"{"api_key":"env:OPENROUTER_API_KEY"}"#).await;
    server.push("/chat/completions", good_answer(0.001));
    n.cmd("LlmEdit bump").await;
    n.wait_event("FrugalEditDone").await;
    n.cmd("LlmReject!").await;
    assert_eq!(
        bearer(server.chat_requests().last().unwrap()),
        format!("Bearer {API_KEY}")
    );

    // `api_key = false`: no key at all.
    n.lua(
        "require('frugal').setup({ binary = vim.env.FRUGAL_BIN, base_url = vim.env.FRUGAL_URL, log_level = 'debug', api_key = false })",
    )
    .await;
    server.push("/chat/completions", good_answer(0.001));
    n.cmd("LlmEdit bump").await;
    n.wait_event("FrugalEditDone").await;
    assert_eq!(server.chat_requests().len(), 2);
    assert_eq!(bearer(server.chat_requests().last().unwrap()), "");
    n.quit().await;
}

// ---------------------------------------------------------------------------------------------
// A provider's own reason (recorded bodies: `error.metadata.raw`, `provider_name`)
// ---------------------------------------------------------------------------------------------

const ANTHROPIC_400: &str = r#"{"error":{"message":"Provider returned error","code":400,"metadata":{"raw":"{\"type\":\"error\",\"error\":{\"type\":\"invalid_request_error\",\"message\":\"messages.0.content.1.image.source.base64: image exceeds 5 MB maximum\"}}","provider_name":"Anthropic"}},"user_id":"user_2abc"}"#;

const GOOGLE_429: &str = r#"{"error":{"message":"Provider returned error","code":429,"metadata":{"raw":"google/gemini-2.5-flash is temporarily rate-limited upstream. Please retry shortly, or add your own key to accumulate your rate limits: https://openrouter.ai/settings/integrations","provider_name":"Google AI Studio"}},"user_id":"user_2abc"}"#;

#[tokio::test]
async fn a_providers_reason_is_shown_on_one_line_and_whole_in_the_event() {
    let server = FakeOpenRouter::start().await;
    server.push("/chat/completions", Reply::json(400, ANTHROPIC_400));
    let (mut n, dir) = start(&server, "{}").await;
    n.open("a.py", SRC).await;
    let (reason, msg) = edit_fails(&mut n).await;
    assert_eq!(reason, "http", "{msg}");
    assert!(
        msg.starts_with("Anthropic refused: messages.0.content.1.image.source.base64: image exceeds 5 MB maximum"),
        "{msg}"
    );
    assert!(msg.contains("400"), "{msg}");
    let (whole, level) = n.wait_notify("Anthropic refused").await;
    assert_eq!(level, 4, "{whole}");
    assert_eq!(whole, msg, "a notification plugin gets the whole text");
    let line = one_line(&n, &whole).await;
    assert_one_line(&line);
    assert!(
        line.starts_with("frugal: Anthropic refused: messages.0.content.1.image"),
        "{line}"
    );
    assert!(
        n.log_holds("image exceeds 5 MB maximum").await,
        "the whole reason is in the log"
    );
    wait_rows(&dir, "released", |r| r.len() == 1 && r[0].state == "failed").await;
    no_secret(&mut n, &msg);

    // A rate limit upstream: retried, then given up with the provider's words.
    for _ in 0..4 {
        server.push(
            "/chat/completions",
            Reply::status(429, &[("Retry-After", "0")], GOOGLE_429),
        );
    }
    let (reason, msg) = edit_fails(&mut n).await;
    assert_eq!(reason, "http", "{msg}");
    assert!(
        msg.starts_with("Google AI Studio refused: google/gemini-2.5-flash is temporarily rate-limited upstream. Please retry shortly"),
        "{msg}"
    );
    assert!(msg.contains("3 retries"), "{msg}");
    let (whole, _) = n.wait_notify("Google AI Studio refused").await;
    let line = one_line(&n, &whole).await;
    assert_one_line(&line);
    assert!(
        line.starts_with("frugal: Google AI Studio refused: google/gemini-2.5-flash"),
        "{line}"
    );
    assert!(line.ends_with('…'), "cut where it must be: {line}");
    n.quit().await;
}

/// A `base_url` may carry a proxy's credentials (`user:password@`): they are a key too, and
/// reach neither a message nor the log.
#[tokio::test]
async fn credentials_in_base_url_reach_no_message_or_log() {
    let server = FakeOpenRouter::start().await;
    server.push(
        "/chat/completions",
        Reply::json(404, r#"{"error":{"message":"The model does not exist"}}"#),
    );
    let url = server
        .plain_url
        .replace("http://", "http://proxyuser:PROXYPASS-93f1@");
    let (mut n, _dir) = start_at(
        &server,
        &url,
        r#"{"api_key":"env:OPENROUTER_API_KEY"}"#,
        &[],
    )
    .await;
    n.open("a.py", SRC).await;
    let (reason, msg) = edit_fails(&mut n).await;
    assert_eq!(reason, "http", "{msg}");
    assert!(msg.contains("answered 404 for model"), "{msg}");
    assert!(!msg.contains("PROXYPASS"), "{msg}");
    n.cmd("checkhealth frugal").await;
    let health = n
        .lua("return table.concat(vim.api.nvim_buf_get_lines(0, 0, -1, false), '\\n')")
        .await;
    assert!(!health.as_str().unwrap().contains("PROXYPASS"), "{health}");
    n.drain();
    for (note, _) in n.notifications() {
        assert!(!note.contains("PROXYPASS"), "{note}");
    }
    assert!(
        !n.log_text().contains("PROXYPASS"),
        "a credential in the log"
    );
    n.quit().await;
}

// ---------------------------------------------------------------------------------------------
// The ledger equals what the stream says was billed
// ---------------------------------------------------------------------------------------------

/// A `data:` event of OpenRouter's usage, written as the real wire writes it: `cost` is the
/// decimal text given (never through a float), and the chunk may carry a choice of its own.
fn usage_event(cost: &str, choice: &str) -> String {
    format!(
        "data: {{\"id\":\"gen-test-1\",\"object\":\"chat.completion.chunk\",\"choices\":[{choice}],\"usage\":{{\"prompt_tokens\":120,\"completion_tokens\":40,\"total_tokens\":160,\"cost\":{cost},\"is_byok\":false,\"prompt_tokens_details\":{{\"cached_tokens\":0}},\"completion_tokens_details\":{{\"reasoning_tokens\":0}},\"cost_details\":{{\"upstream_inference_cost\":null}}}}}}\n\n"
    )
}

/// `/generation` never knows the request (it keeps answering 404): only the stream can say
/// what was billed.
fn generation_never_known(server: &FakeOpenRouter) {
    server.respond_with(|r| {
        if r.path.contains("/generation") {
            Reply::json(
                404,
                r#"{"error":{"code":404,"message":"Generation not found"}}"#,
            )
        } else {
            Reply::json(500, r#"{"error":{"code":500,"message":"unscripted"}}"#)
        }
    });
}

/// OpenRouter's mid-stream error chunk, as recorded: an integer `code`, `finish_reason` null
/// (not "error"), after a chunk that finished with "length", and a full `usage` with `cost`.
/// What was billed is in it: the row settles at exactly that cost, from the stream, and the
/// edit still fails with reason `stream`.
#[tokio::test]
async fn an_error_chunk_settles_the_row_at_the_usage_it_carries() {
    let server = FakeOpenRouter::start().await;
    let error = "data: {\"id\":\"gen-test-1\",\"object\":\"chat.completion.chunk\",\"provider\":\"Google\",\"error\":{\"code\":400,\"message\":\"Provider returned error\",\"metadata\":{\"provider_name\":\"Google\"}},\"choices\":[{\"index\":0,\"delta\":{\"content\":\"\"},\"finish_reason\":null}],\"usage\":{\"prompt_tokens\":120,\"completion_tokens\":40,\"total_tokens\":160,\"cost\":0.0123}}\n\n";
    let s = format!(
        ": OPENROUTER PROCESSING\n\n{}{}{error}data: [DONE]\n\n",
        chunk("<<<<<<< SEARCH\n    return x + 1\n"),
        finish_chunk("length"),
    );
    server.push(
        "/chat/completions",
        Reply::sse(vec![Part::Bytes(s.into_bytes())]),
    );
    generation_never_known(&server);
    let (mut n, dir) = start(&server, "{}").await;
    n.open("a.py", SRC).await;
    let (reason, msg) = edit_fails(&mut n).await;
    assert_eq!(reason, "stream", "{msg}");
    assert!(msg.contains("Provider returned error"), "{msg}");
    let rows = wait_rows(&dir, "settled from the error chunk's usage", |r| {
        r.len() == 1 && r[0].state != "reserved"
    })
    .await;
    assert_eq!(rows[0].state, "settled");
    assert_eq!(rows[0].charged, Some(12_300_000_000), "exactly $0.0123");
    assert_eq!(rows[0].charge_source.as_deref(), Some("usage"));
    assert_eq!(
        (rows[0].tokens_in, rows[0].tokens_out),
        (Some(120), Some(40))
    );
    assert_eq!(n.lines().await, SRC);
    n.quit().await;
}

/// Several chunks carry `usage` (the first with a choice of its own, empty and unfinished, the
/// last repeating finish_reason "stop"): the last one is the final figure, and it settles.
#[tokio::test]
async fn the_last_of_several_usage_chunks_settles() {
    let server = FakeOpenRouter::start().await;
    let text = block("    return x + 1\n", "    return x + 2\n");
    let s = format!(
        ": OPENROUTER PROCESSING\n\n{}{}{}{}data: [DONE]\n\n",
        chunk(&text),
        finish_chunk("stop"),
        usage_event(
            "0.001",
            r#"{"index":0,"delta":{"content":""},"finish_reason":null}"#
        ),
        usage_event(
            "0.0021",
            r#"{"index":0,"delta":{"content":""},"finish_reason":"stop"}"#
        ),
    );
    server.push(
        "/chat/completions",
        Reply::sse(vec![Part::Bytes(s.into_bytes())]),
    );
    generation_never_known(&server);
    let (mut n, dir) = start(&server, "{}").await;
    n.open("a.py", SRC).await;
    n.cmd("LlmEdit bump").await;
    let done = n.wait_event("FrugalEditDone").await;
    assert_eq!(field(&done, "hunks").as_u64(), Some(1));
    assert!((field(&done, "cost_usd").as_f64().unwrap() - 0.0021).abs() < 1e-12);
    let rows = wait_rows(&dir, "settled", |r| {
        r.len() == 1 && r[0].state != "reserved"
    })
    .await;
    assert_eq!(rows[0].state, "settled");
    assert_eq!(rows[0].charged, Some(2_100_000_000), "the last usage");
    assert_eq!(rows[0].charge_source.as_deref(), Some("usage"));
    n.quit().await;
}

// ---------------------------------------------------------------------------------------------
// The catalogue is cached per endpoint
// ---------------------------------------------------------------------------------------------

/// What a plain endpoint (a llama.cpp server, a proxy) lists at `/models`: ids, no prices;
/// Sonnet listed unpriced too, as a proxy might.
const PLAIN_MODELS: &str = r#"{"object":"list","data":[{"id":"local/qwen","object":"model","owned_by":"me"},{"id":"anthropic/claude-sonnet-4.5","object":"model"}]}"#;

/// A Neovim at `url` with its own `setup` fields, keeping its data in `data_dir`.
/// `proxy`: the fake server as the HTTP proxy, so that a session started on its plain URL can
/// switch to its OpenRouter one.
async fn start_in(url: &str, data_dir: &Path, extra: &str, proxy: Option<&str>) -> Nvim {
    let setup = format!(r#"{{"data_dir":"{}"{extra}}}"#, data_dir.display());
    let mut env = vec![("FRUGAL_SETUP", setup.as_str()), ("PLAIN_KEY", "plain-key")];
    if let Some(p) = proxy {
        env.extend([("HTTP_PROXY", p), ("http_proxy", p)]);
    }
    Nvim::start_with(url, &env).await
}

/// One edit that must go through.
async fn edit_done(n: &mut Nvim) {
    n.open("a.py", SRC).await;
    n.cmd("LlmEdit bump").await;
    let (what, data) = n
        .wait_any_event(&["FrugalEditDone", "FrugalEditFailed"], DEADLINE)
        .await
        .expect("the edit ended");
    assert_eq!(what, "FrugalEditDone", "{data:?}");
    n.cmd("LlmReject!").await;
}

/// Plain endpoint settings: its own key (never the OpenRouter default) and a local model.
const PLAIN: &str = r#","api_key":"env:PLAIN_KEY","model":"local/qwen""#;

/// After an edit on OpenRouter, a plain endpoint is priced from its own catalogue, not refused
/// as "not in OpenRouter's catalogue" (another Neovim, the same data_dir), and back on
/// OpenRouter in the same session, under a cap, from OpenRouter's again.
#[tokio::test]
async fn switching_to_a_plain_endpoint_and_back_uses_each_ones_catalogue() {
    let server = FakeOpenRouter::start().await;
    let data = tempfile::tempdir().unwrap();
    let dir = data.path().join("frugal");
    server.push("/models", Reply::json(200, MODELS));
    server.push("/chat/completions", good_answer(0.001));
    let mut n = start_in(&server.url, &dir, "", None).await;
    edit_done(&mut n).await;
    n.quit().await;

    server.push("/models", Reply::json(200, PLAIN_MODELS));
    server.push("/chat/completions", good_answer(0.0));
    let proxy = server.plain_url.trim_end_matches("/api/v1").to_string();
    let mut n = start_in(&server.plain_url, &dir, PLAIN, Some(&proxy)).await;
    edit_done(&mut n).await;
    // Back to OpenRouter under a cap: its own catalogue prices Sonnet (the plain one does not).
    server.push("/chat/completions", good_answer(0.001));
    n.lua(&format!(
        "require('frugal').setup({{ binary = vim.env.FRUGAL_BIN, base_url = '{}', data_dir = '{}', budget = {{ daily_usd = 1 }} }})",
        server.url,
        dir.display()
    ))
    .await;
    edit_done(&mut n).await;
    let bodies: Vec<serde_json::Value> = server
        .chat_requests()
        .iter()
        .map(|r| serde_json::from_str(&r.body).unwrap())
        .collect();
    assert_eq!(bodies.len(), 3);
    assert_eq!(bodies[1]["model"], "local/qwen");
    assert_eq!(bodies[2]["provider"]["max_price"]["prompt"], 3.0);
    n.quit().await;
}

/// The reverse: a plain endpoint's catalogue (Sonnet listed without a price) does not make an
/// OpenRouter edit under a cap refuse for an unknown price.
#[tokio::test]
async fn a_plain_endpoints_catalogue_never_prices_an_openrouter_request() {
    let server = FakeOpenRouter::start().await;
    let data = tempfile::tempdir().unwrap();
    let dir = data.path().join("frugal");
    server.push("/models", Reply::json(200, PLAIN_MODELS));
    server.push("/chat/completions", good_answer(0.0));
    let mut n = start_in(&server.plain_url, &dir, PLAIN, None).await;
    edit_done(&mut n).await;
    n.quit().await;

    server.push("/models", Reply::json(200, MODELS));
    server.push("/chat/completions", good_answer(0.001));
    let mut n = start_in(&server.url, &dir, r#","budget":{"daily_usd":1}"#, None).await;
    edit_done(&mut n).await;
    let rows = wait_rows(&dir, "settled", |r| r.len() == 2 && r[1].state == "settled").await;
    assert_eq!(rows[1].model, "anthropic/claude-sonnet-4.5");
    n.quit().await;
}
