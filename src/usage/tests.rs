use super::*;
use crate::budget::{
    Caps, ChargeSource, Decision, FixedClock, Ledger, LedgerError, Price, ReserveInput, Settlement,
    Usd,
};
use jiff::Zoned;
use serde_json::Value;

const TZ: &str = "Europe/Paris";

fn at(s: &str) -> FixedClock {
    FixedClock::new(format!("{s}[{TZ}]").parse::<Zoned>().unwrap())
}

fn temp() -> (tempfile::TempDir, Ledger) {
    let d = tempfile::tempdir().unwrap();
    let l = Ledger::open(d.path().join("ledger.sqlite3")).unwrap();
    (d, l)
}

fn cents(c: i64) -> Usd {
    Usd(c * 10_000_000_000)
}

/// A request for [`add`]: project, model, what was charged (`None`: left reserved), completion
/// tokens, and when (local time in Paris).
type Req<'a> = (&'a str, &'a str, Option<Usd>, u64, &'a str);

/// Reserves (worst case $0.0011) and, unless it charged `None`, settles each request, in order.
fn add(l: &mut Ledger, reqs: &[Req]) {
    for &(project, model, charged, out, when) in reqs {
        let c = at(when);
        let price = Price {
            prompt: Usd(1_000_000),
            completion: Usd(10_000_000),
            request: Usd::ZERO,
        };
        let input = ReserveInput::new(project, model, 100, 100, price);
        let Decision::Reserved { id, .. } = l.reserve(&input, &c).unwrap() else {
            panic!("refused")
        };
        if let Some(ch) = charged {
            let mut s = Settlement::charged(ch, ChargeSource::Usage);
            s.tokens_in = Some(1000);
            s.tokens_out = Some(out);
            l.settle(id, s, &c).unwrap();
        }
    }
}

fn project_req(p: &str) -> ReportRequest {
    ReportRequest {
        project: Some(p.into()),
        all: false,
        file_state: FileStatus::Trusted,
        file_path: Some(format!("{p}/.frugal.toml")),
        ..ReportRequest::default()
    }
}

/// The report's data as a JSON value, as `frugal usage --json` prints it.
fn as_json(r: &Report) -> Value {
    serde_json::to_value(&r.data).unwrap()
}

fn line_with<'a>(r: &'a Report, needle: &str) -> (usize, &'a str) {
    r.lines
        .iter()
        .enumerate()
        .find(|(_, l)| l.contains(needle))
        .map(|(i, l)| (i, l.as_str()))
        .unwrap_or_else(|| panic!("no line with {needle:?} in\n{}", r.lines.join("\n")))
}

fn groups_on(r: &Report, line: usize) -> Vec<(&str, &'static str)> {
    r.highlights
        .iter()
        .filter(|h| h.0 == line)
        .map(|h| (&r.lines[line][h.1..h.2], h.3))
        .collect()
}

/// Every highlight lies on char boundaries of its line and is not empty.
fn assert_highlights_valid(r: &Report) {
    for &(line, a, b, g) in &r.highlights {
        let text = &r.lines[line];
        assert!(a < b && b <= text.len(), "{g} {a}..{b} on {text:?}");
        assert!(
            text.is_char_boundary(a) && text.is_char_boundary(b),
            "{g} {a}..{b} splits a character of {text:?}"
        );
        assert!(g.starts_with("FrugalUsage"));
    }
    for l in &r.lines {
        assert!(text::cells(l) <= r.width);
        assert_eq!(l.trim_end(), l, "trailing spaces");
    }
}

#[test]
fn money_is_shown_exactly_at_cent_and_sub_cent_amounts() {
    let (_d, mut l) = temp();
    let amounts = [
        ("m/a", Usd(4_200_000_000), "$0.0042"),
        ("m/b", cents(1), "$0.0100"),
        ("m/c", cents(99), "$0.9900"),
        ("m/d", cents(100), "$1.00"),
        ("m/e", cents(1235), "$12.35"),
    ];
    for (m, u, _) in amounts {
        #[rustfmt::skip]
        let reqs = [
            ("/p", m, Some(u), 10, "2025-06-15T10:00:00+02:00"),
        ];
        add(&mut l, &reqs);
    }
    let r = build(&l, &at("2025-06-15T12:00:00+02:00"), &project_req("/p")).unwrap();
    let data = as_json(&r);
    for (m, u, shown) in amounts {
        assert_eq!(u.to_string(), shown);
        let (_, line) = line_with(&r, m);
        assert!(line.trim_end().ends_with(shown), "{line:?}");
        let j = data["models"]
            .as_array()
            .unwrap()
            .iter()
            .find(|x| x["model"] == m)
            .unwrap();
        assert_eq!(j["cost"]["text"], shown);
        assert_eq!(j["cost"]["picos"], u.0);
    }
    let total = cents(1435) + Usd(4_200_000_000);
    assert_eq!(total.to_string(), "$14.35");
    assert!(line_with(&r, "  total ").1.contains("$14.35"));
    assert_eq!(as_json(&r)["spend"]["total"]["counted"]["picos"], total.0);
    assert_highlights_valid(&r);
}

