//! Placing blocks crafted to be costly: the hostile answer of issue 15 (a file of `}` lines,
//! SEARCHes of thousands of `}` ending in a line found nowhere), the other worst cases of the
//! matcher, and honest large blocks that must keep placing. Figures to report, not a test:
//! `cargo bench --bench edit_place` (`FRUGAL_BENCH_QUICK=1`: one run each).

use frugal::edit::locate::locate;
use frugal::edit::plan::Plan;
use std::hint::black_box;
use std::time::{Duration, Instant};

/// The best of `runs` runs of `f` (one for the slow cases), and its last result.
fn time<T>(runs: usize, mut f: impl FnMut() -> T) -> (Duration, T) {
    let mut best = Duration::MAX;
    let mut out = None;
    for _ in 0..runs.max(1) {
        let t = Instant::now();
        let r = f();
        best = best.min(t.elapsed());
        out = Some(r);
    }
    (best, out.expect("ran once"))
}

fn report(what: &str, took: Duration, result: impl std::fmt::Debug) {
    let shown = format!("{result:?}");
    let shown: String = shown.chars().take(90).collect();
    println!("{what}: {:.2} ms → {shown}", took.as_secs_f64() * 1e3);
}

fn lines(n: usize, f: impl Fn(usize) -> String) -> Vec<String> {
    (0..n).map(f).collect()
}

fn main() {
    let quick = std::env::var_os("FRUGAL_BENCH_QUICK").is_some();
    let runs = if quick { 1 } else { 3 };

    // Issue 15: 20,000 `}` lines; a SEARCH of 10,000 `}` and one line found nowhere. One block
    // of the answer's 40, placed as the backend places it (Plan::place).
    let braces = vec!["}".to_string(); 20_000];
    let mut hostile = vec!["}".to_string(); 10_000];
    hostile.push("nowhere".into());
    let (took, got) = time(1, || {
        let mut plan = Plan::default();
        plan.place(&braces, &hostile, &["x".into()], (0, 20_000), "}")
            .map(|p| p.hunk.start)
    });
    report(
        "hostile block: 10,001-line SEARCH of `}` in 20,000 `}` lines (one of 40)",
        took,
        got,
    );

    // The same, the block's lines all found (every start matches): the whole SEARCH compared
    // at each start before the choice of the nearest.
    let (took, got) = time(1, || {
        locate(
            &braces,
            &braces[..10_000],
            &["x".into()],
            (15_000, 16_000),
            &[],
        )
        .map(|l| l.start)
    });
    report("10,000 `}` found at each of 10,001 starts", took, got);

    // Indentation that changes every 1,000 lines: every window's text matches, its
    // indentation fails about half way.
    let stepped = lines(50_000, |i| {
        if i % 1_000 == 999 {
            "  }".to_string()
        } else {
            "}".to_string()
        }
    });
    let flat = vec!["    }".to_string(); 1_000];
    let (took, got) = time(1, || {
        locate(&stepped, &flat, &["x".into()], (0, 50_000), &[]).map(|l| l.start)
    });
    report(
        "re-indented 1,000 `}` against 50,000 lines whose indentation steps every 1,000",
        took,
        got,
    );

    // Elided: `}` … 2,000 `}` then a line found nowhere.
    let mut elided = vec!["}".to_string(), "...".into()];
    elided.extend(std::iter::repeat_n("}".to_string(), 2_000));
    elided.push("nowhere".into());
    let (took, got) = time(1, || {
        locate(&braces, &elided, &["...".into()], (0, 20_000), &[]).map(|l| l.start)
    });
    report(
        "elided SEARCH `}` … 2,000 `}` + a line found nowhere, in 20,000 `}`",
        took,
        got,
    );

    // Honest: a 1,000-line SEARCH in a 50,000-line file, exact and re-indented.
    let code = lines(50_000, |i| {
        format!("{}let v{i} = f({});", " ".repeat(4 * (i % 3)), i % 7)
    });
    let honest = code[30_000..31_000].to_vec();
    let (took, got) = time(runs, || {
        locate(&code, &honest, &["x".into()], (0, 10), &[]).map(|l| (l.start, l.how))
    });
    report("honest 1,000-line SEARCH in 50,000 lines, exact", took, got);
    let shifted: Vec<String> = honest.iter().map(|l| format!("  {l}")).collect();
    let (took, got) = time(runs, || {
        locate(&code, &shifted, &["x".into()], (0, 10), &[]).map(|l| (l.start, l.how))
    });
    report(
        "honest 1,000-line SEARCH in 50,000 lines, re-indented",
        took,
        got,
    );

    // Many small blocks in one answer: 2,000 one-line blocks over a 50,000-line file.
    let (took, got) = time(1, || {
        let mut plan = Plan::default();
        let mut placed = 0;
        for i in 0..2_000 {
            let at = i * 25;
            let block = std::slice::from_ref(&code[at]);
            if plan
                .place(&code, block, &["x".into()], (0, 50_000), "t")
                .is_ok()
            {
                placed += 1;
            }
        }
        placed
    });
    report(
        "2,000 one-line blocks over 50,000 lines (the answer)",
        took,
        got,
    );
    black_box(());
}
