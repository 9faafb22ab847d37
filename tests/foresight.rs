//! Foresight, confirmation of dear requests, models leaving the catalogue, and user prices on a
//! plain endpoint, end to end: a real headless Neovim, the real backend and ledger, and the
//! loopback server (which records every request that reaches it).

mod common;
use common::*;

const SRC: &[&str] = &["def f(x):", "    return x + 1", ""];

fn edit_reply(server: &FakeOpenRouter, cost: f64) {
    server.push(
        "/chat/completions",
        Reply::sse(answer(
            &block("    return x + 1\n", "    return x + 2\n"),
            6,
            cost,
        )),
    );
}

async fn start(server: &FakeOpenRouter, models: &str, setup: &str) -> (Nvim, std::path::PathBuf) {
    server.push("/models", Reply::json(200, models));
    let n = Nvim::start_with(&server.url, &[("FRUGAL_SETUP", setup)]).await;
    let dir = n.home.path().join("data/nvim/frugal");
    (n, dir)
}

/// Replaces `vim.ui.select` with one that records the prompt and picks `choice` (1-based).
async fn answer_questions_with(n: &Nvim, choice: u32) {
    n.lua(&format!(
        "_G.asked = {{}} vim.ui.select = function(items, opts, cb) table.insert(_G.asked, {{ prompt = opts.prompt, items = items }}) cb(items[{choice}], {choice}) end"
    ))
    .await;
}

async fn asked(n: &Nvim) -> Vec<String> {
    let v = n
        .lua("return vim.tbl_map(function(a) return a.prompt end, _G.asked)")
        .await;
    v.as_array()
        .map(|a| {
            a.iter()
                .filter_map(|p| p.as_str().map(String::from))
                .collect()
        })
        .unwrap_or_default()
}

/// The progress line shows the likely cost next to the worst case, and `FrugalEditDone`
/// carries the reservation; the request's prompt size is recorded for the next estimate.
#[tokio::test]
async fn the_progress_line_shows_likely_and_worst_and_done_carries_the_reservation() {
    let server = FakeOpenRouter::start().await;
    edit_reply(&server, 0.00123);
    let (mut n, dir) = start(&server, MODELS, "{}").await;
    n.open("a.py", SRC).await;
    n.cmd("LlmEdit bump").await;
    let done = n.wait_event("FrugalEditDone").await;
    let reserved = field(&done, "reserved_usd").as_f64().expect("reserved_usd");
    let r = &rows(&dir)[0];
    assert!(
        (reserved * PS - r.reserved as f64).abs() < 1.0,
        "{reserved} vs {}",
        r.reserved
    );
    let line = n
        .lua("return require('frugal.edit').last_progress or ''")
        .await;
    let line = line.as_str().unwrap().to_string();
    assert!(line.contains(" · likely ~$"), "{line}");
    // SPEC: the worst case first (`at most $0.031 · likely ~$0.004 · …`).
    assert!(line.contains("frugal: at most $"), "{line}");
    // Without history: prompt bytes / 4 at $3/M + 1024 tokens (max_tokens / 4) at $15/M,
    // far below the worst case (every byte a token at the cache-write price, 4096 tokens).
    let likely: f64 = line
        .split("likely ~$")
        .nth(1)
        .and_then(|s| s.split_whitespace().next())
        .and_then(|s| s.parse().ok())
        .unwrap();
    assert!(
        likely >= 1024.0 * 15e-6 && likely < reserved / 2.0,
        "{likely} {reserved}"
    );
    let conn = rusqlite::Connection::open(ledger_path(&dir)).unwrap();
    let bytes: Option<i64> = conn
        .query_row("SELECT prompt_bytes FROM requests", [], |r| r.get(0))
        .unwrap();
    assert!(bytes.is_some_and(|b| b > 100), "{bytes:?}");
    n.quit().await;
}

