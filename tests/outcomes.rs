//! Hunk outcomes end to end: an edit's hunks are recorded against its ledger row when they
//! are shown, and each fate as it happens (accepted, rejected, replaced by a follow-up,
//! abandoned when the buffer closes or Neovim quits); `frugal usage --json` and `:LlmUsage`
//! show the share accepted and the cost per accepted hunk.

mod common;
use common::*;
use std::path::Path;
use std::time::Instant;

const SRC: &[&str] = &["a = 1", "b = 2", "c = 3", "d = 4", "e = 5"];

/// Three blocks, one per odd line: three hunks.
fn three_blocks() -> String {
    format!(
        "{}{}{}",
        block("a = 1\n", "a = 10\n"),
        block("c = 3\n", "c = 30\n"),
        block("e = 5\n", "e = 50\n")
    )
}

/// `(request_id, hunk, fate)` of every hunk outcome, in order.
fn outcomes(data: &Path) -> Vec<(i64, i64, String)> {
    let Ok(conn) = rusqlite::Connection::open(ledger_path(data)) else {
        return Vec::new();
    };
    let Ok(mut stmt) =
        conn.prepare("SELECT request_id, hunk, fate FROM hunk_outcomes ORDER BY 1, 2")
    else {
        return Vec::new();
    };
    stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .unwrap()
        .map(Result::unwrap)
        .collect()
}

