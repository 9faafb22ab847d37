//! `frugal usage`: the real binary against a ledger written through the library.

use std::path::{Path, PathBuf};

#[path = "common/git.rs"]
mod git;
use git::git;
use std::process::{Command, Output};

use frugal::budget::{
    ChargeSource, Decision, Ledger, Price, ReserveInput, Settlement, SystemClock, Usd,
};

fn cents(c: i64) -> Usd {
    Usd(c * 10_000_000_000)
}

/// Reserves and settles one request of `model` costing `charged` now.
fn spend(l: &mut Ledger, project: &str, model: &str, charged: Usd, tokens: (u64, u64)) {
    let price = Price {
        prompt: Usd(1_000_000),
        completion: Usd(10_000_000),
        request: Usd::ZERO,
    };
    let input = ReserveInput::new(project, model, 100, 100, price);
    let Decision::Reserved { id, .. } = l.reserve(&input, &SystemClock).unwrap() else {
        panic!("refused")
    };
    let mut s = Settlement::charged(charged, ChargeSource::Usage);
    s.tokens_in = Some(tokens.0);
    s.tokens_out = Some(tokens.1);
    l.settle(id, s, &SystemClock).unwrap();
}

struct Fixture {
    _dir: tempfile::TempDir,
    data: PathBuf,
    root: PathBuf,
    other: PathBuf,
}

/// A git project with a `.frugal.toml`, another project, and a ledger holding both.
fn fixture(data_sub: &str) -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let base = dir.path().canonicalize().unwrap();
    let root = base.join("proj");
    std::fs::create_dir_all(root.join("src/deep")).unwrap();
    std::fs::create_dir(root.join(".git")).unwrap();
    std::fs::write(
        root.join(".frugal.toml"),
        "[budget]\ndaily_usd = 1.00\nmonthly_usd = 10\n",
    )
    .unwrap();
    let other = base.join("other");
    std::fs::create_dir_all(&other).unwrap();
    let data = base.join(data_sub);
    let mut l = Ledger::open(data.join("ledger.sqlite3")).unwrap();
    let p = root.to_str().unwrap();
    spend(
        &mut l,
        p,
        "anthropic/claude-sonnet-4.5",
        cents(1235),
        (10_000, 2_000),
    );
    spend(
        &mut l,
        p,
        "anthropic/claude-sonnet-4.5",
        cents(100),
        (5_000, 400),
    );
    spend(
        &mut l,
        p,
        "mistralai/mistral-medium-3",
        Usd(4_200_000_000),
        (700, 100),
    );
    spend(
        &mut l,
        other.to_str().unwrap(),
        "openai/gpt-4o",
        cents(99),
        (1, 1),
    );
    Fixture {
        _dir: dir,
        data,
        root,
        other,
    }
}

fn frugal(args: &[&str], cwd: Option<&Path>, env: &[(&str, &Path)]) -> Output {
    let mut c = Command::new(env!("CARGO_BIN_EXE_frugal"));
    c.arg("usage").args(args).env_remove("COLUMNS");
    c.env_remove("XDG_DATA_HOME").env_remove("NVIM_APPNAME");
    for (k, v) in env {
        c.env(k, v);
    }
    if let Some(d) = cwd {
        c.current_dir(d);
    }
    c.output().unwrap()
}

fn stdout(o: &Output) -> String {
    assert!(
        o.status.success(),
        "exit {:?}: {}",
        o.status.code(),
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8(o.stdout.clone()).unwrap()
}

fn line<'a>(text: &'a str, needle: &str) -> &'a str {
    text.lines()
        .find(|l| l.contains(needle))
        .unwrap_or_else(|| panic!("no {needle:?} in\n{text}"))
}

fn words(l: &str) -> Vec<&str> {
    l.split_whitespace().collect()
}

fn today() -> jiff::civil::Date {
    jiff::Zoned::now().date()
}

