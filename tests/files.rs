//! The files frugal reads and writes, end to end through a real Neovim, the real backend, real
//! SQLite files and real git: `data_dir` (`~`, variables, relative paths), the project file
//! (unknown sections, symbolic links), git worktrees counted as one project, the modes of what
//! frugal writes, a ledger that is corrupt, locked, moved or cannot be opened, and edits that
//! cannot start because of the configuration.

mod common;
use common::*;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

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

/// Neovim with `setup` (JSON) and `env`, the catalogue scripted; returns the default data dir.
async fn start(server: &FakeOpenRouter, setup: &str, env: &[(&str, &str)]) -> (Nvim, PathBuf) {
    server.push("/models", Reply::json(200, MODELS));
    let mut all = vec![("FRUGAL_SETUP", setup)];
    all.extend_from_slice(env);
    let n = Nvim::start_with(&server.url, &all).await;
    let dir = n.home.path().join("data/nvim/frugal");
    (n, dir)
}

/// Trusts `path`'s current content, as `:trust` in its buffer would.
async fn trust(n: &Nvim, path: &Path) {
    n.lua(&format!(
        "local b = vim.fn.bufadd('{0}') vim.fn.bufload(b) assert(vim.secure.trust({{ action = 'allow', bufnr = b }})) vim.api.nvim_buf_delete(b, {{ force = true }})",
        path.display()
    ))
    .await;
}

/// `setup()` again with the test's binary and endpoint, plus `extra` (Lua table fields).
async fn resetup(n: &Nvim, extra: &str) {
    n.lua(&format!(
        "require('frugal').setup({{ binary = vim.env.FRUGAL_BIN, base_url = vim.env.FRUGAL_URL, log_level = 'debug', {extra} }})"
    ))
    .await;
}

fn mode(p: &Path) -> u32 {
    std::fs::metadata(p)
        .unwrap_or_else(|e| panic!("{}: {e}", p.display()))
        .permissions()
        .mode()
        & 0o777
}

fn chmod(p: &Path, m: u32) {
    std::fs::set_permissions(p, std::fs::Permissions::from_mode(m)).unwrap();
}

async fn checkhealth(n: &Nvim) -> String {
    n.cmd("checkhealth frugal").await;
    let text = n
        .lua("return table.concat(vim.api.nvim_buf_get_lines(0, 0, -1, false), '\\n')")
        .await;
    let text = text.as_str().unwrap().to_string();
    n.cmd("bwipeout").await;
    text
}

