//! `:LlmUsage` on a large ledger: `cargo bench --bench usage`.
//!
//! Builds a ledger of `FRUGAL_BENCH_ROWS` rows (default 1,000,000) over 100 projects and the
//! last 12 months, one heavy project holding a tenth of them in the current month (the same
//! shape as `benches/ledger.rs`), or reuses the file named by `FRUGAL_BENCH_LEDGER` when it
//! exists (it is built there when it does not). Then times `usage::build` for the heavy
//! project and for `all` over `FRUGAL_BENCH_ITERS` runs (default 50). The spec asks for an
//! instant window: the target is under 50 ms. Every other request has 3 hunk outcomes, so
//! the per-model share of accepted hunks and the month's forecast are timed too.

use std::time::{Duration, Instant};

use frugal::budget::{Caps, Ledger, SystemClock, Usd};
use frugal::usage::{self, KeyInfo, ReportRequest};

mod shared;
use shared::{env_usize, populate, stats, Stats, HEAVY};

fn line(name: &str, s: &Stats) {
    println!(
        "{name:<34} mean {:>7.2} ms   p50 {:>7.2} ms   p99 {:>7.2} ms   max {:>7.2} ms{}",
        s.mean.as_secs_f64() * 1e3,
        s.p50.as_secs_f64() * 1e3,
        s.p99.as_secs_f64() * 1e3,
        s.max.as_secs_f64() * 1e3,
        if s.p99 < Duration::from_millis(50) {
            ""
        } else {
            "   (over the 50 ms target)"
        }
    );
}

fn time(iters: usize, mut f: impl FnMut()) -> Stats {
    let mut t = Vec::with_capacity(iters);
    for _ in 0..iters {
        let t0 = Instant::now();
        f();
        t.push(t0.elapsed());
    }
    stats(t)
}

fn main() {
    let rows = env_usize("FRUGAL_BENCH_ROWS", 1_000_000);
    let iters = env_usize("FRUGAL_BENCH_ITERS", 50).max(1);
    let tmp = tempfile::tempdir().expect("tempdir");
    let path = match std::env::var_os("FRUGAL_BENCH_LEDGER") {
        Some(p) => std::path::PathBuf::from(p),
        None => tmp.path().join("ledger.sqlite3"),
    };
    if path.exists() {
        println!("ledger: reusing {}", path.display());
    } else {
        drop(Ledger::open(&path).expect("create ledger"));
        let built = populate(&path, rows);
        println!(
            "ledger: {rows} rows (100 projects, 12 months, {} in {HEAVY} this month) built in {:.1} s",
            rows / 10,
            built.as_secs_f64()
        );
    }
    let size = std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
    let ledger = Ledger::open(&path).expect("open");
    let n: i64 = ledger
        .connection()
        .query_row("SELECT COUNT(*) FROM requests", [], |r| r.get(0))
        .unwrap();
    println!("ledger: {n} rows, {:.0} MB", size as f64 / 1e6);

    let caps = Caps {
        daily: Some(Usd::from_dollars(5)),
        monthly: Some(Usd::from_dollars(100)),
        total: Some(Usd::from_dollars(10_000)),
        per_request: Some(Usd::from_dollars(1)),
    };
    let project = ReportRequest {
        project: Some(HEAVY.into()),
        all: false,
        project_caps: caps,
        global_caps: caps,
        file_state: frugal::usage::FileStatus::Trusted,
        file_path: Some(format!("{HEAVY}/.frugal.toml")),
        key_info: KeyInfo::Unknown,
        width: 80,
        ..ReportRequest::default()
    };
    let all = ReportRequest {
        all: true,
        global_caps: caps,
        ..project.clone()
    };
    let clock = SystemClock;

    let t0 = Instant::now();
    let r = usage::build(&ledger, &clock, &project).unwrap();
    println!(
        "first build after open (cold statement cache): {:.2} ms",
        t0.elapsed().as_secs_f64() * 1e3
    );
    let t0 = Instant::now();
    let a = usage::build(&ledger, &clock, &all).unwrap();
    println!(
        "first `all` build: {:.2} ms ({} projects)",
        t0.elapsed().as_secs_f64() * 1e3,
        a.data.projects.len()
    );
    println!("\n{}\n{}\n", r.title, r.lines.join("\n"));

    println!("timed {iters} runs each:");
    line(
        "usage::build (heavy project)",
        &time(iters, || {
            std::hint::black_box(usage::build(&ledger, &clock, &project).unwrap());
        }),
    );
    line(
        "usage::build (all)",
        &time(iters, || {
            std::hint::black_box(usage::build(&ledger, &clock, &all).unwrap());
        }),
    );
    line(
        "Ledger::usage (heavy, 30 days)",
        &time(iters, || {
            std::hint::black_box(ledger.usage(Some(HEAVY), &clock, 30).unwrap());
        }),
    );
    line(
        "Ledger::model_hunks (heavy)",
        &time(iters, || {
            std::hint::black_box(ledger.model_hunks(Some(HEAVY)).unwrap());
        }),
    );
    line(
        "Ledger::model_hunks (all)",
        &time(iters, || {
            std::hint::black_box(ledger.model_hunks(None).unwrap());
        }),
    );
    line(
        "Ledger::forecast (heavy, capped)",
        &time(iters, || {
            let cap = Some(Usd::from_dollars(100));
            std::hint::black_box(ledger.forecast(Some(HEAVY), cap, &clock).unwrap());
        }),
    );
    // What counting the hunks from their rows would cost (hunk_totals spares it).
    let scan = "SELECT r.model, COUNT(*), SUM(h.fate = 'accepted')
                FROM hunk_outcomes h JOIN requests r ON r.id = h.request_id GROUP BY r.model";
    line(
        "(a scan of hunk_outcomes, all)",
        &time(iters.min(5), || {
            let mut s = ledger.connection().prepare_cached(scan).unwrap();
            let n = s.query_map([], |r| r.get::<_, i64>(1)).unwrap().count();
            std::hint::black_box(n);
        }),
    );
    line(
        "Ledger::projects",
        &time(iters, || {
            std::hint::black_box(ledger.projects(&clock).unwrap());
        }),
    );
}
