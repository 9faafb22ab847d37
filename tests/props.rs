//! Property tests, through the crate's public API, of the parsers that read what the outside
//! world writes: the SSE decoder (a server's bytes), `.frugal.toml` (a repository's file) and the
//! money parser (catalogue prices, `usage.cost`, what the user sees).
//!
//! Run in the normal suite with a modest case count (`PROPTEST_CASES` overrides it for a long
//! run: `PROPTEST_CASES=100000 cargo test --release --test props`). No wall-clock assertions:
//! "no hang" is a generous per-case deadline on a worker thread, which only a real hang misses.

use frugal::budget::{MoneyError, Usd};
use frugal::openrouter::sse::{self, ChatEvent, CompletionDetails, PromptDetails, Usage};
use frugal::settings::project;
use futures::StreamExt;
use proptest::prelude::*;
use proptest::test_runner::Config;
use std::time::Duration;

/// 128 cases by default; `PROPTEST_CASES` (read by proptest) wins when set.
fn config() -> Config {
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(128);
    Config {
        cases,
        // Failures are reported with their minimal input; no files written into the tree.
        failure_persistence: None,
        ..Config::default()
    }
}

/// Runs `f` on a worker thread: a panic or a hang (no answer within a deadline far beyond any
/// honest run) fails the case with the input's description instead of killing or wedging the
/// test binary.
fn bounded<T: Send + 'static>(what: String, f: impl FnOnce() -> T + Send + 'static) -> T {
    let (tx, rx) = std::sync::mpsc::channel();
    let h = std::thread::spawn(move || {
        let _ = tx.send(f());
    });
    match rx.recv_timeout(Duration::from_secs(30)) {
        Ok(v) => {
            let _ = h.join();
            v
        }
        Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => {
            let e = h.join().err().unwrap();
            let msg = e
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| e.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_default();
            panic!("panicked ({msg}) on {what}")
        }
        Err(_) => panic!("no answer within 30 s (a hang) on {what}"),
    }
}

// ---------------------------------------------------------------------------------------------
// SSE decoder
// ---------------------------------------------------------------------------------------------

/// Decodes `bytes` delivered in pieces cut at `cuts` (byte offsets, any order, any count).
fn decode_split(bytes: &[u8], cuts: &[usize]) -> Vec<ChatEvent> {
    let mut at: Vec<usize> = cuts.iter().map(|c| c % (bytes.len() + 1)).collect();
    at.push(0);
    at.push(bytes.len());
    at.sort_unstable();
    at.dedup();
    let pieces: Vec<Vec<u8>> = at.windows(2).map(|w| bytes[w[0]..w[1]].to_vec()).collect();
    let s = futures::stream::iter(pieces.into_iter().map(Ok::<_, sse::StreamCut>));
    futures::executor::block_on(sse::decode(s).collect::<Vec<_>>())
}

fn decode_bounded(bytes: Vec<u8>, cuts: Vec<usize>) -> Vec<ChatEvent> {
    let what = format!(
        "bytes {:?} cut at {cuts:?}",
        String::from_utf8_lossy(&bytes)
    );
    bounded(what, move || decode_split(&bytes, &cuts))
}

/// One event of a generated, valid OpenRouter stream.
#[derive(Debug, Clone)]
enum Ev {
    Comment(String),
    Text(String),
    Finish(String),
    Usage {
        prompt: u64,
        completion: u64,
        cost: Option<f64>,
        cached: u64,
    },
    Error {
        code: String,
        message: String,
    },
    Done,
}

/// How the generated stream is framed: the line ending (LF, CRLF, or CR as the SSE grammar
/// allows), whether `data:` has its optional space, whether the JSON of a chunk is spread over
/// several `data:` lines (joined with `\n` by the SSE rules, which JSON reads as whitespace), and
/// fields we ignore (`event:`, `id:`, `retry:`).
#[derive(Debug, Clone)]
struct Framing {
    eol: &'static str,
    space: bool,
    multiline: bool,
    extra_fields: bool,
}

fn text() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => any::<String>().prop_map(|s| s.chars().take(40).collect()),
        2 => "[ -~\n\t]{0,30}",
        1 => Just("<<<<<<< SEARCH\n".to_string()),
        1 => Just("data: [DONE]\n\n".to_string()),
        1 => Just("\r\n\r\n: x\n".to_string()),
    ]
}

