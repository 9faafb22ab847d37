//! Ledger latency on a large file: `cargo bench --bench ledger`.
//!
//! Builds a ledger of `FRUGAL_BENCH_ROWS` rows (default 1,000,000) spread over 100 projects and
//! the last 12 months, one heavy project holding a tenth of them in the current month, then
//! times `reserve` + `mark_sent` + `settle` and refused reservations (a cap check that writes
//! nothing). `mark_sent` is the write made before every request leaves (so that a request never
//! sent is never charged, even after a crash): one row's update and the WAL fsync.
//! `FRUGAL_BENCH_ITERS` (default 2,000) sets how many requests are timed.
//!
//! The spec asks for `reserve` under 1 ms at a million rows; the figures include the WAL fsync
//! of `synchronous=FULL`, so they depend on the disk as much as on the code.

use std::time::Instant;

use frugal::budget::{
    Caps, ChargeSource, Decision, Ledger, Price, ReserveInput, Settlement, SystemClock, Usd,
};

mod shared;
use shared::{env_usize, populate, stats, Stats, HEAVY};

fn line(name: &str, s: &Stats) {
    println!(
        "{name:<28} mean {:>8.1} µs   p50 {:>8.1} µs   p99 {:>8.1} µs   max {:>8.1} µs",
        s.mean.as_secs_f64() * 1e6,
        s.p50.as_secs_f64() * 1e6,
        s.p99.as_secs_f64() * 1e6,
        s.max.as_secs_f64() * 1e6
    );
}

fn main() {
    let rows = env_usize("FRUGAL_BENCH_ROWS", 1_000_000);
    let iters = env_usize("FRUGAL_BENCH_ITERS", 2_000).max(1);
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("ledger.sqlite3");
    drop(Ledger::open(&path).expect("create ledger"));
    let built = populate(&path, rows);
    let size = std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
    println!(
        "ledger: {rows} rows (100 projects, 12 months, {} in {HEAVY} this month) built in {:.1} s, {:.0} MB",
        rows / 10,
        built.as_secs_f64(),
        size as f64 / 1e6
    );

    let mut ledger = Ledger::open(&path).expect("open");
    let clock = SystemClock;
    let price = Price::from_catalogue("0.000003", "0.000015", "0").unwrap();
    // Every cap set, so every window is summed (the slowest path), none of them binding.
    let roomy = Caps {
        per_request: Some(Usd::from_dollars(1)),
        daily: Some(Usd::from_dollars(1_000_000)),
        monthly: Some(Usd::from_dollars(1_000_000)),
        total: Some(Usd::from_dollars(1_000_000)),
    };
    let mut input = ReserveInput::new(HEAVY, "anthropic/claude-sonnet-4.5", 8_000, 4_000, price);
    input.project_caps = roomy;
    input.global_caps = roomy;

    let t0 = Instant::now();
    match ledger.reserve(&input, &clock).unwrap() {
        Decision::Reserved { id, .. } => ledger.fail(id, &clock).unwrap(),
        Decision::Refused(r) => panic!("unexpected refusal: {r}"),
    }
    let first = t0.elapsed();
    println!(
        "first reserve + fail after open (cold statement cache): {:.1} µs",
        first.as_secs_f64() * 1e6
    );

    // First with the ledger's own durable setting, then without a per-commit fsync, which
    // leaves what the code and SQLite cost: the disk's share is the difference.
    for sync in ["FULL", "NORMAL"] {
        ledger
            .connection()
            .pragma_update(None, "synchronous", sync)
            .unwrap();
        timed_requests(&mut ledger, &input, iters, sync);
    }
    ledger
        .connection()
        .pragma_update(None, "synchronous", "FULL")
        .unwrap();

    // Refusals: the month is far above this cap; every other cap is summed as well.
    let mut tight = roomy;
    tight.monthly = Some(Usd::from_dollars(1));
    input.project_caps = tight;
    let mut refuse_t = Vec::with_capacity(iters);
    for _ in 0..iters {
        let t0 = Instant::now();
        let d = ledger.reserve(&input, &clock).unwrap();
        refuse_t.push(t0.elapsed());
        assert!(matches!(d, Decision::Refused(_)));
    }

    // :LlmUsage's figures.
    let mut spend_t = Vec::with_capacity(200);
    for i in 0..200 {
        let t0 = Instant::now();
        let project = if i % 2 == 0 { Some(HEAVY) } else { None };
        std::hint::black_box(ledger.spend(project, &clock).unwrap());
        spend_t.push(t0.elapsed());
    }

    println!("timed {iters} refusals (every cap summed, nothing written):");
    line("refused reserve (check)", &stats(refuse_t));
    line("spend (project / all)", &stats(spend_t));
}

/// Times `iters` reserve + mark_sent + settle requests and prints their figures.
fn timed_requests(ledger: &mut Ledger, input: &ReserveInput<'_>, iters: usize, sync: &str) {
    let clock = SystemClock;
    let before = ledger.spend(Some(HEAVY), &clock).unwrap();
    let mut reserve_t = Vec::with_capacity(iters);
    let mut mark_t = Vec::with_capacity(iters);
    let mut settle_t = Vec::with_capacity(iters);
    let mut both_t = Vec::with_capacity(iters);
    let loop_start = Instant::now();
    for _ in 0..iters {
        let t0 = Instant::now();
        let id = match ledger.reserve(input, &clock).unwrap() {
            Decision::Reserved { id, .. } => id,
            Decision::Refused(r) => panic!("unexpected refusal: {r}"),
        };
        let t1 = Instant::now();
        ledger.mark_sent(id).unwrap();
        let tm = Instant::now();
        let s = Settlement::charged(Usd(30_000_000_000), ChargeSource::Usage);
        ledger.settle(id, s, &clock).unwrap();
        let t2 = Instant::now();
        reserve_t.push(t1 - t0);
        mark_t.push(tm - t1);
        settle_t.push(t2 - tm);
        both_t.push(t2 - t0);
    }
    let elapsed = loop_start.elapsed();
    let after = ledger.spend(Some(HEAVY), &clock).unwrap();
    assert_eq!(
        after.total - before.total,
        Usd(30_000_000_000 * iters as i64),
        "every settlement counted"
    );

    println!("timed {iters} requests on the heavy project, synchronous={sync}:");
    line("reserve (check + insert)", &stats(reserve_t));
    line("mark_sent (before sending)", &stats(mark_t));
    line("settle", &stats(settle_t));
    line("reserve + mark + settle", &stats(both_t));
    println!(
        "  throughput: {:.0} reserve+mark+settle per second (one connection)",
        iters as f64 / elapsed.as_secs_f64()
    );
}
