//! How a proposed hunk looks, read from a real Neovim's screen (a UI attached) and its
//! extmarks: only the lines it changes are marked, new lines fill the window's width, signs,
//! labels `frugal k/N <instruction>`, `:LlmHunks`, and a judge's verdict wrapped in full (SPEC,
//! "Reviewing a proposal: what a person sees").

mod common;
use common::screen::Snapshot;
use common::*;

const PY: &[&str] = &[
    "import math",
    "def report(items):",
    "    total = 0",
    "    for item in items:",
    "        total += item.price",
    "    print(total)",
    "    return total",
    "",
    "print(report([]))",
];

/// The 7-line block (lines 2-8) with only `print(total)` changed.
fn one_line_answer() -> String {
    let old = PY[1..8].join("\n") + "\n";
    let new = old.replace("    print(total)\n", "    print(round(total, 2))\n");
    format!("Here.\n{}", block(&old, &new))
}

/// Messages are another helper's (issue 17, "one line, never a prompt"): kept off the screen
/// here so that a long one cannot scroll the picture this test reads.
async fn quiet(n: &Nvim) {
    n.lua("vim.notify = function() end").await;
}

/// Whether the cell is drawn with `group` (ext_hlstate names the group a link ends at, so
/// the link's target counts too).
fn drawn_with(s: &Snapshot, r: usize, c: usize, group: &str, target: &str) -> bool {
    s.groups_at(r, c).iter().any(|g| g == group || g == target)
}

/// Screen column of the text (after the sign column) in a window with signs shown.
const TEXT: usize = 2;