#[test]
fn bars_and_percentages() {
    let cap = cents(100);
    let percent = |counted, cap| text::percent(counted, cap, DEFAULT_WARN_AT_MILLI);
    assert_eq!(percent(Usd::ZERO, cap), (0, text::Level::Normal));
    assert_eq!(percent(cents(50), cap), (50, text::Level::Normal));
    assert_eq!(percent(cents(80), cap), (80, text::Level::Warn));
    assert_eq!(percent(cents(100) - Usd(1), cap), (99, text::Level::Warn));
    assert_eq!(percent(cents(100), cap), (100, text::Level::Over));
    assert_eq!(percent(cents(130), cap), (130, text::Level::Over));
    assert_eq!(percent(Usd::ZERO, Usd::ZERO), (100, text::Level::Over));
    assert_eq!(text::bar_fill(Usd::ZERO, cap, 20), 0);
    assert_eq!(text::bar_fill(cents(50), cap, 20), 10);
    assert_eq!(text::bar_fill(cents(100) - Usd(1), cap, 20), 19);
    assert_eq!(text::bar_fill(cents(100), cap, 20), 20);
    assert_eq!(text::bar_fill(cents(130), cap, 20), 20);

    // In the report: nothing today (0 %), half the month (50 %), the total over its cap.
    let (_d, mut l) = temp();
    #[rustfmt::skip]
    let reqs = [
        ("/p", "m/a", Some(cents(250)), 10, "2025-06-02T10:00:00+02:00"),
        ("/p", "m/a", Some(cents(300)), 10, "2025-05-02T10:00:00+02:00"),
    ];
    add(&mut l, &reqs);
    let mut req = project_req("/p");
    req.project_caps = Caps {
        daily: Some(cents(100)),
        monthly: Some(cents(500)),
        total: Some(cents(500)),
        per_request: None,
    };
    let r = build(&l, &at("2025-06-15T12:00:00+02:00"), &req).unwrap();
    let (i, today) = line_with(&r, "today");
    assert!(
        today.contains(&format!("{}   0%", "░".repeat(20))),
        "{today}"
    );
    assert!(groups_on(&r, i).contains(&(&"░".repeat(20)[..], hl::BAR_EMPTY)));
    let (i, month) = line_with(&r, "this month");
    assert!(
        month.contains(&format!("{}{}  50%", "█".repeat(10), "░".repeat(10))),
        "{month}"
    );
    assert!(groups_on(&r, i).contains(&(&"█".repeat(10)[..], hl::BAR_FILL)));
    let (i, total) = line_with(&r, "  total");
    assert!(
        total.contains(&format!("{} 110%", "█".repeat(20))),
        "{total}"
    );
    let g = groups_on(&r, i);
    assert!(g.contains(&(&"█".repeat(20)[..], hl::OVER)), "{g:?}");
    assert!(g.contains(&("110%", hl::OVER)), "{g:?}");
    assert_eq!(as_json(&r)["spend"]["total"]["percent"], 110);
    assert_eq!(as_json(&r)["spend"]["total"]["level"], "over");
    assert_eq!(as_json(&r)["spend"]["month"]["level"], "ok");
    assert_highlights_valid(&r);

    // No cap: no bar.
    let r = build(&l, &at("2025-06-15T12:00:00+02:00"), &project_req("/p")).unwrap();
    let (_, today) = line_with(&r, "today");
    assert!(today.ends_with("no cap") && !today.contains('░'), "{today}");
    assert_eq!(as_json(&r)["spend"]["today"]["cap"], Value::Null);
}

#[test]
fn periods_follow_the_local_calendar() {
    let (_d, mut l) = temp();
    // Yesterday 23:59 local: not today. The last minute of May: not this month.
    #[rustfmt::skip]
    let reqs = [
        ("/p", "m/a", Some(cents(1)), 1, "2025-05-31T23:59:00+02:00"),
        ("/p", "m/a", Some(cents(2)), 2, "2025-06-01T00:00:00+02:00"),
        ("/p", "m/a", Some(cents(4)), 4, "2025-06-14T23:59:00+02:00"),
        ("/p", "m/a", Some(cents(8)), 8, "2025-06-15T00:00:00+02:00"),
        ("/p", "m/a", None,           0, "2025-06-15T09:00:00+02:00"),
    ];
    add(&mut l, &reqs);
    let r = build(&l, &at("2025-06-15T23:59:59+02:00"), &project_req("/p")).unwrap();
    let s = &as_json(&r)["spend"];
    let inflight = Usd(1_100_000_000);
    assert_eq!(s["today"]["spent"]["picos"], cents(8).0);
    assert_eq!(s["today"]["reserved"]["picos"], inflight.0);
    assert_eq!(s["today"]["completion_tokens"], 8);
    assert_eq!(s["month"]["counted"]["picos"], (cents(14) + inflight).0);
    assert_eq!(s["total"]["counted"]["picos"], (cents(15) + inflight).0);
    assert_eq!(s["total"]["reserved"]["text"], "$0.0011");
    let (_, reserved) = line_with(&r, "reserved");
    assert!(reserved.contains("$0.0011"), "{reserved}");
    // On the 1st of July, June is last month.
    let r = build(&l, &at("2025-07-01T00:00:00+02:00"), &project_req("/p")).unwrap();
    assert_eq!(as_json(&r)["spend"]["month"]["counted"]["picos"], 0);
    assert_eq!(as_json(&r)["spend"]["today"]["counted"]["picos"], 0);
    // Seen from New York, 2025-06-15T00:00+02:00 is still the 14th.
    let ny = FixedClock::new(
        "2025-06-14T20:00:00-04:00[America/New_York]"
            .parse()
            .unwrap(),
    );
    let r = build(&l, &ny, &project_req("/p")).unwrap();
    assert_eq!(
        as_json(&r)["spend"]["today"]["counted"]["picos"],
        (cents(4) + cents(8)).0
    );
}