/// Above `confirm_above_usd` the user is asked, with the worst and likely cost; accepting
/// sends the request.
#[tokio::test]
async fn a_dear_request_confirmed_is_sent() {
    let server = FakeOpenRouter::start().await;
    edit_reply(&server, 0.00123);
    let (mut n, dir) = start(&server, MODELS, r#"{"budget":{"confirm_above_usd":0.01}}"#).await;
    answer_questions_with(&n, 1).await;
    n.open("a.py", SRC).await;
    n.cmd("LlmEdit bump").await;
    n.wait_event("FrugalEditDone").await;
    let prompts = asked(&n).await;
    assert_eq!(prompts.len(), 1, "{prompts:?}");
    assert!(prompts[0].contains("costs at most $"), "{}", prompts[0]);
    assert!(prompts[0].contains("likely ~$"), "{}", prompts[0]);
    assert!(
        prompts[0].contains("setup budget.confirm_above_usd"),
        "{}",
        prompts[0]
    );
    assert_eq!(server.chat_requests().len(), 1);
    // Settled just after FrugalEditDone.
    wait_rows(&dir, "the settlement", |r| {
        r.first().is_some_and(|r| r.state == "settled")
    })
    .await;
    n.quit().await;
}

/// Declined: nothing reaches the server, the reservation is released, the edit fails with
/// reason `cancelled`. A trusted project file's lower threshold wins over setup's.
#[tokio::test]
async fn a_dear_request_declined_sends_nothing_and_releases_its_reservation() {
    let server = FakeOpenRouter::start().await;
    edit_reply(&server, 0.00123);
    let (mut n, dir) = start(&server, MODELS, r#"{"budget":{"confirm_above_usd":5}}"#).await;
    let file = n.home.path().join("proj/.frugal.toml");
    std::fs::create_dir_all(file.parent().unwrap()).unwrap();
    std::fs::write(&file, "[budget]\nconfirm_above_usd = 0.01\n").unwrap();
    n.lua(&format!(
        "local b = vim.fn.bufadd('{0}') vim.fn.bufload(b) assert(vim.secure.trust({{ action = 'allow', bufnr = b }})) vim.api.nvim_buf_delete(b, {{ force = true }})",
        file.display()
    ))
    .await;
    answer_questions_with(&n, 2).await;
    n.open("a.py", SRC).await;
    n.cmd("LlmEdit bump").await;
    let failed = n.wait_event("FrugalEditFailed").await;
    assert_eq!(field(&failed, "reason").as_str(), Some("cancelled"));
    let msg = field(&failed, "message").as_str().unwrap();
    assert!(msg.starts_with("declined: nothing was sent"), "{msg}");
    assert!(msg.contains(".frugal.toml"), "{msg}");
    assert!(
        server.chat_requests().is_empty(),
        "a declined request was sent"
    );
    let rows = wait_rows(&dir, "the reservation released", |r| {
        r.iter().all(|r| r.state == "failed")
    })
    .await;
    assert!(rows.iter().all(|r| r.charged.unwrap_or(0) == 0), "{rows:?}");
    assert_eq!(n.lines().await, SRC);
    n.quit().await;
}

/// A model leaving the catalogue within 30 days is named once per session, with the date and
/// alternatives.
#[tokio::test]
async fn a_model_leaving_soon_is_warned_about_once_per_session() {
    let server = FakeOpenRouter::start().await;
    let soon = jiff::Zoned::now()
        .date()
        .checked_add(jiff::Span::new().days(10))
        .unwrap();
    let models = format!(
        r#"{{"data":[
 {{"id":"mistralai/mistral-large-2411","name":"Mistral Large","pricing":{{"prompt":"0.000002","completion":"0.000006"}},"expiration_date":"{soon}"}},
 {{"id":"mistralai/mistral-medium-3","name":"Mistral Medium 3","pricing":{{"prompt":"0.0000004","completion":"0.000002"}},"expiration_date":null}},
 {{"id":"anthropic/claude-sonnet-4.5","pricing":{{"prompt":"0.000003","completion":"0.000015"}}}}
]}}"#
    );
    edit_reply(&server, 0.001);
    edit_reply(&server, 0.001);
    let (mut n, _dir) = start(
        &server,
        &models,
        r#"{"model":"mistralai/mistral-large-2411"}"#,
    )
    .await;
    n.open("a.py", SRC).await;
    n.cmd("LlmEdit bump").await;
    let (msg, level) = n.wait_notify("leaves the catalogue").await;
    assert_eq!(level, 3, "a warning");
    assert!(msg.contains(&format!("({soon})")), "{msg}");
    assert!(
        msg.contains("close alternatives: mistralai/mistral-medium-3"),
        "{msg}"
    );
    n.wait_event("FrugalEditDone").await;
    n.cmd("LlmReject!").await;
    n.cmd("LlmEdit bump").await;
    n.wait_event("FrugalEditDone").await;
    let warned = n
        .notifications()
        .iter()
        .filter(|(m, _)| m.contains("leaves the catalogue"))
        .count();
    assert_eq!(warned, 1, "{:?}", n.notifications());
    assert_eq!(server.chat_requests().len(), 2);
    n.quit().await;
}