async fn one_line_change_at(width: i64) {
    let server = FakeOpenRouter::start().await;
    server.push(
        "/chat/completions",
        Reply::sse(answer(&one_line_answer(), 9, 0.001)),
    );
    let mut n = Nvim::start_ui(&server.url, &[], width, 24).await;
    quiet(&n).await;
    n.open("report.py", PY).await;
    n.cmd("2,8LlmEdit round the total\x07 to cents").await;
    n.wait_event("FrugalEditDone").await;
    let w = width as usize;
    let s = n
        .wait_screen("the hunk and its label", |s| {
            s.contains("print(round(total, 2))") && s.contains("frugal 1/1")
        })
        .await;
    let d = s.dump();
    // Rows: 0 import, 1 def (label), 2..4 unchanged, 5 print (changed), 6 the new line,
    // 7 return, 8 blank, 9 print(report).
    assert!(s.row(5).contains("    print(total)"), "{d}");
    assert!(s.row(6).contains("    print(round(total, 2))"), "{d}");
    assert!(s.row(7).contains("    return total"), "{d}");
    let del = |r: usize, c: usize| drawn_with(&s, r, c, "FrugalDelete", "DiffDelete");
    // Only the changed line is marked; the block's six other lines stay plain.
    assert!(del(5, TEXT + 4), "{:?}\n{d}", s.groups_at(5, TEXT + 4));
    for r in [1, 2, 3, 4, 7, 8] {
        assert!(
            !del(r, TEXT + 1),
            "row {r} marked: {:?}\n{d}",
            s.groups_at(r, TEXT + 1)
        );
        assert_eq!(&s.row(r)[..TEXT].trim(), &"", "no sign on row {r}\n{d}");
    }
    // A sign on the changed line, a mark in the same column on the added line.
    assert_eq!(s.row(5).chars().next(), Some('~'), "{d}");
    assert!(
        drawn_with(&s, 5, 0, "FrugalSignChange", "Changed"),
        "{:?}",
        s.groups_at(5, 0)
    );
    assert_eq!(s.row(6).chars().next(), Some('+'), "{d}");
    // The added line's background runs to the window's edge; its changed words stand out.
    let add_bg = n.hl_bg("FrugalAdd").await;
    assert!(add_bg.is_some());
    for c in [TEXT, TEXT + 30, w - 1] {
        assert_eq!(s.bg_at(6, c), add_bg, "col {c}\n{d}");
    }
    let (_, round) = s.find("round(").unwrap();
    assert!(
        drawn_with(&s, 6, round, "FrugalAddText", "DiffText"),
        "{:?}",
        s.groups_at(6, round)
    );
    assert!(
        !drawn_with(&s, 6, TEXT + 4, "FrugalAddText", "DiffText"),
        "`print` is unchanged"
    );
    assert_eq!(s.bg_at(6, round), n.hl_bg("FrugalAddText").await);
    // The label says which hunk of how many and of which instruction, with no control character.
    assert!(
        s.row(1).contains("frugal 1/1 round the total to cents"),
        "{d}"
    );
    assert!(
        !s.row(1).contains("^G") && !s.row(1).contains('\u{7}'),
        "{d}"
    );
    assert!(!s.hit_enter(), "{d}");
    // For the closing note (shown with --nocapture).
    println!("after an edit, {width} columns:\n{d}");
    n.quit().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_one_line_change_in_a_seven_line_block_at_80_columns() {
    one_line_change_at(80).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_one_line_change_in_a_seven_line_block_at_120_columns() {
    one_line_change_at(120).await;
}

/// Blank added lines are drawn full width too, and the padding follows a resized window.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn blank_new_lines_fill_the_width_and_follow_a_resize() {
    let server = FakeOpenRouter::start().await;
    let text = block("    total = 0\n", "    total = 0\n\n\n");
    server.push("/chat/completions", Reply::sse(answer(&text, 9, 0.001)));
    let mut n = Nvim::start_ui(&server.url, &[], 80, 24).await;
    quiet(&n).await;
    n.open("report.py", PY).await;
    n.cmd("3LlmEdit space it out").await;
    n.wait_event("FrugalEditDone").await;
    let add_bg = n.hl_bg("FrugalAdd").await;
    let s = n
        .wait_screen("two blank added lines", |s| {
            s.bg_at(3, 79) == add_bg && s.bg_at(4, 79) == add_bg
        })
        .await;
    assert!(
        s.row(3).trim_start_matches('+').trim().is_empty(),
        "{}",
        s.dump()
    );
    assert_eq!(s.row(3).chars().next(), Some('+'), "{}", s.dump());
    assert!(s.row(5).contains("for item in items:"), "{}", s.dump());
    // The unchanged line the block matched is not marked.
    assert!(!drawn_with(&s, 2, TEXT + 4, "FrugalDelete", "DiffDelete"));
    n.resize_ui(120, 24).await;
    let s = n
        .wait_screen("padding to 120 columns", |s| s.bg_at(3, 119) == add_bg)
        .await;
    assert_eq!(s.bg_at(4, 119), add_bg, "{}", s.dump());
    n.quit().await;
}

const A: &[&str] = &[
    "local b = require('b')",
    "",
    "local function run()",
    "  return b.old_name(1)",
    "end",
    "",
    "return run",
];

const B: &[&str] = &[
    "local M = {}",
    "",
    "function M.old_name(x)",
    "  return x + 1",
    "end",
    "",
    "return M",
];

/// A project (`proj/` with a `.git`) holding `src/b.lua` on disk, and `src/a.lua` open.
async fn project(n: &Nvim) -> std::path::PathBuf {
    let root = n.home.path().join("proj");
    std::fs::create_dir_all(root.join(".git")).unwrap();
    std::fs::create_dir_all(root.join("src")).unwrap();
    std::fs::write(root.join("src/b.lua"), B.join("\n") + "\n").unwrap();
    n.open("src/a.lua", A).await;
    root
}

/// The quickfix list as `(text, lnum, col)`, and its title.
async fn quickfix(n: &Nvim) -> (Vec<(String, u64, u64)>, String) {
    let v = n
        .lua(
            "return { vim.tbl_map(function(i) return { i.text, i.lnum, i.col } end, vim.fn.getqflist()),
                      vim.fn.getqflist({ title = 1 }).title }",
        )
        .await;
    let v = v.as_array().unwrap();
    let items = v[0]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| {
            let i = i.as_array().unwrap();
            (
                i[0].as_str().unwrap().to_string(),
                i[1].as_u64().unwrap(),
                i[2].as_u64().unwrap(),
            )
        })
        .collect();
    (items, v[1].as_str().unwrap().to_string())
}