#[test]
fn models_are_sorted_by_cost() {
    let (_d, mut l) = temp();
    #[rustfmt::skip]
    let reqs = [
        ("/p", "b/mid",   Some(cents(5)),  100, "2025-06-15T10:00:00+02:00"),
        ("/p", "a/cheap", Some(cents(1)),  100, "2025-06-15T10:00:00+02:00"),
        ("/p", "c/dear",  Some(cents(9)),  100, "2025-06-15T10:00:00+02:00"),
        ("/p", "a/cheap", Some(cents(2)),  50,  "2025-06-15T10:00:00+02:00"),
        ("/q", "z/other", Some(cents(90)), 1,   "2025-06-15T10:00:00+02:00"),
    ];
    add(&mut l, &reqs);
    let r = build(&l, &at("2025-06-15T12:00:00+02:00"), &project_req("/p")).unwrap();
    let data = as_json(&r);
    let names: Vec<_> = data["models"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            (
                m["model"].as_str().unwrap(),
                m["requests"].as_i64().unwrap(),
            )
        })
        .collect();
    assert_eq!(names, vec![("c/dear", 1), ("b/mid", 1), ("a/cheap", 2)]);
    let (h, _) = line_with(&r, "Models (all time)");
    assert!(r.lines[h + 1].starts_with("  c/dear"));
    assert!(r.lines[h + 3].starts_with("  a/cheap"));
    let cheap = &r.lines[h + 3];
    // requests, prompt tokens, completion tokens, cost.
    let cols: Vec<_> = cheap.split_whitespace().collect();
    assert_eq!(cols, vec!["a/cheap", "2", "2,000", "150", "$0.0300"]);
}

#[test]
fn cached_tokens_and_their_saving_show_only_when_there_are_some() {
    let (_d, mut l) = temp();
    let c = at("2025-06-15T10:00:00+02:00");
    // Two requests whose prompts were partly read from cache, one that was not cached at all
    // (saving unknown), and a request of another model without cache.
    for (model, cached, saved) in [
        ("anthropic/s", Some(12_000), Some(Usd(32_400_000_000))),
        ("anthropic/s", Some(300), Some(Usd(810_000_000))),
        ("anthropic/s", Some(0), None),
        ("openai/o", None, None),
    ] {
        let input = ReserveInput::new("/p", model, 100, 100, Price::default());
        let Decision::Reserved { id, .. } = l.reserve(&input, &c).unwrap() else {
            panic!("refused")
        };
        let mut s = Settlement::charged(cents(1), ChargeSource::Usage);
        s.tokens_in = Some(20_000);
        s.tokens_cached = cached;
        s.cache_saved = saved;
        l.settle(id, s, &c).unwrap();
    }
    let r = build(&l, &at("2025-06-15T12:00:00+02:00"), &project_req("/p")).unwrap();
    assert_highlights_valid(&r);
    let (i, line) = line_with(&r, "cache:");
    assert_eq!(
        line,
        "  cache: 12,300 prompt tokens read from cache, saved $0.0332"
    );
    let (m, _) = line_with(&r, "Models (all time)");
    assert!(i > m + 2, "under the model rows");
    let groups = groups_on(&r, i);
    assert!(
        groups.contains(&("$0.0332", layout::hl::MONEY)),
        "{groups:?}"
    );
    let j = as_json(&r);
    assert_eq!(j["cache"]["tokens_cached"], 12_300);
    assert_eq!(j["cache"]["saved"]["picos"], 33_210_000_000_i64);
    let s = j["models"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["model"] == "anthropic/s")
        .unwrap();
    assert_eq!(s["tokens_cached"], 12_300);
    assert_eq!(s["cache_saved"]["text"], "$0.0332");
    // Narrow: the saving wraps under the tokens.
    let mut req = project_req("/p");
    req.width = 40;
    let r = build(&l, &at("2025-06-15T12:00:00+02:00"), &req).unwrap();
    assert_highlights_valid(&r);
    let (i, _) = line_with(&r, "cache:");
    assert_eq!(r.lines[i + 1], "         saved $0.0332");

    // Another project with no cached token: no cache line at all.
    let r = build(&l, &at("2025-06-15T12:00:00+02:00"), &project_req("/q")).unwrap();
    assert!(
        !r.lines.iter().any(|l| l.contains("cache")),
        "{:?}",
        r.lines
    );
}

#[test]
fn sparkline_names_the_max_day() {
    let (_d, mut l) = temp();
    #[rustfmt::skip]
    let reqs = [
        ("/p", "m", Some(cents(70)), 1, "2025-06-03T10:00:00+02:00"),
        ("/p", "m", Some(cents(10)), 1, "2025-06-15T10:00:00+02:00"),
        ("/p", "m", Some(Usd(1)),    1, "2025-06-14T10:00:00+02:00"),
        // 31 days ago: outside the sparkline.
        ("/p", "m", Some(cents(500)), 1, "2025-05-15T10:00:00+02:00"),
    ];
    add(&mut l, &reqs);
    let r = build(&l, &at("2025-06-15T12:00:00+02:00"), &project_req("/p")).unwrap();
    let (i, line) = line_with(&r, "max ");
    let spark: String = line.trim_start().chars().take(30).collect();
    let mut expect = ['▁'; 30];
    expect[29 - 12] = '█'; // June 3rd
    expect[28] = '▂'; // a picodollar is still something
    expect[29] = '▂'; // ⌈10/70 × 7⌉ = 1 → ▂
    assert_eq!(spark, expect.iter().collect::<String>());
    assert!(line.ends_with("max $0.7000 on 2025-06-03"), "{line}");
    let g = groups_on(&r, i);
    assert!(g.contains(&("█", hl::SPARK)), "{g:?}");
    assert!(g.contains(&("▂▂", hl::SPARK)), "{g:?}");
    assert!(g
        .iter()
        .any(|(t, grp)| *grp == hl::DIM && t.starts_with("▁▁")));
    assert_eq!(as_json(&r)["daily"].as_array().unwrap().len(), 30);
    assert_eq!(as_json(&r)["daily"][0]["date"], "2025-05-17");
    assert_eq!(as_json(&r)["daily"][29]["date"], "2025-06-15");
    assert_eq!(as_json(&r)["daily_max"]["date"], "2025-06-03");
    assert_eq!(text::spark(Usd::ZERO, cents(1)), '▁');
    assert_eq!(text::spark(cents(1), cents(1)), '█');
    assert_eq!(text::spark(cents(1), cents(2)), '▅');
    assert_eq!(text::spark(cents(6), cents(7)), '▇');
    assert_highlights_valid(&r);

    let (_d2, l2) = temp();
    let r = build(&l2, &at("2025-06-15T12:00:00+02:00"), &project_req("/p")).unwrap();
    assert!(line_with(&r, "nothing spent").1.contains(&"▁".repeat(30)));
    assert_eq!(as_json(&r)["daily_max"], Value::Null);
    assert!(line_with(&r, "no requests yet").0 > 0);
}