/// Polls the statusline of the current buffer until it contains `needle`.
async fn wait_statusline(n: &Nvim, needle: &str) -> String {
    let end = std::time::Instant::now() + DEADLINE;
    loop {
        n.cmd("doautocmd BufEnter").await;
        let s = n.lua("return require('frugal').statusline()").await;
        let s = s.as_str().unwrap_or_default().to_string();
        if s.contains(needle) {
            return s;
        }
        assert!(std::time::Instant::now() < end, "statusline: {s:?}");
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}

// ---------------------------------------------------------------------------------------------
// The project file
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn a_misspelt_section_makes_the_project_file_invalid() {
    let server = FakeOpenRouter::start().await;
    edit_reply(&server, 0.001);
    let (mut n, dir) = start(&server, "{}", &[]).await;
    let file = n.home.path().join("proj/.frugal.toml");
    std::fs::create_dir_all(file.parent().unwrap()).unwrap();
    // The caps the user meant are in a section nobody reads: no request may go out uncapped.
    std::fs::write(
        &file,
        "# this project's caps\n\n[budgets]\ndaily_usd = 0.01\n",
    )
    .unwrap();
    trust(&n, &file).await;
    n.open("a.py", SRC).await;
    n.cmd("LlmEdit bump").await;
    let failed = n.wait_event("FrugalEditFailed").await;
    assert_eq!(field(&failed, "reason").as_str(), Some("config"));
    let msg = field(&failed, "message").as_str().unwrap();
    assert!(
        msg.contains(&format!("{} line 3 (budgets)", file.display())),
        "{msg}"
    );
    assert!(msg.contains("did you mean [budget]?"), "{msg}");
    assert!(server.chat_requests().is_empty(), "a request went out");
    assert!(rows(&dir).is_empty());
    n.quit().await;
}

#[tokio::test]
async fn a_symlinked_project_file_is_refused_and_never_read_through_trust() {
    let server = FakeOpenRouter::start().await;
    edit_reply(&server, 0.001);
    // A tiny default cap: only a borrowed file could lift it.
    let (mut n, dir) = start(&server, r#"{"budget":{"daily_usd":0.000001}}"#, &[]).await;
    // Another project's file, trusted by the user, with generous caps.
    let other = n.home.path().join("other/.frugal.toml");
    std::fs::create_dir_all(other.parent().unwrap()).unwrap();
    std::fs::write(&other, "[budget]\ndaily_usd = 100\n").unwrap();
    trust(&n, &other).await;
    // This repository links to it.
    let link = n.home.path().join("proj/.frugal.toml");
    std::fs::create_dir_all(link.parent().unwrap()).unwrap();
    std::os::unix::fs::symlink(&other, &link).unwrap();
    // Count what goes through the trust prompt's reader.
    n.lua("local read = vim.secure.read vim.g.frugal_test_reads = 0 vim.secure.read = function(p) vim.g.frugal_test_reads = vim.g.frugal_test_reads + 1 return read(p) end").await;
    n.open("a.py", SRC).await;
    n.cmd("LlmEdit bump").await;
    let failed = n.wait_event("FrugalEditFailed").await;
    assert_eq!(field(&failed, "reason").as_str(), Some("config"));
    let msg = field(&failed, "message").as_str().unwrap();
    assert!(msg.contains(&link.display().to_string()), "{msg}");
    assert!(msg.contains("symbolic link"), "{msg}");
    assert!(msg.contains("replace the link with a file"), "{msg}");
    assert!(server.chat_requests().is_empty(), "a request went out");
    assert!(rows(&dir).is_empty());
    assert_eq!(
        n.lua("return vim.g.frugal_test_reads").await.as_u64(),
        Some(0),
        "vim.secure.read was called on the link"
    );
    // The status views say so too.
    let health = checkhealth(&n).await;
    assert!(health.contains("symbolic link"), "{health}");
    assert!(!health.contains("is trusted"), "{health}");
    let s = wait_statusline(&n, "invalid").await;
    assert!(s.contains(".frugal.toml invalid"), "{s}");
    n.cmd("LlmUsage").await;
    let text = n
        .lua("return table.concat(vim.api.nvim_buf_get_lines(0, 0, -1, false), '\\n')")
        .await;
    let text = text.as_str().unwrap();
    assert!(text.contains("invalid"), "{text}");
    n.quit().await;
}

#[tokio::test]
async fn a_fifo_project_file_is_refused_without_freezing_neovim() {
    let server = FakeOpenRouter::start().await;
    let (mut n, _dir) = start(&server, "{}", &[]).await;
    // A FIFO (a tarball can carry one) would block whoever opens it for reading.
    let file = n.home.path().join("proj/.frugal.toml");
    std::fs::create_dir_all(file.parent().unwrap()).unwrap();
    let c = std::ffi::CString::new(file.to_str().unwrap()).unwrap();
    // SAFETY: a valid NUL-terminated path; mkfifo only creates a file.
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o644) }, 0);
    n.open("a.py", SRC).await;
    tokio::time::timeout(DEADLINE, n.cmd("LlmEdit bump"))
        .await
        .expect("Neovim froze on the project file");
    let failed = n.wait_event("FrugalEditFailed").await;
    assert_eq!(field(&failed, "reason").as_str(), Some("config"));
    let msg = field(&failed, "message").as_str().unwrap();
    assert!(msg.contains("not a regular file"), "{msg}");
    assert!(server.chat_requests().is_empty());
    n.quit().await;
}

// ---------------------------------------------------------------------------------------------
// data_dir
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn data_dir_expands_home_and_environment_variables() {
    let server = FakeOpenRouter::start().await;
    for _ in 0..2 {
        server.push("/models", Reply::json(200, MODELS));
    }
    for _ in 0..3 {
        edit_reply(&server, 0.001);
    }
    let base = tempfile::tempdir().unwrap();
    let base = base.path().canonicalize().unwrap();
    let (home, var, cwd) = (base.join("h"), base.join("v"), base.join("cwd"));
    for d in [&home, &var, &cwd] {
        std::fs::create_dir_all(d).unwrap();
    }
    let (mut n, _dir) = start(
        &server,
        r#"{"data_dir":"~/ledger-home"}"#,
        &[
            ("HOME", home.to_str().unwrap()),
            ("FRUGAL_TEST_DATA", var.to_str().unwrap()),
        ],
    )
    .await;
    // A relative path would land here, in the working directory.
    n.cmd(&format!("cd {}", cwd.display())).await;
    n.open("a.py", SRC).await;
    n.cmd("LlmEdit bump").await;
    n.wait_event("FrugalEditDone").await;
    assert_eq!(rows(&home.join("ledger-home")).len(), 1);
    n.cmd("LlmReject!").await;

    resetup(&n, "data_dir = '${FRUGAL_TEST_DATA}/braced'").await;
    n.cmd("LlmEdit bump").await;
    n.wait_event("FrugalEditDone").await;
    assert_eq!(rows(&var.join("braced")).len(), 1);
    n.cmd("LlmReject!").await;

    resetup(&n, "data_dir = '$FRUGAL_TEST_DATA/plain'").await;
    n.cmd("LlmEdit bump").await;
    n.wait_event("FrugalEditDone").await;
    assert_eq!(rows(&var.join("plain")).len(), 1);
    assert_eq!(
        std::fs::read_dir(&cwd).unwrap().count(),
        0,
        "nothing written in the working directory"
    );
    n.quit().await;
}

