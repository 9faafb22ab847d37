//! Installing the backend (`:LlmBuild`, lazy.nvim's `build.lua`) into a fresh plugin folder (a
//! copy of this checkout's Lua, not a git checkout) from a loopback server playing the release
//! host, and the version handshake. The release asset is the real backend built for the tests,
//! with its real SHA-256. `cargo` is absent from PATH, or a fake script that records its
//! arguments (a real release build is never run here).

mod common;
use common::*;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::Duration;

const SRC: &[&str] = &["a = 1", "b = 2", "c = 3"];
const VERSION: &str = env!("CARGO_PKG_VERSION");
/// The protocol both sides speak (src/protocol.rs, lua/frugal/version.lua).
const P: u32 = frugal::protocol::PROTOCOL;
/// Enough for the 100 MB debug binary to cross the loopback and be checked.
const BUILD_DEADLINE: Duration = Duration::from_secs(90);
/// A PATH with curl, sha256sum and git only (links to the machine's own), so that no cargo is
/// found wherever the machine keeps one.
fn no_cargo(dir: &Path) -> String {
    let tools = dir.join("tools");
    if !tools.exists() {
        std::fs::create_dir_all(&tools).unwrap();
        for tool in ["curl", "sha256sum", "git"] {
            let out = std::process::Command::new("sh")
                .args(["-c", &format!("command -v {tool}")])
                .output()
                .unwrap();
            let found = String::from_utf8_lossy(&out.stdout).trim().to_string();
            assert!(!found.is_empty(), "the tests need {tool}");
            std::os::unix::fs::symlink(found, tools.join(tool)).unwrap();
        }
    }
    tools.display().to_string()
}

fn asset() -> String {
    let target = match std::env::consts::ARCH {
        "x86_64" => "x86_64-unknown-linux-musl",
        "aarch64" => "aarch64-unknown-linux-musl",
        other => panic!("no release target for {other}"),
    };
    format!("frugal-{target}")
}

fn route(name: &str) -> String {
    format!("/dl/v{VERSION}/{name}")
}

fn download_url(server: &FakeOpenRouter) -> String {
    server.plain_url.replace("/api/v1", "/dl")
}

/// A plugin folder as a user's plugin manager leaves it: this checkout's runtime files only.
fn fresh_plugin() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let plugin = dir.path().join("frugal.nvim");
    for part in ["lua", "plugin", "doc", "build.lua", "lazy.lua"] {
        copy(&root().join(part), &plugin.join(part));
    }
    let _ = std::fs::remove_file(plugin.join("doc/tags"));
    (dir, plugin)
}

fn copy(from: &Path, to: &Path) {
    if from.is_dir() {
        std::fs::create_dir_all(to).unwrap();
        for e in std::fs::read_dir(from).unwrap() {
            let e = e.unwrap();
            copy(&e.path(), &to.join(e.file_name()));
        }
    } else {
        std::fs::create_dir_all(to.parent().unwrap()).unwrap();
        std::fs::copy(from, to).unwrap();
    }
}

fn sha256(path: &Path) -> String {
    let out = std::process::Command::new("sha256sum")
        .arg(path)
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .next()
        .unwrap()
        .to_string()
}

fn real_binary() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_frugal"))
}

fn file_reply(bytes: Vec<u8>) -> Reply {
    Reply {
        status: 200,
        headers: vec![
            ("Content-Type".into(), "application/octet-stream".into()),
            ("Content-Length".into(), bytes.len().to_string()),
        ],
        parts: vec![Part::Bytes(bytes)],
    }
}

/// The release of this version: `asset` as the executable, `sums` as SHA256SUMS.
fn serve_release(server: &FakeOpenRouter, asset_reply: Reply, sums: &str) {
    server.push(&route(&asset()), asset_reply);
    server.push(&route("SHA256SUMS"), file_reply(sums.as_bytes().to_vec()));
}

