//! Soak: several headless Neovims (the real plugin, each starting its real backend) edit files
//! of one project, under one daily cap and one shared ledger, against one loopback OpenRouter
//! that fails one request in five at a random point (before the headers, mid-stream, or by
//! stalling) and charges random costs, some learnt only later through `/generation`.
//!
//! Checked at the end: no cap crossed (per local day, from the ledger), no record lost (every
//! generation the server started is in the ledger, charged what the server said), every row
//! settled, failed or reconciled (none left `reserved`), and every buffer either unchanged or
//! exactly as accepted (checked after every edit).
//!
//! In the normal suite: 4 Neovims × 50 edits, about 40 s on two busy cores (most edits take a
//! fraction of a second; stalls take up to `STALL_CLOSE`, in parallel). `scripts/soak` runs a
//! longer one (4 × 200). `FRUGAL_SOAK_SEED` replays a run (the seed is printed, and named in
//! every failure); `FRUGAL_SOAK_NVIMS` and `FRUGAL_SOAK_EDITS` change the counts; run with
//! `-- --nocapture` to see the figures.

mod common;

use common::*;
use frugal::budget::Usd;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const MODEL: &str = "anthropic/claude-sonnet-4.5";
/// USD per completion token of `MODEL` in `MODELS`.
const COMPLETION_PRICE: f64 = 0.000015;
const MAX_TOKENS: u64 = 1000;
/// A stalled stream is closed by the server after this, whether or not the backend's
/// `stall_timeout_s` gave up first.
const STALL_CLOSE: Duration = Duration::from_secs(3);
/// The longest `/generation` answers 404 for a new generation.
const GENERATION_DELAY_MS: u64 = 3000;
/// Bound on one edit, from `:LlmEdit` to its event (stalls, retries with backoff included).
const EDIT_DEADLINE: Duration = Duration::from_secs(60);
/// Bound on the reconciliation of every reservation once the edits are over.
const SETTLE_DEADLINE: Duration = Duration::from_secs(60);

// ---------------------------------------------------------------------------------------------
// Seeded randomness, independent of how the Neovims interleave: every decision is drawn from
// the seed and the name of what it is about (an edit's tag, an attempt number).
// ---------------------------------------------------------------------------------------------

fn splitmix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

struct Rng(u64);