#[test]
fn footprint_from_completion_tokens() {
    let f = FootprintFactors::default();
    assert!((400.0 * f.gco2e_per_token - 1.14).abs() < 1e-12);
    assert!((400.0 * f.ml_water_per_token - 45.0).abs() < 1e-12);
    assert!(f.source.contains("Mistral"));
    let (_d, mut l) = temp();
    #[rustfmt::skip]
    let reqs = [
        ("/p", "m", Some(cents(1)), 400,   "2025-06-15T10:00:00+02:00"),
        ("/p", "m", Some(cents(1)), 3600,  "2025-06-01T10:00:00+02:00"),
        ("/p", "m", Some(cents(1)), 36000, "2025-01-01T10:00:00+01:00"),
    ];
    add(&mut l, &reqs);
    let r = build(&l, &at("2025-06-15T12:00:00+02:00"), &project_req("/p")).unwrap();
    let fp = &as_json(&r)["footprint"];
    assert_eq!(fp["today"]["completion_tokens"], 400);
    assert!((fp["today"]["gco2e"].as_f64().unwrap() - 1.14).abs() < 1e-9);
    assert!((fp["today"]["ml_water"].as_f64().unwrap() - 45.0).abs() < 1e-9);
    assert!((fp["month"]["gco2e"].as_f64().unwrap() - 11.4).abs() < 1e-9);
    assert!((fp["total"]["ml_water"].as_f64().unwrap() - 4500.0).abs() < 1e-6);
    let cols = |needle: &str| -> Vec<String> {
        line_with(&r, needle)
            .1
            .split("  ")
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(String::from)
            .collect()
    };
    assert_eq!(cols("CO2e"), vec!["CO2e", "1.14 g", "11.4 g", "114 g"]);
    assert_eq!(
        cols("water"),
        vec!["water", "45.0 mL", "450 mL", "4,500 mL"]
    );
    assert_eq!(
        cols("completion tokens"),
        vec!["completion tokens", "400", "4,000", "40,000"]
    );
    assert!(line_with(&r, "factors: Mistral").0 > 0);

    // Other factors, named.
    let mut req = project_req("/p");
    req.footprint = FootprintFactors {
        gco2e_per_token: 0.01,
        ml_water_per_token: 1.0,
        source: "my own estimate".into(),
    };
    let r = build(&l, &at("2025-06-15T12:00:00+02:00"), &req).unwrap();
    assert!(line_with(&r, "factors: my own estimate").0 > 0);
    assert_eq!(as_json(&r)["footprint"]["today"]["gco2e"], 4.0);
}

#[test]
fn multibyte_text_keeps_highlight_columns_right() {
    let (_d, mut l) = temp();
    let p = "/home/zoé/プロジェクト";
    #[rustfmt::skip]
    let reqs = [
        (p, "mistralai/mistral-médium", Some(cents(80)), 1, "2025-06-15T10:00:00+02:00"),
    ];
    add(&mut l, &reqs);
    let mut req = project_req(p);
    req.project_caps.daily = Some(cents(100));
    req.key_info = KeyInfo::Known {
        label: "sk-or-v1-…é".into(),
        limit: Some(10.0),
        limit_remaining: Some(1.5),
        limit_reset: Some("monthly".into()),
        usage: 8.5,
        usage_daily: 0.8,
        usage_monthly: 8.5,
    };
    let r = build(&l, &at("2025-06-15T12:00:00+02:00"), &req).unwrap();
    assert_highlights_valid(&r);
    let (i, first) = line_with(&r, "Project");
    assert_eq!(first, format!("Project  {p}"));
    assert_eq!(groups_on(&r, i), vec![("Project", hl::LABEL)]);
    let (i, today) = line_with(&r, "today");
    let g = groups_on(&r, i);
    assert!(g.contains(&(&"█".repeat(16)[..], hl::WARN)), "{g:?}");
    assert!(g.contains(&(&"░".repeat(4)[..], hl::BAR_EMPTY)), "{g:?}");
    assert!(g.contains(&("80%", hl::WARN)), "{g:?}");
    // The byte column of the bar is past the 3-byte characters before it.
    let start = r
        .highlights
        .iter()
        .find(|h| h.0 == i && h.3 == hl::WARN)
        .unwrap()
        .1;
    assert_eq!(&today[start..start + 3], "█");
    assert_eq!(r.title, "frugal usage: プロジェクト");
    let (i, _) = line_with(&r, "remaining");
    assert!(groups_on(&r, i).contains(&("$1.50", hl::WARN)));
    assert!(line_with(&r, "usage")
        .1
        .contains("today $0.8000 · month $8.50 · all time $8.50"));
    assert!(line_with(&r, "limit")
        .1
        .contains("$10.00 · remaining $1.50 · resets monthly"));
    assert_eq!(as_json(&r)["key"]["limit"]["text"], "$10.00");
    assert_eq!(as_json(&r)["key"]["status"], "known");
    // Widths are display cells: the Japanese characters count twice.
    let (_, first) = line_with(&r, "Project");
    assert_eq!(text::cells(first), 9 + 10 + 12);
}

