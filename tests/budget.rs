//! Budgets end to end: a real headless Neovim, the real backend, a real SQLite ledger, and the
//! loopback OpenRouter (which counts what reaches it).

mod common;
use common::*;
use std::sync::Arc;

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

async fn start(server: &FakeOpenRouter, setup: &str) -> (Nvim, std::path::PathBuf) {
    server.push("/models", Reply::json(200, MODELS));
    let n = Nvim::start_with(&server.url, &[("FRUGAL_SETUP", setup)]).await;
    let dir = n.home.path().join("data/nvim/frugal");
    (n, dir)
}

#[tokio::test]
async fn normal_edit_is_reserved_then_settled_with_usage_cost() {
    let server = FakeOpenRouter::start().await;
    edit_reply(&server, 0.00123);
    let (mut n, dir) = start(&server, "{}").await;
    n.open("a.py", SRC).await;
    n.cmd("LlmEdit bump").await;
    let done = n.wait_event("FrugalEditDone").await;
    assert!((field(&done, "cost_usd").as_f64().unwrap() - 0.00123).abs() < 1e-12);
    // Settled just after FrugalEditDone (the fsync is not waited for by the user).
    let rows = wait_rows(&dir, "the settlement", |r| {
        r.len() == 1 && r[0].state != "reserved"
    })
    .await;
    assert_eq!(rows.len(), 1);
    let r = &rows[0];
    assert_eq!(r.state, "settled");
    assert_eq!(r.charged, Some(1_230_000_000), "exact picodollars");
    assert_eq!(r.charge_source.as_deref(), Some("usage"));
    assert_eq!(r.tokens_in, Some(120));
    assert_eq!(r.tokens_out, Some(40));
    assert_eq!(r.generation_id.as_deref(), Some("gen-test-1"));
    assert_eq!(r.model, "anthropic/claude-sonnet-4.5");
    assert!(r.project.ends_with("/proj"), "{}", r.project);
    // Worst case: at least max_tokens × $15/M.
    assert!(r.reserved as f64 >= 4096.0 * 15e-6 * PS);
    // Routing never picks a pricier provider than the price reserved for.
    let body: serde_json::Value = serde_json::from_str(&server.chat_requests()[0].body).unwrap();
    assert_eq!(body["provider"]["max_price"]["prompt"], 3.0);
    assert_eq!(body["provider"]["max_price"]["completion"], 15.0);
    // No secret in the ledger file.
    let raw = std::fs::read(ledger_path(&dir)).unwrap();
    assert!(!String::from_utf8_lossy(&raw).contains(API_KEY));
    n.quit().await;
}

