//! How a proposed hunk looks, read from a real Neovim's screen (a UI attached) and its
//! extmarks: only the lines it changes are marked, new lines fill the window's width, signs,
//! labels `frugal k/N <instruction>`, `:LlmHunks`, and a judge's verdict wrapped in full (SPEC,
//! "Reviewing a proposal: what a person sees").

mod common;
use common::*;
use common::screen::Snapshot;

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
    n.cmd("2,8LlmEdit round the printed total\x07 to cents").await;
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
        assert!(!del(r, TEXT + 1), "row {r} marked: {:?}\n{d}", s.groups_at(r, TEXT + 1));
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
        s.row(1).contains("frugal 1/1 round the printed total"),
        "{d}"
    );
    assert!(!s.row(1).contains("^G") && !s.row(1).contains('\u{7}'), "{d}");
    assert!(!s.hit_enter(), "{d}");
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
        .wait_screen("two blank added lines", |s| s.bg_at(3, 79) == add_bg && s.bg_at(4, 79) == add_bg)
        .await;
    assert!(s.row(3).trim_start_matches('+').trim().is_empty(), "{}", s.dump());
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
