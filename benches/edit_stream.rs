//! What a fast 5,000-token answer costs Neovim: its CPU time (user + system, from /proc) while
//! the plugin receives one streamed edit of 5,000 one-token chunks, against the backend's.
//! A figure to report, not a test: `cargo bench --bench edit_stream` (needs `nvim` on PATH or
//! NVIM_BIN; Linux only, for /proc).

#[path = "../tests/common/mod.rs"]
mod common;
use common::*;
use std::time::Instant;

fn cpu_ms(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let rest = stat.rsplit(") ").next().unwrap_or("");
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| f.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    // utime and stime are fields 14 and 15 of stat, i.e. 11 and 12 after the command name.
    let hz = 100.0;
    (ticks(11) + ticks(12)) * 1000.0 / hz
}

fn main() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let tokens = 5_000;
        let server = FakeOpenRouter::start().await;
        // An answer of 5,000 chunks: prose, then 40 blocks, each chunk a few characters.
        let mut text = String::new();
        let src: Vec<String> = (0..400).map(|i| format!("let v{i} = {i};")).collect();
        for i in 0..40 {
            text.push_str(&block(
                &format!("{}\n", src[i * 10]),
                &format!("let v{} = {} * 2;\n", i * 10, i * 10),
            ));
        }
        let filler = tokens - text.chars().count() / 3;
        let mut events = Vec::new();
        for i in 0..filler {
            events.push(chunk(if i + 1 == filler { "ok\n" } else { "ok " }));
        }
        for c in text.chars().collect::<Vec<_>>().chunks(3) {
            events.push(chunk(&c.iter().collect::<String>()));
        }
        let chunks = events.len();
        // As a fast model streams: about 5,000 tokens a second, in small network reads.
        let mut parts = Vec::new();
        for group in events.chunks(5) {
            parts.push(Part::Bytes(group.concat().into_bytes()));
            parts.push(Part::Delay(std::time::Duration::from_millis(1)));
        }
        let tail = format!(
            "{}{}data: [DONE]\n\n",
            finish_chunk("stop"),
            usage_chunk(1000, tokens as u64, 0.01)
        );
        parts.push(Part::Bytes(tail.into_bytes()));
        server.push("/chat/completions", Reply::sse(parts));

        let mut n = Nvim::start(&server.url).await;
        let refs: Vec<&str> = src.iter().map(String::as_str).collect();
        n.open("bench.rs", &refs).await;
        let nvim_pid = n.lua("return vim.fn.getpid()").await.as_u64().unwrap() as u32;
        // Start the backend first so its start-up is not counted.
        n.lua("require('frugal.rpc').ensure()").await;
        let backend_pid = n.backend_pid().await.unwrap();
        let (nv0, be0) = (cpu_ms(nvim_pid), cpu_ms(backend_pid));
        let t0 = Instant::now();
        n.cmd("LlmEdit double every value").await;
        let done = n.wait_event("FrugalEditDone").await;
        let wall = t0.elapsed();
        let (nv1, be1) = (cpu_ms(nvim_pid), cpu_ms(backend_pid));
        println!(
            "streamed answer: {chunks} chunks, {} hunks",
            field(&done, "hunks")
        );
        println!(
            "wall time to FrugalEditDone: {:.0} ms",
            wall.as_secs_f64() * 1000.0
        );
        println!(
            "Neovim CPU during the stream: {:.0} ms (10 ms resolution)",
            nv1 - nv0
        );
        println!(
            "backend CPU during the stream: {:.0} ms (10 ms resolution)",
            be1 - be0
        );
        n.quit().await;
    });
}