#[test]
fn text_report_of_a_project() {
    let f = fixture("data");
    let day = today();
    let deep = f.root.join("src/deep");
    let out = stdout(&frugal(
        &[
            "--data-dir",
            f.data.to_str().unwrap(),
            "--project",
            deep.to_str().unwrap(),
        ],
        None,
        &[],
    ));
    assert!(out.starts_with("frugal usage: proj\n"), "{out}");
    assert_eq!(
        line(&out, "Project"),
        format!("Project  {}", f.root.display())
    );
    line(&out, "read by the CLI");
    // $12.35 + $1.00 + $0.0042, against the file's caps.
    assert_eq!(
        words(line(&out, "  total ")),
        vec!["total", "$13.35", "no", "cap"]
    );
    if today() == day {
        let t = words(line(&out, "  today "));
        assert_eq!(&t[..4], &["today", "$13.35", "of", "$1.00"]);
        assert_eq!(t[5], "1335%");
        let m = words(line(&out, "this month"));
        assert_eq!(&m[..5], &["this", "month", "$13.35", "of", "$10.00"]);
        assert_eq!(m[6], "133%");
    }
    assert_eq!(
        words(line(&out, "anthropic/claude-sonnet-4.5")),
        vec![
            "anthropic/claude-sonnet-4.5",
            "2",
            "15,000",
            "2,400",
            "$13.35"
        ]
    );
    assert_eq!(
        words(line(&out, "mistralai/mistral-medium-3")),
        vec!["mistralai/mistral-medium-3", "1", "700", "100", "$0.0042"]
    );
    assert!(!out.contains("openai/gpt-4o"));
    line(&out, "OpenRouter key  not fetched by the CLI");
    line(&out, "factors: Mistral");
    // Plain text: no highlight markup, no escape codes.
    assert!(!out.contains('\x1b'));
}