#[tokio::test]
async fn a_relative_data_dir_is_refused_with_a_warning_and_the_default_kept() {
    let server = FakeOpenRouter::start().await;
    server.push("/models", Reply::json(200, MODELS));
    edit_reply(&server, 0.001);
    edit_reply(&server, 0.001);
    let cwd = tempfile::tempdir().unwrap();
    let (mut n, dir) = start(&server, r#"{"data_dir":"ledgers/frugal"}"#, &[]).await;
    n.cmd(&format!("cd {}", cwd.path().display())).await;
    n.open("a.py", SRC).await;
    n.cmd("LlmEdit bump").await;
    n.wait_event("FrugalEditDone").await;
    let (msg, level) = n.wait_notify("setup key data_dir").await;
    assert!(msg.contains("absolute"), "{msg}");
    assert!(msg.contains("ledgers/frugal"), "{msg}");
    assert!(msg.contains("default used"), "{msg}");
    assert_eq!(level, 3, "a warning");
    assert_eq!(rows(&dir).len(), 1, "the default data_dir was used");
    assert!(!cwd.path().join("ledgers").exists());
    n.cmd("LlmReject!").await;

    // An unset variable names itself; the default stays.
    resetup(&n, "data_dir = '$FRUGAL_NOT_SET_ANYWHERE/x'").await;
    let (msg, _) = n.wait_notify("FRUGAL_NOT_SET_ANYWHERE").await;
    assert!(msg.contains("setup key data_dir"), "{msg}");
    assert!(msg.contains("not set"), "{msg}");
    n.cmd("LlmEdit bump").await;
    n.wait_event("FrugalEditDone").await;
    assert_eq!(rows(&dir).len(), 2);
    n.quit().await;
}

// ---------------------------------------------------------------------------------------------
// Git worktrees and submodules
// ---------------------------------------------------------------------------------------------

/// A repository `main` with a committed `a.py`, and worktrees `wt1` and `wt2` beside it.
fn repo_with_worktrees(base: &Path) -> (PathBuf, PathBuf, PathBuf) {
    let main = base.join("main");
    std::fs::create_dir_all(&main).unwrap();
    git(&main, &["init", "-q"]);
    std::fs::write(main.join("a.py"), SRC.join("\n") + "\n").unwrap();
    git(&main, &["add", "a.py"]);
    git(&main, &["commit", "-q", "-m", "a"]);
    git(&main, &["worktree", "add", "-q", "../wt1", "-b", "b1"]);
    git(&main, &["worktree", "add", "-q", "../wt2", "-b", "b2"]);
    (main, base.join("wt1"), base.join("wt2"))
}

async fn project_root_of(n: &Nvim, path: &Path) -> String {
    n.cmd(&format!("edit {}", path.display())).await;
    n.lua("return require('frugal.project').project_root(0)")
        .await
        .as_str()
        .unwrap()
        .to_string()
}

fn cli_project(data: &Path, dir: &Path) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_frugal"))
        .args(["usage", "--json", "--data-dir"])
        .arg(data)
        .arg("--project")
        .arg(dir)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    v["project"].as_str().unwrap().to_string()
}

