//! The project's instructions end to end (SPEC, "Instructions, questions and history", first
//! bullet): AGENTS.md and its peers go with every request of the project, in the cached,
//! stable part of the prompt, each real file once, bounded by `max_instructions_bytes`, counted
//! in the worst case and inside `max_context_bytes`; `{}` turns them off; a trusted
//! `.frugal.toml` replaces the list, an untrusted one is ignored; a file breaking the path
//! rules is skipped with one warning. A real headless Neovim, its real backend and the
//! loopback OpenRouter, whose recorded request bodies are read.

mod common;
use common::*;
use std::path::PathBuf;

const SRC: &[&str] = &["def f(x):", "    return x + 1", ""];

fn edit_reply(server: &FakeOpenRouter) {
    server.push(
        "/chat/completions",
        Reply::sse(answer(
            &block("    return x + 1\n", "    return x + 2\n"),
            6,
            0.0002,
        )),
    );
}

/// `proj/` (a git checkout) holding `files` (path, text), and `a.py` open in it.
async fn project(n: &Nvim, files: &[(&str, &str)]) -> PathBuf {
    let root = n.home.path().join("proj");
    std::fs::create_dir_all(root.join(".git")).unwrap();
    for (path, text) in files {
        let p = root.join(path);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, text).unwrap();
    }
    n.open("a.py", SRC).await;
    root
}

fn body(r: &Recorded) -> serde_json::Value {
    serde_json::from_str(&r.body).unwrap()
}

/// A message's text, whether sent as a string or (marked for the prompt cache) as text parts.
fn text(m: &serde_json::Value) -> String {
    match &m["content"] {
        serde_json::Value::String(s) => s.clone(),
        serde_json::Value::Array(parts) => {
            parts.iter().map(|p| p["text"].as_str().unwrap()).collect()
        }
        other => panic!("content: {other}"),
    }
}

fn cached(m: &serde_json::Value) -> bool {
    m["content"][0]["cache_control"]["type"] == "ephemeral"
}

/// The texts of the `i`th chat request's messages.
fn messages(server: &FakeOpenRouter, i: usize) -> Vec<serde_json::Value> {
    body(&server.chat_requests()[i])["messages"]
        .as_array()
        .unwrap()
        .clone()
}

/// How often `needle` occurs in the whole of the `i`th chat request's messages.
fn count_in(server: &FakeOpenRouter, i: usize, needle: &str) -> usize {
    messages(server, i)
        .iter()
        .map(|m| text(m).matches(needle).count())
        .sum()
}

async fn edit(n: &mut Nvim, server: &FakeOpenRouter) {
    edit_reply(server);
    n.cmd("LlmEdit bump").await;
    n.wait_event("FrugalEditDone").await;
}

/// The warnings (level WARN) shown so far that contain `needle`.
fn warnings_with(n: &Nvim, needle: &str) -> Vec<String> {
    n.notifications()
        .into_iter()
        .filter(|(m, l)| *l == 3 && m.contains(needle))
        .map(|(m, _)| m)
        .collect()
}

async fn write_project_file(n: &Nvim, text: &str, action: &str) {
    let path = n.home.path().join("proj/.frugal.toml");
    std::fs::write(&path, text).unwrap();
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
}