fn ev() -> impl Strategy<Value = Ev> {
    prop_oneof![
        2 => "[ -~]{0,30}".prop_map(|c| Ev::Comment(c.replace(['\r', '\n'], ""))),
        8 => text().prop_map(Ev::Text),
        1 => prop_oneof![Just("stop"), Just("length"), Just("error")]
            .prop_map(|r| Ev::Finish(r.to_string())),
        1 => (
            0u64..1_000_000,
            0u64..1_000_000,
            // Costs as servers write them: short decimals. (serde_json, without its
            // `float_roundtrip` feature, may read a 17-digit float one ulp off.)
            prop::option::of(
                (0u64..10_000_000_000_000, 0i32..=12)
                    .prop_map(|(m, k)| m as f64 / 10f64.powi(k))
            ),
            0u64..1000
        )
            .prop_map(|(prompt, completion, cost, cached)| Ev::Usage {
                prompt,
                completion,
                cost,
                cached,
            }),
        1 => ("[a-z_]{1,12}", any::<String>())
            .prop_map(|(code, message)| Ev::Error { code, message }),
        1 => Just(Ev::Done),
    ]
}

fn framing() -> impl Strategy<Value = Framing> {
    (
        prop_oneof![Just("\n"), Just("\r\n"), Just("\r")],
        any::<bool>(),
        any::<bool>(),
        any::<bool>(),
    )
        .prop_map(|(eol, space, multiline, extra_fields)| Framing {
            eol,
            space,
            multiline,
            extra_fields,
        })
}

/// The stream's bytes and the events the decoder must give for it.
fn render(gen_id: &str, model: &str, evs: &[Ev], f: &Framing) -> (Vec<u8>, Vec<ChatEvent>) {
    let mut out = String::new();
    let mut want = Vec::new();
    let mut seen_id = false;
    let eol = f.eol;
    let data = |out: &mut String, v: &serde_json::Value| {
        let json = if f.multiline {
            serde_json::to_string_pretty(v).unwrap()
        } else {
            v.to_string()
        };
        if f.extra_fields {
            out.push_str(&format!("event: message{eol}id: 7{eol}retry: 1000{eol}"));
        }
        for line in json.split('\n') {
            out.push_str(if f.space { "data: " } else { "data:" });
            out.push_str(line);
            out.push_str(eol);
        }
        out.push_str(eol);
    };
    for e in evs {
        let head = |want: &mut Vec<ChatEvent>, seen: &mut bool| {
            if !*seen {
                *seen = true;
                want.push(ChatEvent::Id(gen_id.to_string()));
                want.push(ChatEvent::Model(model.to_string()));
            }
        };
        match e {
            Ev::Comment(c) => {
                out.push_str(&format!(":{c}{eol}{eol}"));
            }
            Ev::Text(t) => {
                let v = serde_json::json!({
                    "id": gen_id, "provider": "Test", "model": model,
                    "object": "chat.completion.chunk", "created": 1760706313,
                    "choices": [{"index": 0, "delta": {"role": "assistant", "content": t}, "finish_reason": null}]
                });
                data(&mut out, &v);
                head(&mut want, &mut seen_id);
                if !t.is_empty() {
                    want.push(ChatEvent::Text(t.clone()));
                }
            }
            Ev::Finish(r) => {
                let v = serde_json::json!({
                    "id": gen_id, "model": model, "object": "chat.completion.chunk",
                    "choices": [{"index": 0, "delta": {"content": ""}, "finish_reason": r, "native_finish_reason": r}]
                });
                data(&mut out, &v);
                head(&mut want, &mut seen_id);
                want.push(ChatEvent::Finish(r.clone()));
            }
            Ev::Usage {
                prompt,
                completion,
                cost,
                cached,
            } => {
                let v = serde_json::json!({
                    "id": gen_id, "model": model, "object": "chat.completion.chunk", "choices": [],
                    "usage": {"prompt_tokens": prompt, "completion_tokens": completion,
                              "total_tokens": prompt + completion, "cost": cost, "is_byok": false,
                              "prompt_tokens_details": {"cached_tokens": cached},
                              "completion_tokens_details": {"reasoning_tokens": 0}}
                });
                data(&mut out, &v);
                head(&mut want, &mut seen_id);
                want.push(ChatEvent::Usage(Usage {
                    prompt_tokens: *prompt,
                    completion_tokens: *completion,
                    // Read as written; beyond what money holds, no cost.
                    cost: cost.and_then(|c| frugal::budget::Usd::from_cost_f64(c).ok()),
                    prompt_tokens_details: Some(PromptDetails {
                        cached_tokens: Some(*cached),
                    }),
                    completion_tokens_details: Some(CompletionDetails {
                        reasoning_tokens: Some(0),
                    }),
                }));
            }
            Ev::Error { code, message } => {
                let v = serde_json::json!({
                    "id": gen_id, "model": model, "object": "chat.completion.chunk",
                    "error": {"code": code, "message": message},
                    "choices": [{"index": 0, "delta": {"content": ""}, "finish_reason": "error"}]
                });
                data(&mut out, &v);
                head(&mut want, &mut seen_id);
                want.push(ChatEvent::Error {
                    code: code.clone(),
                    message: message.clone(),
                });
            }
            Ev::Done => {
                out.push_str(&format!("data: [DONE]{eol}{eol}"));
                want.push(ChatEvent::Done);
            }
        }
    }
    (out.into_bytes(), want)
}