#[test]
fn key_and_file_states() {
    let (_d, l) = temp();
    let c = at("2025-06-15T12:00:00+02:00");
    let mut req = project_req("/p");
    for (key, shown, status) in [
        (KeyInfo::Unknown, "OpenRouter key  …", "unknown"),
        (
            KeyInfo::Unreachable,
            "OpenRouter key  unreachable",
            "unreachable",
        ),
        (
            KeyInfo::NotFetched,
            "OpenRouter key  not fetched by the CLI",
            "not_fetched",
        ),
    ] {
        req.key_info = key;
        let r = build(&l, &c, &req).unwrap();
        line_with(&r, shown);
        assert_eq!(as_json(&r)["key"]["status"], status);
    }
    for (status, state, shown) in [
        (FileStatus::Trusted, "trusted", "trusted"),
        (
            FileStatus::Untrusted,
            "untrusted",
            "untrusted, ignored: open it and run :trust",
        ),
        (FileStatus::Absent, "absent", "none (no .frugal.toml"),
        (
            FileStatus::Invalid("/p/.frugal.toml line 3: bad".into()),
            "invalid: /p/.frugal.toml line 3: bad",
            "invalid: /p/.frugal.toml line 3: bad",
        ),
        (FileStatus::ReadByCli, "read by the CLI", "read by the CLI"),
    ] {
        req.file_state = status;
        let r = build(&l, &c, &req).unwrap();
        let (i, _) = line_with(&r, shown);
        assert_eq!(as_json(&r)["file"]["state"], state);
        if state == "untrusted" {
            assert!(groups_on(&r, i).iter().any(|g| g.1 == hl::WARN));
        }
        if state.starts_with("invalid") {
            assert!(groups_on(&r, i).iter().any(|g| g.1 == hl::OVER));
        }
        assert_highlights_valid(&r);
    }
    req.project = None;
    assert!(matches!(build(&l, &c, &req), Err(LedgerError::Invalid(_))));
}

#[test]
fn all_view_lists_projects_by_total() {
    let (_d, mut l) = temp();
    #[rustfmt::skip]
    let reqs = [
        ("/small", "m", Some(cents(1)),   1, "2025-06-15T10:00:00+02:00"),
        ("/big",   "m", Some(cents(300)), 1, "2025-04-15T10:00:00+02:00"),
        ("/big",   "m", Some(cents(20)),  1, "2025-06-15T10:00:00+02:00"),
        ("/mid",   "m", Some(cents(50)),  1, "2025-06-10T10:00:00+02:00"),
    ];
    add(&mut l, &reqs);
    let mut req = ReportRequest {
        global_caps: Caps {
            monthly: Some(cents(100)),
            ..Caps::default()
        },
        ..ReportRequest::default()
    };
    req.width = 80;
    let r = build(&l, &at("2025-06-15T12:00:00+02:00"), &req).unwrap();
    assert_eq!(r.title, "frugal usage: all projects");
    assert_eq!(as_json(&r)["view"], "all");
    let data = as_json(&r);
    let names: Vec<_> = data["projects"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["project"].as_str().unwrap())
        .collect();
    assert_eq!(names, vec!["/big", "/mid", "/small"]);
    let (h, _) = line_with(&r, "Projects");
    let big: Vec<_> = r.lines[h + 1].split_whitespace().collect();
    assert_eq!(big, vec!["/big", "$0.2000", "$0.2000", "$3.20", "2"]);
    // The global monthly cap: 71 % of $1.00.
    let (_, month) = line_with(&r, "this month");
    let words: Vec<_> = month.split_whitespace().collect();
    assert_eq!(
        words,
        vec![
            "this",
            "month",
            "$0.7100",
            "of",
            "$1.00",
            "██████████████░░░░░░",
            "71%"
        ]
    );
    assert_eq!(as_json(&r)["global"]["month"]["percent"], 71);
    assert_eq!(as_json(&r)["spend"]["month"]["percent"], 71);
    assert_highlights_valid(&r);
}

#[test]
fn narrow_and_wide_widths() {
    let (_d, mut l) = temp();
    #[rustfmt::skip]
    let reqs = [
        ("/p", "some-provider/a-very-long-model-name-that-goes-on-and-on", Some(cents(3)), 1, "2025-06-15T10:00:00+02:00"),
    ];
    add(&mut l, &reqs);
    for w in [0, 40, 60, 100] {
        let mut req = project_req("/p");
        req.width = w;
        req.project_caps.daily = Some(cents(10));
        let r = build(&l, &at("2025-06-15T12:00:00+02:00"), &req).unwrap();
        assert_highlights_valid(&r);
        let w = if w == 0 { DEFAULT_WIDTH } else { w };
        for line in &r.lines {
            assert!(text::cells(line) <= w.max(60), "{w}: {line:?}");
        }
        let (_, model) = line_with(&r, "some-provid");
        assert_eq!(model.contains('…'), w < 100, "{model}");
        line_with(&r, "  completion tokens ");
    }
}