/// AGENTS.md and CONVENTIONS.md go in the system message (the stable part, marked for the
/// cache), in the list's order; CLAUDE.md, a link to AGENTS.md, is not sent twice; nothing of
/// them is in the volatile last message. A review of the proposal carries them too.
#[tokio::test]
async fn the_instructions_go_in_the_stable_part_of_an_edit_a_review_and_an_ask() {
    let server = FakeOpenRouter::start().await;
    let mut n = Nvim::start(&server.url).await;
    let root = project(
        &n,
        &[
            ("AGENTS.md", "Indent with tabs (agents-rule).\n"),
            (
                "CONVENTIONS.md",
                "Name things plainly (conventions-rule).\n",
            ),
        ],
    )
    .await;
    std::os::unix::fs::symlink("AGENTS.md", root.join("CLAUDE.md")).unwrap();
    edit(&mut n, &server).await;
    let msgs = messages(&server, 0);
    let system = text(&msgs[0]);
    assert_eq!(msgs[0]["role"], "system");
    assert!(cached(&msgs[0]), "the stable part is marked for the cache");
    let (a, c) = (
        system
            .find("agents-rule")
            .expect("AGENTS.md in the system message"),
        system
            .find("conventions-rule")
            .expect("CONVENTIONS.md in the system message"),
    );
    assert!(a < c, "in the list's order: {system}");
    assert!(
        system.contains("AGENTS.md\n"),
        "named by its path: {system}"
    );
    assert_eq!(
        count_in(&server, 0, "agents-rule"),
        1,
        "a link to a listed file is not sent twice"
    );
    assert!(!text(msgs.last().unwrap()).contains("rule)"));
    let progress = n
        .lua("return require('frugal.edit').last_progress or ''")
        .await;
    assert!(
        progress.as_str().unwrap().contains(" · 3 files, "),
        "a.py and the two instruction files: {progress:?}"
    );

    server.push(
        "/chat/completions",
        Reply::sse(answer(
            r#"{"verdicts":[{"hunk":1,"verdict":"ok","reason":"fine"}]}"#,
            9,
            0.0001,
        )),
    );
    n.cmd("LlmReview").await;
    n.wait_event("FrugalReviewDone").await;
    let judge = messages(&server, 1);
    let system = text(&judge[0]);
    assert!(
        system.contains("verdict"),
        "the judge's own prompt: {system}"
    );
    assert!(
        system.contains("agents-rule") && system.contains("conventions-rule"),
        "{system}"
    );
    assert!(cached(&judge[0]));

    // And a question (`:LlmAsk`): the same instructions in its own cached system message.
    server.push(
        "/chat/completions",
        Reply::sse(answer("It adds one.", 9, 0.0001)),
    );
    n.cmd("LlmAsk what does this do?").await;
    n.wait_event("FrugalAskDone").await;
    let asked = messages(&server, 2);
    let system = text(&asked[0]);
    assert!(system.contains("SEARCH/REPLACE"), "the ask's own prompt");
    assert!(
        system.contains("agents-rule") && system.contains("conventions-rule"),
        "{system}"
    );
    assert_eq!(count_in(&server, 2, "agents-rule"), 1);
    assert!(cached(&asked[0]));
    n.quit().await;
}

