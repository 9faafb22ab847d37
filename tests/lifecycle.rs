//! The backend's life: lazy start, crash and restart, exit with Neovim; setup validation and
//! :checkhealth.

mod common;
use common::*;

const SRC: &[&str] = &["a = 1", "b = 2", "c = 3"];

fn one_edit(server: &FakeOpenRouter) {
    server.push(
        "/chat/completions",
        Reply::sse(answer(&block("b = 2\n", "b = 20\n"), 4, 0.0)),
    );
}

#[tokio::test]
async fn startup_loads_nothing_and_starts_no_process() {
    let server = FakeOpenRouter::start().await;
    let n = Nvim::start(&server.url).await;
    let loaded = n
        .lua("local t = {} for _, m in ipairs({'frugal.rpc', 'frugal.edit', 'frugal.hunks', 'frugal.health'}) do if package.loaded[m] then table.insert(t, m) end end return t")
        .await;
    assert_eq!(
        loaded.as_array().unwrap().len(),
        0,
        "loaded at start-up: {loaded:?}"
    );
    let cmds = n.lua("return vim.fn.exists(':LlmEdit') + vim.fn.exists(':LlmAccept') + vim.fn.exists(':LlmReject') + vim.fn.exists(':LlmCancel')").await;
    assert_eq!(cmds.as_u64(), Some(8), "all four commands defined");
    let jobs = n
        .lua("return #vim.tbl_filter(function(c) return c.stream == 'job' end, vim.api.nvim_list_chans())")
        .await;
    assert_eq!(jobs.as_u64(), Some(0), "no job started");
    assert!(n.backend_pid().await.is_none());
    n.quit().await;
}

#[tokio::test]
async fn killed_backend_is_reported_once_and_restarted_by_the_next_command() {
    let server = FakeOpenRouter::start().await;
    one_edit(&server);
    let mut n = Nvim::start(&server.url).await;
    n.open("k.py", SRC).await;
    n.cmd("LlmEdit x").await;
    n.wait_event("FrugalEditDone").await;
    n.cmd("LlmReject!").await;
    let pid = n.backend_pid().await.expect("running");
    kill9(pid);
    let (msg, level) = n.wait_notify("backend stopped").await;
    assert!(msg.contains("frugal.log"), "names the log: {msg}");
    assert_eq!(level, 3);
    wait_dead(pid).await;
    one_edit(&server);
    n.cmd("LlmEdit again").await;
    n.wait_event("FrugalEditDone").await;
    let pid2 = n.backend_pid().await.expect("restarted");
    assert_ne!(pid, pid2);
    n.drain();
    let stops = n
        .notifications()
        .iter()
        .filter(|(m, _)| m.contains("backend stopped"))
        .count();
    assert_eq!(stops, 1, "told once");
    n.quit().await;
}

#[tokio::test]
async fn backend_killed_mid_stream_fails_the_edit() {
    let server = FakeOpenRouter::start().await;
    server.push(
        "/chat/completions",
        Reply::sse(vec![
            Part::Bytes(b": OPENROUTER PROCESSING\n\n".to_vec()),
            Part::Hang,
        ]),
    );
    let mut n = Nvim::start(&server.url).await;
    n.open("k.py", SRC).await;
    n.cmd("LlmEdit x").await;
    server
        .wait_until("the request", |s| s.chat_requests().len() == 1)
        .await;
    let pid = n.backend_pid().await.expect("running");
    kill9(pid);
    let failed = n.wait_event("FrugalEditFailed").await;
    assert_eq!(field(&failed, "reason").as_str(), Some("stream"));
    assert_eq!(n.lines().await, SRC);
    n.quit().await;
}

#[tokio::test]
async fn backend_exits_with_neovim() {
    let server = FakeOpenRouter::start().await;
    one_edit(&server);
    let mut n = Nvim::start(&server.url).await;
    n.open("k.py", SRC).await;
    n.cmd("LlmEdit x").await;
    n.wait_event("FrugalEditDone").await;
    let pid = n.backend_pid().await.expect("running");
    assert!(alive(pid));
    n.quit().await;
    wait_dead(pid).await;
}