#[tokio::test]
async fn worktrees_of_one_repository_share_one_cap() {
    let server = FakeOpenRouter::start().await;
    edit_reply(&server, 0.095);
    edit_reply(&server, 0.001);
    let (mut n, dir) = start(&server, "{}", &[]).await;
    let base = n.home.path().canonicalize().unwrap();
    let (main, wt1, wt2) = repo_with_worktrees(&base);
    // Only wt2's own file sets a cap: each worktree reads its own .frugal.toml, trusted per path.
    let file = wt2.join(".frugal.toml");
    std::fs::write(&file, "[budget]\ndaily_usd = 0.10\n").unwrap();
    trust(&n, &file).await;

    n.cmd(&format!("edit {}", wt1.join("a.py").display())).await;
    n.cmd("LlmEdit bump").await;
    n.wait_event("FrugalEditDone").await;
    let r = rows(&dir);
    assert_eq!(r.len(), 1);
    assert_eq!(
        r[0].project,
        main.to_str().unwrap(),
        "spend counts to the main repository"
    );

    // The other worktree's cap sees what the first one spent.
    n.cmd(&format!("edit {}", wt2.join("a.py").display())).await;
    n.cmd("LlmEdit bump").await;
    let failed = n.wait_event("FrugalEditFailed").await;
    assert_eq!(field(&failed, "reason").as_str(), Some("budget"));
    let msg = field(&failed, "message").as_str().unwrap();
    assert!(msg.contains("daily cap $0.10"), "{msg}");
    assert!(
        msg.contains(&format!("[budget] daily_usd in {}", file.display())),
        "{msg}"
    );
    assert_eq!(
        server.chat_requests().len(),
        1,
        "the second request went out"
    );

    // The shim and the CLI agree: both worktrees and the main checkout are the main repository.
    for d in [&main, &wt1, &wt2] {
        assert_eq!(
            project_root_of(&n, &d.join("a.py")).await,
            main.to_str().unwrap()
        );
        assert_eq!(cli_project(&dir, d), main.to_str().unwrap());
    }
    // :checkhealth names the mapping.
    n.cmd(&format!("edit {}", wt2.join("a.py").display())).await;
    let health = checkhealth(&n).await;
    assert!(
        health.contains(&format!(
            "git worktree {} of the repository {}",
            wt2.display(),
            main.display()
        )),
        "{health}"
    );
    assert!(
        health.contains(&format!("{} is trusted", file.display())),
        "{health}"
    );
    n.quit().await;
}

#[tokio::test]
async fn a_submodule_stays_a_project_of_its_own() {
    let server = FakeOpenRouter::start().await;
    let (n, dir) = start(&server, "{}", &[]).await;
    // The ledger must exist for the CLI.
    drop(frugal::budget::Ledger::open(ledger_path(&dir)).unwrap());
    let base = n.home.path().canonicalize().unwrap();
    let (main, _, _) = repo_with_worktrees(&base);
    // A submodule's .git is a file whose git directory has no commondir.
    let sub = main.join("vendor/lib");
    std::fs::create_dir_all(&sub).unwrap();
    std::fs::create_dir_all(main.join(".git/modules/lib")).unwrap();
    std::fs::write(sub.join(".git"), "gitdir: ../../.git/modules/lib\n").unwrap();
    std::fs::write(sub.join("x.py"), "x = 1\n").unwrap();
    assert_eq!(
        project_root_of(&n, &sub.join("x.py")).await,
        sub.to_str().unwrap()
    );
    assert_eq!(cli_project(&dir, &sub), sub.to_str().unwrap());
    n.quit().await;
}

// ---------------------------------------------------------------------------------------------
// Permissions
// ---------------------------------------------------------------------------------------------

/// frugal's own log files in the log directory.
fn log_files(n: &Nvim) -> Vec<PathBuf> {
    std::fs::read_dir(n.home.path().join("state/nvim"))
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| {
            p.file_name()
                .unwrap()
                .to_string_lossy()
                .starts_with("frugal.log")
        })
        .collect()
}

fn assert_private(dir: &Path, n: &Nvim) {
    assert_eq!(mode(dir), 0o700, "{}", dir.display());
    for f in ["ledger.sqlite3", "ledger.sqlite3-wal", "ledger.sqlite3-shm"] {
        assert_eq!(mode(&dir.join(f)), 0o600, "{f}");
    }
    // The catalogue caches: one per endpoint (and an older version's `models.json`).
    let caches: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .flatten()
        .filter(|e| frugal::openrouter::catalogue::is_cache_file(&e.file_name().to_string_lossy()))
        .map(|e| e.path())
        .collect();
    assert!(
        !caches.is_empty(),
        "no catalogue cache in {}",
        dir.display()
    );
    for c in caches {
        assert_eq!(mode(&c), 0o600, "{}", c.display());
    }
    let logs = log_files(n);
    assert!(!logs.is_empty());
    for l in logs {
        assert_eq!(mode(&l), 0o600, "{}", l.display());
    }
}