/// `instructions = {}` turns them off.
#[tokio::test]
async fn an_empty_list_turns_the_instructions_off() {
    let server = FakeOpenRouter::start().await;
    let mut n = Nvim::start_with(&server.url, &[("FRUGAL_SETUP", r#"{"instructions":{}}"#)]).await;
    project(&n, &[("AGENTS.md", "agents-rule\n")]).await;
    edit(&mut n, &server).await;
    assert_eq!(count_in(&server, 0, "agents-rule"), 0);
    n.quit().await;
}

/// A trusted `.frugal.toml` replaces the list for its project; an untrusted one is ignored.
#[tokio::test]
async fn a_trusted_project_file_replaces_the_list_and_an_untrusted_one_is_ignored() {
    let server = FakeOpenRouter::start().await;
    let mut n = Nvim::start(&server.url).await;
    let files = [
        ("AGENTS.md", "agents-rule\n"),
        ("docs/STYLE.md", "style-rule\n"),
    ];
    project(&n, &files).await;
    let toml = "[context]\ninstructions = [\"docs/STYLE.md\"]\n";
    write_project_file(&n, toml, "deny").await;
    edit(&mut n, &server).await;
    assert_eq!(count_in(&server, 0, "agents-rule"), 1, "untrusted: ignored");
    assert_eq!(count_in(&server, 0, "style-rule"), 0);
    n.cmd("LlmReject!").await;

    write_project_file(&n, toml, "allow").await;
    edit(&mut n, &server).await;
    assert_eq!(count_in(&server, 1, "agents-rule"), 0, "trusted: replaced");
    assert_eq!(count_in(&server, 1, "style-rule"), 1);
    n.quit().await;
}

/// A listed file that is a link out of the project, a FIFO, binary or not UTF-8 is skipped
/// with one warning naming it (once per session), and the edit still goes with the rest.
#[tokio::test]
async fn files_breaking_the_path_rules_are_skipped_with_one_warning() {
    let server = FakeOpenRouter::start().await;
    let setup = r#"{"instructions":["out.md","fifo.md","bin.md","latin.md","../up.md",".git/info.md","AGENTS.md"]}"#;
    let mut n = Nvim::start_with(&server.url, &[("FRUGAL_SETUP", setup)]).await;
    let root = project(&n, &[("AGENTS.md", "agents-rule\n")]).await;
    let outside = n.home.path().join("secret.md");
    std::fs::write(&outside, "secret-rule\n").unwrap();
    std::fs::write(n.home.path().join("up.md"), "up-rule\n").unwrap();
    std::fs::write(root.join(".git/info.md"), "git-rule\n").unwrap();
    std::os::unix::fs::symlink(&outside, root.join("out.md")).unwrap();
    let fifo = std::ffi::CString::new(root.join("fifo.md").to_str().unwrap()).unwrap();
    assert_eq!(unsafe { libc::mkfifo(fifo.as_ptr(), 0o600) }, 0);
    std::fs::write(root.join("bin.md"), b"bin\0rule\n").unwrap();
    std::fs::write(root.join("latin.md"), b"caf\xe9-rule\n").unwrap();

    edit(&mut n, &server).await;
    assert_eq!(count_in(&server, 0, "agents-rule"), 1, "the rest goes");
    for gone in ["secret-rule", "up-rule", "git-rule", "bin", "caf"] {
        assert_eq!(count_in(&server, 0, gone), 0, "{gone} was sent");
    }
    // One warning of one line for the request (the built-in vim.notify never stacks lines
    // into a hit-enter prompt), naming the first files; the whole text of each in the log.
    let warned: Vec<String> = n
        .notifications()
        .into_iter()
        .filter(|(_, l)| *l == 3)
        .map(|(m, _)| m)
        .collect();
    assert_eq!(warned, ["instructions: out.md, fifo.md +4 cut or skipped"]);
    let skipped = [
        ("out.md", "leads outside the project"),
        ("fifo.md", "is not a regular file"),
        ("bin.md", "is binary"),
        ("latin.md", "is not UTF-8 (at byte 3)"),
        ("../up.md", "leads outside the project"),
        (".git/info.md", "leads into .git"),
    ];
    for (name, why) in skipped {
        let whole = format!("instruction file {name} {why}: not sent");
        assert!(n.log_holds(&whole).await, "{whole} in the log");
    }
    // :LlmContext names each.
    n.cmd("LlmContext").await;
    let (listing, _) = n.wait_notify("instructions of").await;
    for (name, why) in skipped {
        let line = format!("  {name}  ✗ {why}: not sent");
        assert!(listing.contains(&line), "{line:?} in {listing}");
    }
    n.cmd("LlmReject!").await;
    n.drain();
    let before = n.notifications().len();
    edit(&mut n, &server).await;
    let after: Vec<_> = n.notifications()[before..]
        .iter()
        .filter(|(_, l)| *l == 3)
        .cloned()
        .collect();
    assert!(after.is_empty(), "warned once per session: {after:?}");
    n.quit().await;
}

/// Over `max_instructions_bytes` in all, what is over is cut (at a line's end), with one
/// warning per session naming the file; a file after the bound is cut whole.
#[tokio::test]
async fn what_is_over_max_instructions_bytes_is_cut_with_one_warning() {
    let server = FakeOpenRouter::start().await;
    let setup = r#"{"max_instructions_bytes":1000}"#;
    let mut n = Nvim::start_with(&server.url, &[("FRUGAL_SETUP", setup)]).await;
    let big: String = (0..100)
        .map(|i| format!("rule number {i:04} here\n"))
        .collect();
    assert!(big.len() > 2000);
    project(
        &n,
        &[
            ("AGENTS.md", &big),
            ("CONVENTIONS.md", "conventions-rule\n"),
        ],
    )
    .await;
    edit(&mut n, &server).await;
    let system = text(&messages(&server, 0)[0]);
    assert!(system.contains("rule number 0000 here\n"), "{system}");
    assert!(!system.contains("rule number 0099"), "cut: {system}");
    // 10 bytes were left: no whole line of it fits, so whole characters.
    assert!(system.contains("\nconvention\n"), "{system}");
    assert!(!system.contains("conventions-rule"), "no room left");
    let sent = (0..100)
        .filter(|i| system.contains(&format!("rule number {i:04} here\n")))
        .count();
    // 22 bytes a line: 45 whole lines in 1000 bytes.
    assert_eq!(sent, 45, "cut at 1000 bytes, at a line's end");
    assert_eq!(
        warnings_with(&n, "instructions:"),
        ["instructions: AGENTS.md, CONVENTIONS.md cut or skipped"],
        "one warning naming the files"
    );
    assert!(
        n.log_holds("instruction file AGENTS.md (2.2 kB) cut to 990 B: max_instructions_bytes (1.0 kB) in all")
            .await
    );
    assert!(
        n.log_holds(
            "instruction file CONVENTIONS.md (17 B) cut to 11 B: max_instructions_bytes (1.0 kB) in all"
        )
            .await
    );
    n.cmd("LlmReject!").await;
    n.drain();
    let before = n.notifications().len();
    edit(&mut n, &server).await;
    assert!(
        n.notifications()[before..].iter().all(|(_, l)| *l != 3),
        "once per session: {:?}",
        &n.notifications()[before..]
    );
    n.quit().await;
}

/// The worst case (the reservation) grows with the instructions, and they count inside
/// `max_context_bytes` (a prompt over it is refused, naming them).
#[tokio::test]
async fn the_worst_case_grows_with_the_instructions_and_max_context_bytes_holds_them() {
    let server = FakeOpenRouter::start().await;
    server.push("/models", Reply::json(200, MODELS));
    let mut n = Nvim::start_with(
        &server.url,
        &[("FRUGAL_SETUP", r#"{"max_context_bytes":16000}"#)],
    )
    .await;
    let root = project(&n, &[]).await;
    edit_reply(&server);
    n.cmd("LlmEdit bump").await;
    let done = n.wait_event("FrugalEditDone").await;
    let bare = field(&done, "reserved_usd").as_f64().unwrap();
    n.cmd("LlmReject!").await;

    std::fs::write(root.join("AGENTS.md"), "x".repeat(9999) + "\n").unwrap();
    edit_reply(&server);
    n.cmd("LlmEdit bump").await;
    let done = n.wait_event("FrugalEditDone").await;
    let with = field(&done, "reserved_usd").as_f64().unwrap();
    // 10 000 more bytes, each a token at most, at the cache-write price ($3.75/M).
    assert!(
        with - bare >= 10_000.0 * 3.75e-6 * 0.99,
        "worst case {bare} → {with}"
    );
    n.cmd("LlmReject!").await;

    std::fs::write(root.join("AGENTS.md"), "y".repeat(17_000) + "\n").unwrap();
    n.cmd("LlmEdit bump").await;
    let failed = n.wait_event("FrugalEditFailed").await;
    let msg = field(&failed, "message").as_str().unwrap();
    assert!(msg.contains("max_context_bytes"), "{msg}");
    assert!(msg.contains("AGENTS.md"), "named among the largest: {msg}");
    assert_eq!(server.chat_requests().len(), 2, "nothing sent");
    n.quit().await;
}

/// `:LlmContext` lists the instructions with their size (with no context file too), and
/// `:checkhealth frugal` the files found for the current project.
#[tokio::test]
async fn the_context_listing_and_checkhealth_list_them() {
    let server = FakeOpenRouter::start().await;
    let mut n = Nvim::start(&server.url).await;
    project(
        &n,
        &[
            ("AGENTS.md", "agents-rule\n"),
            (".github/copilot-instructions.md", "c\n"),
        ],
    )
    .await;
    n.cmd("LlmContext").await;
    let (msg, _) = n.wait_notify("instructions").await;
    assert!(msg.contains("AGENTS.md"), "{msg}");
    assert!(msg.contains("12 B"), "its size: {msg}");
    assert!(msg.contains(".github/copilot-instructions.md"), "{msg}");
    assert!(msg.contains("no context files"), "{msg}");

    n.cmd("checkhealth frugal").await;
    let health = n
        .lua("return table.concat(vim.api.nvim_buf_get_lines(0, 0, -1, false), '\\n')")
        .await;
    let health = health.as_str().unwrap();
    let line = health
        .lines()
        .find(|l| l.contains("instructions"))
        .unwrap_or_else(|| panic!("no instructions line: {health}"));
    assert!(line.contains("AGENTS.md"), "{line}");
    assert!(line.contains(".github/copilot-instructions.md"), "{line}");
    n.quit().await;
}

/// With the built-in `vim.notify`, what is wrong with several instruction files at once is one
/// line on the screen, never a hit-enter prompt.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn several_bad_files_are_one_line_on_the_screen() {
    let server = FakeOpenRouter::start().await;
    let setup = r#"{"instructions":["a.bin","b.bin","c.bin","d.bin"]}"#;
    let mut n = Nvim::start_ui(&server.url, &[("FRUGAL_SETUP", setup)], 80, 24).await;
    let files: Vec<(&str, &str)> = ["a.bin", "b.bin", "c.bin", "d.bin"]
        .iter()
        .map(|f| (*f, "x\0y\n"))
        .collect();
    project(&n, &files).await;
    // Held: the warning stays on the message row until the answer comes.
    server.push("/chat/completions", Reply::hanging());
    n.cmd("LlmEdit bump").await;
    // Every warning of the request is out before it is sent.
    server
        .wait_until("the request", |s| !s.chat_requests().is_empty())
        .await;
    let s = n
        .wait_screen("the warning", |s| {
            s.contains("instructions: a.bin") || s.hit_enter()
        })
        .await;
    assert!(!s.hit_enter(), "{}", s.dump());
    assert!(!n.blocking().await);
    let row = s.find("instructions: a.bin").unwrap().0;
    assert_eq!(
        s.row(row).trim_end(),
        "frugal: instructions: a.bin, b.bin +2 cut or skipped",
        "{}",
        s.dump()
    );
    n.cmd("LlmCancel").await;
    n.wait_event("FrugalEditFailed").await;
    drop(n);
}
