//! `:LlmKey` end to end: a real headless Neovim, the real backend, and the loopback OpenRouter
//! managing keys (tests/common/keys.rs). The management key and the keys it makes never reach
//! the log, the ledger or a notification.

mod common;
use common::keys::{FakeKeys, MANAGEMENT_KEY};
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
