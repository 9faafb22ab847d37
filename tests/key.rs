//! `:LlmKey` end to end: a real headless Neovim, the real backend, and the loopback OpenRouter
//! managing keys (tests/common/keys.rs). The management key and the keys it makes never reach
//! the log, the ledger or a notification.

mod common;
use common::keys::{FakeKey, FakeKeys, MANAGEMENT_KEY};
use common::*;
use std::path::{Path, PathBuf};
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

struct Env {
    n: Nvim,
    server: FakeOpenRouter,
    keys: Arc<FakeKeys>,
    data: PathBuf,
    root: PathBuf,
}

async fn start_with(setup: &str, management: &str) -> Env {
    let server = FakeOpenRouter::start().await;
    let keys = FakeKeys::install(&server);
    let n = Nvim::start_with(
        &server.url,
        &[
            ("FRUGAL_SETUP", setup),
            ("OPENROUTER_MANAGEMENT_KEY", management),
        ],
    )
    .await;
    n.open("a.py", SRC).await;
    let data = n.home.path().join("data/nvim/frugal");
    let root = n.home.path().join("proj").canonicalize().unwrap();
    Env {
        n,
        server,
        keys,
        data,
        root,
    }
}

async fn start(setup: &str) -> Env {
    start_with(setup, MANAGEMENT_KEY).await
}

/// `key_id` of every ledger row, in order.
fn key_ids(data: &Path) -> Vec<Option<String>> {
    let conn = rusqlite::Connection::open(ledger_path(data)).unwrap();
    let mut st = conn
        .prepare("SELECT key_id FROM requests ORDER BY id")
        .unwrap();
    st.query_map([], |r| r.get(0))
        .unwrap()
        .map(|r| r.unwrap())
        .collect()
}

fn auth_of_last_chat(server: &FakeOpenRouter) -> String {
    server
        .chat_requests()
        .last()
        .unwrap()
        .headers
        .get("authorization")
        .cloned()
        .unwrap_or_default()
}

/// Every file under `dir`, read.
fn bytes_under(dir: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    let mut out = Vec::new();
    let Ok(rd) = std::fs::read_dir(dir) else {
        return out;
    };
    for e in rd.flatten() {
        let p = e.path();
        if p.is_dir() {
            out.extend(bytes_under(&p));
        } else if let Ok(b) = std::fs::read(&p) {
            out.push((p, b));
        }
    }
    out
}

/// No secret in the log, the ledger (with its WAL), or any notification.
fn assert_no_secrets(e: &Env, secrets: &[&str]) {
    let log = e.n.log_text();
    let notes = e.n.notifications();
    let ledger: Vec<_> = bytes_under(&e.data)
        .into_iter()
        .filter(|(p, _)| p.to_string_lossy().contains("ledger"))
        .collect();
    for s in secrets {
        assert!(!log.contains(s), "a secret in the log");
        for (m, _) in &notes {
            assert!(!m.contains(s), "a secret in a notification: {m}");
        }
        for (p, b) in &ledger {
            assert!(
                !String::from_utf8_lossy(b).contains(s),
                "a secret in {}",
                p.display()
            );
        }
        // The project holds no key either.
        for (p, b) in bytes_under(&e.root) {
            assert!(
                !String::from_utf8_lossy(&b).contains(s),
                "a secret in the project: {}",
                p.display()
            );
        }
    }
}

