//! What the ledger benches share: a deterministic 1,000,000-row ledger of 100 projects over 12
//! months (one heavy project holding a tenth of the rows in the current month), and latency
//! statistics.
#![allow(dead_code)]

use rusqlite::{params, Connection};
use std::time::{Duration, Instant};

pub const HEAVY: &str = "/home/dev/heavy-project";
pub const DAY_MS: i64 = 86_400_000;

/// Deterministic xorshift: the same ledger on every run.
pub struct Rng(pub u64);
impl Rng {
    pub fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n
    }
}

pub fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.replace('_', "").parse().ok())
        .unwrap_or(default)
}

/// Inserts `rows` rows in one transaction through a plain connection (the triggers keep the
/// rollups as they would in use).
pub fn populate(path: &std::path::Path, rows: usize) -> Duration {
    let start = Instant::now();
    let mut conn = Connection::open(path).expect("open");
    conn.pragma_update(None, "synchronous", "OFF").unwrap();
    let tx = conn.transaction().unwrap();
    let now = jiff::Timestamp::now().as_millisecond();
    let month_start = {
        let z = jiff::Zoned::now();
        frugal::budget::month_bounds(&z).0
    };
    let mut rng = Rng(0x2545_F491_4F6C_DD1D);
    {
        let mut ins = tx
            .prepare(
                "INSERT INTO requests (project, model, created_at, settled_at, state, reserved,
                    charged, tokens_in, tokens_out, tokens_cached, tokens_reasoning, generation_id,
                    charge_source, owner_pid, owner_instance)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, 0, 0, ?10, ?11, 1, 'bench')",
            )
            .unwrap();
        let projects: Vec<String> = (0..99)
            .map(|i| format!("/home/dev/project-{i:02}"))
            .collect();
        let models = [
            "anthropic/claude-sonnet-4.5",
            "mistralai/mistral-medium-3",
            "openai/gpt-4o",
        ];
        let heavy_rows = rows / 10;
        for i in 0..rows {
            let (project, created) = if i < heavy_rows {
                let span = (now - month_start).max(1) as u64;
                (HEAVY, month_start + rng.below(span) as i64)
            } else {
                let p = &projects[rng.below(projects.len() as u64) as usize];
                (p.as_str(), now - rng.below(365 * DAY_MS as u64) as i64)
            };
            let tokens_in = 500 + rng.below(20_000) as i64;
            let tokens_out = 50 + rng.below(2_000) as i64;
            let reserved = tokens_in * 3_000_000 + 4_000 * 15_000_000;
            let charged = tokens_in * 3_000_000 + tokens_out * 15_000_000;
            let failed = rng.below(50) == 0;
            ins.execute(params![
                project,
                models[rng.below(3) as usize],
                created,
                created + 2_000,
                if failed { "failed" } else { "settled" },
                reserved,
                if failed { 0 } else { charged },
                tokens_in,
                tokens_out,
                format!("gen-{i}"),
                if failed { None } else { Some("usage") },
            ])
            .unwrap();
        }
    }
    // Every other request was an edit that showed 3 hunks, a few still pending, the rest
    // accepted or rejected (through the triggers that keep `hunk_totals`).
    tx.execute_batch(
        "INSERT INTO hunk_outcomes (request_id, hunk, fate, at)
         SELECT r.id, k.k,
                CASE (r.id / 2 + k.k) % 5 WHEN 0 THEN 'rejected' WHEN 1 THEN 'replaced'
                     WHEN 2 THEN 'proposed' ELSE 'accepted' END,
                r.created_at + 60000
         FROM requests AS r, (SELECT 1 AS k UNION ALL SELECT 2 UNION ALL SELECT 3) AS k
         WHERE r.id % 2 = 0",
    )
    .unwrap();
    tx.commit().unwrap();
    // Fold the bulk WAL into the file now, not during the first timed request.
    let _: (i64, i64, i64) = conn
        .query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?))
        })
        .unwrap();
    drop(conn);
    // Built with synchronous=OFF: flush it now so that the first timed fsync does not pay for
    // 250 MB of dirty pages.
    std::fs::File::open(path)
        .and_then(|f| f.sync_all())
        .unwrap();
    start.elapsed()
}

pub struct Stats {
    pub mean: Duration,
    pub p50: Duration,
    pub p99: Duration,
    pub max: Duration,
}

pub fn stats(mut v: Vec<Duration>) -> Stats {
    v.sort();
    let pick = |q: f64| v[((v.len() as f64 - 1.0) * q).round() as usize];
    Stats {
        mean: v.iter().sum::<Duration>() / v.len() as u32,
        p50: pick(0.5),
        p99: pick(0.99),
        max: *v.last().unwrap(),
    }
}