#[tokio::test]
async fn what_frugal_creates_is_private() {
    let server = FakeOpenRouter::start().await;
    edit_reply(&server, 0.001);
    let (mut n, dir) = start(&server, "{}", &[]).await;
    let log_dir = n.home.path().join("state/nvim");
    std::fs::create_dir_all(&log_dir).unwrap();
    chmod(&log_dir, 0o755);
    n.open("a.py", SRC).await;
    n.cmd("LlmEdit bump").await;
    n.wait_event("FrugalEditDone").await;
    assert_private(&dir, &n);
    assert_eq!(
        mode(&log_dir),
        0o755,
        "Neovim's shared log directory is left alone"
    );
    // :checkhealth reports the modes, and a file opened up since.
    let health = checkhealth(&n).await;
    assert!(
        health.contains(&format!("data_dir {}: mode 0700 (private)", dir.display())),
        "{health}"
    );
    assert!(
        health.contains("ledger.sqlite3: mode 0600 (private)"),
        "{health}"
    );
    chmod(&ledger_path(&dir), 0o644);
    let health = checkhealth(&n).await;
    assert!(
        health.contains("ledger.sqlite3: mode 0644, other users can read it"),
        "{health}"
    );
    n.quit().await;
}

#[tokio::test]
async fn existing_files_are_tightened_at_start() {
    let server = FakeOpenRouter::start().await;
    edit_reply(&server, 0.001);
    let (mut n, dir) = start(&server, "{}", &[]).await;
    // What an older frugal left: a world-readable directory, ledger, WAL and catalogue.
    std::fs::create_dir_all(&dir).unwrap();
    chmod(&dir, 0o755);
    drop(frugal::budget::Ledger::open(ledger_path(&dir)).unwrap());
    chmod(&ledger_path(&dir), 0o644);
    // Held open, so the -wal and -shm exist (with the database's mode) when the backend starts.
    let held = rusqlite::Connection::open(ledger_path(&dir)).unwrap();
    held.query_row("SELECT count(*) FROM requests", [], |r| r.get::<_, i64>(0))
        .unwrap();
    for f in ["ledger.sqlite3-wal", "ledger.sqlite3-shm"] {
        assert_eq!(mode(&dir.join(f)), 0o644, "{f}");
    }
    std::fs::write(dir.join("models.json"), MODELS).unwrap();
    chmod(&dir.join("models.json"), 0o644);
    let log_dir = n.home.path().join("state/nvim");
    std::fs::create_dir_all(&log_dir).unwrap();
    chmod(&log_dir, 0o755);
    let d = time::OffsetDateTime::now_utc().date();
    let old_log = log_dir.join(format!(
        "frugal.log.{:04}-{:02}-{:02}",
        d.year(),
        d.month() as u8,
        d.day()
    ));
    std::fs::write(&old_log, "earlier lines\n").unwrap();
    chmod(&old_log, 0o644);
    let theirs = log_dir.join("other-plugin.log");
    std::fs::write(&theirs, "not frugal's\n").unwrap();
    chmod(&theirs, 0o644);

    n.open("a.py", SRC).await;
    n.cmd("LlmEdit bump").await;
    n.wait_event("FrugalEditDone").await;
    assert_private(&dir, &n);
    assert_eq!(
        mode(&log_dir),
        0o755,
        "Neovim's shared log directory is left alone"
    );
    assert_eq!(mode(&theirs), 0o644, "another program's log is left alone");
    drop(held);
    n.quit().await;
}

// ---------------------------------------------------------------------------------------------
// Ledger faults: reason `ledger`, a message that says what to do
// ---------------------------------------------------------------------------------------------

async fn failed_with_ledger_reason(n: &mut Nvim) -> String {
    let failed = n.wait_event("FrugalEditFailed").await;
    assert_eq!(
        field(&failed, "reason").as_str(),
        Some("ledger"),
        "{failed:?}"
    );
    field(&failed, "message").as_str().unwrap().to_string()
}

#[tokio::test]
async fn a_corrupt_ledger_fails_with_reason_ledger_and_says_to_move_it_aside() {
    let server = FakeOpenRouter::start().await;
    let (mut n, dir) = start(&server, "{}", &[]).await;
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(ledger_path(&dir), "this is not a database, ".repeat(400)).unwrap();
    n.open("a.py", SRC).await;
    n.cmd("LlmEdit bump").await;
    let msg = failed_with_ledger_reason(&mut n).await;
    assert!(
        msg.contains(&ledger_path(&dir).display().to_string()),
        "{msg}"
    );
    assert!(msg.contains("damaged"), "{msg}");
    assert!(msg.contains("Move it aside"), "{msg}");
    assert!(msg.contains("nothing was sent"), "{msg}");
    assert!(server.chat_requests().is_empty());
    n.quit().await;
}