/// Waits until `count` notifications containing `needle` have arrived (the same message may
/// have come before).
async fn wait_notify_count(n: &mut Nvim, needle: &str, count: usize) {
    let end = std::time::Instant::now() + DEADLINE;
    loop {
        n.drain();
        let seen = n
            .notifications()
            .iter()
            .filter(|(m, _)| m.contains(needle))
            .count();
        if seen >= count {
            return;
        }
        assert!(
            std::time::Instant::now() < end,
            "{count} notifications {needle:?} never came: {:?}",
            n.notifications()
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}

async fn edit_done(e: &mut Env, cost: f64) {
    edit_reply(&e.server, cost);
    e.n.cmd("LlmEdit bump").await;
    e.n.wait_event("FrugalEditDone").await;
    e.n.cmd("LlmReject!").await;
}

#[tokio::test]
async fn create_binds_the_key_and_requests_use_it_until_disabled() {
    let mut e = start("{}").await;
    e.n.cmd("LlmKey create 5 weekly").await;
    let (msg, _) = e.n.wait_notify("created frugal: proj").await;
    assert!(msg.contains("$5.00, reset weekly"), "{msg}");
    let made = e.keys.all();
    assert_eq!(made.len(), 1);
    assert_eq!(made[0].name, "frugal: proj");
    assert_eq!(made[0].limit, Some(5.0));
    assert_eq!(made[0].limit_reset.as_deref(), Some("weekly"));
    let created = made[0].key.clone();
    let hash = made[0].hash.clone();
    // The management call carried the management key.
    let post = e
        .server
        .requests()
        .into_iter()
        .find(|r| r.method == "POST")
        .unwrap();
    assert_eq!(
        post.headers.get("authorization").map(String::as_str),
        Some(format!("Bearer {MANAGEMENT_KEY}").as_str())
    );
    // Stored 0600 in a 0700 directory under data_dir, not in the project.
    {
        use std::os::unix::fs::PermissionsExt;
        let files = bytes_under(&e.data.join("keys"));
        assert_eq!(files.len(), 1);
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&files[0].0), 0o600);
        assert_eq!(mode(&e.data.join("keys")), 0o700);
        assert!(!files[0].0.starts_with(&e.root));
    }

    // :checkhealth: the management key's presence and the bound key's name and hash prefix.
    e.n.cmd("checkhealth frugal").await;
    let health =
        e.n.lua("return table.concat(vim.api.nvim_buf_get_lines(0, 0, -1, false), '\\n')")
            .await
            .as_str()
            .unwrap()
            .to_string();
    e.n.cmd("bwipeout").await;
    assert!(
        health.contains("management_key: environment variable OPENROUTER_MANAGEMENT_KEY is set (value not shown)"),
        "{health}"
    );
    assert!(
        health.contains(&format!("frugal: proj (hash {}…)", &hash[..8])),
        "{health}"
    );
    assert!(health.contains("(mode 0600)"), "{health}");
    for secret in [MANAGEMENT_KEY, created.as_str()] {
        assert!(!health.contains(secret), "a secret in :checkhealth");
    }

    // Bound: the next edit goes through the new key, and the ledger names it by hash.
    edit_done(&mut e, 0.002).await;
    assert_eq!(auth_of_last_chat(&e.server), format!("Bearer {created}"));
    assert_eq!(key_ids(&e.data), vec![Some(format!("bound:{hash}"))]);

    // Shown from GET /keys/{hash}.
    e.keys.update(|k| {
        k.usage_daily = 0.25;
        k.usage_monthly = 1.5;
    });
    e.n.cmd("LlmKey").await;
    let (msg, _) = e.n.wait_notify("limit: $5.00, reset weekly").await;
    assert!(msg.contains("frugal: proj"), "{msg}");
    assert!(msg.contains("remaining: $3.50"), "{msg}");
    assert!(msg.contains("$0.25 today"), "{msg}");
    assert!(msg.contains("$1.50 this month"), "{msg}");

    // The limit changed on OpenRouter.
    e.n.cmd("LlmKey limit 7").await;
    e.n.wait_notify("limit of frugal: proj set to $7.00").await;
    assert_eq!(e.keys.all()[0].limit, Some(7.0));

    // Creating again while it works is refused, saying how to replace it.
    e.n.cmd("LlmKey create 3").await;
    let (msg, level) = e.n.wait_notify("already has a key").await;
    assert!(msg.contains(":LlmKey disable first"), "{msg}");
    assert_eq!(level, 4, "an error");
    assert_eq!(e.keys.all().len(), 1);

    // Disabled and unbound: the next edit uses api_key again.
    e.n.cmd("LlmKey disable").await;
    e.n.wait_notify("disabled frugal: proj and unbound it")
        .await;
    assert!(e.keys.all()[0].disabled);
    assert!(bytes_under(&e.data.join("keys")).is_empty());
    edit_done(&mut e, 0.001).await;
    assert_eq!(auth_of_last_chat(&e.server), format!("Bearer {API_KEY}"));
    assert_eq!(key_ids(&e.data)[1], None);

    assert_no_secrets(&e, &[MANAGEMENT_KEY, &created, API_KEY]);
    e.n.quit().await;
}

