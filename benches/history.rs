//! `:LlmHistory` on a long history: `cargo bench --bench history`.
//!
//! A ledger of `FRUGAL_BENCH_ROWS` requests (default 10,000) of one project, every one with its
//! conversation in the store (a 2 kB answer each) and hunk outcomes for the edits, then times
//! what the `history` call does for the first page: the ledger's page of rows, their hunk
//! outcomes, the store's text of those rows, and the lines. `FRUGAL_BENCH_ITERS` (default 200)
//! sets how many listings are timed.

use frugal::budget::{HunkFate, Ledger, Outcome, RequestId, SystemClock};
use frugal::history::listing;
use frugal::history::{Conversation, Store, Turn};
use rusqlite::params;
use std::time::Instant;

mod shared;
use shared::{env_usize, stats};

const PROJECT: &str = "/home/dev/long-history";

fn main() {
    let rows = env_usize("FRUGAL_BENCH_ROWS", 10_000);
    let iters = env_usize("FRUGAL_BENCH_ITERS", 200).max(1);
    let dir = tempfile::tempdir().expect("tempdir");
    let ledger_path = dir.path().join("ledger.sqlite3");
    let store_path = dir.path().join("history.sqlite3");
    let mut ledger = Ledger::open(&ledger_path).expect("ledger");
    let store = Store::open(&store_path).expect("store");
    let built = Instant::now();
    let now = 1_765_000_000_000_i64;
    let clock = SystemClock;
    {
        let tx = ledger.connection().unchecked_transaction().unwrap();
        let mut ins = tx
            .prepare(
                "INSERT INTO requests (project, model, created_at, settled_at, state, reserved,
                    charged, owner_pid, owner_instance, kind)
                 VALUES (?1, 'anthropic/claude-sonnet-4.5', ?2, ?2, 'settled', 0, ?3, 1, 'bench', ?4)",
            )
            .unwrap();
        for i in 0..rows as i64 {
            let kind = if i % 10 == 0 { "review" } else { "edit" };
            ins.execute(params![
                PROJECT,
                now - (rows as i64 - i) * 60_000,
                3_000_000_000_i64 + i,
                kind
            ])
            .unwrap();
        }
        drop(ins);
        tx.commit().unwrap();
    }
    let answer =
        "<<<<<<< SEARCH\n  return a + b\n=======\n  return b + a\n>>>>>>> REPLACE\n".repeat(30);
    for i in 1..=rows as i64 {
        store
            .put(&Conversation {
                request: i,
                project: PROJECT.into(),
                kind: "edit".into(),
                model: "anthropic/claude-sonnet-4.5".into(),
                at: now - (rows as i64 - i) * 60_000,
                turns: vec![Turn {
                    instruction: format!("make request {i} safer: check the inputs first"),
                    answer: answer.clone(),
                }],
                files: vec!["src/lib.rs".into()],
                failure: None,
            })
            .unwrap();
    }
    // Outcomes of the newest page's edits.
    for i in (rows as i64 - 600).max(1)..=rows as i64 {
        ledger.propose_hunks(RequestId(i), 3, &clock).unwrap();
        let accepted = Outcome {
            request: RequestId(i),
            hunk: 1,
            fate: HunkFate::Accepted,
        };
        ledger.record_outcomes(&[accepted], &clock).unwrap();
    }
    println!(
        "history: {rows} requests and conversations built in {:.1} s (store {:.1} MB)",
        built.elapsed().as_secs_f64(),
        std::fs::metadata(&store_path).map(|m| m.len()).unwrap_or(0) as f64 / 1e6
    );

    let mut times = Vec::with_capacity(iters);
    let mut shown = 0;
    for _ in 0..iters {
        let t = Instant::now();
        let (page, more) = listing::page(&ledger, PROJECT, None, listing::PAGE).unwrap();
        let ids: Vec<i64> = page.iter().map(|r| r.id).collect();
        let hunks = ledger.hunk_counts(&ids).unwrap();
        let briefs = store.briefs(PROJECT, &ids).unwrap();
        let lines = listing::lines(&page, &briefs, &hunks, |ms| ms.to_string(), 100);
        times.push(t.elapsed());
        shown = lines.len();
        assert!(more || rows <= listing::PAGE);
    }
    let s = stats(times);
    println!(
        "first page ({shown} of {rows}): mean {:.2} ms   p50 {:.2} ms   p99 {:.2} ms   max {:.2} ms",
        s.mean.as_secs_f64() * 1e3,
        s.p50.as_secs_f64() * 1e3,
        s.p99.as_secs_f64() * 1e3,
        s.max.as_secs_f64() * 1e3
    );
}