#[tokio::test]
async fn a_locked_ledger_fails_with_reason_ledger_and_the_next_edit_works() {
    let server = FakeOpenRouter::start().await;
    edit_reply(&server, 0.001);
    edit_reply(&server, 0.001);
    let (mut n, dir) = start(&server, "{}", &[]).await;
    n.open("a.py", SRC).await;
    n.cmd("LlmEdit bump").await;
    n.wait_event("FrugalEditDone").await;
    n.cmd("LlmReject!").await;
    // Another process holds the write lock past the busy timeout.
    let holder = rusqlite::Connection::open(ledger_path(&dir)).unwrap();
    holder.execute_batch("BEGIN EXCLUSIVE").unwrap();
    n.cmd("LlmEdit bump").await;
    let msg = failed_with_ledger_reason(&mut n).await;
    assert!(
        msg.contains(&ledger_path(&dir).display().to_string()),
        "{msg}"
    );
    assert!(msg.contains("locked"), "{msg}");
    assert!(msg.contains("another process"), "{msg}");
    assert_eq!(server.chat_requests().len(), 1);
    holder.execute_batch("COMMIT").unwrap();
    drop(holder);
    n.cmd("LlmEdit bump").await;
    n.wait_event("FrugalEditDone").await;
    assert_eq!(rows(&dir).len(), 2);
    n.quit().await;
}

