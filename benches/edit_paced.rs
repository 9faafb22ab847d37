//! What one streamed edit costs at a real model's pace: a ~5,000-token answer, one token
//! (about four characters) per SSE event, streamed by the loopback server at 50 and 100 events
//! a second and as fast as the socket allows, through the real backend, driven by a real
//! headless Neovim running the plugin.
//!
//! Reported for each pace, for the backend and for Neovim apart: CPU time per 1,000 tokens
//! (from `/proc/<pid>/task/*/schedstat`, in nanoseconds: clock ticks are too coarse), wake-ups
//! per event (voluntary context switches of all threads), and the lag from the server's last
//! byte to `User FrugalEditDone` reaching the bench; then the backend's CPU while idle.
//! Figures to read, not a test: nothing is asserted.
//!
//! `cargo bench --bench edit_paced` (Linux; needs `nvim` on PATH or NVIM_BIN). Knobs:
//! `FRUGAL_BENCH_TOKENS` (default 5000), `FRUGAL_BENCH_PACES` (events a second, `0` = as fast
//! as the socket allows; default `50,100,0`), `FRUGAL_BENCH_RUNS` (default 1; runs interleave
//! the paces, and the median is reported), `FRUGAL_BENCH_IDLE_S` (default 5).

#[path = "../tests/common/mod.rs"]
mod common;
use common::*;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// CPU time and voluntary switches of every thread a process ever had while sampled: a thread
/// that exits (tokio's blocking pool lets idle threads go after 10 s) keeps its last figures.
struct Sampler {
    pid: u32,
    threads: HashMap<u32, (u64, u64)>,
}

impl Sampler {
    fn new(pid: u32) -> Sampler {
        let mut s = Sampler {
            pid,
            threads: HashMap::new(),
        };
        s.sample();
        s
    }

    fn sample(&mut self) {
        let Ok(dir) = std::fs::read_dir(format!("/proc/{}/task", self.pid)) else {
            return;
        };
        for e in dir.flatten() {
            let Some(tid) = e.file_name().to_str().and_then(|t| t.parse::<u32>().ok()) else {
                continue;
            };
            let sched = std::fs::read_to_string(e.path().join("schedstat")).unwrap_or_default();
            let Some(ns) = sched
                .split_whitespace()
                .next()
                .and_then(|v| v.parse::<u64>().ok())
            else {
                continue;
            };
            let status = std::fs::read_to_string(e.path().join("status")).unwrap_or_default();
            let switches = status
                .lines()
                .find_map(|l| l.strip_prefix("voluntary_ctxt_switches:"))
                .and_then(|v| v.trim().parse::<u64>().ok())
                .unwrap_or(0);
            self.threads.insert(tid, (ns, switches));
        }
    }

    /// (CPU ns, voluntary switches) of all threads so far.
    fn total(&self) -> (u64, u64) {
        self.threads
            .values()
            .fold((0, 0), |(a, b), (ns, sw)| (a + ns, b + sw))
    }
}

/// Both processes, sampled in the background (every 200 ms) so exiting threads are not lost.
#[derive(Clone)]
struct Watch(Arc<Mutex<(Sampler, Sampler)>>);

impl Watch {
    fn new(backend: u32, nvim: u32) -> Watch {
        let w = Watch(Arc::new(Mutex::new((
            Sampler::new(backend),
            Sampler::new(nvim),
        ))));
        let bg = w.clone();
        std::thread::spawn(move || loop {
            std::thread::sleep(Duration::from_millis(200));
            bg.now();
        });
        w
    }

    /// ((backend ns, switches), (nvim ns, switches)) as of now.
    fn now(&self) -> ((u64, u64), (u64, u64)) {
        let mut g = self.0.lock().unwrap();
        g.0.sample();
        g.1.sample();
        (g.0.total(), g.1.total())
    }
}

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|v| v.replace('_', "").parse().ok())
        .unwrap_or(default)
}

