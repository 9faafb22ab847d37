//! The review loop a user repeats all day, at 80 and 120 columns with the built-in `vim.notify` and the
//! default colorscheme, read from the screen of a real Neovim with a UI attached: an edit, a
//! follow-up while it streams, a review, `:LlmAccept!`. At each step no hit-enter prompt is up
//! and the `User` event fired with no key pressed. The screens are printed (`--nocapture`):
//! they are the captures of the README and of the closing note.

mod common;
use common::screen::Snapshot;
use common::*;
use std::sync::Arc;
use tokio::sync::Notify;

const PY: &[&str] = &[
    "import math",
    "",
    "def report(items):",
    "    total = 0",
    "    for item in items:",
    "        total += item.price",
    "    print(total)",
    "    return total",
    "",
    "print(report([]))",
];

const JUDGE: &str = "google/gemini-2.5-flash";

/// The function (lines 3-8) with `old` → `new`.
fn answer_changing(old: &str, new: &str) -> String {
    let before = PY[2..8].join("\n") + "\n";
    let after = before.replace(old, new);
    format!("Here it is.\n{}", block(&before, &after))
}

/// Waits for the screen to show `needle`, checks that nothing waits on a key, and prints it.
async fn step(n: &Nvim, title: &str, needle: &str) -> Snapshot {
    let s = n.wait_screen(title, |s| s.contains(needle)).await;
    assert!(!s.hit_enter(), "{title}: a prompt is up\n{}", s.dump());
    println!("{title}, {} columns:\n{}\n", s.width, s.dump());
    s
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_edit_a_follow_up_a_review_and_accept_all_at_80_columns() {
    tour(80).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_edit_a_follow_up_a_review_and_accept_all_at_120_columns() {
    tour(120).await;
}

async fn tour(width: i64) {
    let server = FakeOpenRouter::start().await;
    server.push(
        "/chat/completions",
        Reply::sse(answer(
            &answer_changing("    print(total)\n", "    print(f\"total: {total}\")\n"),
            9,
            0.0042,
        )),
    );
    let setup = format!(r#"{{"judge_model": "{JUDGE}"}}"#);
    let mut n = Nvim::start_ui(&server.url, &[("FRUGAL_SETUP", &setup)], width, 24).await;
    n.open("report.py", PY).await;

    // An edit: one changed line of six, labelled, the message on one line.
    n.cmd("3,8LlmEdit label the printed total").await;
    let done = n.wait_event("FrugalEditDone").await;
    assert_eq!(field(&done, "hunks").as_u64(), Some(1));
    let s = step(&n, "after an edit", "frugal: 1 hunk · report.py").await;
    assert!(
        s.contains("frugal 1/1 label the printed total"),
        "{}",
        s.dump()
    );
    assert!(s.contains("print(f\"total: {total}\")"), "{}", s.dump());

    // A follow-up while it streams: the refinement's hunk alone, the earlier one hidden.
    let gate = Arc::new(Notify::new());
    let text = answer_changing("    print(total)\n", "    print(f\"total: {total:.2f}\")\n");
    server.push(
        "/chat/completions",
        Reply::sse(vec![
            Part::Bytes(format!(": OPENROUTER PROCESSING\n\n{}", chunk(&text)).into_bytes()),
            Part::Gate(gate.clone()),
            Part::Bytes(
                format!(
                    "{}{}data: [DONE]\n\n",
                    finish_chunk("stop"),
                    usage_chunk(300, 60, 0.0031)
                )
                .into_bytes(),
            ),
        ]),
    );
    n.cmd("LlmEdit with two decimals").await;
    let s = step(&n, "during a follow-up", "{total:.2f}").await;
    assert!(!s.contains("{total}\")"), "stacked:\n{}", s.dump());
    assert!(s.contains("at most $"), "{}", s.dump());
    gate.notify_one();
    n.wait_event("FrugalEditDone").await;
    let s = step(&n, "after the follow-up", "refined, turn 2").await;
    // The progress line above line 1 is gone, and so is the room it took.
    assert!(s.row(0).contains("import math"), "{}", s.dump());

    // A review: the verdict under its hunk, whole.
    let judge = r#"{"verdicts":[{"hunk":1,"verdict":"risky","reason":"the two decimals hide sub-cent totals; fine for a report, not for sums kept"}]}"#;
    server.push("/chat/completions", Reply::sse(answer(judge, 11, 0.0002)));
    n.cmd("LlmReview").await;
    n.wait_event("FrugalReviewDone").await;
    let s = step(&n, "after :LlmReview", "⚠ risky: the two decimals").await;
    assert!(
        s.contains("not for") && s.contains("sums kept"),
        "cut:\n{}",
        s.dump()
    );

    // Accept every hunk: the message says what it did and that the buffer is unsaved.
    n.cmd("LlmAccept!").await;
    let s = step(&n, "after :LlmAccept!", "frugal: accepted 1 hunk").await;
    assert!(s.contains(":wall"), "{}", s.dump());
    assert!(s.contains("print(f\"total: {total:.2f}\")"), "{}", s.dump());
    assert!(!s.contains("frugal 1/1"), "{}", s.dump());
    n.quit().await;
}