#[tokio::test]
async fn missing_binary_says_how_to_build() {
    let server = FakeOpenRouter::start().await;
    let mut n = Nvim::start(&server.url).await;
    n.lua("require('frugal').setup({ binary = '/nonexistent/frugal', base_url = 'http://127.0.0.1:1' })").await;
    n.open("k.py", SRC).await;
    n.cmd("LlmEdit x").await;
    let (msg, level) = n.wait_notify("backend not found").await;
    assert!(msg.contains(":LlmBuild"), "{msg}");
    assert!(msg.contains("/nonexistent/frugal"), "{msg}");
    assert_eq!(level, 4);
    assert_eq!(n.lines().await, SRC);
    n.quit().await;
}

#[tokio::test]
async fn setup_warns_once_per_bad_key_and_keeps_defaults() {
    let server = FakeOpenRouter::start().await;
    let mut n = Nvim::start(&server.url).await;
    n.lua("require('frugal').setup({ binary = vim.env.FRUGAL_BIN, base_url = vim.env.FRUGAL_URL, modle = 'x', model = 42, log_level = 'loud', max_tokens = 8, keymaps = { acept = 'x' }, api_key = 'sk-or-v1-literal' })").await;
    n.wait_notify("unknown setup key \"modle\"").await;
    n.wait_notify("setup key model must be a string, got number")
        .await;
    // Types and shape warn at once; values (ranges, key-spec forms) when the backend starts.
    n.lua("require('frugal.rpc').ensure()").await;
    n.wait_notify("setup key log_level must be one of").await;
    n.wait_notify("setup key max_tokens must be a whole number of at least 16")
        .await;
    n.wait_notify("setup key keymaps has an unknown entry \"acept\"")
        .await;
    let (msg, _) = n.wait_notify("setup key api_key").await;
    assert!(!msg.contains("literal"), "the value is not echoed: {msg}");
    n.drain();
    assert_eq!(n.notifications().len(), 6, "{:?}", n.notifications());
    let model = n.lua("return require('frugal.config').options.model").await;
    assert_eq!(model.as_str(), Some("anthropic/claude-sonnet-4.5"));
    n.quit().await;
}

#[tokio::test]
async fn checkhealth_reports_binary_version_and_key_presence_only() {
    let server = FakeOpenRouter::start().await;
    // One catalogue for the backend's start-up warm-up, one for checkhealth's own look at the
    // endpoint.
    server.push("/models", Reply::json(200, MODELS));
    server.push("/models", Reply::json(200, MODELS));
    let n = Nvim::start(&server.url).await;
    n.open("k.py", SRC).await;
    n.cmd("checkhealth frugal").await;
    let text = n
        .lua("return table.concat(vim.api.nvim_buf_get_lines(0, 0, -1, false), '\\n')")
        .await;
    let text = text.as_str().unwrap();
    assert!(
        text.contains(&format!("frugal {}", env!("CARGO_PKG_VERSION"))),
        "{text}"
    );
    assert!(
        text.contains("OPENROUTER_API_KEY is set (value not shown)"),
        "{text}"
    );
    assert!(text.contains("Neovim 0."), "{text}");
    assert!(!text.contains(API_KEY), "the key leaked into checkhealth");
    assert!(text.contains("4 models in the catalogue"), "{text}");
    assert!(
        text.contains("(OpenRouter: requests carry provider routing"),
        "{text}"
    );
    assert!(text.contains("ledger.sqlite3 (0 requests)"), "{text}");
    assert!(text.contains("no .frugal.toml"), "{text}");
    assert!(
        text.contains(
            "one whose place would take over 1000000 line comparisons is reported unmatched"
        ),
        "the placement bound: {text}"
    );
    assert!(!text.contains("ERROR"), "{text}");
    n.quit().await;
}

#[tokio::test]
async fn checkhealth_reports_an_invalid_project_file_and_an_unreachable_endpoint() {
    let server = FakeOpenRouter::start().await;
    let n = Nvim::start(&server.url).await;
    let file = n.home.path().join("proj/.frugal.toml");
    std::fs::create_dir_all(file.parent().unwrap()).unwrap();
    std::fs::write(&file, "[budget]\nmonthly_usd = -1\n").unwrap();
    n.lua(&format!(
        "local b = vim.fn.bufadd('{0}') vim.fn.bufload(b) vim.secure.trust({{ action = 'allow', bufnr = b }}) vim.api.nvim_buf_delete(b, {{ force = true }})",
        file.display()
    ))
    .await;
    n.open("k.py", SRC).await;
    n.cmd("checkhealth frugal").await;
    let text = n
        .lua("return table.concat(vim.api.nvim_buf_get_lines(0, 0, -1, false), '\\n')")
        .await;
    let text = text.as_str().unwrap();
    assert!(text.contains(".frugal.toml is trusted"), "{text}");
    assert!(text.contains("line 2"), "{text}");
    assert!(text.contains("monthly_usd"), "{text}");
    assert!(text.contains("answered 500"), "{text}");
    n.quit().await;
}