/// The fates of the hunk outcomes, once they are `want` (polled with the deadline).
async fn wait_fates(data: &Path, want: &[&str]) -> Vec<(i64, i64, String)> {
    let end = Instant::now() + DEADLINE;
    loop {
        let got = outcomes(data);
        if got.iter().map(|o| o.2.as_str()).eq(want.iter().copied()) {
            return got;
        }
        assert!(Instant::now() < end, "fates {got:?}, never {want:?}");
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}

fn data_dir(n: &Nvim) -> std::path::PathBuf {
    n.home.path().join("data/nvim/frugal")
}

/// `frugal usage --json` for the project.
fn usage_json(data: &Path, root: &Path) -> serde_json::Value {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_frugal"))
        .args(["usage", "--json", "--data-dir"])
        .arg(data)
        .arg("--project")
        .arg(root)
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    serde_json::from_slice(&out.stdout).unwrap()
}

/// An edit with 3 hunks: accept 2, reject 1. The ledger holds the 3 against the edit's row
/// with their fates; `frugal usage --json` gives 3 proposed, 2 accepted and the edit's cost
/// over 2; `:LlmUsage` shows the share and the forecast.
#[tokio::test]
async fn two_of_three_accepted_give_the_share_and_the_cost_per_accepted_hunk() {
    let server = FakeOpenRouter::start().await;
    server.push(
        "/chat/completions",
        Reply::sse(answer(&three_blocks(), 9, 0.006)),
    );
    let mut n = Nvim::start(&server.url).await;
    n.open("a.py", SRC).await;
    // The done notification takes two rows at 80 columns (today's wording, another issue's
    // to shorten): room for it, so that no hit-enter prompt stands between here and the float.
    n.cmd("set cmdheight=2").await;
    n.cmd("LlmEdit bump").await;
    let done = n.wait_event("FrugalEditDone").await;
    assert_eq!(field(&done, "hunks").as_u64(), Some(3));
    let data = data_dir(&n);
    let proposed = wait_fates(&data, &["proposed", "proposed", "proposed"]).await;
    let row: i64 = rusqlite::Connection::open(ledger_path(&data))
        .unwrap()
        .query_row("SELECT id FROM requests", [], |r| r.get(0))
        .unwrap();
    assert!(proposed.iter().all(|o| o.0 == row), "{proposed:?}");
    n.cmd("call cursor(1, 1)").await;
    n.cmd("LlmAccept").await;
    n.cmd("call cursor(5, 1)").await;
    n.cmd("LlmReject").await;
    n.cmd("call cursor(3, 1)").await;
    n.cmd("LlmAccept").await;
    let fates = wait_fates(&data, &["accepted", "accepted", "rejected"]).await;
    assert_eq!(
        fates.iter().map(|o| o.1).collect::<Vec<_>>(),
        [1, 2, 3],
        "numbered in answer order"
    );

    let root = n.home.path().join("proj").canonicalize().unwrap();
    let v = usage_json(&data, &root);
    let m = &v["models"][0];
    assert_eq!(m["hunks_proposed"], 3);
    assert_eq!(m["hunks_accepted"], 2);
    assert_eq!(m["cost_per_accepted_hunk"]["picos"], 3_000_000_000_i64);
    assert_eq!(m["cost_per_accepted_hunk"]["text"], "$0.0030");
    assert!(
        v["spend"]["forecast"]["month_end"]["picos"]
            .as_i64()
            .unwrap()
            >= 6_000_000_000
    );

    n.cmd("LlmUsage").await;
    let end = Instant::now() + DEADLINE;
    let text = loop {
        let t = n
            .lua("return table.concat(vim.api.nvim_buf_get_lines(0, 0, -1, false), '\\n')")
            .await
            .as_str()
            .unwrap()
            .to_string();
        if t.contains("Hunks accepted") || Instant::now() > end {
            break t;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    };
    let share = text
        .lines()
        .find(|l| l.contains("2/3"))
        .unwrap_or_else(|| panic!("no share in:\n{text}"));
    assert_eq!(
        share.split_whitespace().collect::<Vec<_>>(),
        ["anthropic/claude-sonnet-4.5", "2/3", "66%", "$0.0030"]
    );
    assert!(text.contains("at this pace ~$"), "{text}");
    n.quit().await;
}

/// A follow-up's answer replaces the pending hunks: `replaced`, and the follow-up's own hunk
/// is recorded against its own row.
#[tokio::test]
async fn a_follow_up_replaces_the_pending_hunks() {
    let server = FakeOpenRouter::start().await;
    server.push(
        "/chat/completions",
        Reply::sse(answer(&three_blocks(), 9, 0.002)),
    );
    server.push(
        "/chat/completions",
        Reply::sse(answer(&block("b = 2\n", "b = 22\n"), 9, 0.001)),
    );
    let mut n = Nvim::start(&server.url).await;
    n.open("a.py", SRC).await;
    n.cmd("LlmEdit bump").await;
    n.wait_event("FrugalEditDone").await;
    let data = data_dir(&n);
    wait_fates(&data, &["proposed", "proposed", "proposed"]).await;
    n.cmd("call cursor(1, 1)").await;
    n.cmd("LlmAccept").await;
    // With hunks pending, a new edit is a follow-up.
    n.cmd("LlmEdit more").await;
    n.wait_event("FrugalEditDone").await;
    let got = wait_fates(&data, &["accepted", "replaced", "replaced", "proposed"]).await;
    assert_ne!(got[0].0, got[3].0, "the follow-up is its own row");
    n.quit().await;
}

/// Closing a buffer with pending hunks abandons them.
#[tokio::test]
async fn closing_the_buffer_abandons_its_hunks() {
    let server = FakeOpenRouter::start().await;
    server.push(
        "/chat/completions",
        Reply::sse(answer(&three_blocks(), 9, 0.002)),
    );
    let mut n = Nvim::start(&server.url).await;
    n.open("a.py", SRC).await;
    n.cmd("LlmEdit bump").await;
    n.wait_event("FrugalEditDone").await;
    let data = data_dir(&n);
    wait_fates(&data, &["proposed", "proposed", "proposed"]).await;
    n.cmd("call cursor(3, 1)").await;
    n.cmd("LlmReject").await;
    n.cmd("bwipeout!").await;
    wait_fates(&data, &["abandoned", "rejected", "abandoned"]).await;
    n.quit().await;
}

/// Quitting Neovim with hunks pending abandons them (at exit); a backend killed with them
/// pending leaves them `proposed` until the next backend starts and finds it gone.
#[tokio::test]
async fn quitting_or_crashing_with_pending_hunks_abandons_them() {
    let server = FakeOpenRouter::start().await;
    for _ in 0..2 {
        server.push(
            "/chat/completions",
            Reply::sse(answer(&three_blocks(), 9, 0.002)),
        );
    }
    // Quit.
    let mut n = Nvim::start(&server.url).await;
    n.open("a.py", SRC).await;
    n.cmd("LlmEdit bump").await;
    n.wait_event("FrugalEditDone").await;
    let data = data_dir(&n);
    wait_fates(&data, &["proposed", "proposed", "proposed"]).await;
    let pid = n.backend_pid().await.expect("a backend");
    let home = n.home.path().to_path_buf();
    let keep = std::mem::replace(&mut n.home, tempfile::tempdir().unwrap());
    n.quit().await;
    wait_dead(pid).await;
    wait_fates(&data, &["abandoned", "abandoned", "abandoned"]).await;

    // Crash: the backend dies with the hunks pending; the next one abandons them.
    let xdg = home.join("data");
    let env = [("XDG_DATA_HOME", xdg.to_str().unwrap())];
    let mut n = Nvim::start_with(&server.url, &env).await;
    let data = home.join("data/nvim/frugal");
    n.open("a.py", SRC).await;
    n.cmd("LlmEdit bump").await;
    n.wait_event("FrugalEditDone").await;
    let pending = [
        "abandoned",
        "abandoned",
        "abandoned",
        "proposed",
        "proposed",
        "proposed",
    ];
    wait_fates(&data, &pending).await;
    let pid = n.backend_pid().await.expect("a backend");
    kill9(pid);
    wait_dead(pid).await;
    n.quit().await;
    assert_eq!(
        outcomes(&data).iter().filter(|o| o.2 == "proposed").count(),
        3,
        "a killed backend abandons nothing itself"
    );
    let n = Nvim::start_with(&server.url, &env).await;
    // Any call starts the backend, which looks for the hunks of gone processes.
    n.lua("require('frugal.rpc').ensure()").await;
    wait_fates(&data, &["abandoned"; 6]).await;
    n.quit().await;
    drop(keep);
}

/// What a person sees at 80 columns: the float shows the model's share and cost per accepted
/// hunk, and the forecast line, each whole on screen (not cut at the float's edge), and no
/// prompt waits for Enter.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_float_shows_the_share_and_the_forecast_at_80_columns() {
    let server = FakeOpenRouter::start().await;
    server.push(
        "/chat/completions",
        Reply::sse(answer(&three_blocks(), 9, 0.006)),
    );
    let mut n = Nvim::start_ui(&server.url, &[], 80, 40).await;
    n.open("a.py", SRC).await;
    // The done notification takes two rows at 80 columns (today's wording, another issue's
    // to shorten): room for it, so that no hit-enter prompt stands between here and the float.
    n.cmd("set cmdheight=2").await;
    n.cmd("LlmEdit bump").await;
    let done = n.wait_event("FrugalEditDone").await;
    assert_eq!(
        field(&done, "hunks").as_u64(),
        Some(3),
        "{}",
        n.screen().await.dump()
    );
    let data = data_dir(&n);
    wait_fates(&data, &["proposed", "proposed", "proposed"]).await;
    n.cmd("call cursor(1, 1)").await;
    n.cmd("LlmAccept").await;
    n.cmd("call cursor(3, 1)").await;
    n.cmd("LlmReject").await;
    wait_fates(&data, &["accepted", "rejected", "proposed"]).await;
    n.cmd("LlmUsage").await;
    let s = n
        .wait_screen("the share and the forecast", |s| {
            s.find("1/3").is_some() && s.find("at this pace").is_some()
        })
        .await;
    let (r, _) = s.find("1/3").unwrap();
    let share = s.row(r);
    assert!(
        share.contains("33%") && share.contains("$0.0060"),
        "{}",
        s.dump()
    );
    // Whole on screen: the float's right border follows the text on the same row.
    let (r, _) = s.find("at this pace").unwrap();
    let line = s.row(r);
    let end = line.find("this month").expect("the line is whole") + "this month".len();
    assert!(line[end..].contains('│'), "cut at the edge:\n{}", s.dump());
    assert!(share.trim_end().ends_with('│'), "{}", s.dump());
    assert!(!s.hit_enter(), "{}", s.dump());
}

/// A fate given just before Neovim quits is the one recorded: the queued outcomes go to the
/// backend before it is stopped (they were sent a tick later, and the exit abandoned them).
#[tokio::test]
async fn a_reject_right_before_quitting_is_recorded_as_rejected() {
    let server = FakeOpenRouter::start().await;
    server.push(
        "/chat/completions",
        Reply::sse(answer(&three_blocks(), 9, 0.002)),
    );
    let mut n = Nvim::start(&server.url).await;
    n.open("a.py", SRC).await;
    n.cmd("LlmEdit bump").await;
    n.wait_event("FrugalEditDone").await;
    let data = data_dir(&n);
    wait_fates(&data, &["proposed", "proposed", "proposed"]).await;
    let pid = n.backend_pid().await.expect("a backend");
    let keep = std::mem::replace(&mut n.home, tempfile::tempdir().unwrap());
    // The reject and the quit in the same tick.
    let _ = n
        .api
        .exec_lua("vim.cmd('LlmReject!') vim.cmd('qa!')", vec![])
        .await;
    n.quit().await;
    wait_dead(pid).await;
    wait_fates(&data, &["rejected", "rejected", "rejected"]).await;
    drop(keep);
}

/// Hunks proposed again by `:LlmApply` count once, for their original request: an outcome is
/// kept under its block's ordinal in the answer, which the same answer gives again whatever
/// matches now (a block that matched nowhere, or no longer matches, shifts the labels' numbers,
/// not the rows).
#[tokio::test]
async fn a_hunk_proposed_again_by_apply_counts_once_for_its_request() {
    let server = FakeOpenRouter::start().await;
    // Block 1 matches nowhere; blocks 2 and 3 are the edit's hunks 1/2 and 2/2.
    let text = format!(
        "{}{}{}",
        block("zzz = 9\n", "zzz = 90\n"),
        block("a = 1\n", "a = 10\n"),
        block("c = 3\n", "c = 30\n")
    );
    server.push("/chat/completions", Reply::sse(answer(&text, 9, 0.002)));
    let mut n = Nvim::start(&server.url).await;
    let path = n.open("a.py", SRC).await;
    n.cmd("LlmEdit bump").await;
    let done = n.wait_event("FrugalEditDone").await;
    assert_eq!(field(&done, "hunks").as_u64(), Some(2));
    let data = data_dir(&n);
    wait_fates(&data, &["proposed", "proposed"]).await;
    let row = outcomes(&data)[0].0;
    assert_eq!(
        outcomes(&data).iter().map(|o| o.1).collect::<Vec<_>>(),
        [2, 3],
        "kept under the blocks' ordinals"
    );
    // Accept the first (block 2), keep it on disk, close the buffer: block 3 is abandoned.
    n.cmd("call cursor(1, 1)").await;
    n.cmd("LlmAccept").await;
    n.cmd("write").await;
    n.cmd("bwipeout!").await;
    wait_fates(&data, &["accepted", "abandoned"]).await;
    // The answer applied again: only block 3 still matches; it is hunk 1/1 on screen, and
    // accepting it settles the original request's row for block 3.
    n.cmd(&format!("edit {}", path.display())).await;
    n.lua_args(
        "local text, row = ... vim.b.frugal_answer = { text = text, request = row, buf = vim.api.nvim_get_current_buf() }",
        vec![text.clone().into(), row.into()],
    )
    .await;
    n.cmd("LlmApply").await;
    let applied = n.wait_event("FrugalEditDone").await;
    assert_eq!(field(&applied, "hunks").as_u64(), Some(1));
    n.cmd("call cursor(3, 1)").await;
    n.cmd("LlmAccept").await;
    let fates = wait_fates(&data, &["accepted", "accepted"]).await;
    assert_eq!(
        fates,
        [(row, 2, "accepted".into()), (row, 3, "accepted".into())]
    );
    n.quit().await;
}