#[tokio::test]
async fn a_ledger_moved_away_while_open_fails_with_reason_ledger_then_a_new_one_is_used() {
    let server = FakeOpenRouter::start().await;
    edit_reply(&server, 0.001);
    edit_reply(&server, 0.001);
    let (mut n, dir) = start(&server, "{}", &[]).await;
    // The statusline's refresh after an edit reads the ledger too, and would be the one to
    // notice the move (silently): keep the edit the first to use the ledger after it.
    n.lua("require('frugal.status').refresh = function() end")
        .await;
    n.open("a.py", SRC).await;
    n.cmd("LlmEdit bump").await;
    n.wait_event("FrugalEditDone").await;
    n.cmd("LlmReject!").await;
    // The settlement is written just after FrugalEditDone: wait for it, or its write would be
    // the one to notice the move (and open a new file at the path before the second edit).
    wait_rows(&dir, "settled", |r| r.len() == 1 && r[0].state == "settled").await;
    // So is the rejected hunk's outcome (sent on the next tick after `:LlmReject!`).
    let end = std::time::Instant::now() + DEADLINE;
    loop {
        let conn = rusqlite::Connection::open(ledger_path(&dir)).unwrap();
        conn.busy_timeout(std::time::Duration::from_secs(5))
            .unwrap();
        let rejected: i64 = conn
            .query_row(
                "SELECT count(*) FROM hunk_outcomes WHERE fate = 'rejected'",
                [],
                |r| r.get(0),
            )
            .unwrap();
        if rejected == 1 {
            break;
        }
        assert!(std::time::Instant::now() < end, "the outcome never came");
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    let aside = dir.join("ledger.sqlite3.aside");
    std::fs::rename(ledger_path(&dir), &aside).unwrap();
    n.cmd("LlmEdit bump").await;
    let msg = failed_with_ledger_reason(&mut n).await;
    assert!(
        msg.contains(&ledger_path(&dir).display().to_string()),
        "{msg}"
    );
    assert!(msg.contains("moved or deleted"), "{msg}");
    assert_eq!(server.chat_requests().len(), 1);
    // The next edit opens the file now at that path.
    n.cmd("LlmEdit bump").await;
    n.wait_event("FrugalEditDone").await;
    assert_eq!(rows(&dir).len(), 1);
    n.quit().await;
}

#[tokio::test]
async fn a_ledger_that_cannot_be_opened_fails_with_reason_ledger() {
    let server = FakeOpenRouter::start().await;
    let (mut n, dir) = start(&server, "{}", &[]).await;
    std::fs::create_dir_all(ledger_path(&dir)).unwrap();
    n.open("a.py", SRC).await;
    n.cmd("LlmEdit bump").await;
    let msg = failed_with_ledger_reason(&mut n).await;
    assert!(
        msg.contains(&ledger_path(&dir).display().to_string()),
        "{msg}"
    );
    assert!(msg.contains("cannot open"), "{msg}");
    assert!(server.chat_requests().is_empty());
    n.quit().await;
}

// ---------------------------------------------------------------------------------------------
// Configuration that stops an edit
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn a_huge_max_tokens_is_a_warning_and_edits_still_work() {
    let server = FakeOpenRouter::start().await;
    edit_reply(&server, 0.001);
    let (mut n, _dir) = start(&server, r#"{"max_tokens":5e9}"#, &[]).await;
    n.open("a.py", SRC).await;
    n.cmd("LlmEdit bump").await;
    n.wait_event("FrugalEditDone").await;
    let (msg, level) = n.wait_notify("setup key max_tokens").await;
    assert!(msg.contains("default used"), "{msg}");
    assert_eq!(level, 3);
    let body: serde_json::Value = serde_json::from_str(&server.chat_requests()[0].body).unwrap();
    assert_eq!(body["max_tokens"], 4096);
    n.quit().await;
}

#[tokio::test]
async fn an_edit_that_cannot_start_fires_failed_with_reason_config() {
    let server = FakeOpenRouter::start().await;
    let mut n = Nvim::start(&server.url).await;
    n.open("a.py", SRC).await;
    // No backend at that path.
    n.lua("require('frugal').setup({ binary = '/nonexistent/frugal', base_url = vim.env.FRUGAL_URL })")
        .await;
    n.cmd("LlmEdit bump").await;
    let failed = n.wait_event("FrugalEditFailed").await;
    assert_eq!(field(&failed, "reason").as_str(), Some("config"));
    let msg = field(&failed, "message").as_str().unwrap();
    assert!(
        msg.contains("backend not found at /nonexistent/frugal"),
        "{msg}"
    );
    // A backend that exits at once.
    n.lua("require('frugal').setup({ binary = '/bin/false', base_url = vim.env.FRUGAL_URL })")
        .await;
    n.cmd("LlmEdit bump").await;
    let failed = n.wait_event("FrugalEditFailed").await;
    assert_eq!(field(&failed, "reason").as_str(), Some("config"));
    let msg = field(&failed, "message").as_str().unwrap();
    assert!(msg.contains("did not answer"), "{msg}");
    assert_eq!(n.lines().await, SRC);
    assert!(server.chat_requests().is_empty());
    n.quit().await;
}

// ---------------------------------------------------------------------------------------------
// Paths of an answer: judged by where they really lead
// ---------------------------------------------------------------------------------------------

/// A new-file block (empty SEARCH) for `path`.
fn new_file(path: &str, text: &str) -> String {
    format!("{path}\n<<<<<<< SEARCH\n=======\n{text}\n>>>>>>> REPLACE\n")
}

/// The titles of `FrugalEditDone`'s `unmatched`.
fn unmatched(done: &rmpv::Value) -> Vec<String> {
    field(done, "unmatched")
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap().to_string())
        .collect()
}

/// A git repository `proj` with `a.py` and committed links into `.git`: `gitdir -> .git`,
/// `tools -> .git/hooks`, `conf.py -> .git/config`.
fn repo_with_git_links(home: &Path) -> PathBuf {
    let root = home.canonicalize().unwrap().join("proj");
    std::fs::create_dir_all(&root).unwrap();
    git(&root, &["init", "-q"]);
    std::fs::write(root.join("a.py"), SRC.join("\n") + "\n").unwrap();
    std::os::unix::fs::symlink(".git", root.join("gitdir")).unwrap();
    std::os::unix::fs::symlink(".git/hooks", root.join("tools")).unwrap();
    std::os::unix::fs::symlink(".git/config", root.join("conf.py")).unwrap();
    git(&root, &["add", "a.py", "gitdir", "tools", "conf.py"]);
    git(&root, &["commit", "-q", "-m", "links"]);
    root
}

/// The issue's attack: `gitdir/commondir` proposed as a new file through a committed link to
/// `.git`, a hook through a linked directory, an existing file (sent as context) reached
/// through a link into `.git`. None is shown; after `:LlmAccept!` and `:wall` nothing in
/// `.git` changed, and the honest block is applied.
#[tokio::test]
async fn paths_leading_into_git_through_links_are_refused_by_name() {
    let server = FakeOpenRouter::start().await;
    let text = [
        new_file("gitdir/commondir", "../PLANTED"),
        new_file("tools/pre-commit", "#!/bin/sh\ntouch PWNED"),
        format!(
            "conf.py\n{}",
            block("[core]\n", "[core]\n\tfsmonitor = touch PWNED\n")
        ),
        format!(
            ".git/config\n{}",
            block("[core]\n", "[core]\n\tfsmonitor = touch PWNED\n")
        ),
        format!(
            "a.py\n{}",
            block("    return x + 1\n", "    return x + 2\n")
        ),
    ]
    .concat();
    let (mut n, _dir) = start(&server, "{}", &[]).await;
    server.push("/chat/completions", Reply::sse(answer(&text, 13, 0.0)));
    let root = repo_with_git_links(n.home.path());
    let config = std::fs::read_to_string(root.join(".git/config")).unwrap();
    n.cmd(&format!("edit {}", root.join("a.py").display()))
        .await;
    // The user sends the linked file as context: it is read, never changed.
    n.cmd("LlmContext add conf.py").await;
    n.cmd("LlmEdit bump").await;
    let done = n.wait_event("FrugalEditDone").await;
    let unmatched = unmatched(&done);
    for p in [
        "gitdir/commondir",
        "tools/pre-commit",
        "conf.py",
        ".git/config",
    ] {
        assert!(
            unmatched.iter().any(|u| u.starts_with(&format!("{p}:"))),
            "{p}: {unmatched:?}"
        );
    }
    let files = field(&done, "files").as_array().unwrap().clone();
    assert_eq!(files.len(), 1, "only a.py: {files:?}");
    for p in ["gitdir/commondir", "tools/pre-commit", ".git/commondir"] {
        let loaded = n
            .lua_args(
                "return vim.fn.bufnr(...)",
                vec![root.join(p).to_str().unwrap().into()],
            )
            .await;
        assert_eq!(loaded.as_i64(), Some(-1), "{p} never loaded");
    }
    n.cmd("LlmAccept!").await;
    n.cmd("silent! wall").await;
    assert!(
        !root.join(".git/commondir").exists(),
        ".git/commondir written"
    );
    assert!(
        !root.join(".git/hooks/pre-commit").exists(),
        "a hook written"
    );
    assert_eq!(
        std::fs::read_to_string(root.join(".git/config")).unwrap(),
        config
    );
    assert_eq!(
        std::fs::read_to_string(root.join("a.py")).unwrap(),
        "def f(x):\n    return x + 2\n\n"
    );
    n.quit().await;
}

/// A path turned into a link after the proposal arrived and before accept: the new file's
/// directory now leads into `.git`, the other file's buffer now leads out of the project. The
/// backend checks each again at accept; those hunks are refused with a message, nothing is
/// written through them, and the current buffer's hunk is applied.
#[tokio::test]
async fn a_path_turned_into_a_link_before_accept_is_refused_at_accept() {
    let server = FakeOpenRouter::start().await;
    let text = [
        new_file("gen/new.py", "planted = True"),
        format!("b.py\n{}", block("b = 1\n", "b = 2\n")),
        format!(
            "a.py\n{}",
            block("    return x + 1\n", "    return x + 2\n")
        ),
    ]
    .concat();
    let (mut n, _dir) = start(&server, "{}", &[]).await;
    server.push("/chat/completions", Reply::sse(answer(&text, 13, 0.0)));
    let root = repo_with_git_links(n.home.path());
    std::fs::write(root.join("b.py"), "b = 1\n").unwrap();
    n.cmd(&format!("edit {}", root.join("a.py").display()))
        .await;
    n.cmd("LlmContext add b.py").await;
    n.cmd("LlmEdit bump").await;
    let done = n.wait_event("FrugalEditDone").await;
    let files = field(&done, "files").as_array().unwrap().clone();
    assert_eq!(files.len(), 3, "{files:?}");
    // Now the links: gen -> .git, b.py -> a file outside the project.
    std::os::unix::fs::symlink(".git", root.join("gen")).unwrap();
    let outside = n.home.path().join("outside.py");
    std::fs::write(&outside, "b = 1\n").unwrap();
    std::fs::remove_file(root.join("b.py")).unwrap();
    std::os::unix::fs::symlink(&outside, root.join("b.py")).unwrap();
    n.drain();
    n.cmd("LlmAccept!").await;
    let (msg, _) = n.wait_notify("not applied: gen/new.py").await;
    assert_eq!(msg, "frugal: not applied: gen/new.py leads into .git");
    let (msg, _) = n.wait_notify("not applied: b.py").await;
    assert_eq!(msg, "frugal: not applied: b.py leads outside the project");
    n.cmd("silent! wall").await;
    assert!(!root.join(".git/new.py").exists(), "written into .git");
    assert_eq!(std::fs::read_to_string(&outside).unwrap(), "b = 1\n");
    assert_eq!(
        std::fs::read_to_string(root.join("a.py")).unwrap(),
        "def f(x):\n    return x + 2\n\n"
    );
    n.quit().await;
}