/// The fields a plain OpenAI-compatible server knows; it refuses any other with a 400, as
/// OpenAI does.
const PLAIN_FIELDS: &[&str] = &[
    "model",
    "messages",
    "stream",
    "max_tokens",
    "temperature",
    "stream_options",
];

/// A plain answer: no `cost` in the usage, no generation to look up.
fn plain_answer() -> Reply {
    let text = block("    return x + 1\n", "    return x + 2\n");
    let chunk = |delta: serde_json::Value, finish: serde_json::Value| {
        let v = serde_json::json!({"id": "chatcmpl-1", "object": "chat.completion.chunk", "model": "local/llama",
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]});
        format!("data: {v}\n\n")
    };
    let mut s = chunk(
        serde_json::json!({"role": "assistant", "content": text}),
        serde_json::Value::Null,
    );
    s.push_str(&chunk(serde_json::json!({}), "stop".into()));
    let usage = serde_json::json!({"id": "chatcmpl-1", "object": "chat.completion.chunk", "choices": [],
        "usage": {"prompt_tokens": 5000, "completion_tokens": 1000, "total_tokens": 6000}});
    s.push_str(&format!("data: {usage}\n\ndata: [DONE]\n\n"));
    Reply::sse(vec![Part::Bytes(s.into_bytes())])
}