#[test]
fn warn_at_sets_where_a_bar_warns() {
    let cap = cents(100);
    assert_eq!(text::percent(cents(60), cap, 500), (60, text::Level::Warn));
    assert_eq!(text::percent(cents(50), cap, 500), (50, text::Level::Warn));
    assert_eq!(
        text::percent(cents(50) - Usd(1), cap, 500),
        (49, text::Level::Normal)
    );
    assert_eq!(
        text::percent(cents(100), cap, 500),
        (100, text::Level::Over)
    );
    assert_eq!(
        text::percent(cents(95), cap, 1000),
        (95, text::Level::Normal)
    );

    // 60 % of the project's daily cap and of the global one.
    let (_d, mut l) = temp();
    #[rustfmt::skip]
    let reqs = [
        ("/p", "m/a", Some(cents(60)), 10, "2025-06-15T10:00:00+02:00"),
    ];
    add(&mut l, &reqs);
    let c = at("2025-06-15T12:00:00+02:00");
    let mut req = project_req("/p");
    req.project_caps.daily = Some(cap);
    req.global_caps.daily = Some(cap);
    fn bar_groups(r: &Report, nth: usize) -> Vec<(&str, &'static str)> {
        let (i, _) = r
            .lines
            .iter()
            .enumerate()
            .filter(|(_, l)| l.trim_start().starts_with("today"))
            .nth(nth)
            .unwrap();
        groups_on(r, i)
    }

    // Unset: 80 %, as before; 60 % is fine.
    let r = build(&l, &c, &req).unwrap();
    for nth in [0, 1] {
        let g = bar_groups(&r, nth);
        assert!(g.contains(&(&"█".repeat(12)[..], hl::BAR_FILL)), "{g:?}");
        assert!(!g.iter().any(|x| x.1 == hl::WARN), "{g:?}");
    }
    assert_eq!(as_json(&r)["spend"]["today"]["level"], "ok");
    assert_eq!(as_json(&r)["global"]["today"]["level"], "ok");

    // The project's warn_at of 0.5 turns its 60 % bar Warn; the global bar keeps 80 %.
    req.project_warn_at_milli = Some(500);
    let r = build(&l, &c, &req).unwrap();
    let g = bar_groups(&r, 0);
    assert!(g.contains(&(&"█".repeat(12)[..], hl::WARN)), "{g:?}");
    assert!(g.contains(&("60%", hl::WARN)), "{g:?}");
    assert!(!bar_groups(&r, 1).iter().any(|x| x.1 == hl::WARN));
    assert_eq!(as_json(&r)["spend"]["today"]["level"], "warn");
    assert_eq!(as_json(&r)["global"]["today"]["level"], "ok");
    assert_highlights_valid(&r);

    // The global warn_at applies to the global bar, and to the `all` view's bars.
    req.project_warn_at_milli = None;
    req.global_warn_at_milli = Some(500);
    let r = build(&l, &c, &req).unwrap();
    assert!(!bar_groups(&r, 0).iter().any(|x| x.1 == hl::WARN));
    assert!(bar_groups(&r, 1).contains(&("60%", hl::WARN)));
    assert_eq!(as_json(&r)["global"]["today"]["level"], "warn");
    req.all = true;
    let r = build(&l, &c, &req).unwrap();
    assert!(bar_groups(&r, 0).contains(&("60%", hl::WARN)));
    assert_eq!(as_json(&r)["spend"]["today"]["level"], "warn");
}

/// The keys of a JSON object, sorted.
fn keys(v: &Value) -> Vec<&str> {
    v.as_object()
        .unwrap_or_else(|| panic!("not an object: {v}"))
        .keys()
        .map(String::as_str)
        .collect()
}

#[test]
fn json_has_the_documented_shape() {
    let (_d, mut l) = temp();
    #[rustfmt::skip]
    let reqs = [
        ("/p", "m/a", Some(cents(30)), 10, "2025-06-15T10:00:00+02:00"),
    ];
    add(&mut l, &reqs);
    let c = at("2025-06-15T12:00:00+02:00");
    let mut req = project_req("/p");
    req.project_caps.daily = Some(cents(100));
    req.key_info = KeyInfo::Known {
        label: "k".into(),
        limit: None,
        limit_remaining: Some(f64::NAN),
        limit_reset: None,
        usage: 1e300,
        usage_daily: -1.5,
        usage_monthly: 0.0,
    };
    let r = build(&l, &c, &req).unwrap();
    let j = as_json(&r);
    let money = ["picos", "text", "usd"];
    assert_eq!(
        keys(&j),
        [
            "cache",
            "daily",
            "daily_max",
            "file",
            "footprint",
            "global",
            "key",
            "key_spend",
            "models",
            "now",
            "project",
            "projects",
            "reviews",
            "spend",
            "version",
            "view"
        ]
    );
    assert_eq!(
        keys(&j["reviews"]),
        ["cost", "requests", "reserved", "spent"]
    );
    assert_eq!(j["reviews"]["requests"], 0);
    assert_eq!(j["key_spend"], Value::Null, "api_key: no key_id");
    assert_eq!(j["version"], 1);
    assert_eq!(j["view"], "project");
    assert_eq!(j["now"], "2025-06-15T12:00:00+02:00[Europe/Paris]");
    assert_eq!(j["project"], "/p");
    assert_eq!(keys(&j["file"]), ["path", "state"]);
    for scope in ["spend", "global"] {
        assert_eq!(
            keys(&j[scope]),
            ["forecast", "month", "per_request_cap", "today", "total"]
        );
        assert_eq!(keys(&j[scope]["forecast"]), ["cap_reached_on", "month_end"]);
        assert_eq!(keys(&j[scope]["forecast"]["month_end"]), money);
        assert_eq!(j[scope]["per_request_cap"], Value::Null);
        for period in ["today", "month", "total"] {
            let p = &j[scope][period];
            assert_eq!(
                keys(p),
                [
                    "cap",
                    "completion_tokens",
                    "counted",
                    "end_ms",
                    "level",
                    "percent",
                    "reserved",
                    "spent",
                    "start_ms"
                ]
            );
            for m in ["counted", "reserved", "spent"] {
                assert_eq!(keys(&p[m]), money);
            }
        }
    }
    assert_eq!(keys(&j["spend"]["today"]["cap"]), money);
    assert_eq!(j["spend"]["today"]["percent"], 30);
    assert_eq!(j["global"]["today"]["cap"], Value::Null);
    assert_eq!(j["global"]["today"]["level"], Value::Null);
    assert_eq!(j["spend"]["total"]["start_ms"], Value::Null);
    assert!(j["spend"]["today"]["start_ms"].is_i64());
    assert_eq!(
        keys(&j["models"][0]),
        [
            "cache_saved",
            "cost",
            "cost_per_accepted_hunk",
            "hunks_accepted",
            "hunks_proposed",
            "model",
            "requests",
            "reserved",
            "spent",
            "tokens_cached",
            "tokens_in",
            "tokens_out"
        ]
    );
    assert_eq!(keys(&j["models"][0]["cache_saved"]), money);
    assert_eq!(j["models"][0]["hunks_proposed"], 0);
    assert_eq!(j["models"][0]["cost_per_accepted_hunk"], Value::Null);
    assert_eq!(keys(&j["cache"]), ["saved", "tokens_cached"]);
    assert_eq!(j["cache"]["tokens_cached"], 0);
    assert_eq!(j["cache"]["saved"]["picos"], 0);
    assert_eq!(keys(&j["daily"][0]), ["cost", "date"]);
    assert_eq!(keys(&j["daily_max"]), ["cost", "date"]);
    assert_eq!(j["projects"], Value::Array(Vec::new()));
    assert_eq!(
        keys(&j["key"]),
        [
            "label",
            "limit",
            "limit_remaining",
            "limit_reset",
            "status",
            "usage",
            "usage_daily",
            "usage_monthly"
        ]
    );
    assert_eq!(j["key"]["limit"], Value::Null);
    assert_eq!(j["key"]["limit_reset"], Value::Null);
    // Not a number: null in JSON; out of the exact range: picos saturate.
    assert_eq!(j["key"]["limit_remaining"]["usd"], Value::Null);
    assert_eq!(j["key"]["limit_remaining"]["text"], "?");
    assert_eq!(j["key"]["usage"]["picos"], i64::MAX);
    assert_eq!(j["key"]["usage_daily"]["picos"], -1_500_000_000_000_i64);
    assert_eq!(j["key"]["usage_daily"]["text"], "-$1.50");
    assert_eq!(
        keys(&j["footprint"]),
        [
            "gco2e_per_token",
            "ml_water_per_token",
            "month",
            "source",
            "today",
            "total"
        ]
    );
    assert_eq!(
        keys(&j["footprint"]["today"]),
        ["completion_tokens", "gco2e", "ml_water"]
    );
    req.key_info = KeyInfo::NotFetched;
    let r = build(&l, &c, &req).unwrap();
    assert_eq!(keys(&as_json(&r)["key"]), ["status"]);
    // `frugal usage --json` prints the keys sorted, as it always has.
    let printed = r.data.to_pretty_json().unwrap();
    assert!(
        printed.starts_with("{\n  \"cache\": {\n    \"saved\": {\n      \"picos\": 0,"),
        "{printed}"
    );
    assert!(printed.ends_with("  \"version\": 1,\n  \"view\": \"project\"\n}"));
}