#[tokio::test]
async fn plugin_modules_define_no_globals() {
    let server = FakeOpenRouter::start().await;
    let n = Nvim::start(&server.url).await;
    let leaked = n
        .lua(
            "local before = {} for k in pairs(_G) do before[k] = true end \
             for _, m in ipairs({ 'frugal', 'frugal.config', 'frugal.rpc', 'frugal.edit', 'frugal.hunks', \
               'frugal.usage', 'frugal.status', 'frugal.health', 'frugal.highlight' }) do require(m) end \
             local new = {} for k in pairs(_G) do if not before[k] then table.insert(new, k) end end \
             return new",
        )
        .await;
    assert_eq!(
        leaked.as_array().map(Vec::len),
        Some(0),
        "globals: {leaked:?}"
    );
    n.quit().await;
}

#[tokio::test]
async fn a_stopped_backend_never_freezes_neovim_and_the_next_command_recovers() {
    let server = FakeOpenRouter::start().await;
    server.push("/models", Reply::json(200, MODELS));
    let mut n = Nvim::start(&server.url).await;
    n.lua("require('frugal.rpc').timeout_ms = 1500").await;
    n.open("k.py", SRC).await;
    n.lua("require('frugal.rpc').ensure()").await;
    let pid = n.backend_pid().await.expect("running");
    // SIGSTOP: the process is there but answers nothing (a wedged backend).
    let st = std::process::Command::new("kill")
        .args(["-STOP", &pid.to_string()])
        .status()
        .expect("run kill");
    assert!(st.success(), "kill -STOP {pid}");
    let started = std::time::Instant::now();
    // The command returns (bounded by the watchdog), with a message naming what happened.
    n.cmd("LlmUsage").await;
    let (msg, level) = n.wait_notify("did not answer usage within 2 s").await;
    assert!(
        started.elapsed() < std::time::Duration::from_secs(10),
        "{msg}"
    );
    assert!(msg.contains("next command starts it again"), "{msg}");
    assert_eq!(level, 4);
    wait_dead(pid).await;
    // The next command starts a fresh backend and works.
    n.cmd("LlmUsage").await;
    let fresh = n.backend_pid().await.expect("restarted");
    assert_ne!(fresh, pid);
    let floats = n
        .lua("return #vim.tbl_filter(function(w) return vim.api.nvim_win_get_config(w).relative ~= '' end, vim.api.nvim_list_wins())")
        .await;
    assert_eq!(floats.as_u64(), Some(1));
    n.lua("require('frugal.usage').close()").await;
    assert_eq!(n.lines().await, SRC);
    n.quit().await;
}

/// The key pasted after `env:` (a common slip) is refused as a spec, and its value reaches no
/// notification, no :checkhealth line and no log line.
#[tokio::test]
async fn a_key_pasted_after_env_never_leaks() {
    let server = FakeOpenRouter::start().await;
    server.push("/models", Reply::json(200, MODELS));
    let pasted = format!("env:{API_KEY}");
    let setup = format!("{{\"api_key\": \"{pasted}\"}}");
    let mut n = Nvim::start_with(&server.url, &[("FRUGAL_SETUP", &setup)]).await;
    n.open("k.py", SRC).await;
    n.cmd("LlmEdit x").await;
    let (msg, _) = n.wait_notify("setup key api_key").await;
    assert!(msg.contains("not the key itself"), "{msg}");
    n.cmd("checkhealth frugal").await;
    let text = n
        .lua("return table.concat(vim.api.nvim_buf_get_lines(0, 0, -1, false), '\\n')")
        .await;
    let text = text.as_str().unwrap().to_string();
    assert!(text.contains("setup key api_key"), "{text}");
    n.drain();
    let secret = &API_KEY["sk-or-v1-".len()..];
    for (m, _) in n.notifications() {
        assert!(
            !m.contains(secret),
            "the key leaked into a notification: {m}"
        );
    }
    assert!(!text.contains(secret), "the key leaked into checkhealth");
    let log = n.log_text();
    assert!(!log.is_empty(), "the backend logged nothing");
    assert!(!log.contains(secret), "the key leaked into the log");
    n.quit().await;
}
