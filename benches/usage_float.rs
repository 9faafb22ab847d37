//! Time from `:LlmUsage` to the window drawn, in a real headless Neovim with the real backend,
//! on a large ledger: `FRUGAL_BENCH_LEDGER=/path/ledger.sqlite3 cargo bench --bench usage_float`
//! (build that ledger first with `cargo bench --bench usage`, which leaves it at the same path).
//! Measured inside Neovim around `:LlmUsage` and `:redraw`, so it includes the RPC round trip,
//! the report built from the ledger, and the float drawn. Needs `nvim` on PATH or NVIM_BIN.

#[path = "../tests/common/mod.rs"]
mod common;
use common::*;

const HEAVY: &str = "/home/dev/heavy-project";

fn stats(mut v: Vec<f64>) -> String {
    v.sort_by(|a, b| a.total_cmp(b));
    let mean = v.iter().sum::<f64>() / v.len() as f64;
    let p = |q: f64| v[((v.len() - 1) as f64 * q).round() as usize];
    format!(
        "mean {mean:.1} ms, p50 {:.1} ms, p99 {:.1} ms",
        p(0.5),
        p(0.99)
    )
}

fn main() {
    let Some(ledger) = std::env::var_os("FRUGAL_BENCH_LEDGER").map(std::path::PathBuf::from) else {
        eprintln!("usage_float: set FRUGAL_BENCH_LEDGER to a ledger built by `cargo bench --bench usage`; skipped");
        return;
    };
    if !ledger.exists() {
        eprintln!(
            "usage_float: {} does not exist; run `cargo bench --bench usage` first",
            ledger.display()
        );
        return;
    }
    let rows: i64 = rusqlite::Connection::open(&ledger)
        .and_then(|c| c.query_row("SELECT COUNT(*) FROM requests", [], |r| r.get(0)))
        .unwrap_or(0);
    let data_dir = ledger.parent().unwrap().to_path_buf();
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let server = FakeOpenRouter::start().await;
        let setup = serde_json::json!({ "data_dir": data_dir, "budget": { "daily_usd": 100, "monthly_usd": 5000 } }).to_string();
        let n = Nvim::start_with(&server.url, &[("FRUGAL_SETUP", &setup)]).await;
        n.cmd("set columns=100 lines=60").await;
        // A buffer of the heavy project (the file need not exist).
        n.cmd(&format!("edit {HEAVY}/main.rs")).await;
        let time = "local t = vim.uv.hrtime() vim.cmd('LlmUsage' .. (... or '')) vim.cmd('redraw') local ms = (vim.uv.hrtime() - t) / 1e6 require('frugal.usage').close() return ms";
        let cold = n.lua_args(time, vec![rmpv::Value::from("")]).await.as_f64().unwrap();
        let mut warm = Vec::new();
        let mut all = Vec::new();
        for _ in 0..30 {
            warm.push(n.lua_args(time, vec![rmpv::Value::from("")]).await.as_f64().unwrap());
            all.push(n.lua_args(time, vec![rmpv::Value::from(" all")]).await.as_f64().unwrap());
        }
        println!("ledger: {rows} requests");
        println!(":LlmUsage, first (backend start + ledger open): {cold:.1} ms");
        println!(":LlmUsage, heavy project: {}", stats(warm));
        println!(":LlmUsage all, 100 projects: {}", stats(all));
        n.quit().await;
    });
}