/// A two-file edit: each hunk's label numbers it in the edit (`1/2` in a.lua, `2/2` in b.lua,
/// answer order), `k/…` while it streams; `:LlmHunks` lists `[k/N] old → new` at the changed
/// word, titled with the instruction, and with each instruction once two edits are pending.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_two_file_edit_labels_its_hunks_and_lists_them_in_quickfix() {
    let server = FakeOpenRouter::start().await;
    let text = format!(
        "src/a.lua\n{}\nsrc/b.lua\n{}",
        block("  return b.old_name(1)\n", "  return b.new_name(1)\n"),
        block("function M.old_name(x)\n", "function M.new_name(x)\n"),
    );
    // The answer waits after the first block until the test has seen `1/…`.
    let cut = text.find("src/b.lua").unwrap();
    let gate = std::sync::Arc::new(tokio::sync::Notify::new());
    let mut tail = chunk(&text[cut..]);
    tail.push_str(&finish_chunk("stop"));
    tail.push_str(&usage_chunk(120, 40, 0.0));
    tail.push_str("data: [DONE]\n\n");
    let parts = vec![
        Part::Bytes(format!(": OPENROUTER PROCESSING\n\n{}", chunk(&text[..cut])).into_bytes()),
        Part::Gate(gate.clone()),
        Part::Bytes(tail.into_bytes()),
    ];
    server.push("/chat/completions", Reply::sse(parts));
    let mut n = Nvim::start_ui(&server.url, &[], 80, 24).await;
    quiet(&n).await;
    let root = project(&n).await;
    n.cmd("LlmContext add src/b.lua").await;
    n.cmd("3,5LlmEdit rename old_name to new_name").await;
    let s = n
        .wait_screen("the first hunk while streaming", |s| {
            s.contains("frugal 1/… rename old_name to new_name")
        })
        .await;
    // On the code's own row (the progress line above the range pushes the rows down one).
    let (row, _) = s.find("frugal 1/…").unwrap();
    assert!(s.row(row).contains("return b.old_name(1)"), "{}", s.dump());
    gate.notify_one();
    n.wait_event("FrugalEditDone").await;
    let s = n
        .wait_screen("the label once done", |s| {
            s.contains("frugal 1/2 rename old_name to new_name")
        })
        .await;
    assert!(
        s.row(3).contains("frugal 1/2"),
        "on the hunk's line:\n{}",
        s.dump()
    );
    n.cmd(&format!("buffer {}", root.join("src/b.lua").display()))
        .await;
    let s = n
        .wait_screen("b.lua's label", |s| {
            s.contains("frugal 2/2 rename old_name")
        })
        .await;
    assert!(s.row(2).contains("function M.old_name(x)"), "{}", s.dump());

    n.cmd("LlmHunks").await;
    let (items, title) = quickfix(&n).await;
    assert_eq!(title, "rename old_name to new_name");
    assert_eq!(
        items,
        vec![
            (
                "[1/2] return b.old_name(1) → return b.new_name(1)".to_string(),
                4,
                12
            ),
            (
                "[2/2] function M.old_name(x) → function M.new_name(x)".to_string(),
                3,
                12
            ),
        ]
    );
    let s = n
        .wait_screen("the quickfix window", |s| {
            s.contains("[2/2] function M.old_name")
        })
        .await;
    assert!(
        s.contains("src/a.lua|4 col 12| [1/2] return b.old_name(1) → return b.new_name(1)"),
        "{}",
        s.dump()
    );
    n.cmd("cclose").await;

    // A second edit pending elsewhere: the title counts, each entry names its instruction.
    server.push(
        "/chat/completions",
        Reply::sse(answer(
            &block("return M\n", "return M -- the module\n"),
            9,
            0.0,
        )),
    );
    n.open("c.lua", &["local M = {}", "return M"]).await;
    n.cmd("LlmEdit document the return").await;
    n.wait_event("FrugalEditDone").await;
    n.cmd("LlmHunks").await;
    let (items, title) = quickfix(&n).await;
    assert_eq!(title, "frugal: 3 hunks of 2 edits");
    // Each entry starts with its instruction's start (24 cells at most).
    let texts: Vec<&str> = items.iter().map(|i| i.0.as_str()).collect();
    assert_eq!(
        texts,
        [
            "rename old_name to new_…: [1/2] return b.old_name(1) → return b.new_name(1)",
            "rename old_name to new_…: [2/2] function M.old_name(x) → function M.new_name(x)",
            "document the return: [1/1] return M → return M -- the module",
        ]
    );
    n.quit().await;
}

const JUDGE: &str = "google/gemini-2.5-flash";