#[test]
fn review_spend_is_shown_apart_once_a_review_ran() {
    let (_d, mut l) = temp();
    #[rustfmt::skip]
    add(&mut l, &[("/p", "m/a", Some(cents(30)), 10, "2025-06-15T10:00:00+02:00")]);
    let c = at("2025-06-15T12:00:00+02:00");
    let req = project_req("/p");
    let r = build(&l, &c, &req).unwrap();
    assert!(
        !r.lines.iter().any(|x| x.contains("reviews")),
        "{:?}",
        r.lines
    );
    assert_eq!(as_json(&r)["reviews"]["requests"], 0);

    let price = Price {
        prompt: Usd(1_000_000),
        completion: Usd(10_000_000),
        request: Usd::ZERO,
    };
    for (project, charged) in [("/p", 3), ("/p", 1), ("/q", 5)] {
        let mut input = ReserveInput::new(project, "google/gemini-2.5-flash", 100, 100, price);
        input.kind = crate::budget::RequestKind::Review;
        let Decision::Reserved { id, .. } = l.reserve(&input, &c).unwrap() else {
            panic!("refused")
        };
        l.settle(
            id,
            Settlement::charged(Usd(charged * 1_000_000_000), ChargeSource::Usage),
            &c,
        )
        .unwrap();
    }
    let r = build(&l, &c, &req).unwrap();
    let line = r.lines.iter().find(|x| x.contains("reviews")).unwrap();
    assert!(line.contains("2 requests, $0.0040"), "{line}");
    let j = as_json(&r);
    assert_eq!(j["reviews"]["requests"], 2);
    assert_eq!(j["reviews"]["cost"]["picos"], 4_000_000_000i64);
    assert_eq!(j["reviews"]["spent"]["text"], "$0.0040");
    assert_highlights_valid(&r);
    let mut all = req.clone();
    all.all = true;
    let j = as_json(&build(&l, &c, &all).unwrap());
    assert_eq!(j["reviews"]["requests"], 3);
}

#[test]
fn spend_elsewhere_on_the_key_counts_utc_periods() {
    let (_d, mut l) = temp();
    // 22:00 in Paris on May 31st: 20:00 UTC, May 31st in both.
    let c = at("2025-05-31T22:00:00+02:00");
    let price = Price {
        prompt: Usd(1_000_000),
        completion: Usd(10_000_000),
        request: Usd::ZERO,
    };
    for (key, amount) in [(Some("bound:h1"), cents(20)), (None, cents(70))] {
        let mut input = ReserveInput::new("/p", "m", 10, 10, price);
        input.key_id = key;
        let Decision::Reserved { id, .. } = l.reserve(&input, &c).unwrap() else {
            panic!("refused")
        };
        l.settle(id, Settlement::charged(amount, ChargeSource::Usage), &c)
            .unwrap();
    }
    let mut req = project_req("/p");
    req.key_id = Some("bound:h1".into());
    req.bound_key = Some("frugal: p".into());
    req.key_info = KeyInfo::Known {
        label: "sk-or-v1-a...b".into(),
        limit: Some(5.0),
        limit_remaining: Some(4.5),
        limit_reset: Some("monthly".into()),
        usage: 0.5,
        usage_daily: 0.205,
        usage_monthly: 0.5,
    };
    // 01:30 in Paris on June 1st: locally a new day and month, in UTC still May 31st.
    let r = build(&l, &at("2025-06-01T01:30:00+02:00"), &req).unwrap();
    assert_highlights_valid(&r);
    assert!(line_with(&r, "OpenRouter key").1.contains("(frugal: p)"));
    assert!(line_with(&r, "spent elsewhere on this key this month")
        .1
        .contains("$0.30"));
    assert!(!r
        .lines
        .iter()
        .any(|l| l.contains("elsewhere on this key today")));
    let j = as_json(&r);
    assert_eq!(j["key_spend"]["key_id"], "bound:h1");
    assert_eq!(j["key_spend"]["bound_key"], "frugal: p");
    assert_eq!(j["key_spend"]["ledger_today"]["picos"], cents(20).0);
    assert_eq!(j["key_spend"]["ledger_month"]["picos"], cents(20).0);
    assert_eq!(j["key_spend"]["elsewhere_month"]["picos"], cents(30).0);
    assert_eq!(j["key_spend"]["elsewhere_today"], Value::Null);
    // Without the key's figures, no claim of spend elsewhere; no key_id, no section.
    req.key_info = KeyInfo::NotFetched;
    let r = build(&l, &at("2025-06-01T01:30:00+02:00"), &req).unwrap();
    assert_eq!(as_json(&r)["key_spend"]["elsewhere_month"], Value::Null);
    req.key_id = None;
    let r = build(&l, &at("2025-06-01T01:30:00+02:00"), &req).unwrap();
    assert_eq!(as_json(&r)["key_spend"], Value::Null);
}