/// The answer's events, one token (about four characters) each: 40 blocks of the bench file,
/// with prose before and between them to `tokens` events in all.
fn answer_events(tokens: usize, src: &[String]) -> Vec<String> {
    let pieces = |text: &str| -> Vec<String> {
        let chars: Vec<char> = text.chars().collect();
        chars.chunks(4).map(|c| c.iter().collect()).collect()
    };
    let blocks: Vec<Vec<String>> = (0..40)
        .map(|i| {
            pieces(&block(
                &format!("{}\n", src[i * 10]),
                &format!("let v{} = {} * 2;\n", i * 10, i * 10),
            ))
        })
        .collect();
    let in_blocks: usize = blocks.iter().map(Vec::len).sum();
    let prose = tokens.saturating_sub(in_blocks) / blocks.len();
    let mut events = Vec::new();
    for b in blocks {
        for j in 0..prose {
            events.push(chunk(if j + 1 == prose { "ok.\n" } else { "Ok, " }));
        }
        events.extend(b.iter().map(|p| chunk(p)));
    }
    events
}

struct Figures {
    tokens: u64,
    events: usize,
    wall: Duration,
    backend_ns: u64,
    backend_wakeups: u64,
    nvim_ns: u64,
    nvim_wakeups: u64,
    lag: Duration,
}

fn per_k(ns: u64, tokens: u64) -> f64 {
    ns as f64 / 1e6 * 1000.0 / tokens as f64
}

async fn one_edit(
    n: &mut Nvim,
    server: &FakeOpenRouter,
    watch: &Watch,
    run: usize,
    pace: u32,
) -> Figures {
    let tokens = env_or("FRUGAL_BENCH_TOKENS", 5000usize);
    let src: Vec<String> = (0..400).map(|i| format!("let v{i} = {i};")).collect();
    let events = answer_events(tokens, &src);
    let count = events.len();
    let last_byte = Arc::new(Mutex::new(None));
    let mut parts = vec![Part::Bytes(b": OPENROUTER PROCESSING\n\n".to_vec())];
    if pace == 0 {
        parts.push(Part::Bytes(events.concat().into_bytes()));
    } else {
        let period = Duration::from_secs(1) / pace;
        for (i, ev) in events.into_iter().enumerate() {
            parts.push(Part::At(period * (i as u32 + 1)));
            parts.push(Part::Bytes(ev.into_bytes()));
        }
    }
    let tail = format!(
        "{}{}data: [DONE]\n\n",
        finish_chunk("stop"),
        usage_chunk(1000, count as u64, 0.01)
    );
    parts.push(Part::Bytes(tail.into_bytes()));
    parts.push(Part::Mark(last_byte.clone()));
    server.push("/chat/completions", Reply::sse(parts));

    let refs: Vec<&str> = src.iter().map(String::as_str).collect();
    n.open(&format!("bench_{run}_{pace}.rs"), &refs).await;
    let ((be0, bw0), (nv0, nw0)) = watch.now();
    let t0 = Instant::now();
    n.cmd("LlmEdit double every value").await;
    let within =
        Duration::from_secs(60) + Duration::from_secs(count as u64 / u64::from(pace.max(1)));
    let done = n.wait_event_within("FrugalEditDone", within).await;
    let at_done = Instant::now();
    let wall = t0.elapsed();
    let ((be1, bw1), (nv1, nw1)) = watch.now();
    let hunks = field(&done, "hunks").as_u64().unwrap_or(0);
    assert_eq!(hunks, 40, "every block shown");
    let lag = last_byte
        .lock()
        .unwrap()
        .map(|t| at_done.saturating_duration_since(t))
        .unwrap_or_default();
    Figures {
        tokens: count as u64,
        events: count,
        wall,
        backend_ns: be1 - be0,
        backend_wakeups: bw1 - bw0,
        nvim_ns: nv1 - nv0,
        nvim_wakeups: nw1 - nw0,
        lag,
    }
}

fn pace_name(pace: u32) -> String {
    if pace == 0 {
        "full speed".into()
    } else {
        format!("{pace} ev/s")
    }
}