/// A plain endpoint under a cap, priced by `setup({ prices })`: a plain request, charged its
/// tokens × those prices; the next edit over the cap is refused without any HTTP request; a
/// bad `prices` entry warns.
#[tokio::test]
async fn a_plain_endpoint_priced_by_setup_is_capped_and_charged_tokens_times_prices() {
    let server = FakeOpenRouter::start().await;
    // `/models` without pricing.
    server.push(
        "/models",
        Reply::json(
            200,
            r#"{"object":"list","data":[{"id":"local/llama","object":"model","owned_by":"me"}]}"#,
        ),
    );
    server.respond_with(|r| {
        if !r.path.ends_with("/chat/completions") {
            return Reply::json(404, r#"{"error":{"message":"not found"}}"#);
        }
        let body: serde_json::Value = serde_json::from_str(&r.body).unwrap_or_default();
        let unknown: Vec<&String> = body
            .as_object()
            .map(|o| o.keys().filter(|k| !PLAIN_FIELDS.contains(&k.as_str())).collect())
            .unwrap_or_default();
        if !unknown.is_empty() {
            return Reply::json(
                400,
                &format!(r#"{{"error":{{"message":"Unrecognized request argument supplied: {unknown:?}"}}}}"#),
            );
        }
        plain_answer()
    });
    // $2 / $10 per million: 5000 × 2e-6 + 1000 × 10e-6 = $0.02 an answer. A worst case is
    // about $0.016 (a prompt of a few KB counted a token a byte, 1024 answer tokens, which
    // cannot be lowered): the daily cap $0.025 lets the first through, not the second.
    let setup = r#"{"model":"local/llama","max_tokens":1024,"min_useful_tokens":1024,"budget":{"daily_usd":0.025},"api_key":"env:OPENROUTER_API_KEY",
        "prices":{"local/llama":{"prompt":2,"completion":10},"other/model":{"prompt":-1,"completion":1}}}"#;
    let mut n = Nvim::start_with(&server.plain_url, &[("FRUGAL_SETUP", setup)]).await;
    let dir = n.home.path().join("data/nvim/frugal");
    n.open("a.py", SRC).await;
    n.cmd("LlmEdit bump").await;
    let done = n.wait_event("FrugalEditDone").await;
    let (warning, level) = n.wait_notify("prices entry \"other/model\"").await;
    assert_eq!(level, 3, "{warning}");
    let cost = field(&done, "cost_usd").as_f64().unwrap();
    assert!((cost - 0.02).abs() < 1e-12, "{cost}");
    let req = &server.chat_requests()[0];
    let body: serde_json::Value = serde_json::from_str(&req.body).unwrap();
    assert!(
        body.get("provider").is_none() && body.get("usage").is_none(),
        "{body}"
    );
    assert_eq!(body["stream_options"]["include_usage"], true);
    for h in ["http-referer", "x-openrouter-title", "x-title"] {
        assert!(!req.headers.contains_key(h), "{h} sent");
    }
    // Settled just after FrugalEditDone.
    let settled = wait_rows(&dir, "the settlement", |r| {
        r.first().is_some_and(|r| r.state != "reserved")
    })
    .await;
    let r = &settled[0];
    assert_eq!(r.state, "settled");
    assert_eq!(r.charged, Some(20_000_000_000), "exactly $0.02");
    assert_eq!(r.charge_source.as_deref(), Some("estimate"));
    assert!(
        server
            .requests()
            .iter()
            .all(|r| !r.path.contains("/generation")),
        "a plain endpoint has no /generation"
    );

    // The next worst case does not fit what is left of the day: refused, nothing sent.
    n.cmd("LlmReject!").await;
    n.cmd("LlmEdit bump").await;
    let failed = n.wait_event("FrugalEditFailed").await;
    assert_eq!(field(&failed, "reason").as_str(), Some("budget"));
    assert_eq!(
        server.chat_requests().len(),
        1,
        "the refusal sent a request"
    );
    assert_eq!(rows(&dir).len(), 1);
    n.quit().await;
}

/// A model the endpoint does not serve: its 404, explained with the model and the base_url.
#[tokio::test]
async fn a_priced_model_the_endpoint_does_not_serve_is_explained() {
    let server = FakeOpenRouter::start().await;
    server.push("/models", Reply::json(200, r#"{"data":[]}"#));
    server.push(
        "/chat/completions",
        Reply::json(
            404,
            r#"{"error":{"message":"The model `locl/llama` does not exist"}}"#,
        ),
    );
    let setup = r#"{"model":"locl/llama","budget":{"daily_usd":1},"prices":{"locl/llama":{"prompt":0,"completion":0}},"api_key":"env:OPENROUTER_API_KEY"}"#;
    let mut n = Nvim::start_with(&server.plain_url, &[("FRUGAL_SETUP", setup)]).await;
    let dir = n.home.path().join("data/nvim/frugal");
    n.open("a.py", SRC).await;
    n.cmd("LlmEdit bump").await;
    let failed = n.wait_event("FrugalEditFailed").await;
    assert_eq!(field(&failed, "reason").as_str(), Some("http"));
    let msg = field(&failed, "message").as_str().unwrap();
    assert!(
        msg.contains(&format!(
            "{} answered 404 for model locl/llama",
            server.plain_url
        )),
        "{msg}"
    );
    assert!(!msg.contains(API_KEY));
    wait_rows(&dir, "released", |r| r.iter().all(|r| r.state == "failed")).await;
    n.quit().await;
}

/// A setup whose `data_dir` lies outside any one Neovim's home, so a second Neovim (a restart)
/// reads the same ledger.
fn shared_setup(data: &std::path::Path, confirm_above: f64) -> String {
    serde_json::json!({ "data_dir": data, "budget": { "confirm_above_usd": confirm_above } })
        .to_string()
}

/// Replaces `vim.ui.select` with one that records the question and never answers it.
async fn leave_asks_open(n: &Nvim) {
    n.lua("_G.asked = {} vim.ui.select = function(items, opts) table.insert(_G.asked, { prompt = opts.prompt, items = items }) end").await;
}

/// Waits until the confirmation is on screen and its reservation is in the ledger.
async fn wait_question(n: &Nvim, dir: &std::path::Path) {
    let end = std::time::Instant::now() + DEADLINE;
    while asked(n).await.is_empty() {
        assert!(std::time::Instant::now() < end, "never asked");
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    wait_rows(dir, "the reservation", |r| {
        r.len() == 1 && r[0].state == "reserved"
    })
    .await;
}

/// A backend started (`hello`: the start that looks at orphaned reservations).
async fn start_backend(n: &Nvim) {
    let ok = n
        .lua("return require('frugal.rpc').ensure() ~= nil and require('frugal.rpc').info() ~= nil")
        .await;
    assert_eq!(ok.as_bool(), Some(true), "the backend did not start");
}

/// Neovim quit (cleanly) with the question open: nothing was sent, so the reservation is
/// released as the backend exits, and a new start does not charge it.
#[tokio::test]
async fn quitting_with_the_question_open_releases_the_reservation() {
    let server = FakeOpenRouter::start().await;
    let shared = tempfile::tempdir().unwrap();
    let dir = shared.path().join("data");
    let setup = shared_setup(&dir, 0.001);
    let (n, _) = start(&server, MODELS, &setup).await;
    leave_asks_open(&n).await;
    n.open("a.py", SRC).await;
    n.cmd("LlmEdit bump").await;
    wait_question(&n, &dir).await;
    let pid = n.backend_pid().await.expect("running");
    n.quit().await;
    wait_dead(pid).await;
    let r = rows(&dir);
    assert_eq!(r[0].state, "failed", "released as the backend exits: {r:?}");

    // A new Neovim on the same ledger: nothing to charge.
    let (n, _) = start(&server, MODELS, &setup).await;
    start_backend(&n).await;
    let r = wait_rows(&dir, "the row settled one way or another", |r| {
        r.len() == 1 && r[0].state != "reserved"
    })
    .await;
    assert_eq!(
        (r[0].state.as_str(), r[0].charged),
        ("failed", Some(0)),
        "{r:?}"
    );
    assert!(server.chat_requests().is_empty(), "nothing was sent");
    n.quit().await;
}

/// The backend SIGKILLed with the question open: it had no chance to release the reservation,
/// so the next start does, without charging it (it was never sent).
#[tokio::test]
async fn a_backend_killed_with_the_question_open_is_released_at_the_next_start() {
    let server = FakeOpenRouter::start().await;
    let shared = tempfile::tempdir().unwrap();
    let dir = shared.path().join("data");
    let (mut n, _) = start(&server, MODELS, &shared_setup(&dir, 0.001)).await;
    leave_asks_open(&n).await;
    n.open("a.py", SRC).await;
    n.cmd("LlmEdit bump").await;
    wait_question(&n, &dir).await;
    let pid = n.backend_pid().await.expect("running");
    kill9(pid);
    n.wait_event("FrugalEditFailed").await;
    wait_dead(pid).await;
    assert_eq!(rows(&dir)[0].state, "reserved", "counts in full meanwhile");
    start_backend(&n).await;
    let r = wait_rows(&dir, "the orphan settled one way or another", |r| {
        r.len() == 1 && r[0].state != "reserved"
    })
    .await;
    assert_eq!(
        (r[0].state.as_str(), r[0].charged),
        ("failed", Some(0)),
        "{r:?}"
    );
    assert!(server.chat_requests().is_empty(), "nothing was sent");
    n.quit().await;
}