/// The real backend as the release asset, with its real sum (and another file's line).
fn serve_real_release(server: &FakeOpenRouter) {
    let sum = sha256(&real_binary());
    let sums = format!(
        "{}  frugal-x86_64-pc-windows-msvc.exe\n{sum}  {}\n",
        "0".repeat(64),
        asset()
    );
    serve_release(
        server,
        file_reply(std::fs::read(real_binary()).unwrap()),
        &sums,
    );
}

/// Neovim with the plugin from `plugin` (no `binary` in setup), releases on `server`.
async fn start(plugin: &Path, server: &FakeOpenRouter, path: &str) -> Nvim {
    let url = download_url(server);
    Nvim::start_with(
        &server.url,
        &[
            ("FRUGAL_ROOT", plugin.to_str().unwrap()),
            ("FRUGAL_BIN", ""),
            ("FRUGAL_DOWNLOAD_URL", &url),
            ("PATH", path),
            // curl goes straight to the release host; the backend still reaches the fake
            // OpenRouter through the proxy.
            ("NO_PROXY", "127.0.0.1"),
            ("no_proxy", "127.0.0.1"),
        ],
    )
    .await
}

/// Runs `build.lua` as lazy.nvim does: in a coroutine, resumed until it ends, the yielded
/// values being its progress. Returns (progress lines, error or None).
async fn lazy_build(n: &Nvim, plugin: &Path) -> (Vec<String>, Option<String>) {
    let code = r#"
        local root = ...
        -- lazy loads the file and calls the chunk in its coroutine (no C call in between).
        local co = coroutine.create(assert(loadfile(root .. "/build.lua")))
        local msgs, err = {}, nil
        while coroutine.status(co) ~= "dead" do
          local ok, res = coroutine.resume(co)
          if not ok then
            err = tostring(res)
            break
          end
          if res ~= nil then
            table.insert(msgs, type(res) == "table" and tostring(res.msg) or tostring(res))
          end
          if coroutine.status(co) ~= "dead" then
            vim.wait(10)
          end
        end
        return { msgs = msgs, err = err or vim.NIL }
    "#;
    let v = tokio::time::timeout(
        BUILD_DEADLINE,
        n.lua_args(code, vec![plugin.to_str().unwrap().into()]),
    )
    .await
    .expect("build.lua ended");
    let msgs = field(&v, "msgs")
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m.as_str().unwrap_or("").to_string())
        .collect();
    (msgs, field(&v, "err").as_str().map(String::from))
}

/// `:LlmBuild`, which returns when done; its last notification is the result, the whole text
/// is in its `User` event's data.
async fn llm_build(n: &mut Nvim) -> (String, i64, String) {
    n.lua("vim.api.nvim_create_autocmd('User', { pattern = { 'FrugalBuildDone', 'FrugalBuildFailed' }, callback = function(ev) vim.g.frugal_build = ev.data.message end })").await;
    tokio::time::timeout(BUILD_DEADLINE, n.cmd("LlmBuild"))
        .await
        .expect(":LlmBuild returned");
    n.drain();
    let (msg, level) = n.notifications().last().cloned().expect("a message");
    let detail = n.lua("return vim.g.frugal_build").await;
    (msg, level, detail.as_str().unwrap_or("").to_string())
}

/// Installs the real backend at bin/frugal as a previous install (a hard link: cheap, and a
/// replaced file gets a new inode).
fn previous_install(plugin: &Path) -> u64 {
    let bin = plugin.join("bin/frugal");
    std::fs::create_dir_all(bin.parent().unwrap()).unwrap();
    std::fs::hard_link(real_binary(), &bin).unwrap();
    std::fs::metadata(&bin).unwrap().ino()
}