async fn write_project_file(n: &Nvim, text: &str) -> PathBuf {
    let path = n.home.path().join("proj/.frugal.toml");
    std::fs::write(&path, text).unwrap();
    n.lua(&format!(
        "local b = vim.fn.bufadd('{0}') vim.fn.bufload(b) assert(vim.secure.trust({{ action = 'allow', bufnr = b }})) vim.api.nvim_buf_delete(b, {{ force = true }})",
        path.display()
    ))
    .await;
    path
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
async fn the_limit_comes_from_the_caps_and_usage_shows_spend_made_elsewhere() {
    let mut e = start(r#"{"budget":{"daily_usd":1,"monthly_usd":2}}"#).await;
    e.n.cmd("LlmKey create").await;
    let (msg, _) = e.n.wait_notify("created frugal: proj").await;
    assert!(msg.contains("$2.00, reset monthly"), "{msg}");
    assert_eq!(e.keys.all()[0].limit, Some(2.0));
    assert_eq!(e.keys.all()[0].limit_reset.as_deref(), Some("monthly"));
    edit_done(&mut e, 0.2).await;
    // OpenRouter saw $0.50 on the key this month, the ledger $0.20: $0.30 came from elsewhere.
    // Today matches (no line for it).
    e.keys.update(|k| {
        k.usage_monthly = 0.5;
        k.usage_daily = 0.205;
    });
    e.n.cmd("LlmUsage").await;
    let text = wait_text(&e.n, "spent elsewhere on this key this month: $0.30").await;
    assert!(text.contains("OpenRouter key (frugal: proj)"), "{text}");
    assert!(text.contains("$2.00"), "the server-side limit: {text}");
    assert!(!text.contains("elsewhere on this key today"), "{text}");
    // `frugal usage` names the bound key and, as data, the ledger's spend through it (the CLI
    // does not ask OpenRouter, so no claim of spend elsewhere).
    let hash = e.keys.all()[0].hash.clone();
    let cli = |json: bool| {
        let mut c = std::process::Command::new(env!("CARGO_BIN_EXE_frugal"));
        c.arg("usage")
            .arg("--data-dir")
            .arg(&e.data)
            .arg("--project")
            .arg(&e.root);
        if json {
            c.arg("--json");
        }
        let o = c.output().unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        String::from_utf8(o.stdout).unwrap()
    };
    let out = cli(false);
    assert!(out.contains("OpenRouter key (frugal: proj)"), "{out}");
    let j: serde_json::Value = serde_json::from_str(&cli(true)).unwrap();
    assert_eq!(j["key_spend"]["key_id"], format!("bound:{hash}"));
    assert_eq!(j["key_spend"]["bound_key"], "frugal: proj");
    assert_eq!(j["key_spend"]["ledger_month"]["picos"], 200_000_000_000i64);
    assert_eq!(j["key_spend"]["elsewhere_month"], serde_json::Value::Null);
    let created = e.keys.all()[0].key.clone();
    assert!(!out.contains(&created));
    assert_no_secrets(&e, &[MANAGEMENT_KEY, &created]);
    e.n.quit().await;
}

#[tokio::test]
async fn a_trusted_project_file_naming_a_key_wins_over_the_bound_key() {
    let mut e = start(r#"{"keys":{"client":"env:FRUGAL_CLIENT_KEY"}}"#).await;
    e.n.lua("vim.env.FRUGAL_CLIENT_KEY = 'sk-or-v1-CLIENTKEY-42'")
        .await;
    e.n.cmd("LlmKey create 5").await;
    e.n.wait_notify("created frugal: proj").await;
    write_project_file(&e.n, "key = \"client\"\n").await;
    edit_done(&mut e, 0.001).await;
    assert_eq!(auth_of_last_chat(&e.server), "Bearer sk-or-v1-CLIENTKEY-42");
    assert_eq!(key_ids(&e.data), vec![Some("named:client".to_string())]);
    e.n.cmd("LlmKey").await;
    e.n.wait_notify("names key \"client\", which wins").await;
    e.n.quit().await;
}

#[tokio::test]
async fn a_bound_key_deleted_on_openrouter_is_named_and_can_be_replaced() {
    let mut e = start("{}").await;
    e.n.cmd("LlmKey create 5").await;
    e.n.wait_notify("created frugal: proj").await;
    let first = e.keys.all()[0].key.clone();
    e.keys.update(|k| k.deleted = true);
    e.server.push(
        "/chat/completions",
        Reply::json(401, r#"{"error":{"code":401,"message":"User not found."}}"#),
    );
    e.n.cmd("LlmEdit bump").await;
    let failed = e.n.wait_event("FrugalEditFailed").await;
    let msg = field(&failed, "message").as_str().unwrap().to_string();
    assert!(msg.contains("disabled or deleted on OpenRouter"), "{msg}");
    assert!(msg.contains(&e.root.display().to_string()), "{msg}");
    assert!(msg.contains(":LlmKey create"), "{msg}");
    // :LlmKey says so too.
    e.n.cmd("LlmKey").await;
    e.n.wait_notify("was deleted on OpenRouter").await;
    // Creating again replaces the binding (the old key is gone), and requests use the new key.
    e.n.cmd("LlmKey create 4").await;
    e.n.wait_notify("with a limit of $4.00").await;
    let second = e.keys.all()[1].key.clone();
    edit_done(&mut e, 0.001).await;
    assert_eq!(auth_of_last_chat(&e.server), format!("Bearer {second}"));
    assert_no_secrets(&e, &[MANAGEMENT_KEY, &first, &second]);
    e.n.quit().await;
}

#[tokio::test]
async fn an_ordinary_key_as_management_key_is_refused_and_nothing_is_stored() {
    let mut e = start_with("{}", API_KEY).await;
    e.n.cmd("LlmKey create 5").await;
    let (msg, level) = e.n.wait_notify("is not a management key").await;
    assert_eq!(level, 4);
    assert!(msg.contains("OPENROUTER_MANAGEMENT_KEY"), "{msg}");
    assert!(msg.contains("Nothing was changed"), "{msg}");
    assert!(e.keys.all().is_empty());
    assert!(bytes_under(&e.data.join("keys")).is_empty());
    assert_no_secrets(&e, &[API_KEY]);
    e.n.quit().await;
}

#[tokio::test]
async fn no_management_key_no_limit_html_and_unreachable_change_nothing() {
    let mut e = start_with("{}", "").await;
    // No cap to take the limit from: asked for one (dismissed here).
    e.n.lua("vim.ui.input = function(_, cb) cb(nil) end").await;
    e.n.cmd("LlmKey create").await;
    let (msg, _) = e.n.wait_notify("no limit given").await;
    assert!(msg.contains(":LlmKey create 5 monthly"), "{msg}");
    // No management key: the setting and the variable named.
    e.n.cmd("LlmKey create 5").await;
    let (msg, level) = e.n.wait_notify("no management key").await;
    assert_eq!(level, 4);
    assert!(msg.contains("management_key"), "{msg}");
    assert!(
        msg.contains("OPENROUTER_MANAGEMENT_KEY is not set"),
        "{msg}"
    );
    // A bound key is shown without a management key through GET /key, with the key itself.
    e.keys.keys.lock().unwrap().push(FakeKey {
        hash: "77aa00bb11cc22dd".into(),
        name: "frugal: proj".into(),
        key: "sk-or-v1-HANDMADESECRET-0d9e8f7a".into(),
        limit: Some(3.0),
        limit_reset: Some("daily".into()),
        disabled: false,
        deleted: false,
        usage_daily: 0.5,
        usage_monthly: 0.75,
    });
    frugal::settings::bound::store(
        &e.data,
        &frugal::settings::BoundKey {
            project: e.root.display().to_string(),
            hash: "77aa00bb11cc22dd".into(),
            name: "frugal: proj".into(),
            label: "sk-or-v1-77a...2dd".into(),
            key: frugal::settings::ApiKey::new("sk-or-v1-HANDMADESECRET-0d9e8f7a".into()),
        },
    )
    .unwrap();
    e.n.cmd("LlmKey").await;
    let (msg, _) = e.n.wait_notify("limit: $3.00, reset daily").await;
    assert!(msg.contains("hash 77aa00bb…"), "{msg}");
    assert!(msg.contains("$0.50 today"), "{msg}");
    // Disabling needs the management key: nothing changes without it.
    e.n.cmd("LlmKey disable").await;
    wait_notify_count(&mut e.n, "no management key", 2).await;
    assert!(frugal::settings::bound::load(&e.data, &e.root.display().to_string()).is_some());
    frugal::settings::bound::remove(&e.data, &e.root.display().to_string()).unwrap();
    e.keys.keys.lock().unwrap().clear();

    // Nothing bound: :LlmKey says how to make one; limit and disable say there is none.
    e.n.cmd("LlmKey").await;
    e.n.wait_notify("no key is bound to project").await;
    e.n.cmd("LlmKey disable").await;
    e.n.wait_notify(": :LlmKey create [limit_usd]").await;
    e.n.cmd("LlmKey limit x").await;
    e.n.wait_notify("\"x\" is not an amount in USD").await;
    e.n.cmd("LlmKey frobnicate").await;
    e.n.wait_notify("unknown :LlmKey subcommand \"frobnicate\"")
        .await;
    assert!(e.keys.all().is_empty());
    // Completion: the subcommands, then the periods after `create`.
    let c = e
        .n
        .lua("return { vim.fn.getcompletion('LlmKey ', 'cmdline'), vim.fn.getcompletion('LlmKey create 5 m', 'cmdline') }")
        .await;
    let words = |v: &rmpv::Value| -> Vec<String> {
        v.as_array()
            .unwrap()
            .iter()
            .map(|s| s.as_str().unwrap().to_string())
            .collect()
    };
    let c = c.as_array().unwrap();
    assert_eq!(words(&c[0]), ["create", "limit", "disable"]);
    assert_eq!(words(&c[1]), ["monthly"]);
    e.n.quit().await;

    let mut e = start("{}").await;
    e.server.push(
        "/keys",
        Reply {
            status: 200,
            headers: vec![("Content-Type".into(), "text/html".into())],
            parts: vec![Part::Bytes(
                b"<html><body>captive portal</body></html>".to_vec(),
            )],
        },
    );
    e.n.cmd("LlmKey create 5").await;
    e.n.wait_notify("an HTML page (status 200) instead of JSON")
        .await;
    e.server.push("/keys", Reply::reset());
    e.n.cmd("LlmKey create 5").await;
    e.n.wait_notify("the key was not created: OpenRouter unreachable")
        .await;
    assert!(e.keys.all().is_empty());
    assert!(bytes_under(&e.data.join("keys")).is_empty());
    e.n.quit().await;
}

/// At the most talkative log level, with the HTTP stack logging too, neither the management
/// key, the key it made, nor api_key reaches the log, the ledger or a notification.
#[tokio::test]
async fn no_key_reaches_a_trace_log() {
    let mut e = start(r#"{"log_level":"trace"}"#).await;
    e.n.cmd("LlmKey create 5").await;
    e.n.wait_notify("created frugal: proj").await;
    let created = e.keys.all()[0].key.clone();
    edit_done(&mut e, 0.002).await;
    assert_eq!(auth_of_last_chat(&e.server), format!("Bearer {created}"));
    e.n.cmd("LlmKey").await;
    e.n.wait_notify("limit: $5.00").await;
    e.n.cmd("LlmKey disable").await;
    e.n.wait_notify("disabled frugal: proj and unbound it")
        .await;
    edit_done(&mut e, 0.001).await;
    assert_no_secrets(&e, &[MANAGEMENT_KEY, created.as_str(), API_KEY]);
    e.n.quit().await;
}

/// With a `base_url` that is not OpenRouter, no `:LlmKey` command sends anything (neither the
/// management key nor the bound key), and a project's bound key is not used: its requests go
/// with the `api_key` the user set for that endpoint. No key reaches the log or a message.
#[tokio::test]
async fn keys_meant_for_openrouter_never_go_to_a_plain_endpoint() {
    let server = FakeOpenRouter::start().await;
    let keys = FakeKeys::install(&server);
    let n = Nvim::start_with(
        &server.plain_url,
        &[
            ("FRUGAL_SETUP", r#"{"api_key":"env:OPENROUTER_API_KEY"}"#),
            ("OPENROUTER_MANAGEMENT_KEY", MANAGEMENT_KEY),
        ],
    )
    .await;
    n.open("a.py", SRC).await;
    let data = n.home.path().join("data/nvim/frugal");
    let root = n.home.path().join("proj").canonicalize().unwrap();
    let mut e = Env {
        n,
        server,
        keys,
        data,
        root,
    };
    // A key bound earlier, while base_url was OpenRouter.
    const BOUND: &str = "sk-or-v1-BOUNDSECRET-3c2b1a09f8e7";
    frugal::settings::bound::store(
        &e.data,
        &frugal::settings::BoundKey {
            project: e.root.display().to_string(),
            hash: "77aa00bb11cc22dd".into(),
            name: "frugal: proj".into(),
            label: "sk-or-v1-77a...2dd".into(),
            key: frugal::settings::ApiKey::new(BOUND.into()),
        },
    )
    .unwrap();
    for (i, cmd) in [
        "LlmKey create 5",
        "LlmKey",
        "LlmKey limit 7",
        "LlmKey disable",
    ]
    .iter()
    .enumerate()
    {
        e.n.cmd(cmd).await;
        wait_notify_count(&mut e.n, "base_url is not OpenRouter", i + 1).await;
    }
    for (m, level) in e.n.notifications() {
        if m.contains("base_url is not OpenRouter") {
            assert_eq!(level, 4, "{m}");
            assert!(m.starts_with("frugal: :LlmKey"), "{m}");
            assert!(m.chars().count() <= 68 && !m.contains('\n'), "{m}");
        }
    }
    let key_calls: Vec<String> = e
        .server
        .requests()
        .into_iter()
        .map(|r| r.path)
        .filter(|p| p.contains("/keys") || p.ends_with("/key"))
        .collect();
    assert!(key_calls.is_empty(), "sent: {key_calls:?}");
    assert!(e.keys.all().is_empty());
    // Still bound (nothing changed), but not used here.
    assert!(frugal::settings::bound::load(&e.data, &e.root.display().to_string()).is_some());
    edit_done(&mut e, 0.001).await;
    assert_eq!(auth_of_last_chat(&e.server), format!("Bearer {API_KEY}"));
    assert_eq!(key_ids(&e.data), vec![None]);
    // :LlmUsage asks the plain endpoint for no key figures either.
    e.n.cmd("LlmUsage").await;
    wait_text(&e.n, "today").await;
    e.n.cmd("close").await;
    // :checkhealth says where keys go.
    e.n.cmd("checkhealth frugal").await;
    let health = float_text(&e.n).await;
    e.n.cmd("bwipeout").await;
    assert!(
        health.contains("the management key and the bound key are sent to OpenRouter only"),
        "{health}"
    );
    let all: Vec<String> = e.server.requests().into_iter().map(|r| r.path).collect();
    assert!(
        all.iter()
            .all(|p| !p.contains("/keys") && !p.ends_with("/key")),
        "sent: {all:?}"
    );
    for r in e.server.requests() {
        let auth = r.headers.get("authorization").cloned().unwrap_or_default();
        assert!(
            !auth.contains(BOUND) && !auth.contains(MANAGEMENT_KEY),
            "{} carried a key meant for OpenRouter",
            r.path
        );
    }
    assert_no_secrets(&e, &[MANAGEMENT_KEY, BOUND, API_KEY]);
    e.n.quit().await;
}

#[tokio::test]
async fn create_without_a_limit_or_a_cap_asks_for_the_limit() {
    let mut e = start_with("{}", "").await;
    e.n.lua("_G.asked = {} vim.ui.input = function(opts, cb) table.insert(_G.asked, opts.prompt) cb('5') end")
        .await;
    e.n.cmd("LlmKey create monthly").await;
    // Created with the limit given (here refused further on: no management key).
    let (msg, _) = e.n.wait_notify("no management key").await;
    assert!(!msg.contains("no limit given"), "{msg}");
    let asked = e.n.lua("return _G.asked").await;
    let asked = asked.as_array().unwrap();
    assert_eq!(asked.len(), 1);
    assert!(
        asked[0].as_str().unwrap().contains("limit in USD"),
        "{asked:?}"
    );
    e.n.quit().await;
}