#[tokio::test]
async fn refusal_sends_no_http_request_and_names_the_cap() {
    let server = FakeOpenRouter::start().await;
    edit_reply(&server, 0.001);
    let (mut n, dir) = start(&server, r#"{"budget":{"daily_usd":0.005}}"#).await;
    n.open("a.py", SRC).await;
    n.cmd("LlmEdit bump").await;
    let failed = n.wait_event("FrugalEditFailed").await;
    assert_eq!(field(&failed, "reason").as_str(), Some("budget"));
    let msg = field(&failed, "message").as_str().unwrap();
    assert!(msg.contains("daily cap $0.0050"), "{msg}");
    assert!(msg.contains("budget.daily_usd"), "{msg}");
    assert!(
        server.chat_requests().is_empty(),
        "a refused request reached the server"
    );
    assert!(rows(&dir).is_empty(), "a refusal writes nothing");
    assert_eq!(n.lines().await, SRC);
    n.quit().await;
}

#[tokio::test]
async fn max_tokens_lowered_to_fit_the_cap() {
    let server = FakeOpenRouter::start().await;
    edit_reply(&server, 0.001);
    let (mut n, dir) = start(&server, r#"{"budget":{"daily_usd":0.03}}"#).await;
    n.open("a.py", SRC).await;
    n.cmd("LlmEdit bump").await;
    n.wait_event("FrugalEditDone").await;
    n.wait_notify("max_tokens lowered from 4096").await;
    let body: serde_json::Value = serde_json::from_str(&server.chat_requests()[0].body).unwrap();
    let sent = body["max_tokens"].as_u64().unwrap();
    assert!((512..4096).contains(&sent), "max_tokens {sent}");
    let r = &rows(&dir)[0];
    assert!(r.reserved as f64 <= 0.03 * PS, "reserved {}", r.reserved);
    n.quit().await;
}

async fn write_project_file(n: &Nvim, text: &str, action: &str) -> std::path::PathBuf {
    let path = n.home.path().join("proj/.frugal.toml");
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(&path, text).unwrap();
    // `allow` trusts a buffer's exact content (a later change of the file untrusts it).
    let code = if action == "allow" {
        format!(
            "local b = vim.fn.bufadd('{0}') vim.fn.bufload(b) assert(vim.secure.trust({{ action = 'allow', bufnr = b }})) vim.api.nvim_buf_delete(b, {{ force = true }})",
            path.display()
        )
    } else {
        format!(
            "assert(vim.secure.trust({{ action = '{action}', path = '{}' }}))",
            path.display()
        )
    };
    n.lua(&code).await;
    path
}

#[tokio::test]
async fn trusted_project_file_sets_caps_model_and_privacy() {
    let server = FakeOpenRouter::start().await;
    edit_reply(&server, 0.0002);
    let (mut n, dir) = start(&server, "{}").await;
    write_project_file(
        &n,
        "[budget]\ndaily_usd = 1.00\n\n[model]\ndefault = \"mistralai/mistral-medium-3\"\nallow = [\"mistralai/*\"]\n\n[privacy]\ndata_collection = \"deny\"\n",
        "allow",
    )
    .await;
    n.open("a.py", SRC).await;
    n.cmd("LlmEdit bump").await;
    n.wait_event("FrugalEditDone").await;
    let body: serde_json::Value = serde_json::from_str(&server.chat_requests()[0].body).unwrap();
    assert_eq!(body["model"], "mistralai/mistral-medium-3");
    assert_eq!(body["provider"]["data_collection"], "deny");
    assert_eq!(rows(&dir)[0].model, "mistralai/mistral-medium-3");
    n.quit().await;
}

#[tokio::test]
async fn trusted_file_cap_refuses_and_points_at_the_file() {
    let server = FakeOpenRouter::start().await;
    let (mut n, _dir) = start(&server, r#"{"budget":{"daily_usd":100}}"#).await;
    let file = write_project_file(&n, "[budget]\nper_request_usd = 0.001\n", "allow").await;
    n.open("a.py", SRC).await;
    n.cmd("LlmEdit bump").await;
    let failed = n.wait_event("FrugalEditFailed").await;
    assert_eq!(field(&failed, "reason").as_str(), Some("budget"));
    let msg = field(&failed, "message").as_str().unwrap();
    assert!(msg.contains("per-request cap $0.0010"), "{msg}");
    assert!(
        msg.contains(&format!("[budget] per_request_usd in {}", file.display())),
        "{msg}"
    );
    assert!(server.chat_requests().is_empty());
    n.quit().await;
}

#[tokio::test]
async fn untrusted_file_is_ignored_and_reported() {
    let server = FakeOpenRouter::start().await;
    edit_reply(&server, 0.0002);
    let (mut n, _dir) = start(&server, "{}").await;
    // A hostile file: a tiny cap would be harmless, but a model switch and base_url must not apply.
    write_project_file(
        &n,
        "base_url = \"http://evil\"\n[model]\ndefault = \"mistralai/mistral-medium-3\"\n",
        "deny",
    )
    .await;
    n.open("a.py", SRC).await;
    n.cmd("LlmEdit bump").await;
    n.wait_event("FrugalEditDone").await;
    n.wait_notify("is not trusted").await;
    let body: serde_json::Value = serde_json::from_str(&server.chat_requests()[0].body).unwrap();
    assert_eq!(
        body["model"], "anthropic/claude-sonnet-4.5",
        "the untrusted default was ignored"
    );
    n.quit().await;
}

#[tokio::test]
async fn malformed_file_blocks_the_project_with_its_line() {
    let server = FakeOpenRouter::start().await;
    let (mut n, _dir) = start(&server, "{}").await;
    write_project_file(&n, "[budget]\ndaily_usd = \"a lot\"\n", "allow").await;
    n.open("a.py", SRC).await;
    n.cmd("LlmEdit bump").await;
    let failed = n.wait_event("FrugalEditFailed").await;
    assert_eq!(field(&failed, "reason").as_str(), Some("config"));
    let msg = field(&failed, "message").as_str().unwrap();
    assert!(msg.contains(".frugal.toml line 2"), "{msg}");
    assert!(msg.contains("daily_usd"), "{msg}");
    assert!(server.chat_requests().is_empty());
    n.quit().await;
}

#[tokio::test]
async fn project_file_cannot_redirect_requests() {
    let server = FakeOpenRouter::start().await;
    edit_reply(&server, 0.0002);
    let (mut n, _dir) = start(&server, "{}").await;
    write_project_file(
        &n,
        "base_url = \"http://127.0.0.1:9/evil\"\napi_key = \"cmd:touch /tmp/pwned\"\n",
        "allow",
    )
    .await;
    n.open("a.py", SRC).await;
    n.cmd("LlmEdit bump").await;
    // An unknown field makes the whole file invalid (it used to be a warning, and the request
    // went out): no request at all, to any endpoint, and the message names the field.
    let failed = n.wait_event("FrugalEditFailed").await;
    assert_eq!(field(&failed, "reason").as_str(), Some("config"));
    let msg = field(&failed, "message").as_str().unwrap();
    assert!(msg.contains("unknown field \"base_url\""), "{msg}");
    assert!(msg.contains(".frugal.toml line 1"), "{msg}");
    assert!(server.chat_requests().is_empty());
    n.quit().await;
}

#[tokio::test]
async fn allow_list_refuses_other_models() {
    let server = FakeOpenRouter::start().await;
    let (mut n, _dir) = start(&server, "{}").await;
    write_project_file(&n, "[model]\nallow = [\"mistralai/*\"]\n", "allow").await;
    n.open("a.py", SRC).await;
    n.cmd("LlmEdit bump").await;
    let failed = n.wait_event("FrugalEditFailed").await;
    let msg = field(&failed, "message").as_str().unwrap();
    assert!(msg.contains("not allowed"), "{msg}");
    assert!(server.chat_requests().is_empty());
    n.quit().await;
}

#[tokio::test]
async fn free_model_stays_usable_at_a_cap() {
    let server = FakeOpenRouter::start().await;
    edit_reply(&server, 0.0);
    let (mut n, dir) = start(
        &server,
        r#"{"budget":{"daily_usd":0.000001},"model":"meta-llama/llama-3.3-70b-instruct:free"}"#,
    )
    .await;
    n.open("a.py", SRC).await;
    n.cmd("LlmEdit bump").await;
    n.wait_event("FrugalEditDone").await;
    // Settled just after FrugalEditDone.
    let rows = wait_rows(&dir, "the settlement", |r| {
        r.len() == 1 && r[0].state != "reserved"
    })
    .await;
    let r = &rows[0];
    assert_eq!((r.reserved, r.charged), (0, Some(0)));
    n.quit().await;
}

#[tokio::test]
async fn unknown_model_names_close_alternatives() {
    let server = FakeOpenRouter::start().await;
    let (mut n, _dir) = start(&server, r#"{"model":"mistralai/mistral-large-2411"}"#).await;
    n.open("a.py", SRC).await;
    n.cmd("LlmEdit bump").await;
    let failed = n.wait_event("FrugalEditFailed").await;
    let msg = field(&failed, "message").as_str().unwrap();
    assert!(msg.contains("not in OpenRouter's catalogue"), "{msg}");
    assert!(msg.contains("mistralai/mistral-medium-3"), "{msg}");
    n.quit().await;
}

#[tokio::test]
async fn variable_price_model_is_refused_while_a_cap_applies() {
    let server = FakeOpenRouter::start().await;
    let (mut n, _dir) = start(
        &server,
        r#"{"model":"openrouter/auto","budget":{"monthly_usd":5}}"#,
    )
    .await;
    n.open("a.py", SRC).await;
    n.cmd("LlmEdit bump").await;
    let failed = n.wait_event("FrugalEditFailed").await;
    assert_eq!(field(&failed, "reason").as_str(), Some("budget"));
    assert!(field(&failed, "message")
        .as_str()
        .unwrap()
        .contains("price of openrouter/auto is unknown"));
    assert!(server.chat_requests().is_empty());
    n.quit().await;
}

#[tokio::test]
async fn warn_at_notifies_once_per_period() {
    let server = FakeOpenRouter::start().await;
    edit_reply(&server, 0.05);
    edit_reply(&server, 0.01);
    let (mut n, _dir) = start(&server, r#"{"budget":{"daily_usd":1.0,"warn_at":0.04}}"#).await;
    n.open("a.py", SRC).await;
    n.cmd("LlmEdit bump").await;
    n.wait_event("FrugalEditDone").await;
    n.wait_notify("of this project's daily cap used").await;
    n.cmd("LlmReject!").await;
    n.cmd("LlmEdit bump").await;
    n.wait_event("FrugalEditDone").await;
    n.drain();
    let warned = n
        .notifications()
        .iter()
        .filter(|(m, _)| m.contains("daily cap used"))
        .count();
    assert_eq!(warned, 1);
    n.quit().await;
}

#[tokio::test]
async fn cancelled_stream_is_reconciled_through_generation() {
    let server = FakeOpenRouter::start().await;
    server.push("/chat/completions", Reply::hanging());
    server.push(
        "/generation",
        Reply::json(
            404,
            r#"{"error":{"code":404,"message":"Generation not found"}}"#,
        ),
    );
    server.push("/generation", Reply::json(200, r#"{"data":{"id":"gen-test-1","total_cost":0.0042,"tokens_prompt":100,"tokens_completion":7,"native_tokens_reasoning":0,"cancelled":true}}"#));
    let (mut n, dir) = start(&server, "{}").await;
    n.open("a.py", SRC).await;
    n.cmd("LlmEdit bump").await;
    server
        .wait_until("the request", |s| s.chat_requests().len() == 1)
        .await;
    wait_rows(&dir, "the generation id", |r| {
        r.len() == 1 && r[0].generation_id.is_some()
    })
    .await;
    n.cmd("LlmCancel").await;
    n.wait_event("FrugalEditFailed").await;
    let rows = wait_rows(&dir, "reconciled", |r| r[0].state == "reconciled").await;
    assert_eq!(rows[0].charged, Some(4_200_000_000));
    assert_eq!(rows[0].charge_source.as_deref(), Some("generation"));
    let lookups: Vec<_> = server
        .requests()
        .into_iter()
        .filter(|r| r.path.contains("/generation?id=gen-test-1"))
        .collect();
    assert_eq!(lookups.len(), 2, "retried after the 404");
    assert_eq!(
        lookups[1].headers.get("authorization").map(String::as_str),
        Some(&*format!("Bearer {API_KEY}"))
    );
    n.quit().await;
}

#[tokio::test]
async fn sigkilled_backend_leaves_a_reservation_the_next_start_reconciles() {
    let server = FakeOpenRouter::start().await;
    server.push("/chat/completions", Reply::hanging());
    let (mut n, dir) = start(&server, "{}").await;
    n.open("a.py", SRC).await;
    n.cmd("LlmEdit bump").await;
    wait_rows(&dir, "the reservation with its generation id", |r| {
        r.len() == 1 && r[0].generation_id.is_some()
    })
    .await;
    let pid = n.backend_pid().await.unwrap();
    kill9(pid);
    n.wait_event("FrugalEditFailed").await;
    wait_dead(pid).await;
    assert_eq!(
        rows(&dir)[0].state,
        "reserved",
        "counts in full until reconciled"
    );
    server.push("/generation", Reply::json(200, r#"{"data":{"id":"gen-test-1","total_cost":0.0031,"tokens_prompt":90,"tokens_completion":3}}"#));
    // Any command starts the backend again; its start reconciles.
    edit_reply(&server, 0.001);
    n.cmd("LlmEdit again").await;
    n.wait_event("FrugalEditDone").await;
    // The second answer is settled just after its FrugalEditDone.
    let rows = wait_rows(&dir, "reconciled, then settled", |r| {
        r.len() == 2 && r[0].state == "reconciled" && r[1].state == "settled"
    })
    .await;
    assert_eq!(rows[0].charged, Some(3_100_000_000));
    assert_eq!(rows[1].state, "settled");
    n.quit().await;
}

/// Several Neovims (several backends, several processes) race on one project against a daily
/// cap; the server answers random costs. The ledger never counts more than the cap, and refused
/// requests never reach the server.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_neovims_never_cross_the_cap_together() {
    const NVIMS: usize = 4;
    const EDITS: usize = 6;
    let server = Arc::new(FakeOpenRouter::start().await);
    let shared = tempfile::tempdir().unwrap();
    let data = shared.path().join("data");
    let proj = shared.path().join("proj");
    std::fs::create_dir_all(&proj).unwrap();
    for i in 0..NVIMS {
        std::fs::write(proj.join(format!("f{i}.py")), SRC.join("\n")).unwrap();
    }
    server.push("/models", Reply::json(200, MODELS));
    let mut seed: u64 = 0x9e37_79b9_7f4a_7c15;
    for _ in 0..NVIMS * EDITS {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        let cost = 0.002 + (seed % 10_000) as f64 / 10_000.0 * 0.008;
        edit_reply(&server, (cost * 1e6).round() / 1e6);
    }
    let setup = serde_json::json!({
        "data_dir": data,
        "max_tokens": 600,
        "budget": { "daily_usd": 0.06 },
    })
    .to_string();
    let mut tasks = Vec::new();
    for i in 0..NVIMS {
        let server = server.clone();
        let setup = setup.clone();
        let file = proj.join(format!("f{i}.py"));
        tasks.push(tokio::spawn(async move {
            let mut n = Nvim::start_with(&server.url, &[("FRUGAL_SETUP", &setup)]).await;
            n.cmd(&format!("edit {}", file.display())).await;
            let (mut done, mut refused) = (0, 0);
            for _ in 0..EDITS {
                n.cmd("LlmEdit bump").await;
                let end = std::time::Instant::now() + DEADLINE;
                loop {
                    assert!(std::time::Instant::now() < end);
                    n.drain();
                    let last = n
                        .seen
                        .iter()
                        .rev()
                        .find(|(name, _)| name == "event")
                        .cloned();
                    n.seen.retain(|(name, _)| name != "event");
                    match last
                        .as_ref()
                        .and_then(|(_, a)| a.first())
                        .and_then(|v| v.as_str())
                    {
                        Some("FrugalEditDone") => {
                            done += 1;
                            n.cmd("LlmReject!").await;
                            break;
                        }
                        Some("FrugalEditFailed") => {
                            let data = &last.as_ref().unwrap().1[1];
                            assert_eq!(field(data, "reason").as_str(), Some("budget"), "{data:?}");
                            refused += 1;
                            break;
                        }
                        _ => tokio::time::sleep(std::time::Duration::from_millis(5)).await,
                    }
                }
            }
            n.quit().await;
            (done, refused)
        }));
    }
    let (mut done, mut refused) = (0, 0);
    for t in tasks {
        let (d, r) = t.await.unwrap();
        done += d;
        refused += r;
    }
    // Each backend settles its last answer just after FrugalEditDone, possibly after its
    // Neovim quit: wait for as many rows as were sent to leave the reserved state.
    let rows = wait_rows(&data, "every request sent settled", |r| {
        r.len() == done && r.iter().all(|r| r.state != "reserved")
    })
    .await;
    let counted: i64 = rows
        .iter()
        .map(|r| {
            if r.state == "reserved" {
                r.reserved
            } else {
                r.charged.unwrap_or(0)
            }
        })
        .sum();
    assert!(
        counted as f64 <= 0.06 * PS,
        "ledger counts {counted} ps over the cap"
    );
    assert!(refused > 0, "the cap was reached (done {done})");
    assert!(done > 0);
    assert_eq!(
        server.chat_requests().len(),
        done,
        "only accepted requests reached the server"
    );
    assert_eq!(rows.len(), done, "one ledger row per request sent");
    assert!(rows.iter().all(|r| r.state == "settled"));
    let projects: std::collections::HashSet<_> = rows.iter().map(|r| r.project.clone()).collect();
    assert_eq!(projects.len(), 1, "one project");
}

#[tokio::test]
async fn llm_model_sets_the_session_model() {
    let server = FakeOpenRouter::start().await;
    edit_reply(&server, 0.0001);
    let (mut n, _dir) = start(&server, "{}").await;
    n.open("a.py", SRC).await;
    n.cmd("LlmModel mistralai/mistral-medium-3").await;
    n.wait_notify("model for this session: mistralai/mistral-medium-3")
        .await;
    n.cmd("LlmModel nosuch/model").await;
    n.wait_notify("model nosuch/model is not in the catalogue")
        .await;
    n.cmd("LlmEdit bump").await;
    n.wait_event("FrugalEditDone").await;
    let body: serde_json::Value = serde_json::from_str(&server.chat_requests()[0].body).unwrap();
    assert_eq!(body["model"], "mistralai/mistral-medium-3");
    n.quit().await;
}

/// The model the shim shows is the one the backend resolves for the project (its
/// `[model] default` over setup's), not one the shim works out itself.
#[tokio::test]
async fn the_model_shown_is_the_one_the_backend_resolves() {
    let server = FakeOpenRouter::start().await;
    let (mut n, _dir) = start(&server, "{}").await;
    write_project_file(
        &n,
        "[model]\ndefault = \"mistralai/mistral-medium-3\"\n",
        "allow",
    )
    .await;
    n.open("a.py", SRC).await;
    n.cmd("LlmModel nosuch/model").await;
    n.wait_notify(
        "model nosuch/model is not in the catalogue; the model stays mistralai/mistral-medium-3",
    )
    .await;
    let shown = n.lua("return require('frugal').current_model()").await;
    assert_eq!(shown.as_str(), Some("mistralai/mistral-medium-3"));
    n.quit().await;
}

#[tokio::test]
async fn llm_model_picker_shows_prices_and_honours_the_allow_list() {
    let server = FakeOpenRouter::start().await;
    // The catalogue is held back until `:LlmModel` has asked: the backend's start-up fetch is
    // still under way then, so there is no catalogue at hand yet.
    let gate = Arc::new(tokio::sync::Notify::new());
    let mut held = Reply::json(200, MODELS);
    held.parts.insert(0, Part::Gate(gate.clone()));
    server.push("/models", held);
    let mut n = Nvim::start_with(&server.url, &[("FRUGAL_SETUP", "{}")]).await;
    n.open("a.py", SRC).await;
    let pick = "local out = {} vim.ui.select = function(items, opts, cb) for _, it in ipairs(items) do table.insert(out, opts.format_item(it)) end cb(items[#items]) end return out";
    n.lua(&format!("_G.frugal_items = (function() {pick} end)()"))
        .await;
    // No catalogue yet: the backend fetches it without blocking the editor, then the picker opens.
    n.cmd("LlmModel").await;
    n.wait_notify("fetching OpenRouter's model catalogue").await;
    gate.notify_one();
    n.wait_notify("model for this session: openrouter/auto")
        .await;
    let items = n.lua("return _G.frugal_items").await;
    let items: Vec<&str> = items
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    assert!(
        items.contains(&"anthropic/claude-sonnet-4.5  $3.00 in / $15.00 out per M tokens"),
        "{items:?}"
    );
    assert!(
        items.contains(&"meta-llama/llama-3.3-70b-instruct:free  free"),
        "{items:?}"
    );
    assert!(
        items.contains(&"openrouter/auto  price unknown"),
        "{items:?}"
    );
    n.wait_notify("model for this session: openrouter/auto")
        .await;
    // With an allow-list, only allowed models are offered.
    write_project_file(&n, "[model]\nallow = [\"mistralai/*\"]\n", "allow").await;
    n.lua(&format!("_G.frugal_items = (function() {pick} end)()"))
        .await;
    n.cmd("LlmModel").await;
    let items = n.lua("return _G.frugal_items").await;
    assert_eq!(items.as_array().unwrap().len(), 1, "{items:?}");
    n.quit().await;
}

#[tokio::test]
async fn global_cap_spans_projects() {
    let server = FakeOpenRouter::start().await;
    edit_reply(&server, 0.02);
    edit_reply(&server, 0.001);
    let (mut n, dir) = start(
        &server,
        r#"{"max_tokens":600,"global_budget":{"daily_usd":0.03}}"#,
    )
    .await;
    n.open("one/a.py", SRC).await;
    n.cmd("LlmEdit bump").await;
    n.wait_event("FrugalEditDone").await;
    // Another project: another directory with its own git root.
    let other = n.home.path().join("other");
    std::fs::create_dir_all(other.join(".git")).unwrap();
    std::fs::write(other.join("b.py"), SRC.join("\n")).unwrap();
    n.cmd(&format!("edit {}", other.join("b.py").display()))
        .await;
    n.cmd("LlmEdit bump").await;
    let failed = n.wait_event("FrugalEditFailed").await;
    let msg = field(&failed, "message").as_str().unwrap();
    assert!(msg.contains("for all projects together"), "{msg}");
    assert!(msg.contains("global_budget.daily_usd"), "{msg}");
    assert_eq!(server.chat_requests().len(), 1);
    assert_eq!(rows(&dir).len(), 1);
    n.quit().await;
}

#[tokio::test]
async fn project_picks_a_named_key_only_from_the_users_keys() {
    let server = FakeOpenRouter::start().await;
    edit_reply(&server, 0.001);
    let (mut n, _dir) = start(&server, r#"{"keys":{"client":"env:FRUGAL_CLIENT_KEY"}}"#).await;
    n.lua("vim.env.FRUGAL_CLIENT_KEY = 'sk-or-v1-CLIENTKEY-42'")
        .await;
    write_project_file(&n, "key = \"client\"\n", "allow").await;
    n.open("a.py", SRC).await;
    n.cmd("LlmEdit bump").await;
    n.wait_event("FrugalEditDone").await;
    let auth = server.chat_requests()[0]
        .headers
        .get("authorization")
        .cloned();
    assert_eq!(auth.as_deref(), Some("Bearer sk-or-v1-CLIENTKEY-42"));
    n.cmd("LlmReject!").await;
    write_project_file(&n, "key = \"nosuch\"\n", "allow").await;
    n.cmd("LlmEdit bump").await;
    let failed = n.wait_event("FrugalEditFailed").await;
    assert_eq!(field(&failed, "reason").as_str(), Some("config"));
    assert!(field(&failed, "message")
        .as_str()
        .unwrap()
        .contains("\"nosuch\""));
    assert_eq!(server.chat_requests().len(), 1);
    n.quit().await;
}

#[tokio::test]
async fn a_misspelt_cap_in_setup_blocks_requests_instead_of_lifting_caps() {
    let server = FakeOpenRouter::start().await;
    let (mut n, dir) = start(&server, "{}").await;
    n.lua("require('frugal').setup({ base_url = vim.env.FRUGAL_URL, binary = vim.env.FRUGAL_BIN, budget = { daily_usd = 1, monthly = 5 } })").await;
    n.open("a.py", SRC).await;
    n.cmd("LlmEdit bump").await;
    // Budget rules are the backend's: their warning comes when it starts (this first command).
    let (msg, level) = n
        .wait_notify("setup key budget has an unknown field \"monthly\"")
        .await;
    assert!(
        msg.contains("no request is sent until it is fixed"),
        "{msg}"
    );
    assert_eq!(level, 4, "a cap that blocks every request is an error");
    let failed = n.wait_event("FrugalEditFailed").await;
    assert_eq!(field(&failed, "reason").as_str(), Some("config"));
    assert!(field(&failed, "message")
        .as_str()
        .unwrap()
        .contains("\"monthly\""));
    assert!(server.chat_requests().is_empty());
    assert!(rows(&dir).is_empty());
    n.quit().await;
}

// ---------------------------------------------------------------------------------------------
// Prices at the edges: a model priced 0, a stale catalogue, exact max_price, plain endpoints
// ---------------------------------------------------------------------------------------------

const FREE: &str = "meta-llama/llama-3.3-70b-instruct:free";

/// A catalogue where `vendor/promo` is priced as given (USD per token).
fn promo_models(prompt: &str, completion: &str) -> String {
    format!(
        r#"{{"data":[{{"id":"vendor/promo","name":"Promo","pricing":{{"prompt":"{prompt}","completion":"{completion}","request":"0"}}}}]}}"#
    )
}

fn chat_body(server: &FakeOpenRouter, i: usize) -> serde_json::Value {
    serde_json::from_str(&server.chat_requests()[i].body).unwrap()
}

/// Under a cap a model priced 0 is bounded by OpenRouter itself: `max_price` 0 means no paid
/// provider. `max_price = false` applies only where no cap does.
#[tokio::test]
async fn a_model_priced_zero_under_a_cap_is_sent_with_max_price_zero() {
    let server = FakeOpenRouter::start().await;
    edit_reply(&server, 0.0);
    let setup = format!(r#"{{"budget":{{"daily_usd":0.005}},"max_price":false,"model":"{FREE}"}}"#);
    let (mut n, dir) = start(&server, &setup).await;
    n.open("a.py", SRC).await;
    n.cmd("LlmEdit bump").await;
    n.wait_event("FrugalEditDone").await;
    let body = chat_body(&server, 0);
    assert_eq!(
        body["provider"]["max_price"],
        serde_json::json!({"prompt": 0, "completion": 0, "request": 0}),
        "{body}"
    );
    // Settled just after FrugalEditDone.
    let rows = wait_rows(&dir, "the settlement", |r| {
        r.len() == 1 && r[0].state != "reserved"
    })
    .await;
    let r = &rows[0];
    assert_eq!((r.reserved, r.charged), (0, Some(0)));
    n.quit().await;
}

/// `max_price` is the list price exactly, never a float a hair below it (0.4 $/M is not
/// 0.39999999999999997, which would exclude the very provider priced 0.4).
#[tokio::test]
async fn max_price_is_sent_as_exact_decimals() {
    let server = FakeOpenRouter::start().await;
    edit_reply(&server, 0.0001);
    let (mut n, _dir) = start(&server, r#"{"model":"mistralai/mistral-medium-3"}"#).await;
    n.open("a.py", SRC).await;
    n.cmd("LlmEdit bump").await;
    n.wait_event("FrugalEditDone").await;
    let raw = server.chat_requests()[0].body.clone();
    assert!(
        raw.contains(r#""max_price":{"prompt":0.4,"completion":2,"request":0}"#),
        "{raw}"
    );
    n.quit().await;
}

/// A plain OpenAI-compatible endpoint gets a plain request: no `provider`, no attribution
/// headers (OpenAI refuses unknown fields), even under a cap and with a privacy setting.
#[tokio::test]
async fn a_plain_endpoint_gets_no_openrouter_fields() {
    let server = FakeOpenRouter::start().await;
    edit_reply(&server, 0.0001);
    server.push("/models", Reply::json(200, MODELS));
    let mut n = Nvim::start_with(
        &server.plain_url,
        &[(
            "FRUGAL_SETUP",
            r#"{"budget":{"daily_usd":1},"api_key":"env:OPENROUTER_API_KEY"}"#,
        )],
    )
    .await;
    write_project_file(&n, "[privacy]\ndata_collection = \"deny\"\n", "allow").await;
    n.open("a.py", SRC).await;
    n.cmd("LlmEdit bump").await;
    n.wait_event("FrugalEditDone").await;
    let req = &server.chat_requests()[0];
    let body: serde_json::Value = serde_json::from_str(&req.body).unwrap();
    assert!(body.get("provider").is_none(), "{body}");
    for h in ["http-referer", "x-openrouter-title", "x-title"] {
        assert!(!req.headers.contains_key(h), "{h} sent: {:?}", req.headers);
    }
    assert_eq!(
        req.headers.get("authorization").map(String::as_str),
        Some(&*format!("Bearer {API_KEY}"))
    );
    // OpenRouter gets them.
    let server2 = FakeOpenRouter::start().await;
    edit_reply(&server2, 0.0001);
    let (mut n2, _dir) = start(&server2, "{}").await;
    n2.open("a.py", SRC).await;
    n2.cmd("LlmEdit bump").await;
    n2.wait_event("FrugalEditDone").await;
    let req = &server2.chat_requests()[0];
    assert_eq!(
        req.headers.get("x-openrouter-title").map(String::as_str),
        Some("frugal.nvim")
    );
    assert!(req.headers.contains_key("http-referer"));
    n.quit().await;
    n2.quit().await;
}

/// A model the catalogue lists at 0 that is charged all the same: the charge counts, the
/// catalogue is fetched again at once, and the next request is held to the cap.
#[tokio::test]
async fn a_charge_on_a_model_believed_free_refreshes_prices_and_the_cap_holds() {
    let server = FakeOpenRouter::start().await;
    edit_reply(&server, 0.01);
    edit_reply(&server, 0.01);
    server.push("/models", Reply::json(200, &promo_models("0", "0")));
    server.push(
        "/models",
        Reply::json(200, &promo_models("0.000003", "0.000015")),
    );
    let mut n = Nvim::start_with(
        &server.url,
        &[(
            "FRUGAL_SETUP",
            r#"{"budget":{"daily_usd":0.005},"model":"vendor/promo"}"#,
        )],
    )
    .await;
    let dir = n.home.path().join("data/nvim/frugal");
    n.open("a.py", SRC).await;
    n.cmd("LlmEdit bump").await;
    n.wait_event("FrugalEditDone").await;
    // Settled just after FrugalEditDone.
    let rows = wait_rows(&dir, "the settlement", |r| {
        r.len() == 1 && r[0].state != "reserved"
    })
    .await;
    let r = &rows[0];
    assert_eq!((r.reserved, r.charged), (0, Some(10_000_000_000)), "{r:?}");
    n.wait_notify("vendor/promo is listed as free").await;
    server
        .wait_until("the catalogue fetched again", |s| {
            s.requests()
                .iter()
                .filter(|r| r.path.ends_with("/models"))
                .count()
                == 2
        })
        .await;
    n.cmd("LlmReject!").await;
    n.cmd("LlmEdit bump").await;
    let failed = n.wait_event("FrugalEditFailed").await;
    assert_eq!(field(&failed, "reason").as_str(), Some("budget"));
    let msg = field(&failed, "message").as_str().unwrap();
    assert!(msg.contains("daily cap $0.0050"), "{msg}");
    assert!(msg.contains("$0.0100 spent"), "{msg}");
    assert_eq!(server.chat_requests().len(), 1, "the cap held");
    n.quit().await;
}

/// A cached catalogue whose refreshes keep failing is not trusted forever: past its maximum
/// age its prices count as unknown under a cap, and the refusal says why.
#[tokio::test]
async fn a_catalogue_too_old_to_trust_refuses_under_a_cap() {
    let server = FakeOpenRouter::start().await;
    // Down for the warm-up at start and for the edit's own try, whichever comes.
    for _ in 0..2 {
        server.push(
            "/models",
            Reply::json(503, r#"{"error":{"code":503,"message":"catalogue down"}}"#),
        );
    }
    let mut n = Nvim::start_with(
        &server.url,
        &[("FRUGAL_SETUP", r#"{"budget":{"daily_usd":1}}"#)],
    )
    .await;
    let dir = n.home.path().join("data/nvim/frugal");
    std::fs::create_dir_all(&dir).unwrap();
    let cache = frugal::openrouter::catalogue::Catalogue::cache_path(&dir, &server.url);
    std::fs::write(&cache, MODELS).unwrap();
    let nine_days = std::time::Duration::from_secs(9 * 24 * 3600 + 60);
    std::fs::File::options()
        .write(true)
        .open(&cache)
        .unwrap()
        .set_modified(std::time::SystemTime::now() - nine_days)
        .unwrap();
    n.open("a.py", SRC).await;
    n.cmd("LlmEdit bump").await;
    let failed = n.wait_event("FrugalEditFailed").await;
    assert_eq!(field(&failed, "reason").as_str(), Some("budget"));
    let msg = field(&failed, "message").as_str().unwrap();
    assert!(msg.contains("the model catalogue is 9 days old"), "{msg}");
    assert!(msg.contains("catalogue down"), "{msg}");
    assert!(server.chat_requests().is_empty());
    n.quit().await;
}

/// Amounts too small for four decimals still show a non-zero digit.
#[tokio::test]
async fn a_tiny_cost_is_shown_with_a_significant_digit() {
    let server = FakeOpenRouter::start().await;
    edit_reply(&server, 0.00004);
    let (mut n, _dir) = start(&server, "{}").await;
    n.open("a.py", SRC).await;
    n.cmd("LlmEdit bump").await;
    n.wait_event("FrugalEditDone").await;
    n.wait_notify("($0.00004)").await;
    n.quit().await;
}

/// A model still listed free after it was charged stays refused under a cap for the session:
/// `max_price` 0, its only bound, did not hold.
#[tokio::test]
async fn a_model_still_listed_free_after_a_charge_is_refused_under_a_cap() {
    let server = FakeOpenRouter::start().await;
    edit_reply(&server, 0.01);
    edit_reply(&server, 0.01);
    server.push("/models", Reply::json(200, &promo_models("0", "0")));
    server.push("/models", Reply::json(200, &promo_models("0", "0")));
    let mut n = Nvim::start_with(
        &server.url,
        &[(
            "FRUGAL_SETUP",
            r#"{"budget":{"daily_usd":1},"model":"vendor/promo"}"#,
        )],
    )
    .await;
    n.open("a.py", SRC).await;
    n.cmd("LlmEdit bump").await;
    n.wait_event("FrugalEditDone").await;
    // The first request carried max_price 0: the charge broke it.
    assert_eq!(
        chat_body(&server, 0)["provider"]["max_price"],
        serde_json::json!({"prompt": 0, "completion": 0, "request": 0})
    );
    n.cmd("LlmReject!").await;
    n.cmd("LlmEdit bump").await;
    let failed = n.wait_event("FrugalEditFailed").await;
    assert_eq!(field(&failed, "reason").as_str(), Some("budget"));
    let msg = field(&failed, "message").as_str().unwrap();
    assert!(
        msg.contains("lists it free, yet a request to it was charged $0.0100 in this session"),
        "{msg}"
    );
    assert_eq!(
        server
            .requests()
            .iter()
            .filter(|r| r.path.ends_with("/models"))
            .count(),
        2,
        "fetched again before the refusal"
    );
    assert_eq!(server.chat_requests().len(), 1);
    n.quit().await;
}

/// The running estimate on the progress line shows a tiny amount with a significant digit.
#[tokio::test]
async fn the_progress_line_shows_a_tiny_estimate() {
    let server = FakeOpenRouter::start().await;
    let gate = Arc::new(tokio::sync::Notify::new());
    let mut first = String::from(": OPENROUTER PROCESSING\n\n");
    first.push_str(&chunk("<<<<<<< SEARCH\n"));
    let mut parts = vec![Part::Bytes(first.into_bytes()), Part::Gate(gate.clone())];
    parts.extend(answer(
        "    return x + 1\n=======\n    return x + 2\n>>>>>>> REPLACE\n",
        8,
        0.0,
    ));
    server.push("/chat/completions", Reply::sse(parts));
    server.push(
        "/models",
        Reply::json(200, &promo_models("0.0000000001", "0.0000000001")),
    );
    let mut n = Nvim::start_with(
        &server.url,
        &[("FRUGAL_SETUP", r#"{"model":"vendor/promo"}"#)],
    )
    .await;
    n.open("a.py", SRC).await;
    n.cmd("LlmEdit bump").await;
    let end = std::time::Instant::now() + DEADLINE;
    let line = loop {
        let v = n
            .lua("return require('frugal.edit').last_progress or ''")
            .await;
        let line = v.as_str().unwrap_or("").to_string();
        // SPEC: the streaming figures read `70 tok · 4.2 s`.
        if line.contains(" tok · ") {
            break line;
        }
        assert!(
            std::time::Instant::now() < end,
            "no streaming progress: {line:?}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    };
    gate.notify_one();
    let cost = line.rsplit("~$").next().unwrap();
    assert!(line.contains("~$0.0000000"), "{line}");
    assert!(cost.chars().any(|c| ('1'..='9').contains(&c)), "{line}");
    n.wait_event("FrugalEditDone").await;
    n.quit().await;
}

// ---------------------------------------------------------------------------------------------
// Requests never sent, after a restart
// ---------------------------------------------------------------------------------------------

/// A Neovim whose ledger is in `data` (outside its home), so that a second one reads it too.
async fn start_shared(server: &FakeOpenRouter, data: &std::path::Path) -> Nvim {
    server.push("/models", Reply::json(200, MODELS));
    let setup = serde_json::json!({ "data_dir": data }).to_string();
    Nvim::start_with(&server.url, &[("FRUGAL_SETUP", &setup)]).await
}

/// A backend started (`hello`: the start that looks at orphaned reservations).
async fn start_backend(n: &Nvim) {
    let ok = n
        .lua("return require('frugal.rpc').ensure() ~= nil and require('frugal.rpc').info() ~= nil")
        .await;
    assert_eq!(ok.as_bool(), Some(true), "the backend did not start");
}

async fn wait_progress(n: &Nvim, needle: &str) {
    let end = std::time::Instant::now() + DEADLINE;
    loop {
        let line = n
            .lua("return require('frugal.edit').last_progress or ''")
            .await;
        if line.as_str().is_some_and(|l| l.contains(needle)) {
            return;
        }
        assert!(std::time::Instant::now() < end, "no progress {needle:?}");
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}

/// A 429 asks to wait 20 s; Neovim quits meanwhile. The attempt was refused before anything
/// was generated, so nothing was billed: the reservation is released, not charged at the next
/// start.
#[tokio::test]
async fn quitting_during_a_retry_wait_releases_the_reservation() {
    let server = FakeOpenRouter::start().await;
    server.push(
        "/chat/completions",
        Reply::status(
            429,
            &[("Retry-After", "20")],
            r#"{"error":{"code":429,"message":"Rate limit exceeded"}}"#,
        ),
    );
    let shared = tempfile::tempdir().unwrap();
    let data = shared.path().join("data");
    let n = start_shared(&server, &data).await;
    n.open("a.py", SRC).await;
    n.cmd("LlmEdit bump").await;
    wait_progress(&n, "rate limited, retrying in").await;
    let pid = n.backend_pid().await.expect("running");
    n.quit().await;
    wait_dead(pid).await;
    assert_eq!(
        rows(&data)[0].state,
        "failed",
        "released as the backend exits"
    );
    let n = start_shared(&server, &data).await;
    start_backend(&n).await;
    let r = wait_rows(&data, "the row settled one way or another", |r| {
        r.len() == 1 && r[0].state != "reserved"
    })
    .await;
    assert_eq!(
        (r[0].state.as_str(), r[0].charged),
        ("failed", Some(0)),
        "{r:?}"
    );
    assert_eq!(server.chat_requests().len(), 1, "no retry");
    n.quit().await;
}

/// The control: a request that left (the server read it, and answered nothing) may have been
/// billed. Quitting keeps its reservation; the next start charges it in full, as an estimate,
/// since there is no generation to ask about.
#[tokio::test]
async fn a_request_that_left_is_still_charged_in_full_after_a_quit() {
    let server = FakeOpenRouter::start().await;
    server.push("/chat/completions", Reply::silent());
    let shared = tempfile::tempdir().unwrap();
    let data = shared.path().join("data");
    let n = start_shared(&server, &data).await;
    n.open("a.py", SRC).await;
    n.cmd("LlmEdit bump").await;
    server
        .wait_until("the request", |s| s.chat_requests().len() == 1)
        .await;
    let pid = n.backend_pid().await.expect("running");
    n.quit().await;
    wait_dead(pid).await;
    assert_eq!(
        rows(&data)[0].state,
        "reserved",
        "kept as the backend exits"
    );
    let n = start_shared(&server, &data).await;
    start_backend(&n).await;
    let r = wait_rows(&data, "reconciled", |r| {
        r.len() == 1 && r[0].state != "reserved"
    })
    .await;
    assert_eq!(r[0].state, "reconciled", "{r:?}");
    assert_eq!(r[0].charged, Some(r[0].reserved), "{r:?}");
    assert_eq!(r[0].charge_source.as_deref(), Some("estimate"));
    n.quit().await;
}

/// The control, killed: a stream cut by a SIGKILLed backend after its first bytes is looked up
/// at the next start through `/generation`, as before.
#[tokio::test]
async fn a_stream_cut_by_a_killed_backend_is_reconciled_through_generation() {
    let server = FakeOpenRouter::start().await;
    server.push("/chat/completions", Reply::hanging());
    let shared = tempfile::tempdir().unwrap();
    let data = shared.path().join("data");
    let mut n = start_shared(&server, &data).await;
    n.open("a.py", SRC).await;
    n.cmd("LlmEdit bump").await;
    wait_rows(&data, "the generation id", |r| {
        r.len() == 1 && r[0].generation_id.is_some()
    })
    .await;
    let pid = n.backend_pid().await.expect("running");
    kill9(pid);
    n.wait_event("FrugalEditFailed").await;
    wait_dead(pid).await;
    server.push("/generation", Reply::json(200, r#"{"data":{"id":"gen-test-1","total_cost":0.0027,"tokens_prompt":90,"tokens_completion":3}}"#));
    start_backend(&n).await;
    let r = wait_rows(&data, "reconciled", |r| r[0].state != "reserved").await;
    assert_eq!(r[0].state, "reconciled", "{r:?}");
    assert_eq!(r[0].charged, Some(2_700_000_000));
    assert_eq!(r[0].charge_source.as_deref(), Some("generation"));
    n.quit().await;
}

// ---------------------------------------------------------------------------------------------
// Tiered prices: dearer above a prompt size
// ---------------------------------------------------------------------------------------------

const SONNET_4: &str = "anthropic/claude-sonnet-4";

/// `anthropic/claude-sonnet-4` as the real catalogue lists it: base prices, the 1-hour cache
/// write, and the tier above 200,000 prompt tokens (OPENROUTER.md, last section).
const TIERED_MODELS: &str = r#"{"data":[
 {"id":"anthropic/claude-sonnet-4","name":"Anthropic: Claude Sonnet 4","context_length":1000000,
  "pricing":{"prompt":"0.000003","completion":"0.000015","web_search":"0.01","input_cache_read":"0.0000003","input_cache_write":"0.00000375","input_cache_write_1h":"0.000006",
   "overrides":[{"min_prompt_tokens":200000,"prompt":"0.000006","completion":"0.0000225","input_cache_read":"0.0000006","input_cache_write":"0.0000075","input_cache_write_1h":"0.000012"}]},
  "top_provider":{"context_length":200000,"max_completion_tokens":64000,"is_moderated":true},"supported_parameters":["max_tokens"],"expiration_date":null}
]}"#;

/// A file of about 270 kB: its prompt's token bound crosses 200,000.
fn big_file() -> Vec<String> {
    let mut lines: Vec<String> = SRC[..2].iter().map(|s| s.to_string()).collect();
    for i in 0..4200 {
        lines.push(format!(
            "# padding line {i:05}: nothing to see here, only bytes to send"
        ));
    }
    lines
}

async fn start_tiered(server: &FakeOpenRouter, extra: &str) -> (Nvim, std::path::PathBuf) {
    server.push("/models", Reply::json(200, TIERED_MODELS));
    let setup = format!(r#"{{"model":"{SONNET_4}","max_context_bytes":1000000{extra}}}"#);
    let n = Nvim::start_with(
        &server.url,
        &[("FRUGAL_SETUP", &setup), ("FRUGAL_CONTEXT", "100000")],
    )
    .await;
    let dir = n.home.path().join("data/nvim/frugal");
    (n, dir)
}

/// Each row's `prompt_bytes`.
fn prompt_bytes(dir: &std::path::Path) -> Vec<i64> {
    let conn = rusqlite::Connection::open(ledger_path(dir)).unwrap();
    let mut st = conn
        .prepare("SELECT prompt_bytes FROM requests ORDER BY id")
        .unwrap();
    st.query_map([], |r| r.get(0))
        .unwrap()
        .map(|r| r.unwrap())
        .collect()
}

/// The prompt tokens a reservation was made for, given the prices it used (picodollars per
/// token): the reservation must be exactly `bound × prompt + max_tokens × completion`.
fn reserved_bound(reserved: i64, max_tokens: i64, prompt: i64, completion: i64) -> i64 {
    let rest = reserved - max_tokens * completion;
    assert!(
        rest > 0 && rest % prompt == 0,
        "reserved {reserved} is not bound × {prompt} + {max_tokens} × {completion} picodollars"
    );
    rest / prompt
}

/// A prompt whose bound crosses the tier's 200,000 tokens is reserved at the tier's prices
/// (per prompt token the dearest that can apply: the 1-hour cache write, $12/M; per answer
/// token $22.50/M) and routed with the tier's `max_price` ($6 / $22.50); a small prompt keeps
/// the base prices ($6/M for the 1-hour cache write, $15/M; `max_price` $3 / $15).
#[tokio::test]
async fn a_prompt_past_a_tier_is_reserved_and_routed_at_the_tiers_prices() {
    let server = FakeOpenRouter::start().await;
    edit_reply(&server, 0.9);
    edit_reply(&server, 0.001);
    let (mut n, dir) = start_tiered(&server, "").await;
    let big = big_file();
    let big: Vec<&str> = big.iter().map(String::as_str).collect();
    n.open("big.py", &big).await;
    n.cmd("LlmEdit bump").await;
    n.wait_event("FrugalEditDone").await;
    n.cmd("LlmReject!").await;
    n.open("a.py", SRC).await;
    n.cmd("LlmEdit bump").await;
    n.wait_event("FrugalEditDone").await;

    let rows = wait_rows(&dir, "both settled", |r| {
        r.len() == 2 && r.iter().all(|r| r.state == "settled")
    })
    .await;
    let bytes = prompt_bytes(&dir);
    let (b0, b1) = (chat_body(&server, 0), chat_body(&server, 1));
    let mt = |b: &serde_json::Value| b["max_tokens"].as_i64().unwrap();
    assert!(bytes[0] > 250_000, "{bytes:?}");
    let bound = reserved_bound(rows[0].reserved, mt(&b0), 12_000_000, 22_500_000);
    assert!(
        (bytes[0]..bytes[0] + 1000).contains(&bound) && bound >= 200_000,
        "bound {bound} for {} bytes",
        bytes[0]
    );
    assert_eq!(
        b0["provider"]["max_price"],
        serde_json::json!({"prompt": 6, "completion": 22.5, "request": 0}),
        "{}",
        b0["provider"]
    );
    let bound = reserved_bound(rows[1].reserved, mt(&b1), 6_000_000, 15_000_000);
    assert!((bytes[1]..bytes[1] + 1000).contains(&bound), "{bound}");
    assert_eq!(
        b1["provider"]["max_price"],
        serde_json::json!({"prompt": 3, "completion": 15, "request": 0}),
        "{}",
        b1["provider"]
    );
    // :checkhealth shows the configured model's tier.
    server.push("/models", Reply::json(200, TIERED_MODELS));
    n.cmd("checkhealth frugal").await;
    let health = n
        .lua("return table.concat(vim.api.nvim_buf_get_lines(0, 0, -1, false), '\\n')")
        .await;
    let health = health.as_str().unwrap();
    assert!(
        health.contains("tiered prices: anthropic/claude-sonnet-4: from 200000 prompt tokens, $6.00 in / $22.50 out per M tokens (base $3.00 in / $15.00 out per M tokens)"),
        "{health}"
    );
    n.quit().await;
}

/// A cap the base price fits under but the tier's crosses: refused, without any HTTP request.
#[tokio::test]
async fn a_cap_that_only_the_tiers_price_crosses_refuses_without_http() {
    let server = FakeOpenRouter::start().await;
    edit_reply(&server, 0.9);
    let (mut n, dir) = start_tiered(&server, r#","budget":{"daily_usd":2.5}"#).await;
    let big = big_file();
    let big: Vec<&str> = big.iter().map(String::as_str).collect();
    n.open("big.py", &big).await;
    n.cmd("LlmEdit bump").await;
    let failed = n.wait_event("FrugalEditFailed").await;
    assert_eq!(field(&failed, "reason").as_str(), Some("budget"));
    let msg = field(&failed, "message").as_str().unwrap();
    assert!(msg.contains("daily cap $2.50"), "{msg}");
    assert!(
        server.chat_requests().is_empty(),
        "a refused request was sent"
    );
    assert!(rows(&dir).is_empty());
    n.quit().await;
}