/// bin/ holds the previous backend, untouched and working, and nothing else but what was there.
fn assert_previous_in_place(plugin: &Path, ino: u64) {
    let bin = plugin.join("bin/frugal");
    assert_eq!(
        std::fs::metadata(&bin).unwrap().ino(),
        ino,
        "bin/frugal replaced"
    );
    let out = std::process::Command::new(&bin)
        .arg("--version")
        .output()
        .unwrap();
    assert!(out.status.success());
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        format!("frugal {VERSION}")
    );
    assert_eq!(leftovers(plugin), vec!["frugal".to_string()]);
}

/// What bin/ holds (names, sorted).
fn leftovers(plugin: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(plugin.join("bin"))
        .map(|rd| {
            rd.flatten()
                .map(|e| e.file_name().to_string_lossy().to_string())
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

/// A fake `cargo` that records its arguments and working directory, then exits with `code`.
fn fake_cargo(dir: &Path, code: i32) -> (String, PathBuf) {
    let bin = dir.join("fakebin");
    std::fs::create_dir_all(&bin).unwrap();
    let record = dir.join("cargo.args");
    let script = bin.join("cargo");
    std::fs::write(
        &script,
        format!(
            "#!/bin/sh\necho \"$PWD $*\" >> '{}'\necho '   Compiling frugal v{VERSION}' >&2\nexit {code}\n",
            record.display()
        ),
    )
    .unwrap();
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
    (format!("{}:{}", bin.display(), no_cargo(dir)), record)
}

fn one_edit(server: &FakeOpenRouter) {
    server.push(
        "/chat/completions",
        Reply::sse(answer(&block("b = 2\n", "b = 20\n"), 4, 0.0)),
    );
}

fn assert_one_line(msg: &str) {
    assert!(msg.starts_with("frugal: "), "{msg}");
    assert!(!msg.contains('\n'), "{msg}");
    assert!(msg.chars().count() <= 68, "wider than 68 cells: {msg}");
}

#[tokio::test]
async fn lazy_build_lua_downloads_the_release_and_an_edit_runs_through_it() {
    let server = FakeOpenRouter::start().await;
    serve_real_release(&server);
    let (dir, plugin) = fresh_plugin();
    let mut n = start(&plugin, &server, &no_cargo(dir.path())).await;
    let (msgs, err) = lazy_build(&n, &plugin).await;
    assert_eq!(err, None, "{msgs:?}");
    assert!(
        msgs.iter()
            .any(|m| m.contains(&format!("downloading v{VERSION} for"))),
        "{msgs:?}"
    );
    assert!(
        msgs.last().unwrap().contains("installed backend v"),
        "{msgs:?}"
    );
    let bin = plugin.join("bin/frugal");
    assert_eq!(sha256(&bin), sha256(&real_binary()));
    assert_eq!(std::fs::metadata(&bin).unwrap().mode() & 0o777, 0o755);
    assert_eq!(leftovers(&plugin), vec!["frugal", "frugal.source"]);
    let paths: Vec<String> = server.requests().iter().map(|r| r.path.clone()).collect();
    assert_eq!(
        paths,
        vec![route(&asset()), route("SHA256SUMS")],
        "only the release's two files"
    );

    // An edit end to end through the installed backend.
    one_edit(&server);
    n.open("k.py", SRC).await;
    n.cmd("LlmEdit x").await;
    n.wait_event("FrugalEditDone").await;
    let pid = n.backend_pid().await.expect("running");
    let exe = std::fs::read_link(format!("/proc/{pid}/exe")).unwrap();
    assert_eq!(exe, bin.canonicalize().unwrap());
    n.cmd("LlmAccept!").await;
    assert_eq!(n.lines().await, ["a = 1", "b = 20", "c = 3"]);

    // :checkhealth says both versions and where the backend came from.
    n.cmd("checkhealth frugal").await;
    let text = n
        .lua("return table.concat(vim.api.nvim_buf_get_lines(0, 0, -1, false), '\\n')")
        .await;
    let text = text.as_str().unwrap();
    assert!(
        text.contains(&format!(
            "backend {VERSION} (protocol {P}), plugin {VERSION} (protocol {P})"
        )),
        "{text}"
    );
    assert!(
        text.contains(&format!("downloaded: {}", download_url(&server))),
        "{text}"
    );
    assert!(text.contains(&sha256(&real_binary())), "{text}");
    n.drain();
    assert!(
        !n.notifications().iter().any(|(m, _)| m.contains('≠')),
        "no version mismatch: {:?}",
        n.notifications()
    );
    n.quit().await;
}

#[tokio::test]
async fn llmbuild_checksum_mismatch_installs_nothing_and_does_not_try_cargo() {
    let server = FakeOpenRouter::start().await;
    let (dir, plugin) = fresh_plugin();
    let ino = previous_install(&plugin);
    let (path, record) = fake_cargo(dir.path(), 0);
    let sums = format!("{}  {}\n", "ab".repeat(32), asset());
    serve_release(
        &server,
        file_reply(b"\x7fELF not the release".to_vec()),
        &sums,
    );
    let mut n = start(&plugin, &server, &path).await;
    let (msg, level, detail) = llm_build(&mut n).await;
    assert!(msg.contains("checksum mismatch"), "{msg}");
    assert!(msg.contains("abababab"), "names the expected sum: {msg}");
    assert!(detail.contains(&asset()), "{detail}");
    assert!(detail.contains(&"ab".repeat(32)), "{detail}");
    assert!(detail.contains("cargo not tried"), "{detail}");
    assert_eq!(level, 4);
    assert_one_line(&msg);
    assert!(!record.exists(), "cargo was tried after a mismatch");
    assert_previous_in_place(&plugin, ino);
    n.quit().await;
}

#[tokio::test]
async fn llmbuild_sums_without_the_assets_line_install_nothing() {
    let server = FakeOpenRouter::start().await;
    let (dir, plugin) = fresh_plugin();
    let ino = previous_install(&plugin);
    let (path, record) = fake_cargo(dir.path(), 0);
    let sums = format!("{}  frugal-other\n", "ab".repeat(32));
    serve_release(&server, file_reply(b"\x7fELF".to_vec()), &sums);
    let mut n = start(&plugin, &server, &path).await;
    let (msg, _, detail) = llm_build(&mut n).await;
    assert!(msg.contains("SHA256SUMS"), "{msg}");
    assert!(detail.contains(&asset()), "{detail}");
    assert!(msg.contains("nothing installed"), "{msg}");
    assert_one_line(&msg);
    assert!(!record.exists(), "cargo was tried");
    assert_previous_in_place(&plugin, ino);
    n.quit().await;
}

#[tokio::test]
async fn llmbuild_an_archive_in_place_of_the_executable_is_refused() {
    let server = FakeOpenRouter::start().await;
    let (dir, plugin) = fresh_plugin();
    let ino = previous_install(&plugin);
    // A gzip (a tarball holding anything) whose sum the release does list.
    let tgz = dir.path().join("a.tgz");
    std::fs::write(&tgz, b"\x1f\x8b\x08\x00 a tarball with ../../etc in it").unwrap();
    let sums = format!("{}  {}\n", sha256(&tgz), asset());
    serve_release(&server, file_reply(std::fs::read(&tgz).unwrap()), &sums);
    let mut n = start(&plugin, &server, &no_cargo(dir.path())).await;
    let (msg, _, _) = llm_build(&mut n).await;
    assert!(msg.contains("is not an executable"), "{msg}");
    assert_previous_in_place(&plugin, ino);
    n.quit().await;
}

#[tokio::test]
async fn llmbuild_cut_download_installs_nothing_and_says_what_to_do_without_cargo() {
    let server = FakeOpenRouter::start().await;
    let (dir, plugin) = fresh_plugin();
    let ino = previous_install(&plugin);
    let body = std::fs::read(real_binary()).unwrap();
    let mut cut = file_reply(body[..body.len() / 2].to_vec());
    cut.headers[1].1 = body.len().to_string();
    cut.parts.push(Part::Reset);
    server.push(&route(&asset()), cut);
    let mut n = start(&plugin, &server, &no_cargo(dir.path())).await;
    let (msg, level, detail) = llm_build(&mut n).await;
    assert_eq!(
        msg,
        "frugal: download failed, no cargo to build: see :h frugal-build"
    );
    assert!(
        detail.contains("curl: (18)") || detail.contains("curl: (56)"),
        "{detail}"
    );
    assert_eq!(level, 4);
    assert_one_line(&msg);
    assert_previous_in_place(&plugin, ino);
    n.quit().await;
}

#[tokio::test]
async fn missing_asset_with_no_cargo_fails_build_lua_with_what_to_do() {
    let server = FakeOpenRouter::start().await;
    server.push(&route(&asset()), Reply::status(404, &[], "Not Found"));
    let (dir, plugin) = fresh_plugin();
    let n = start(&plugin, &server, &no_cargo(dir.path())).await;
    let (_msgs, err) = lazy_build(&n, &plugin).await;
    let err = err.expect("build.lua raises for lazy to show");
    assert!(
        err.contains(&format!("release v{VERSION} has no {}", asset())),
        "{err}"
    );
    assert!(err.contains("no cargo on PATH"), "{err}");
    assert!(err.contains(":LlmBuild"), "{err}");
    assert_eq!(leftovers(&plugin), Vec::<String>::new());
    // The shim says how to get a backend.
    let mut n = n;
    n.open("k.py", SRC).await;
    n.cmd("LlmEdit x").await;
    let (msg, _) = n.wait_notify("no backend installed").await;
    assert!(msg.contains(":LlmBuild"), "{msg}");
    n.quit().await;
}

#[tokio::test]
async fn unreachable_download_url_installs_nothing() {
    let server = FakeOpenRouter::start().await;
    let (dir, plugin) = fresh_plugin();
    let ino = previous_install(&plugin);
    let mut n = Nvim::start_with(
        &server.url,
        &[
            ("FRUGAL_ROOT", plugin.to_str().unwrap()),
            ("FRUGAL_BIN", ""),
            ("PATH", no_cargo(dir.path()).as_str()),
            // Setup's download_url: nothing listens on port 1.
            (
                "FRUGAL_SETUP",
                r#"{"download_url": "http://127.0.0.1:1/dl"}"#,
            ),
        ],
    )
    .await;
    let (msg, _, detail) = llm_build(&mut n).await;
    assert_eq!(
        msg,
        "frugal: download failed, no cargo to build: see :h frugal-build"
    );
    assert!(detail.contains("127.0.0.1:1"), "{detail}");
    assert_previous_in_place(&plugin, ino);
    n.quit().await;
}

#[tokio::test]
async fn no_asset_falls_back_to_cargo_and_a_checkout_off_the_tag_builds_without_downloading() {
    let server = FakeOpenRouter::start().await;
    server.push(&route(&asset()), Reply::status(404, &[], "Not Found"));
    let (dir, plugin) = fresh_plugin();
    let (path, record) = fake_cargo(dir.path(), 0);
    let mut n = start(&plugin, &server, &path).await;
    let (msg, level, _) = llm_build(&mut n).await;
    assert_eq!(msg, "frugal: built the backend with cargo");
    assert_eq!(level, 2);
    let plugin_real = plugin.canonicalize().unwrap();
    assert_eq!(
        std::fs::read_to_string(&record).unwrap(),
        format!("{} build --release\n", plugin_real.display())
    );
    n.drain();
    assert!(
        n.notifications()
            .iter()
            .any(|(m, _)| m == "frugal: no release asset; building with cargo (minutes)…"),
        "progress says why: {:?}",
        n.notifications()
    );
    n.quit().await;

    // A git checkout at a commit that is not the release tag: cargo, no download.
    std::fs::remove_file(&record).unwrap();
    git(&plugin, &["init", "-q"]);
    git(&plugin, &["add", "."]);
    git(&plugin, &["commit", "-q", "-m", "x"]);
    let before = server.requests().len();
    let mut n = start(&plugin, &server, &path).await;
    let (msg, _, _) = llm_build(&mut n).await;
    assert_eq!(msg, "frugal: built the backend with cargo");
    assert!(record.exists());
    assert_eq!(server.requests().len(), before, "nothing downloaded");
    n.drain();
    assert!(
        n.notifications()
            .iter()
            .any(|(m, _)| m.contains(&format!("not at v{VERSION}"))),
        "{:?}",
        n.notifications()
    );
    n.quit().await;
}

#[tokio::test]
async fn a_second_llmbuild_is_refused_while_one_runs_and_the_backend_restarts_after() {
    let server = FakeOpenRouter::start().await;
    let gate = std::sync::Arc::new(tokio::sync::Notify::new());
    let sum = sha256(&real_binary());
    let mut held = file_reply(std::fs::read(real_binary()).unwrap());
    held.parts.insert(0, Part::Gate(gate.clone()));
    serve_release(&server, held, &format!("{sum}  {}\n", asset()));
    let (dir, plugin) = fresh_plugin();
    let ino = previous_install(&plugin);
    let mut a = start(&plugin, &server, &no_cargo(dir.path())).await;
    a.lua("require('frugal.rpc').ensure()").await;
    let old_pid = a.backend_pid().await.expect("the previous backend runs");
    let api = a.api.clone();
    let first = tokio::spawn(async move { api.command("LlmBuild").await });
    let asset_route = route(&asset());
    server
        .wait_until("the download started", |s| {
            s.requests().iter().any(|r| r.path == asset_route)
        })
        .await;
    let mut b = start(&plugin, &server, &no_cargo(dir.path())).await;
    let (msg, level, _) = llm_build(&mut b).await;
    assert!(msg.contains("already running"), "{msg}");
    assert!(
        msg.contains(&format!("pid {}", a.lua("return vim.fn.getpid()").await)),
        "{msg}"
    );
    assert_eq!(level, 4);
    assert_one_line(&msg);
    assert_eq!(
        std::fs::metadata(plugin.join("bin/frugal")).unwrap().ino(),
        ino
    );
    gate.notify_one();
    tokio::time::timeout(BUILD_DEADLINE, first)
        .await
        .expect("the first build ended")
        .unwrap()
        .unwrap();
    let (msg, _) = a.wait_notify("installed backend").await;
    assert_one_line(&msg);
    assert_ne!(
        std::fs::metadata(plugin.join("bin/frugal")).unwrap().ino(),
        ino
    );
    assert_eq!(leftovers(&plugin), vec!["frugal", "frugal.source"]);
    // The old backend was stopped; the next command starts the new one.
    wait_dead(old_pid).await;
    assert!(a.backend_pid().await.is_none());
    a.lua("require('frugal.rpc').ensure()").await;
    let new_pid = a.backend_pid().await.expect("restarted");
    assert_ne!(new_pid, old_pid);
    a.quit().await;
    b.quit().await;
}

#[tokio::test]
async fn a_backend_of_another_version_is_named_once_per_start() {
    let server = FakeOpenRouter::start().await;
    let (_dir, plugin) = fresh_plugin();
    std::fs::write(
        plugin.join("lua/frugal/version.lua"),
        "return { version = \"9.9.9\", protocol = 999 }\n",
    )
    .unwrap();
    let mut n = Nvim::start_with(&server.url, &[("FRUGAL_ROOT", plugin.to_str().unwrap())]).await;
    n.lua("require('frugal.rpc').ensure()").await;
    let (msg, level) = n.wait_notify("≠").await;
    assert_eq!(
        msg,
        format!("frugal: backend {VERSION} ≠ plugin 9.9.9 (protocol {P} ≠ 999): :LlmBuild")
    );
    assert_eq!(level, 3);
    assert_one_line(&msg);
    n.lua("require('frugal.rpc').ensure() require('frugal.rpc').reconfigure()")
        .await;
    n.lua("require('frugal.rpc').request('version')").await;
    n.drain();
    let count = |n: &Nvim| {
        n.notifications()
            .iter()
            .filter(|(m, _)| m.contains('≠'))
            .count()
    };
    assert_eq!(count(&n), 1, "{:?}", n.notifications());
    // A new start says it again.
    n.lua("require('frugal.rpc').stop() require('frugal.rpc').ensure()")
        .await;
    n.drain();
    assert_eq!(count(&n), 2, "{:?}", n.notifications());
    n.cmd("checkhealth frugal").await;
    let text = n
        .lua("return table.concat(vim.api.nvim_buf_get_lines(0, 0, -1, false), '\\n')")
        .await;
    let text = text.as_str().unwrap();
    assert!(
        text.contains(&format!(
            "backend {VERSION} (protocol {P}), plugin 9.9.9 (protocol 999)"
        )),
        "{text}"
    );
    assert!(text.contains("from setup({ binary = ... })"), "{text}");
    n.quit().await;
}

#[tokio::test]
async fn help_works_from_a_plain_checkout_after_the_readmes_helptags() {
    let server = FakeOpenRouter::start().await;
    let (dir, plugin) = fresh_plugin();
    let n = start(&plugin, &server, &no_cargo(dir.path())).await;
    // The README's quick-start: `nvim --cmd "set rtp^=$PWD" -c "helptags doc"` in the checkout.
    n.cmd(&format!("cd {}", plugin.display())).await;
    n.cmd("helptags doc").await;
    n.cmd("help frugal").await;
    let name = n.lua("return vim.fn.expand('%:t')").await;
    assert_eq!(name.as_str(), Some("frugal.txt"));
    n.cmd("help :LlmBuild").await;
    n.cmd("help frugal-download_url").await;
    n.quit().await;
}

/// The versions the plugin, Cargo.toml and the protocol state agree; lazy.lua names every
/// command; the README's install line is the one SPEC fixes.
#[test]
fn versions_commands_and_the_install_line_agree() {
    let read = |p: &str| std::fs::read_to_string(root().join(p)).unwrap();
    let version = read("lua/frugal/version.lua");
    assert!(
        version.contains(&format!("version = \"{VERSION}\"")),
        "lua/frugal/version.lua is not Cargo.toml's {VERSION}"
    );
    assert!(
        version.contains(&format!("protocol = {},", frugal::protocol::PROTOCOL)),
        "lua/frugal/version.lua's protocol is not src/protocol.rs's"
    );
    let plugin = read("plugin/frugal.lua");
    let mut defined: Vec<&str> = plugin
        .split("cmd(\"")
        .skip(1)
        .map(|s| s.split('"').next().unwrap())
        .collect();
    let lazy = read("lazy.lua");
    let mut listed: Vec<&str> = lazy.split('"').filter(|s| s.starts_with("Llm")).collect();
    defined.sort();
    listed.sort();
    assert_eq!(
        defined, listed,
        "lazy.lua's cmd is not plugin/frugal.lua's commands"
    );
    assert!(lazy.contains("\"frugal-nvim/frugal.nvim\""));
    let readme = read("README.md");
    assert!(readme.contains(
        "{ \"frugal-nvim/frugal.nvim\", version = \"*\", build = \":LlmBuild\", opts = {"
    ));
    let cargo = read("Cargo.toml");
    assert!(cargo.contains("rust-version = \"1.88\""));
    assert!(
        readme.contains("Rust 1.88"),
        "the README states the Rust version"
    );
}