impl Rng {
    fn new(seed: u64, what: &str) -> Rng {
        let mut h = 0xcbf2_9ce4_8422_2325u64;
        for b in what.bytes() {
            h = (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
        }
        Rng(splitmix(seed ^ h))
    }
    fn next(&mut self) -> u64 {
        self.0 = splitmix(self.0);
        self.0
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
    fn chance(&mut self, one_in: u64) -> bool {
        self.below(one_in) == 0
    }
}

// ---------------------------------------------------------------------------------------------
// The project's files and the answers
// ---------------------------------------------------------------------------------------------

fn base(i: usize) -> Vec<String> {
    vec![
        format!("# soak file {i}"),
        "alpha = 0".into(),
        "beta = 0".into(),
        String::new(),
        String::new(),
        "def total():".into(),
        "    return alpha + beta".into(),
    ]
}

/// What the model answers for an edit (the same for every attempt of it): one or two blocks.
fn blocks(seed: u64, tag: &str) -> Vec<(String, String)> {
    let mut r = Rng::new(seed, &format!("{tag}/answer"));
    let mut out = vec![("alpha = 0".to_string(), format!("alpha = 1  # {tag}"))];
    if r.chance(2) {
        out.push((
            "beta = 0".to_string(),
            format!("beta = {}  # ✓ \"quoted\" {tag}", r.below(1000)),
        ));
    }
    out
}

/// The buffer once every block of the answer is accepted.
fn accepted(seed: u64, i: usize, tag: &str) -> Vec<String> {
    let mut lines = base(i);
    for (search, replace) in blocks(seed, tag) {
        let at = lines.iter().position(|l| *l == search).unwrap();
        lines[at] = replace;
    }
    lines
}

fn answer_text(seed: u64, tag: &str) -> String {
    let mut s = String::from("Here is the change.\n\n");
    for (search, replace) in blocks(seed, tag) {
        s.push_str(&block(&format!("{search}\n"), &format!("{replace}\n")));
    }
    s
}

fn sse_chunk(gid: &str, content: &str) -> String {
    let v = serde_json::json!({
        "id": gid, "provider": "Test", "model": MODEL, "object": "chat.completion.chunk",
        "created": 1760706313,
        "choices": [{"index": 0, "delta": {"role": "assistant", "content": content}, "finish_reason": null}]
    });
    format!("data: {v}\n\n")
}

fn sse_finish(gid: &str) -> String {
    let v = serde_json::json!({
        "id": gid, "object": "chat.completion.chunk",
        "choices": [{"index": 0, "delta": {"content": ""}, "finish_reason": "stop", "native_finish_reason": "stop"}]
    });
    format!("data: {v}\n\n")
}

fn sse_usage(gid: &str, completion: u64, cost: f64) -> String {
    let v = serde_json::json!({
        "id": gid, "object": "chat.completion.chunk", "choices": [],
        "usage": {"prompt_tokens": 300, "completion_tokens": completion, "total_tokens": 300 + completion,
                  "cost": cost, "is_byok": false,
                  "prompt_tokens_details": {"cached_tokens": 0}, "completion_tokens_details": {"reasoning_tokens": 0}}
    });
    format!("data: {v}\n\n")
}

fn sse_error(gid: &str) -> String {
    let v = serde_json::json!({
        "id": gid, "object": "chat.completion.chunk",
        "error": {"code": "server_error", "message": "Provider disconnected unexpectedly"},
        "choices": [{"index": 0, "delta": {"content": ""}, "finish_reason": "error"}]
    });
    format!("data: {v}\n\n")
}

// ---------------------------------------------------------------------------------------------
// The loopback server's behaviour
// ---------------------------------------------------------------------------------------------

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
enum Fault {
    /// Connection closed after the request was read, before any status line.
    CloseBeforeHeaders,
    /// 502 before any answer byte.
    BadGateway,
    /// Some chunks, then an error chunk (`finish_reason: "error"`), then the end.
    ErrorChunk,
    /// Some chunks, then the connection closes cleanly with no `[DONE]`.
    CutMidStream,
    /// Some chunks, then a TCP reset.
    ResetMidStream,
    /// Headers (maybe a comment), then nothing until the client leaves or `STALL_CLOSE`.
    Stall,
}

impl Fault {
    fn pick(r: &mut Rng) -> Fault {
        match r.below(3) {
            0 => [Fault::CloseBeforeHeaders, Fault::BadGateway][r.below(2) as usize],
            1 => [
                Fault::ErrorChunk,
                Fault::CutMidStream,
                Fault::ResetMidStream,
            ][r.below(3) as usize],
            _ => Fault::Stall,
        }
    }
}

/// A generation the server started: what it costs, and when `/generation` knows it.
struct Generation {
    cost_nanos: u64,
    known_from: Instant,
    tag: String,
}

#[derive(Default)]
struct Book {
    /// Chat requests per edit tag (retries count).
    attempts: HashMap<String, u64>,
    generations: BTreeMap<String, Generation>,
    faults: BTreeMap<Fault, usize>,
    answered: usize,
    generation_lookups: usize,
    generation_404s: usize,
    /// Requests with a `max_tokens` other than asked (lowered to fit the cap).
    lowered: usize,
    /// Chat requests whose tag could not be read (a bug in the test or the prompt).
    untagged: usize,
}

fn tag_of(body: &str) -> Option<String> {
    let at = body.find("soak-")?;
    let rest = &body[at + 5..];
    let a: String = rest.chars().take_while(char::is_ascii_digit).collect();
    let rest = rest[a.len()..].strip_prefix('-')?;
    let b: String = rest.chars().take_while(char::is_ascii_digit).collect();
    (!a.is_empty() && !b.is_empty()).then(|| format!("soak-{a}-{b}"))
}

fn chat_reply(seed: u64, book: &Mutex<Book>, req: &Recorded) -> Reply {
    let body: serde_json::Value = serde_json::from_str(&req.body).unwrap_or_default();
    let max_tokens = body["max_tokens"].as_u64().unwrap_or(MAX_TOKENS);
    let Some(tag) = tag_of(&req.body) else {
        book.lock().unwrap().untagged += 1;
        return Reply::json(400, r#"{"error":{"code":400,"message":"no soak tag"}}"#);
    };
    let mut b = book.lock().unwrap();
    if max_tokens != MAX_TOKENS {
        b.lowered += 1;
    }
    let attempt = {
        let n = b.attempts.entry(tag.clone()).or_default();
        *n += 1;
        *n
    };
    let mut r = Rng::new(seed, &format!("{tag}/attempt{attempt}"));
    let fault = r.chance(5).then(|| Fault::pick(&mut r));
    if let Some(f) = fault {
        *b.faults.entry(f).or_default() += 1;
    } else {
        b.answered += 1;
    }
    match fault {
        Some(Fault::CloseBeforeHeaders) => return Reply::close(),
        Some(Fault::BadGateway) => {
            return Reply::json(
                502,
                r#"{"error":{"code":502,"message":"Provider returned error"}}"#,
            )
        }
        _ => {}
    }
    // A generation: it costs up to what max_tokens allows at the model's price (what
    // `provider.max_price` and `max_tokens` bound), in whole nanodollars as the API writes them.
    let gid = format!("gen-soak-{seed:x}-{tag}-{attempt}");
    let bound_nanos = (max_tokens as f64 * COMPLETION_PRICE * 1e9) as u64;
    let cost_nanos = bound_nanos / 20 + r.below(bound_nanos - bound_nanos / 20 + 1);
    let cost = cost_nanos as f64 / 1e9;
    let completion = (cost / COMPLETION_PRICE) as u64;
    b.generations.insert(
        gid.clone(),
        Generation {
            cost_nanos,
            known_from: Instant::now() + Duration::from_millis(r.below(GENERATION_DELAY_MS)),
            tag: tag.clone(),
        },
    );
    drop(b);

    let text = answer_text(seed, &tag);
    let chars: Vec<char> = text.chars().collect();
    let mut pieces = Vec::new();
    let mut at = 0;
    while at < chars.len() {
        let n = (1 + r.below(12) as usize).min(chars.len() - at);
        pieces.push(sse_chunk(
            &gid,
            &chars[at..at + n].iter().collect::<String>(),
        ));
        at += n;
    }
    let mut parts = vec![Part::Bytes(b": OPENROUTER PROCESSING\n\n".to_vec())];
    let sent_pieces = |upto: usize, parts: &mut Vec<Part>, r: &mut Rng| {
        for p in &pieces[..upto] {
            parts.push(Part::Bytes(p.clone().into_bytes()));
            if r.chance(4) {
                parts.push(Part::Delay(Duration::from_millis(r.below(15))));
            }
        }
    };
    match fault {
        None => {
            sent_pieces(pieces.len(), &mut parts, &mut r);
            let tail = format!(
                "{}{}data: [DONE]\n\n",
                sse_finish(&gid),
                sse_usage(&gid, completion, cost)
            );
            parts.push(Part::Bytes(tail.into_bytes()));
        }
        Some(Fault::Stall) => {
            let upto = if r.chance(2) {
                0
            } else {
                r.below(pieces.len() as u64) as usize
            };
            sent_pieces(upto, &mut parts, &mut r);
            parts.push(Part::HangFor(STALL_CLOSE));
        }
        Some(f) => {
            let upto = r.below(pieces.len() as u64 + 1) as usize;
            sent_pieces(upto, &mut parts, &mut r);
            match f {
                Fault::ErrorChunk => parts.push(Part::Bytes(sse_error(&gid).into_bytes())),
                Fault::ResetMidStream => parts.push(Part::Reset),
                _ => {}
            }
        }
    }
    let mut reply = Reply::sse(parts);
    reply.headers = vec![
        ("Content-Type".into(), "text/event-stream".into()),
        ("X-Generation-Id".into(), gid),
    ];
    reply
}

fn generation_reply(book: &Mutex<Book>, req: &Recorded) -> Reply {
    let gid = req
        .path
        .split_once("id=")
        .map(|(_, id)| id.split('&').next().unwrap_or(""))
        .unwrap_or("");
    let mut b = book.lock().unwrap();
    b.generation_lookups += 1;
    let known = b
        .generations
        .get(gid)
        .filter(|g| Instant::now() >= g.known_from)
        .map(|g| g.cost_nanos);
    match known {
        Some(nanos) => Reply::json(
            200,
            &serde_json::json!({"data": {"id": gid, "total_cost": nanos as f64 / 1e9,
                "tokens_prompt": 300, "tokens_completion": 10, "model": MODEL}})
            .to_string(),
        ),
        None => {
            b.generation_404s += 1;
            Reply::json(
                404,
                r#"{"error":{"code":404,"message":"Generation not found"}}"#,
            )
        }
    }
}

// ---------------------------------------------------------------------------------------------
// The run
// ---------------------------------------------------------------------------------------------

fn env_num(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(default)
}

/// What one Neovim saw.
#[derive(Default)]
struct Outcome {
    done: usize,
    accepted: usize,
    /// Failures by reason.
    failed: BTreeMap<String, usize>,
    /// Messages of failures whose reason is not one a fault explains.
    odd: Vec<String>,
    backend_pid: Option<u32>,
}

async fn drive(
    mut n: Nvim,
    i: usize,
    edits: usize,
    seed: u64,
    file: std::path::PathBuf,
) -> (Nvim, Outcome) {
    let mut out = Outcome::default();
    let mut r = Rng::new(seed, &format!("nvim{i}"));
    n.cmd(&format!("edit {}", file.display())).await;
    for k in 0..edits {
        let tag = format!("soak-{i}-{k}");
        // Reset: the file as on disk (never written), no hunk pending.
        n.cmd("edit!").await;
        assert_eq!(n.lines().await, base(i), "seed {seed}: {tag} reset");
        n.cmd(&format!("LlmEdit make it {tag}")).await;
        let Some((event, data)) = n
            .wait_any_event(&["FrugalEditDone", "FrugalEditFailed"], EDIT_DEADLINE)
            .await
        else {
            panic!(
                "seed {seed}: {tag}: no FrugalEditDone/Failed within {EDIT_DEADLINE:?}; seen: {:?}",
                n.seen.iter().rev().take(10).collect::<Vec<_>>()
            );
        };
        let accept = r.chance(2);
        n.cmd(if accept { "LlmAccept!" } else { "LlmReject!" })
            .await;
        let want = if event == "FrugalEditDone" {
            out.done += 1;
            if accept {
                out.accepted += 1;
                accepted(seed, i, &tag)
            } else {
                base(i)
            }
        } else {
            let reason = field(&data, "reason").as_str().unwrap_or("?").to_string();
            let message = field(&data, "message").as_str().unwrap_or("").to_string();
            if !matches!(reason.as_str(), "budget" | "stream" | "http") {
                out.odd.push(format!("{tag}: {reason}: {message}"));
            }
            *out.failed.entry(reason).or_default() += 1;
            base(i)
        };
        let got = n.lines().await;
        assert_eq!(
            got, want,
            "seed {seed}: {tag}: after {event} and {}, the buffer is neither unchanged nor as accepted",
            if accept { "LlmAccept!" } else { "LlmReject!" }
        );
        if k == 0 {
            out.backend_pid = n.backend_pid().await;
        }
    }
    (n, out)
}

/// Picodollars as exact dollars (`0.012345`).
fn exact(ps: i64) -> String {
    let frac = format!("{:012}", ps % 1_000_000_000_000);
    format!("{}.{}", ps / 1_000_000_000_000, frac.trim_end_matches('0'))
        .trim_end_matches('.')
        .to_string()
}

/// `created_at` (unix ms) → the local calendar day, as the ledger's daily cap counts it.
fn local_day(ms: i64) -> jiff::civil::Date {
    jiff::Timestamp::from_millisecond(ms)
        .unwrap()
        .to_zoned(jiff::tz::TimeZone::system())
        .date()
}

/// `(created_at, state, reserved, charged, generation_id, charge_source)` of every row.
type LedgerRow = (
    i64,
    String,
    i64,
    Option<i64>,
    Option<String>,
    Option<String>,
);

fn ledger(data: &Path) -> Vec<LedgerRow> {
    let conn = rusqlite::Connection::open(ledger_path(data)).unwrap();
    conn.busy_timeout(Duration::from_secs(5)).unwrap();
    let mut st = conn
        .prepare("SELECT created_at, state, reserved, charged, generation_id, charge_source FROM requests ORDER BY id")
        .unwrap();
    st.query_map([], |r| {
        Ok((
            r.get(0)?,
            r.get(1)?,
            r.get(2)?,
            r.get(3)?,
            r.get(4)?,
            r.get(5)?,
        ))
    })
    .unwrap()
    .map(Result::unwrap)
    .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn soak_four_neovims_one_cap_a_failing_server() {
    let started = Instant::now();
    let nvims = env_num("FRUGAL_SOAK_NVIMS", 4) as usize;
    let edits = env_num("FRUGAL_SOAK_EDITS", 50) as usize;
    let seed = std::env::var("FRUGAL_SOAK_SEED")
        .ok()
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| {
            splitmix(
                std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .unwrap()
                    .as_nanos() as u64,
            )
        });
    // A cap reached about two thirds of the way: later edits are refused or lowered.
    let cap_cents = ((nvims * edits) as u64 * 65).div_ceil(100).max(5);
    let cap = Usd(cap_cents as i64 * 10_000_000_000);
    eprintln!(
        "soak: seed {seed} (FRUGAL_SOAK_SEED to replay), {nvims} Neovims × {edits} edits, daily cap {cap}"
    );

    let book = Arc::new(Mutex::new(Book::default()));
    let server = FakeOpenRouter::start().await;
    {
        let book = book.clone();
        server.respond_with(move |req| {
            let route = req.path.split('?').next().unwrap_or("");
            if route.ends_with("/chat/completions") {
                chat_reply(seed, &book, req)
            } else if route.ends_with("/generation") {
                generation_reply(&book, req)
            } else if route.ends_with("/models") {
                Reply::json(200, MODELS)
            } else {
                Reply::json(404, r#"{"error":{"code":404,"message":"no such route"}}"#)
            }
        });
    }
    let shared = tempfile::tempdir().unwrap();
    let data = shared.path().join("data");
    let proj = shared.path().join("proj");
    std::fs::create_dir_all(&proj).unwrap();
    let setup = serde_json::json!({
        "data_dir": data,
        "model": MODEL,
        "max_tokens": MAX_TOKENS,
        "min_useful_tokens": 300,
        "budget": { "daily_usd": cap_cents as f64 / 100.0 },
        "stall_timeout_s": 1,
    })
    .to_string();

    let mut tasks = Vec::new();
    for i in 0..nvims {
        let file = proj.join(format!("f{i}.py"));
        std::fs::write(&file, base(i).join("\n") + "\n").unwrap();
        let url = server.url.clone();
        let setup = setup.clone();
        tasks.push(tokio::spawn(async move {
            let n = Nvim::start_with(&url, &[("FRUGAL_SETUP", &setup)]).await;
            drive(n, i, edits, seed, file).await
        }));
    }
    let mut neovims = Vec::new();
    let mut outcomes = Vec::new();
    for t in tasks {
        match t.await {
            Ok((n, o)) => {
                neovims.push(n);
                outcomes.push(o);
            }
            Err(e) => std::panic::resume_unwind(e.into_panic()),
        }
    }
    let edits_over = started.elapsed();

    // Every reservation ends settled, failed or reconciled while the backends still run
    // (reconciliation retries /generation in the background).
    let end = Instant::now() + SETTLE_DEADLINE;
    let rows = loop {
        let rows = ledger(&data);
        if rows.iter().all(|r| r.1 != "reserved") {
            break rows;
        }
        assert!(
            Instant::now() < end,
            "seed {seed}: rows still reserved {SETTLE_DEADLINE:?} after the last edit: {:?}",
            rows.iter()
                .filter(|r| r.1 == "reserved")
                .collect::<Vec<_>>()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let settled_after = started.elapsed() - edits_over;

    let pids: Vec<u32> = outcomes.iter().filter_map(|o| o.backend_pid).collect();
    for n in neovims {
        n.quit().await;
    }
    for pid in pids {
        wait_dead(pid).await;
    }

    // Figures.
    let b = book.lock().unwrap();
    let done: usize = outcomes.iter().map(|o| o.done).sum();
    let accepted_n: usize = outcomes.iter().map(|o| o.accepted).sum();
    let mut failed: BTreeMap<String, usize> = BTreeMap::new();
    for o in &outcomes {
        for (k, v) in &o.failed {
            *failed.entry(k.clone()).or_default() += v;
        }
    }
    let mut states: BTreeMap<(String, Option<String>), usize> = BTreeMap::new();
    for r in &rows {
        *states.entry((r.1.clone(), r.5.clone())).or_default() += 1;
    }
    let mut per_day: BTreeMap<jiff::civil::Date, i64> = BTreeMap::new();
    for r in &rows {
        *per_day.entry(local_day(r.0)).or_default() += r.3.unwrap_or(0);
    }
    let chat = server.chat_requests().len();
    eprintln!(
        "soak: {} edits in {:.1?} (+{:.1?} until every row settled): {done} done ({accepted_n} accepted), failed {failed:?}",
        nvims * edits,
        edits_over,
        settled_after
    );
    eprintln!(
        "soak: server: {chat} chat requests, {} answered in full, faults {:?}, {} with max_tokens lowered; /generation: {} lookups, {} answered 404",
        b.answered, b.faults, b.lowered, b.generation_lookups, b.generation_404s
    );
    eprintln!("soak: ledger: {} rows {states:?}", rows.len());
    for (day, spent) in &per_day {
        eprintln!("soak: spend on {day}: ${} of a {cap} cap", exact(*spent));
    }

    // The premise: every chat request carried its tag, and every edit got an event.
    assert_eq!(b.untagged, 0, "seed {seed}: chat requests without a tag");
    assert_eq!(
        done + failed.values().sum::<usize>(),
        nvims * edits,
        "seed {seed}: one event per edit"
    );
    let odd: Vec<&String> = outcomes.iter().flat_map(|o| &o.odd).collect();
    assert!(
        odd.is_empty(),
        "seed {seed}: failures no injected fault explains: {odd:#?}"
    );

    // No cap crossed, on any local day.
    for (day, spent) in &per_day {
        assert!(
            *spent <= cap.picos(),
            "seed {seed}: {day}: charged {} over the daily cap {cap}",
            Usd(*spent)
        );
    }
    // Nothing charged above its reservation (the server charges within max_tokens).
    for r in &rows {
        assert!(
            r.3.unwrap_or(0) <= r.2,
            "seed {seed}: row charged above its reservation: {r:?}"
        );
    }

    // No record lost: every generation the server started is one row, charged exactly what
    // the server said (in the usage chunk or through /generation).
    let by_gid: HashMap<&str, &LedgerRow> = rows
        .iter()
        .filter_map(|r| r.4.as_deref().map(|g| (g, r)))
        .collect();
    assert_eq!(
        by_gid.len(),
        rows.iter().filter(|r| r.4.is_some()).count(),
        "seed {seed}: a generation id on two rows"
    );
    for (gid, g) in &b.generations {
        let Some(r) = by_gid.get(gid.as_str()) else {
            panic!(
                "seed {seed}: generation {gid} ({}) is not in the ledger",
                g.tag
            );
        };
        assert_eq!(
            r.3,
            Some(g.cost_nanos as i64 * 1000),
            "seed {seed}: {gid} charged other than the server's cost: {r:?}"
        );
        assert!(
            matches!(r.1.as_str(), "settled" | "reconciled"),
            "seed {seed}: {gid}: {r:?}"
        );
    }
    let issued: HashSet<&str> = b.generations.keys().map(String::as_str).collect();
    for gid in by_gid.keys() {
        assert!(
            issued.contains(gid),
            "seed {seed}: the ledger names a generation the server never started: {gid}"
        );
    }
    // Every edit that was not refused by the budget reserved (at least) one row.
    let refused = failed.get("budget").copied().unwrap_or(0);
    assert!(
        rows.len() >= nvims * edits - refused,
        "seed {seed}: {} rows for {} edits that were let through",
        rows.len(),
        nvims * edits - refused
    );
    // The files on disk were never written.
    for i in 0..nvims {
        let on_disk = std::fs::read_to_string(proj.join(format!("f{i}.py"))).unwrap();
        assert_eq!(on_disk, base(i).join("\n") + "\n", "seed {seed}: f{i}.py");
    }
    eprintln!("soak: passed in {:.1?} (seed {seed})", started.elapsed());
}