/// A judge's long reason is shown in full under its hunk, wrapped to a narrow window and again
/// when it widens, in a colour apart from the removed line's; `:LlmHunks` carries it too.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_long_verdict_is_wrapped_under_its_hunk_and_readable_in_full() {
    let server = FakeOpenRouter::start().await;
    server.push(
        "/chat/completions",
        Reply::sse(answer(&one_line_answer(), 9, 0.001)),
    );
    let reason = "rounding to two places hides the fractional cents that the ledger later \
                  sums, so totals drift by up to a cent per item on large reports; keep the \
                  exact value and round only when printing the final line";
    let judge =
        format!(r#"{{"verdicts":[{{"hunk":1,"verdict":"wrong","reason":"{reason}\u0007"}}]}}"#);
    server.push("/chat/completions", Reply::sse(answer(&judge, 11, 0.0002)));
    let setup = format!(r#"{{"judge_model": "{JUDGE}"}}"#);
    let mut n = Nvim::start_ui(&server.url, &[("FRUGAL_SETUP", &setup)], 80, 30).await;
    // The verdict must fit in 40 columns: wrapped, never cut.
    quiet(&n).await;
    n.open("report.py", PY).await;
    n.cmd("2,8LlmEdit round the printed total").await;
    n.wait_event("FrugalEditDone").await;
    // A split: the hunk's window is 40 columns wide.
    n.cmd("vsplit | enew | wincmd p | vertical resize 40").await;
    n.cmd("LlmReview").await;
    let done = n.wait_event("FrugalReviewDone").await;
    let v = field(&done, "verdicts").as_array().unwrap()[0].clone();
    assert_eq!(field(&v, "hunk").as_u64(), Some(1));
    let start = "✗ wrong: rounding to two places";
    let s = n.wait_screen("the verdict", |s| s.contains(start)).await;
    let d = s.dump();
    let (row, col) = s.find(start).unwrap();
    // Under the hunk (after its last line, the blank line 8), and every word of the reason
    // on the rows below, in the hunk's window (the right one; the left one is empty).
    assert!(s.row(row - 2).contains("    return total"), "{d}");
    assert!(s.row(row - 3).contains("print(round(total, 2))"), "{d}");
    let mut shown = String::new();
    for r in row..row + 8 {
        let text: String = s.row(r).chars().skip(col - 2).collect();
        shown.push_str(text.trim());
        shown.push(' ');
    }
    let words: Vec<&str> = reason.split_whitespace().collect();
    let seen: Vec<&str> = shown.split_whitespace().collect();
    let at = seen.iter().position(|w| *w == "rounding").unwrap();
    assert_eq!(&seen[at..at + words.len()], &words[..], "{d}");
    assert!(!d.contains("^G"), "{d}");
    // In the narrow window the label stands after the code, not over it.
    assert!(s.contains("def report(items):  frugal 1/1"), "{d}");
    // Its colour is not the removed line's.
    let wrong = (
        n.hl_fg("FrugalReviewWrong").await,
        n.hl_bg("FrugalReviewWrong").await,
    );
    let delete = (n.hl_fg("FrugalDelete").await, n.hl_bg("FrugalDelete").await);
    assert_ne!(wrong, delete);
    assert_eq!(s.bg_at(row, col), wrong.1, "{d}");
    // Wider: wrapped again to fewer rows, still whole.
    n.cmd("only").await;
    let s = n
        .wait_screen("the verdict on one window", |s| {
            s.find(start)
                .is_some_and(|(r, _)| s.row(r).contains("hides the fractional"))
        })
        .await;
    println!("after :LlmReview, 80 columns:\n{}", s.dump());
    assert!(
        s.contains("round only when printing the final line"),
        "{}",
        s.dump()
    );
    n.cmd("LlmHunks").await;
    let (items, _) = quickfix(&n).await;
    assert!(
        items[0]
            .0
            .starts_with("[1/1] print(total) → print(round(total, 2))  ✗ wrong: rounding"),
        "{items:?}"
    );
    assert!(items[0].0.ends_with("the final line"), "{items:?}");
    n.quit().await;
}

/// The diff is between the buffer lines a block matched and the lines accept writes, not the
/// SEARCH text: a block written with other indentation marks only the line it changes.
#[tokio::test]
async fn a_block_matched_despite_its_indentation_marks_only_its_changed_line() {
    let server = FakeOpenRouter::start().await;
    // Two spaces where the buffer has four: matched ignoring indentation, re-indented.
    let text = block(
        "  total = 0\n  for item in items:\n      total += item.price\n",
        "  total = 0\n  for item in items:\n      total += item.cost\n",
    );
    server.push("/chat/completions", Reply::sse(answer(&text, 9, 0.001)));
    let mut n = Nvim::start(&server.url).await;
    n.open("report.py", PY).await;
    n.cmd("3,5LlmEdit use the cost").await;
    n.wait_event("FrugalEditDone").await;
    let marked = n
        .lua(
            "local ns = vim.api.nvim_get_namespaces().frugal_hunk_lines
             local rows = {}
             for _, m in ipairs(vim.api.nvim_buf_get_extmarks(0, ns, 0, -1, { details = true })) do
               if m[4].hl_group == 'FrugalDelete' then table.insert(rows, m[2]) end
             end
             return rows",
        )
        .await;
    let rows: Vec<u64> = marked
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r.as_u64().unwrap())
        .collect();
    assert_eq!(rows, [4], "only `total += item.price` (row 4) is marked");
    n.cmd("call cursor(4, 1) | LlmAccept").await;
    assert_eq!(n.lines().await[4], "        total += item.cost");
    n.quit().await;
}
