//! Growth of the SEARCH/REPLACE parser and the matcher on large inputs: time at 1× and 10×
//! the input, to check it stays linear (about 10× the time, not 100×). Figures to report, not
//! a test: `cargo bench --bench edit_parse`.

use frugal::edit::blocks::BlockParser;
use frugal::edit::locate::{locate, LocateError, MatchKind};
use frugal::edit::plan::Plan;
use std::hint::black_box;
use std::time::{Duration, Instant};

/// The best of a few runs of `f`, which is what the code costs without the machine's noise.
fn best(mut f: impl FnMut()) -> Duration {
    (0..5)
        .map(|_| {
            let t = Instant::now();
            f();
            t.elapsed()
        })
        .min()
        .unwrap_or_default()
}

fn report(what: &str, one: Duration, ten: Duration) {
    println!(
        "{what}: 1× {:.2} ms, 10× {:.2} ms (ratio {:.1})",
        one.as_secs_f64() * 1e3,
        ten.as_secs_f64() * 1e3,
        ten.as_secs_f64() / one.as_secs_f64().max(1e-9)
    );
}

/// An answer of `blocks` blocks of 40 + 40 lines (10 blocks ≈ 5,000 tokens).
fn answer(blocks: usize) -> String {
    let mut answer = String::from("Edits follow.\n");
    for i in 0..blocks {
        answer.push_str(&format!("src/f{i}.rs\n```rust\n<<<<<<< SEARCH\n"));
        for j in 0..40 {
            answer.push_str(&format!("    let value_{j} = compute({j}, {i});\n"));
        }
        answer.push_str("=======\n");
        for j in 0..40 {
            answer.push_str(&format!("    let value_{j} = compute_v2({j}, {i});\n"));
        }
        answer.push_str(">>>>>>> REPLACE\n```\n");
    }
    answer
}

/// The answer streamed one char at a time.
fn parse_by_char(answer: &str, blocks: usize) {
    let mut parser = BlockParser::new();
    let mut n = 0;
    let mut buf = [0u8; 4];
    for c in answer.chars() {
        n += parser.push(c.encode_utf8(&mut buf)).len();
    }
    n += parser.finish().blocks.len();
    assert_eq!(n, blocks);
}

/// A buffer of `n` lines whose text recurs every 10,500 lines, in three indentations.
fn buffer(n: usize) -> Vec<String> {
    (0..n)
        .map(|i| {
            format!(
                "{}let v{} = f({});",
                " ".repeat(4 * (i % 3)),
                i % 500,
                i % 7
            )
        })
        .collect()
}

/// The matcher's paths on a buffer of `n` lines: exact, indentation-tolerant, not found
/// (every strategy, twice), the worst case for lazy comparison, and an elided SEARCH.
fn match_all(buf: &[String], same: &[String]) {
    let n = buf.len();
    let at = n - 3_000;
    let exact: Vec<String> = buf[at..at + 10].to_vec();
    let hit = locate(buf, &exact, &["x".into()], (at, at + 10), &[]);
    assert_eq!(hit.map(|l| (l.start, l.how)), Ok((at, MatchKind::Exact)));
    let shifted: Vec<String> = exact.iter().map(|l| format!("  {l}")).collect();
    let hit = locate(buf, &shifted, &["  x".into()], (at, at + 10), &[]);
    assert_eq!(hit.map(|l| l.how), Ok(MatchKind::Indentation));
    let mut padded = vec![String::new()];
    padded.extend(exact.iter().cloned());
    padded[5] = "nope".into();
    assert_eq!(
        locate(buf, &padded, &[], (0, n), &[]),
        Err(LocateError::NotFound)
    );
    let mut search = vec!["x".to_string(); 9];
    search.push("y".into());
    assert_eq!(
        locate(same, &search, &[], (0, n), &[]),
        Err(LocateError::NotFound)
    );
    let elided = vec![exact[0].clone(), "...".into(), "nowhere".into()];
    assert_eq!(
        locate(buf, &elided, &["...".into()], (0, n), &[]),
        Err(LocateError::NotFound)
    );
    black_box(());
}

/// 20 blocks, each building on the one before (the answer's hunks re-applied each time).
fn plan_chain(buf: &[String]) {
    let mut plan = Plan::default();
    let mut last = buf[buf.len() / 2].clone();
    for i in 0..20 {
        let next = format!("{last} // {i}");
        let placed = plan.place(
            buf,
            std::slice::from_ref(&last),
            std::slice::from_ref(&next),
            (0, buf.len()),
            "t",
        );
        assert!(placed.is_ok(), "{placed:?}");
        last = next;
    }
    assert_eq!(plan.hunks().len(), 1);
}

fn main() {
    let small = answer(10);
    let large = answer(100);
    report(
        &format!("parser, one char at a time ({} chars)", small.len()),
        best(|| parse_by_char(&small, 10)),
        best(|| parse_by_char(&large, 100)),
    );

    let (n1, n10) = (20_000, 200_000);
    let (b1, b10) = (buffer(n1), buffer(n10));
    let (s1, s10) = (
        vec!["    x".to_string(); n1],
        vec!["    x".to_string(); n10],
    );
    report(
        &format!("matcher, every path ({n1} lines)"),
        best(|| match_all(&b1, &s1)),
        best(|| match_all(&b10, &s10)),
    );
    report(
        &format!("plan, 20 blocks building on each other ({n1} lines)"),
        best(|| plan_chain(&b1)),
        best(|| plan_chain(&b10)),
    );
}