/// The share of hunks accepted and the cost per accepted hunk per model (edit spend only, this
/// project or every one), and the month's end at the last 7 days' pace with the day the cap
/// stops requests: in the float (within 80 cells) and in the data.
#[test]
fn hunk_outcomes_and_the_forecast() {
    use crate::budget::{HunkFate, Outcome, RequestId};
    let (_d, mut l) = temp();
    #[rustfmt::skip]
    add(&mut l, &[
        ("/p", "m/a", Some(cents(30)), 10, "2026-12-03T10:00:00+01:00"),
        ("/p", "m/a", Some(cents(12)), 10, "2026-12-04T10:00:00+01:00"),
        ("/q", "m/a", Some(cents(50)), 10, "2026-12-05T10:00:00+01:00"),
        ("/p", "m/b", Some(cents(7)), 10, "2026-12-06T10:00:00+01:00"),
    ]);
    let c = at("2026-12-07T12:00:00+01:00");
    l.propose_hunks(RequestId(1), 3, &c).unwrap();
    l.propose_hunks(RequestId(2), 1, &c).unwrap();
    l.propose_hunks(RequestId(3), 2, &c).unwrap();
    l.propose_hunks(RequestId(4), 2, &c).unwrap();
    let out = |id, hunk, fate| Outcome {
        request: RequestId(id),
        hunk,
        fate,
    };
    use HunkFate::*;
    #[rustfmt::skip]
    l.record_outcomes(&[
        out(1, 1, Accepted), out(1, 2, Accepted), out(1, 3, Rejected),
        out(2, 1, Replaced), out(3, 1, Accepted), out(4, 1, Rejected),
    ], &c).unwrap();
    let mut req = project_req("/p");
    req.project_caps.monthly = Some(cents(60));
    req.width = 80;
    let r = build(&l, &c, &req).unwrap();
    let j = as_json(&r);
    let a = &j["models"][0];
    assert_eq!(a["model"], "m/a");
    assert_eq!(
        (a["hunks_proposed"].as_i64(), a["hunks_accepted"].as_i64()),
        (Some(4), Some(2))
    );
    // $0.42 of edits in /p over 2 accepted hunks.
    assert_eq!(a["cost_per_accepted_hunk"]["picos"], cents(21).0);
    let b = &j["models"][1];
    assert_eq!(
        (b["hunks_proposed"].as_i64(), b["hunks_accepted"].as_i64()),
        (Some(2), Some(0))
    );
    assert_eq!(b["cost_per_accepted_hunk"], Value::Null);
    // $0.49 in /p so far, all in the last 7 days; 24.5 days left at $0.07 a day: $2.205.
    let f = &j["spend"]["forecast"];
    assert_eq!(f["month_end"]["picos"], 2_205_000_000_000_i64);
    // $0.11 to the $0.60 cap at $0.07 a day: 1.57 days, Dec 9 at 1:42.
    assert_eq!(f["cap_reached_on"], "2026-12-09");
    assert_eq!(
        j["global"]["forecast"]["cap_reached_on"],
        Value::Null,
        "no global cap"
    );
    let (_, line) = line_with(&r, "at this pace");
    assert_eq!(
        line.trim(),
        "at this pace ~$2.21 this month — the $0.60 cap stops requests around Dec 9"
    );
    let (i, _) = line_with(&r, "Hunks accepted");
    assert_eq!(
        r.lines[i + 1].split_whitespace().collect::<Vec<_>>(),
        ["m/a", "2/4", "50%", "$0.2100"]
    );
    assert_eq!(
        r.lines[i + 2].split_whitespace().collect::<Vec<_>>(),
        ["m/b", "0/2", "0%", "-"]
    );
    assert!(
        r.lines.iter().all(|l| text::cells(l) <= 80),
        "{:#?}",
        r.lines
    );
    assert_highlights_valid(&r);

    // Every project: /q's edit and its accepted hunk count too.
    let all = build(&l, &c, &ReportRequest::default()).unwrap();
    let a = &as_json(&all)["models"][0];
    assert_eq!(
        (a["hunks_proposed"].as_i64(), a["hunks_accepted"].as_i64()),
        (Some(6), Some(3))
    );
    assert_eq!(a["cost_per_accepted_hunk"]["picos"], cents(92).0 / 3);

    // A cap already passed: the day it was, in both.
    req.project_caps.monthly = Some(cents(40));
    let r = build(&l, &c, &req).unwrap();
    assert_eq!(
        as_json(&r)["spend"]["forecast"]["cap_reached_on"],
        "2026-12-04"
    );
    let (_, line) = line_with(&r, "at this pace");
    assert!(
        line.ends_with("the $0.40 cap has stopped requests since Dec 4"),
        "{line}"
    );
}