/// Pieces of hostile or broken input: stray bytes, half lines, invalid UTF-8, a byte-order mark,
/// lone CRs, broken JSON, huge numbers, fields with no colon.
fn garbage_piece() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        4 => prop::collection::vec(any::<u8>(), 0..12),
        2 => prop_oneof![
            Just(&b"\n"[..]), Just(&b"\r"[..]), Just(&b"\r\n"[..]), Just(&b"\n\n"[..]),
            Just(&b"data: "[..]), Just(&b"data:"[..]), Just(&b"data"[..]), Just(&b":"[..]),
            Just(&b": OPENROUTER PROCESSING\n\n"[..]), Just(&b"data: [DONE]\n\n"[..]),
            Just(&b"data: {"[..]), Just(&b"}"[..]), Just(&b"\xef\xbb\xbf"[..]),
            Just(&b"\xff"[..]), Just(&b"\xc3"[..]), Just(&b"\xe2\x9c"[..]), Just(&b"\0"[..]),
            Just(&b"event: error\n"[..]), Just(&b"retry: 99999999999999999999\n"[..]),
            Just(&b"id: \0\n"[..]),
            Just(&br#"data: {"choices":[{"delta":{"content":"x"},"finish_reason":null}]}"#[..]),
            Just(&br#"data: {"error":{"code":502,"message":"bad"}}"#[..]),
            Just(&br#"data: {"usage":{"prompt_tokens":1e400,"cost":-1}}"#[..]),
            Just(&br#"data: {"id":"gen-x","choices":null}"#[..]),
        ].prop_map(|b| b.to_vec()),
        2 => ev().prop_map(|e| {
            let f = Framing { eol: "\n", space: true, multiline: false, extra_fields: false };
            render("gen-g", "m/g", &[e], &f).0
        }),
    ]
}

/// UTF-8's byte-order mark.
const BOM: &[u8] = b"\xef\xbb\xbf";

/// Found by `sse_garbage_never_panics_or_hangs_and_is_split_invariant`: a body that starts
/// with a UTF-8 byte-order mark panicked inside `eventsource-stream` 0.2.3 (it stripped the
/// three-byte BOM as `&s[1..]`), so the edit's task died without a `FrugalEditFailed`. A hostile
/// or misconfigured endpoint can send one; the decoder must skip it, however the reads are cut.
#[test]
fn sse_a_leading_byte_order_mark() {
    let body = [BOM, b"data: [DONE]\n\n"].concat();
    for cuts in [vec![], vec![1], vec![2], vec![3]] {
        let got = decode_bounded(body.clone(), cuts);
        assert!(got.contains(&ChatEvent::Done), "{got:?}");
    }
}

fn cuts() -> impl Strategy<Value = Vec<usize>> {
    prop::collection::vec(any::<usize>(), 0..12)
}

proptest! {
    #![proptest_config(config())]

    /// A valid stream gives the events it encodes, however it is cut into reads (inside a
    /// line, inside a CRLF, inside a UTF-8 character), and the same events as in one read.
    #[test]
    fn sse_any_split_of_a_valid_stream_gives_its_events(
        evs in prop::collection::vec(ev(), 0..16),
        f in framing(),
        gen_id in "gen-[A-Za-z0-9]{1,20}",
        model in "[a-z]{1,8}/[a-z0-9.:-]{1,16}",
        cuts in cuts(),
    ) {
        let (bytes, want) = render(&gen_id, &model, &evs, &f);
        let whole = decode_bounded(bytes.clone(), vec![]);
        prop_assert_eq!(&whole, &want, "one read of {:?}", String::from_utf8_lossy(&bytes));
        let split = decode_bounded(bytes.clone(), cuts.clone());
        prop_assert_eq!(&split, &want, "cut at {:?}: {:?}", cuts, String::from_utf8_lossy(&bytes));
    }

    /// One byte a read: the worst split.
    #[test]
    fn sse_one_byte_at_a_time(
        evs in prop::collection::vec(ev(), 0..6),
        f in framing(),
    ) {
        let (bytes, want) = render("gen-1", "a/b", &evs, &f);
        let cuts: Vec<usize> = (0..bytes.len()).collect();
        prop_assert_eq!(decode_bounded(bytes, cuts), want);
    }

    /// Arbitrary bytes (and valid events mixed with garbage) never panic or hang, and what
    /// comes out does not depend on how the bytes were cut into reads.
    #[test]
    fn sse_garbage_never_panics_or_hangs_and_is_split_invariant(
        pieces in prop::collection::vec(garbage_piece(), 0..24),
        cuts in cuts(),
    ) {
        let bytes: Vec<u8> = pieces.concat();
        let whole = decode_bounded(bytes.clone(), vec![]);
        let split = decode_bounded(bytes.clone(), cuts.clone());
        prop_assert_eq!(whole, split, "cut at {:?}: {:?}", cuts, String::from_utf8_lossy(&bytes));
    }

    /// Pure random bytes.
    #[test]
    fn sse_random_bytes_never_panic_or_hang(
        bytes in prop::collection::vec(any::<u8>(), 0..512),
        cuts in cuts(),
    ) {
        prop_assume!(!bytes.starts_with(BOM));
        decode_bounded(bytes, cuts);
    }
}

// ---------------------------------------------------------------------------------------------
// .frugal.toml
// ---------------------------------------------------------------------------------------------

const FILE: &str = "/some/repo/.frugal.toml";

/// An amount as a user writes it (`5`, `0.25`, `12.000100`) and its exact value.
fn amount() -> impl Strategy<Value = (String, Usd)> {
    (
        0u64..100_000,
        prop::option::of((1usize..7, 0u64..1_000_000)),
        any::<bool>(),
    )
        .prop_map(|(int, frac, integer)| {
            match frac {
                None => {
                    // TOML integers are amounts too (`daily_usd = 5`).
                    let s = if integer {
                        format!("{int}")
                    } else {
                        format!("{int}.0")
                    };
                    (s, Usd(int as i64 * 1_000_000_000_000))
                }
                Some((digits, f)) => {
                    let f = f % 10u64.pow(digits as u32);
                    let s = format!("{int}.{f:0digits$}");
                    let ps =
                        int as i64 * 1_000_000_000_000 + f as i64 * 10i64.pow(12 - digits as u32);
                    (s, Usd(ps))
                }
            }
        })
}

/// A valid project file's fields, as generated.
#[derive(Debug, Clone)]
struct FileSpec {
    key: Option<String>,
    daily: Option<(String, Usd)>,
    monthly: Option<(String, Usd)>,
    total: Option<(String, Usd)>,
    per_request: Option<(String, Usd)>,
    /// Thousandths in 1..=1000.
    warn_at: Option<u32>,
    /// `Some` writes a `[budget]` table (even an empty one).
    budget_table: bool,
    default_model: Option<String>,
    allow: Option<Vec<String>>,
    data_collection: Option<&'static str>,
    /// Section order and decoration.
    order: [usize; 3],
    comments: bool,
    crlf: bool,
}

fn file_spec() -> impl Strategy<Value = FileSpec> {
    let budget = (
        prop::option::of(amount()),
        prop::option::of(amount()),
        prop::option::of(amount()),
        prop::option::of(amount()),
        prop::option::of(1u32..=1000),
        any::<bool>(),
    );
    let rest = (
        prop::option::of("[a-z][a-z0-9_-]{0,12}"),
        prop::option::of("[a-z]{1,10}/[a-z0-9.:-]{1,20}"),
        prop::option::of(prop::collection::vec("[a-z*]{0,6}/[a-z0-9.*-]{1,10}", 0..4)),
        prop::option::of(prop_oneof![Just("deny"), Just("allow")]),
        Just([0usize, 1, 2]).prop_shuffle(),
        any::<bool>(),
        any::<bool>(),
    );
    (budget, rest).prop_map(
        |(
            (daily, monthly, total, per_request, warn_at, table),
            (key, default_model, allow, data_collection, order, comments, crlf),
        )| {
            let order = [order[0], order[1], order[2]];
            FileSpec {
                budget_table: table
                    || daily.is_some()
                    || monthly.is_some()
                    || total.is_some()
                    || per_request.is_some()
                    || warn_at.is_some(),
                key,
                daily,
                monthly,
                total,
                per_request,
                warn_at,
                default_model,
                allow,
                data_collection,
                order,
                comments,
                crlf,
            }
        },
    )
}

/// The file's text and, for each line (0-based), which field it assigns.
fn write_file(s: &FileSpec) -> Vec<(String, Option<&'static str>)> {
    let mut lines: Vec<(String, Option<&'static str>)> = Vec::new();
    let c = |lines: &mut Vec<(String, Option<&'static str>)>, text: &str| {
        if s.comments {
            lines.push((format!("# {text}"), None));
        }
    };
    c(&mut lines, "project settings");
    if let Some(k) = &s.key {
        lines.push((format!("key = {k:?}"), Some("key")));
    }
    for section in s.order {
        match section {
            0 if s.budget_table => {
                lines.push((String::new(), None));
                lines.push(("[budget]".into(), None));
                c(&mut lines, "caps in USD");
                for (name, v) in [
                    ("daily_usd", &s.daily),
                    ("monthly_usd", &s.monthly),
                    ("total_usd", &s.total),
                    ("per_request_usd", &s.per_request),
                ] {
                    if let Some((text, _)) = v {
                        let pad = if s.comments { "   " } else { " " };
                        lines.push((format!("{name}{pad}= {text}"), Some(name)));
                    }
                }
                if let Some(w) = s.warn_at {
                    lines.push((format!("warn_at = {}", w as f64 / 1000.0), Some("warn_at")));
                }
            }
            1 if s.default_model.is_some() || s.allow.is_some() => {
                lines.push(("[model]".into(), None));
                if let Some(m) = &s.default_model {
                    lines.push((format!("default = {m:?}"), Some("default")));
                }
                if let Some(a) = &s.allow {
                    lines.push((format!("allow = {a:?}"), Some("allow")));
                }
            }
            2 if s.data_collection.is_some() => {
                lines.push(("[privacy]".into(), None));
                lines.push((
                    format!("data_collection = {:?}", s.data_collection.unwrap()),
                    Some("data_collection"),
                ));
            }
            _ => {}
        }
    }
    lines
}

fn join(lines: &[(String, Option<&'static str>)], crlf: bool) -> String {
    let eol = if crlf { "\r\n" } else { "\n" };
    let mut t: String = lines.iter().map(|(l, _)| format!("{l}{eol}")).collect();
    if t.is_empty() {
        t.push_str(eol);
    }
    t
}

/// A wrong value for a field, and whether a parser must reject it.
fn bad_value() -> impl Strategy<Value = (&'static str, &'static str)> {
    prop_oneof![
        Just(("daily_usd", "-1.0")),
        Just(("daily_usd", "\"lots\"")),
        Just(("monthly_usd", "-0.5")),
        Just(("monthly_usd", "nan")),
        Just(("total_usd", "inf")),
        Just(("total_usd", "[1.0]")),
        Just(("per_request_usd", "-inf")),
        Just(("per_request_usd", "true")),
        Just(("warn_at", "0.0")),
        Just(("warn_at", "1.5")),
        Just(("warn_at", "-0.2")),
        Just(("warn_at", "\"0.8\"")),
    ]
}

proptest! {
    #![proptest_config(config())]

    /// Arbitrary text never panics; an error always names the file, and a line within the
    /// text when it names one.
    #[test]
    fn toml_arbitrary_text_never_panics_and_errors_name_the_file(
        text in prop_oneof![
            any::<String>(),
            prop::collection::vec(prop_oneof![
                Just("[budget]\n"), Just("[model]\n"), Just("[privacy]\n"), Just("[budget"),
                Just("daily_usd = "), Just("warn_at = "), Just("allow = ["), Just("key = "),
                Just("data_collection = "), Just("default = "), Just("1.5"), Just("-3"),
                Just("\"x\""), Just("]"), Just("\n"), Just("\r\n"), Just("# c\n"), Just("1e999"),
                Just("[[budget]]\n"), Just("budget.daily_usd = 1\n"), Just("= \n"), Just("\u{0}"),
                Just("[budget.sub]\n"), Just("inf"), Just("nan"), Just("0x10"), Just("'''"),
            ], 0..30).prop_map(|v| v.concat()),
        ],
    ) {
        let t = text.clone();
        let r = bounded(format!("{text:?}"), move || project::parse(FILE, &t));
        if let Err(e) = r {
            prop_assert_eq!(&e.file, FILE);
            let shown = e.to_string();
            prop_assert!(shown.starts_with(FILE), "{}", shown);
            if let Some(line) = e.line {
                let lines = text.split('\n').count();
                prop_assert!(line >= 1 && line <= lines, "line {} of {}: {}", line, lines, shown);
            }
        }
    }

    /// A file built from valid fields gives exactly those settings: amounts to the
    /// picodollar (`0.1` is ten cents), the warning fraction, key, model, allow list, privacy.
    #[test]
    fn toml_valid_files_round_trip(spec in file_spec()) {
        let text = join(&write_file(&spec), spec.crlf);
        let s = match project::parse(FILE, &text) {
            Ok(s) => s,
            Err(e) => return Err(TestCaseError::fail(format!("{e}\n{text}"))),
        };
        prop_assert_eq!(s.key_name.as_ref(), spec.key.as_ref(), "{}", text);
        prop_assert_eq!(s.default_model.as_ref(), spec.default_model.as_ref(), "{}", text);
        prop_assert_eq!(s.allow.as_ref(), spec.allow.as_ref(), "{}", text);
        prop_assert_eq!(s.data_collection.as_deref(), spec.data_collection, "{}", text);
        prop_assert_eq!(s.budget.is_some(), spec.budget_table, "{}", text);
        if let Some(b) = s.budget {
            prop_assert_eq!(b.caps.daily, spec.daily.as_ref().map(|a| a.1), "{}", text);
            prop_assert_eq!(b.caps.monthly, spec.monthly.as_ref().map(|a| a.1), "{}", text);
            prop_assert_eq!(b.caps.total, spec.total.as_ref().map(|a| a.1), "{}", text);
            prop_assert_eq!(b.caps.per_request, spec.per_request.as_ref().map(|a| a.1), "{}", text);
            prop_assert_eq!(b.warn_at_milli, spec.warn_at, "{}", text);
        }
    }

    /// One wrong value in an otherwise valid file is an error naming the file, the field and
    /// the line it is on.
    #[test]
    fn toml_a_bad_value_names_file_field_and_line(
        spec in file_spec(),
        (field, value) in bad_value(),
    ) {
        let mut spec = spec;
        // The field is written once, by us: drop the generated one.
        match field {
            "daily_usd" => spec.daily = None,
            "monthly_usd" => spec.monthly = None,
            "total_usd" => spec.total = None,
            "per_request_usd" => spec.per_request = None,
            _ => spec.warn_at = None,
        }
        spec.budget_table = true;
        let mut lines = write_file(&spec);
        let at = lines.iter().position(|(l, _)| l == "[budget]").unwrap() + 1;
        lines.insert(at, (format!("{field} = {value}"), Some(field)));
        let text = join(&lines, spec.crlf);
        let e = match project::parse(FILE, &text) {
            Ok(_) => return Err(TestCaseError::fail(format!("accepted:\n{text}"))),
            Err(e) => e,
        };
        let shown = e.to_string();
        prop_assert_eq!(&e.file, FILE);
        prop_assert!(shown.starts_with(FILE), "{}", shown);
        prop_assert!(shown.contains(field), "{}\n{}", shown, text);
        prop_assert_eq!(e.line, Some(at + 1), "{}\n{}", shown, text);
    }
}

// ---------------------------------------------------------------------------------------------
// Money
// ---------------------------------------------------------------------------------------------

/// The exact picodollars of a non-negative decimal `int.frac`, rounded up beyond the twelfth
/// decimal, or `None` past `i64::MAX` (the oracle: digits, not floats).
fn oracle(int: &str, frac: &str) -> Option<i64> {
    let int = int.trim_start_matches('0');
    let mut digits = String::from(int);
    let (twelve, beyond) = if frac.len() > 12 {
        frac.split_at(12)
    } else {
        (frac, "")
    };
    digits.push_str(twelve);
    for _ in twelve.len()..12 {
        digits.push('0');
    }
    let digits = digits.trim_start_matches('0');
    let mut v: i64 = if digits.is_empty() {
        0
    } else if digits.len() > 19 {
        return None;
    } else {
        digits
            .parse::<u64>()
            .ok()
            .and_then(|v| i64::try_from(v).ok())?
    };
    if beyond.bytes().any(|b| b != b'0') {
        v = v.checked_add(1)?;
    }
    Some(v)
}

/// `a ≤ b` for non-negative decimals written `int.frac`, compared as digits.
fn le_decimal(a: (&str, &str), b: (&str, &str)) -> bool {
    let norm = |(i, f): (&str, &str), w: usize, fw: usize| {
        let i = i.trim_start_matches('0');
        format!("{i:0>w$}{f:0<fw$}")
    };
    let w = a.0.len().max(b.0.len());
    let fw = a.1.len().max(b.1.len());
    norm(a, w, fw) <= norm(b, w, fw)
}

fn decimal_parts() -> impl Strategy<Value = (String, String)> {
    ("[0-9]{0,9}", "[0-9]{0,24}").prop_filter("a digit", |(i, f)| !(i.is_empty() && f.is_empty()))
}

/// The number of decimals a displayed amount shows (`$0.0042` → 4), and its digits as an
/// amount.
const MILLION_USD: i64 = 1_000_000 * 1_000_000_000_000;

fn shown(s: &str) -> (u32, Result<Usd, MoneyError>) {
    let digits = s.trim_start_matches('-').trim_start_matches('$');
    let decimals = digits.split_once('.').map_or(0, |(_, f)| f.len() as u32);
    (decimals, Usd::parse_decimal(digits))
}

proptest! {
    #![proptest_config(config())]

    /// Any string: no panic, and an answer (no hang on `1e-9999999999` and the like).
    #[test]
    fn money_parse_never_panics(
        s in prop_oneof![
            any::<String>(),
            "[ ]?[+-]{0,2}[0-9]{0,30}(\\.[0-9]{0,30})?([eE][+-]?[0-9]{0,25})?[ ]?",
            "-1(\\.0{0,5})?(e0)?",
        ],
    ) {
        let t = s.clone();
        let r = bounded(format!("{s:?}"), move || Usd::parse_decimal(&t));
        if let Ok(u) = r {
            prop_assert!(u.picos() >= 0, "{:?} → {:?}", s, u);
        }
    }

    /// `int.frac` parses to its exact picodollars, rounded up beyond twelve decimals (a price
    /// read too low could let a cap be crossed), or is refused as too large.
    #[test]
    fn money_decimals_are_exact_and_round_up((int, frac) in decimal_parts()) {
        let s = if frac.is_empty() { int.clone() } else { format!("{int}.{frac}") };
        match (Usd::parse_decimal(&s), oracle(&int, &frac)) {
            (Ok(u), Some(v)) => prop_assert_eq!(u.picos(), v, "{}", s),
            (Err(MoneyError::Overflow(_)), None) => {}
            (got, want) => prop_assert!(false, "{:?}: got {:?}, want {:?}", s, got, want),
        }
    }

    /// An exponent moves the point: `Me±k` is the same amount as the decimal written out.
    #[test]
    fn money_exponent_is_the_point_moved(
        (int, frac) in decimal_parts(),
        exp in -30i32..30,
        upper in any::<bool>(),
    ) {
        let mut digits = format!("{int}{frac}");
        let mut point = int.len() as i64 + exp as i64;
        if point < 0 {
            digits = "0".repeat((-point) as usize) + &digits;
            point = 0;
        }
        while (digits.len() as i64) < point {
            digits.push('0');
        }
        let (i, f) = digits.split_at(point as usize);
        let plain = if f.is_empty() { i.to_string() } else { format!("{i}.{f}") };
        let mantissa = if frac.is_empty() { int.clone() } else { format!("{int}.{frac}") };
        let e = if upper { 'E' } else { 'e' };
        let sci = format!("{mantissa}{e}{exp}");
        let (a, b) = (Usd::parse_decimal(&sci), Usd::parse_decimal(&plain));
        match (&a, &b) {
            (Err(MoneyError::Overflow(_)), Err(MoneyError::Overflow(_))) => {}
            _ => prop_assert_eq!(a, b, "{} vs {}", sci, plain),
        }
    }

    /// Parsing keeps order: `a ≤ b` as decimals gives `parse(a) ≤ parse(b)`.
    #[test]
    fn money_parse_preserves_order(a in decimal_parts(), b in decimal_parts()) {
        let sa = format!("{}.{}", a.0, a.1);
        let sb = format!("{}.{}", b.0, b.1);
        if let (Ok(x), Ok(y)) = (Usd::parse_decimal(&sa), Usd::parse_decimal(&sb)) {
            if le_decimal((&a.0, &a.1), (&b.0, &b.1)) {
                prop_assert!(x <= y, "{} ≤ {} but {:?} > {:?}", sa, sb, x, y);
            }
            if le_decimal((&b.0, &b.1), (&a.0, &a.1)) {
                prop_assert!(y <= x, "{} ≤ {} but {:?} > {:?}", sb, sa, y, x);
            }
        }
    }

    /// `-1` in any spelling is the "variable price" marker; any other negative is refused.
    #[test]
    fn money_negatives_are_refused((int, frac) in decimal_parts()) {
        let s = format!("-{int}.{frac}");
        match Usd::parse_decimal(&s) {
            Ok(u) => prop_assert_eq!(u, Usd::ZERO, "{}", s),
            Err(MoneyError::Variable) => {
                prop_assert_eq!(oracle(&int, &frac), Some(1_000_000_000_000), "{}", s)
            }
            Err(MoneyError::Negative(_)) | Err(MoneyError::Overflow(_)) => {}
            Err(e) => prop_assert!(false, "{:?}: {:?}", s, e),
        }
    }

    /// Any `f64` as `usage.cost`: no panic; never negative; never below the number itself (a
    /// charge read low would under-count spend).
    #[test]
    fn money_from_cost_f64_never_panics_nor_reads_low(bits in any::<u64>(), small in 0.0f64..10.0) {
        for x in [f64::from_bits(bits), small, small / 1e9] {
            match Usd::from_cost_f64(x) {
                Ok(u) => {
                    prop_assert!(x >= 0.0 && u.picos() >= 0, "{} → {:?}", x, u);
                    // picos ≥ x·1e12, up to the float's own rounding.
                    let ps = x * 1e12;
                    prop_assert!(u.picos() as f64 >= ps * (1.0 - 1e-15) - 1.0, "{} → {:?}", x, u);
                    prop_assert!(u.picos() as f64 <= ps * (1.0 + 1e-15) + 1.0, "{} → {:?}", x, u);
                }
                Err(MoneyError::Negative(_)) => prop_assert!(x < 0.0, "{}", x),
                Err(MoneyError::Invalid(_)) => prop_assert!(!x.is_finite(), "{}", x),
                Err(MoneyError::Overflow(_)) => prop_assert!(x > 9.2e6, "{}", x),
                Err(MoneyError::Variable) => prop_assert!(false, "{}: variable", x),
            }
        }
    }

    /// A cost the server writes as a decimal (`0.00095`, up to 15 significant digits, at most
    /// twelve decimals) is read exactly, as written, though it travelled as a binary float.
    #[test]
    fn money_decimal_costs_are_exact(n in 0u64..1_000_000_000_000_000, k in 0u32..=12) {
        let text = format!("{}e-{k}", n);
        let x: f64 = serde_json::from_str(&text).unwrap();
        let want = n as i128 * 10i128.pow(12 - k);
        if want <= i64::MAX as i128 {
            prop_assert_eq!(Usd::from_cost_f64(x).map(|u| u.picos() as i128), Ok(want), "{}", text);
        }
    }

    /// Costs keep their order.
    #[test]
    fn money_from_cost_f64_preserves_order(a in 0.0f64..1e6, b in 0.0f64..1e6) {
        let (x, y) = (Usd::from_cost_f64(a).unwrap(), Usd::from_cost_f64(b).unwrap());
        if a <= b {
            prop_assert!(x <= y, "{} ≤ {} but {:?} > {:?}", a, b, x, y);
        } else {
            prop_assert!(x >= y, "{} > {} but {:?} < {:?}", a, b, x, y);
        }
    }

    /// Display: no panic for any amount; reading back what is shown gives the amount to within
    /// half a unit of the last digit shown, and exactly when the amount has no more digits than
    /// are shown; the shown amounts keep their order.
    #[test]
    fn money_display_reads_back(
        a in prop_oneof![any::<i64>(), 0i64..2_000_000_000_000, 0i64..100_000_000],
        b in prop_oneof![any::<i64>(), 0i64..2_000_000_000_000, 0i64..100_000_000],
        k in 0i64..10_000,
        c in 0i64..10_000_000,
    ) {
        for v in [a, b] {
            let s = Usd(v).to_string();
            prop_assert!(s.starts_with('$') || s.starts_with("-$"), "{}", s);
            prop_assert_eq!(s.starts_with('-'), v < 0, "{}", s);
            // Read back below a million dollars: near i64::MAX the shown cents round past it.
            let v = v.checked_abs().unwrap_or(i64::MAX) % MILLION_USD;
            let s = Usd(v).to_string();
            let (decimals, back) = shown(&s);
            let back = match back {
                Ok(u) => u.picos() as i128,
                Err(e) => return Err(TestCaseError::fail(format!("{s}: {e}"))),
            };
            let unit = 10i128.pow(12u32.saturating_sub(decimals));
            let diff = (back - v as i128).abs();
            prop_assert!(diff * 2 <= unit, "{} shows {}", v, s);
            if (v as i128) % unit == 0 {
                prop_assert_eq!(back, v as i128, "{} shows {}", v, s);
            }
        }
        let (a, b) = (a.abs() % MILLION_USD, b.abs() % MILLION_USD);
        let (x, y) = (shown(&Usd(a).to_string()).1.unwrap(), shown(&Usd(b).to_string()).1.unwrap());
        if a <= b {
            prop_assert!(x <= y, "{} ≤ {} but shown {:?} > {:?}", a, b, x, y);
        }
        // Amounts with no more digits than shown come back exactly: hundredths of a cent below
        // a dollar, cents above.
        for v in [k * 100_000_000, c * 10_000_000_000] {
            let s = Usd(v).to_string();
            prop_assert_eq!(shown(&s).1, Ok(Usd(v)), "{}", s);
        }
    }
}

/// Found by `money_exponent_is_the_point_moved`: an exponent that puts exactly 19 zeros after
/// the digits computed `10i64.pow(19)`, which overflows (a panic in debug builds, a negative
/// price in release builds) instead of giving `Overflow`.
#[test]
fn money_exponents_just_past_the_range_overflow_cleanly() {
    for s in ["1e7", ".000001e13", "9e7", "1.5e7", "1e6"] {
        let r = Usd::parse_decimal(s);
        if s == "1e6" {
            assert_eq!(r, Ok(Usd::from_dollars(1_000_000)), "{s}");
        } else {
            assert!(matches!(r, Err(MoneyError::Overflow(_))), "{s}: {r:?}");
        }
    }
}