fn print(pace: u32, f: &Figures) {
    println!(
        "{:>10}: {} events in {:.1} s | backend {:.1} ms/1k tokens ({:.1} µs/event), {:.2} wake-ups/event | Neovim {:.1} ms/1k tokens, {:.2} wake-ups/event | last byte → FrugalEditDone {:.1} ms",
        pace_name(pace),
        f.events,
        f.wall.as_secs_f64(),
        per_k(f.backend_ns, f.tokens),
        f.backend_ns as f64 / 1e3 / f.events as f64,
        f.backend_wakeups as f64 / f.events as f64,
        per_k(f.nvim_ns, f.tokens),
        f.nvim_wakeups as f64 / f.events as f64,
        f.lag.as_secs_f64() * 1e3,
    );
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn main() {
    let paces: Vec<u32> = std::env::var("FRUGAL_BENCH_PACES")
        .unwrap_or_else(|_| "50,100,0".into())
        .split(',')
        .filter_map(|p| p.trim().parse().ok())
        .collect();
    let runs = env_or("FRUGAL_BENCH_RUNS", 1usize).max(1);
    let idle = Duration::from_secs(env_or("FRUGAL_BENCH_IDLE_S", 5u64));
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let server = FakeOpenRouter::start().await;
        // The users' default log level, not the tests' debug.
        let mut env = vec![("FRUGAL_SETUP", r#"{"log_level":"info"}"#.to_string())];
        // Another build of the backend (one with symbols, for a profiler).
        if let Ok(bin) = std::env::var("FRUGAL_BENCH_BIN") {
            env.push(("FRUGAL_BIN", bin));
        }
        let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let mut n = Nvim::start_with(&server.url, &env).await;
        let nvim_pid = n.lua("return vim.fn.getpid()").await.as_u64().unwrap() as u32;
        // The backend is started (and settles) before anything is measured.
        n.lua("require('frugal.rpc').ensure()").await;
        let backend_pid = n.backend_pid().await.expect("backend started");
        tokio::time::sleep(Duration::from_millis(500)).await;
        eprintln!("backend pid {backend_pid}, Neovim pid {nvim_pid}");
        let watch = Watch::new(backend_pid, nvim_pid);

        let mut all: HashMap<u32, Vec<Figures>> = HashMap::new();
        for run in 0..runs {
            for &pace in &paces {
                let f = one_edit(&mut n, &server, &watch, run, pace).await;
                print(pace, &f);
                all.entry(pace).or_default().push(f);
            }
        }
        if runs > 1 {
            println!("median of {runs} runs:");
            for &pace in &paces {
                let fs = &all[&pace];
                let m = |g: &dyn Fn(&Figures) -> f64| median(fs.iter().map(g).collect());
                println!(
                    "{:>10}: backend {:.1} ms/1k tokens, {:.2} wake-ups/event | Neovim {:.1} ms/1k tokens, {:.2} wake-ups/event | last byte → FrugalEditDone {:.1} ms",
                    pace_name(pace),
                    m(&|f| per_k(f.backend_ns, f.tokens)),
                    m(&|f| f.backend_wakeups as f64 / f.events as f64),
                    m(&|f| per_k(f.nvim_ns, f.tokens)),
                    m(&|f| f.nvim_wakeups as f64 / f.events as f64),
                    m(&|f| f.lag.as_secs_f64() * 1e3),
                );
            }
        }

        // Idle: nothing streaming, the backend should not run at all.
        let ((b0, w0), (nv0, _)) = watch.now();
        tokio::time::sleep(idle).await;
        let ((b1, w1), (nv1, _)) = watch.now();
        println!(
            "idle for {} s: backend {:.2} ms CPU, {} wake-ups; Neovim {:.2} ms CPU",
            idle.as_secs(),
            (b1 - b0) as f64 / 1e6,
            w1 - w0,
            (nv1 - nv0) as f64 / 1e6,
        );
        n.quit().await;
    });
}