#[test]
fn json_report_of_a_project() {
    let f = fixture("data");
    let o = frugal(
        &[
            "--json",
            "--data-dir",
            f.data.to_str().unwrap(),
            "--project",
            f.root.to_str().unwrap(),
        ],
        None,
        &[],
    );
    let v: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert_eq!(v["version"], 1);
    assert_eq!(v["view"], "project");
    assert_eq!(v["project"], f.root.to_str().unwrap());
    assert_eq!(v["file"]["state"], "read by the CLI");
    assert_eq!(v["spend"]["total"]["counted"]["text"], "$13.35");
    assert_eq!(
        v["spend"]["total"]["counted"]["picos"],
        (cents(1335) + Usd(4_200_000_000)).0
    );
    assert_eq!(v["spend"]["total"]["completion_tokens"], 2_500);
    assert_eq!(v["spend"]["today"]["cap"]["text"], "$1.00");
    assert_eq!(v["spend"]["month"]["cap"]["picos"], cents(1000).0);
    assert_eq!(v["spend"]["total"]["cap"], serde_json::Value::Null);
    let models: Vec<(String, i64, String)> = v["models"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            (
                m["model"].as_str().unwrap().to_string(),
                m["requests"].as_i64().unwrap(),
                m["cost"]["text"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert_eq!(
        models,
        vec![
            ("anthropic/claude-sonnet-4.5".into(), 2, "$13.35".into()),
            ("mistralai/mistral-medium-3".into(), 1, "$0.0042".into()),
        ]
    );
    assert_eq!(v["daily"].as_array().unwrap().len(), 30);
    assert_eq!(v["key"]["status"], "not_fetched");
    assert_eq!(v["global"]["total"]["counted"]["text"], "$14.34");
    assert_eq!(v["projects"].as_array().unwrap().len(), 0);
}

#[test]
fn all_projects() {
    let f = fixture("data");
    let data = f.data.to_str().unwrap();
    let out = stdout(&frugal(&["--all", "--data-dir", data], None, &[]));
    assert!(out.starts_with("frugal usage: all projects\n"), "{out}");
    let rows: Vec<&str> = out
        .lines()
        .filter(|l| l.contains(f.root.to_str().unwrap()) || l.contains(f.other.to_str().unwrap()))
        .collect();
    assert_eq!(rows.len(), 2, "{out}");
    let first = words(rows[0]);
    assert_eq!(first[0], f.root.to_str().unwrap());
    assert_eq!(&first[3..], &["$13.35", "3"]);
    let second = words(rows[1]);
    assert_eq!(&second[3..], &["$0.9900", "1"]);
    assert_eq!(
        words(line(&out, "  total ")),
        vec!["total", "$14.34", "no", "cap"]
    );
    assert_eq!(words(line(&out, "openai/gpt-4o"))[1], "1");

    let o = frugal(&["--all", "--json", "--data-dir", data], None, &[]);
    let v: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert_eq!(v["view"], "all");
    assert_eq!(v["project"], serde_json::Value::Null);
    let p = v["projects"].as_array().unwrap();
    assert_eq!(p[0]["project"], f.root.to_str().unwrap());
    assert_eq!(p[0]["requests"], 3);
    assert_eq!(p[1]["total"]["text"], "$0.9900");
    assert_eq!(v["models"].as_array().unwrap().len(), 3);
}

#[test]
fn default_project_and_data_dir_follow_neovim() {
    let f = fixture("xdg/myvim/frugal");
    let xdg = f.data.parent().unwrap().parent().unwrap().to_path_buf();
    // Without --project: the current directory's project (its git root).
    let o = frugal(
        &["--json"],
        Some(&f.root.join("src")),
        &[
            ("XDG_DATA_HOME", &xdg),
            ("NVIM_APPNAME", Path::new("myvim")),
        ],
    );
    let v: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert_eq!(v["project"], f.root.to_str().unwrap());
    assert_eq!(v["models"][0]["requests"], 2);

    // NVIM_APPNAME defaults to nvim; HOME/.local/share when XDG_DATA_HOME is unset.
    let home = f.data.parent().unwrap().parent().unwrap().parent().unwrap();
    let o = frugal(&["--all"], None, &[("HOME", home)]);
    assert_eq!(o.status.code(), Some(1));
    let err = String::from_utf8_lossy(&o.stderr);
    let expect = home.join(".local/share/nvim/frugal/ledger.sqlite3");
    assert_eq!(err.trim(), format!("no ledger at {} yet", expect.display()));
    assert!(!expect.exists(), "the CLI must not create the ledger");
    assert!(!expect.parent().unwrap().exists());
}

#[test]
fn missing_ledger_and_bad_arguments() {
    let dir = tempfile::tempdir().unwrap();
    let o = frugal(
        &["--all", "--data-dir", dir.path().to_str().unwrap()],
        None,
        &[],
    );
    assert_eq!(o.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&o.stderr).starts_with("no ledger at "));
    assert!(o.stdout.is_empty());
    assert!(!dir.path().join("ledger.sqlite3").exists());

    for args in [
        vec!["--bogus"],
        vec!["--project"],
        vec!["--all", "--project", "/"],
        vec!["--project", "/definitely/not/here"],
    ] {
        let o = frugal(&args, None, &[]);
        assert_eq!(o.status.code(), Some(2), "{args:?}");
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(err.contains("usage: frugal usage"), "{args:?}: {err}");
        assert!(o.stdout.is_empty());
    }
    let o = frugal(&["--help"], None, &[]);
    assert!(stdout(&o).starts_with("usage: frugal usage"));
    // RPC mode's own flags still work.
    let o = Command::new(env!("CARGO_BIN_EXE_frugal"))
        .arg("--version")
        .output()
        .unwrap();
    assert!(stdout(&o).starts_with("frugal "));
}

#[test]
fn a_worktree_reports_the_spend_of_its_main_repository_and_reads_its_own_file() {
    let dir = tempfile::tempdir().unwrap();
    let base = dir.path().canonicalize().unwrap();
    let main = base.join("main");
    std::fs::create_dir_all(main.join("src")).unwrap();
    git(&main, &["init", "-q"]);
    std::fs::write(main.join("src/a.py"), "x = 1\n").unwrap();
    git(&main, &["add", "."]);
    git(&main, &["commit", "-q", "-m", "a"]);
    git(&main, &["worktree", "add", "-q", "../wt", "-b", "wt"]);
    let wt = base.join("wt");
    std::fs::write(wt.join(".frugal.toml"), "[budget]\ndaily_usd = 2\n").unwrap();
    let data = base.join("data");
    let mut l = Ledger::open(data.join("ledger.sqlite3")).unwrap();
    spend(
        &mut l,
        main.to_str().unwrap(),
        "anthropic/claude-sonnet-4.5",
        cents(25),
        (10, 10),
    );
    drop(l);
    let o = frugal(
        &["--json", "--data-dir", data.to_str().unwrap()],
        Some(&wt.join("src")),
        &[],
    );
    let v: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert_eq!(v["project"], main.to_str().unwrap());
    assert_eq!(v["spend"]["today"]["spent"]["picos"], cents(25).0, "{v:#}");
    assert_eq!(
        v["file"]["path"],
        wt.join(".frugal.toml").to_str().unwrap(),
        "{v:#}"
    );
    assert_eq!(v["spend"]["today"]["cap"]["picos"], cents(200).0, "{v:#}");
}

#[test]
fn a_symlinked_project_file_is_reported_invalid() {
    let f = fixture("data");
    let real = f.other.join("trusted.toml");
    std::fs::write(&real, "[budget]\ndaily_usd = 100\n").unwrap();
    std::fs::remove_file(f.root.join(".frugal.toml")).unwrap();
    std::os::unix::fs::symlink(&real, f.root.join(".frugal.toml")).unwrap();
    let o = frugal(
        &[
            "--json",
            "--project",
            f.root.to_str().unwrap(),
            "--data-dir",
            f.data.to_str().unwrap(),
        ],
        None,
        &[],
    );
    let v: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
    let state = v["file"]["state"].as_str().unwrap();
    assert!(state.starts_with("invalid"), "{v:#}");
    assert!(state.contains("symbolic link"), "{v:#}");
}
