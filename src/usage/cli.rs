//! `frugal usage [--project DIR] [--all] [--json] [--data-dir DIR]`: the `:LlmUsage` report
//! in a terminal, or as JSON for scripts.
//!
//! Reads `<data_dir>/ledger.sqlite3` (never creates it). The project is DIR's git root (the
//! nearest ancestor with a `.git` entry, after resolving symlinks; for a git worktree, its main
//! repository's root, while the worktree's own `.frugal.toml` applies), else DIR itself; without
//! `--project` and `--all`, the current directory's. The project's `.frugal.toml` is read for
//! its caps: the person running the CLI is its user, so no trust prompt applies. The CLI knows
//! no global caps (they live in the user's Neovim setup) and does not call OpenRouter.

use std::ffi::OsString;
use std::io::Write;
use std::path::{Path, PathBuf};

use super::{build, FileStatus, KeyInfo, ReportRequest};
use crate::budget::Caps;
use crate::budget::{Ledger, SystemClock};

/// The usage text shown with `--help` and after a bad argument.
pub const USAGE: &str = "usage: frugal usage [--project DIR] [--all] [--json] [--data-dir DIR]

Shows what frugal.nvim has spent, as :LlmUsage does.
  --project DIR   the project holding DIR (its git root, else DIR; a git worktree counts
                  under its main repository); default: the current directory
  --all           every project
  --json          the same report as JSON, for scripts
  --data-dir DIR  where the ledger is; default: $XDG_DATA_HOME/$NVIM_APPNAME/frugal
                  (~/.local/share/nvim/frugal), Neovim's stdpath(\"data\") .. \"/frugal\"";

/// The parsed arguments.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Args {
    /// `--project DIR`.
    pub project: Option<PathBuf>,
    /// `--all`.
    pub all: bool,
    /// `--json`.
    pub json: bool,
    /// `--data-dir DIR`.
    pub data_dir: Option<PathBuf>,
    /// `--help`.
    pub help: bool,
}

/// Parses the arguments after `usage`.
pub fn parse_args(args: &[OsString]) -> Result<Args, String> {
    let mut out = Args::default();
    let mut it = args.iter();
    while let Some(a) = it.next() {
        let s = a.to_string_lossy();
        let (flag, inline) = match s.split_once('=') {
            Some((f, v)) if f.starts_with("--") => (f.to_string(), Some(OsString::from(v))),
            _ => (s.to_string(), None),
        };
        let mut value = |name: &str| -> Result<PathBuf, String> {
            match inline.clone().or_else(|| it.next().cloned()) {
                Some(v) if !v.is_empty() => Ok(PathBuf::from(v)),
                _ => Err(format!("{name} needs a directory")),
            }
        };
        match flag.as_str() {
            "--project" | "-p" => out.project = Some(value("--project")?),
            "--data-dir" => out.data_dir = Some(value("--data-dir")?),
            "--all" | "-a" if inline.is_none() => out.all = true,
            "--json" if inline.is_none() => out.json = true,
            "--help" | "-h" if inline.is_none() => out.help = true,
            _ => return Err(format!("unknown argument {s:?}")),
        }
    }
    if out.all && out.project.is_some() {
        return Err("--all and --project exclude each other".into());
    }
    Ok(out)
}

/// The project of `dir` as the plugin finds it: its git root (a worktree's main repository),
/// else `dir`; symlinks resolved first. See [`crate::settings::paths::project_dirs`].
pub fn project_root(dir: &Path) -> std::io::Result<PathBuf> {
    crate::settings::paths::project_dirs(dir).map(|p| p.root)
}

/// The project file's state and caps, read directly (the CLI's user is the file's user).
fn read_project_file(checkout: &Path) -> (FileStatus, Option<String>, Caps) {
    let file = checkout.join(".frugal.toml");
    let shown = file.to_string_lossy().into_owned();
    if file.symlink_metadata().is_err() {
        return (FileStatus::Absent, Some(shown), Caps::default());
    }
    // A link (or a directory, a FIFO) is refused as the plugin refuses it.
    if let Err(e) = crate::settings::project::refuse_special(&file) {
        return (
            FileStatus::Invalid(e.to_string()),
            Some(shown),
            Caps::default(),
        );
    }
    let text = match std::fs::read_to_string(&file) {
        Ok(t) => t,
        Err(e) => {
            return (
                FileStatus::Invalid(format!("cannot read {shown}: {e}")),
                Some(shown),
                Caps::default(),
            )
        }
    };
    match crate::settings::project::parse(&shown, &text) {
        Ok(settings) => (
            FileStatus::ReadByCli,
            Some(shown),
            settings.budget.map(|b| b.caps).unwrap_or_default(),
        ),
        Err(e) => (
            FileStatus::Invalid(e.to_string()),
            Some(shown),
            Caps::default(),
        ),
    }
}

/// Runs `frugal usage` with the arguments after `usage`; returns the exit code (0 shown,
/// 1 no ledger or a ledger error, 2 bad arguments).
pub fn run(args: &[OsString]) -> i32 {
    let stdout = std::io::stdout();
    let stderr = std::io::stderr();
    run_with(args, &mut stdout.lock(), &mut stderr.lock())
}

/// [`run`] writing to the given streams.
pub fn run_with(args: &[OsString], out: &mut dyn Write, err: &mut dyn Write) -> i32 {
    let args = match parse_args(args) {
        Ok(a) => a,
        Err(e) => {
            let _ = writeln!(err, "frugal usage: {e}\n\n{USAGE}");
            return 2;
        }
    };
    if args.help {
        let _ = writeln!(out, "{USAGE}");
        return 0;
    }
    let data_dir = match args
        .data_dir
        .clone()
        .or_else(|| crate::settings::paths::default_data_dir(|k| std::env::var_os(k)))
    {
        Some(d) => d,
        None => {
            let _ = writeln!(
                err,
                "frugal usage: no HOME or XDG_DATA_HOME to find the ledger; use --data-dir\n\n{USAGE}"
            );
            return 2;
        }
    };
    let mut req = ReportRequest {
        key_info: KeyInfo::NotFetched,
        width: terminal_width(),
        ..ReportRequest::default()
    };
    if args.all {
        req.all = true;
    } else {
        let dir = match args.project.clone() {
            Some(d) => d,
            None => match std::env::current_dir() {
                Ok(d) => d,
                Err(e) => {
                    let _ = writeln!(err, "frugal usage: no current directory: {e}");
                    return 2;
                }
            },
        };
        let dirs = match crate::settings::paths::project_dirs(&dir) {
            Ok(r) => r,
            Err(e) => {
                let _ = writeln!(
                    err,
                    "frugal usage: cannot use {} as the project: {e}\n\n{USAGE}",
                    dir.display()
                );
                return 2;
            }
        };
        // A worktree counts under its main repository but reads its own file.
        let (state, file, caps) = read_project_file(&dirs.checkout);
        req.all = false;
        req.project = Some(dirs.root.to_string_lossy().into_owned());
        // The key bound by `:LlmKey create`: its name, and the ledger's spend through it (the
        // CLI does not ask OpenRouter for the key's own figures).
        if let Some(b) = crate::settings::bound::load(&data_dir, &dirs.root.to_string_lossy()) {
            req.key_id = Some(b.key_id());
            req.bound_key = Some(b.name);
        }
        req.file_state = state;
        req.file_path = file;
        req.project_caps = caps;
    }
    let path = data_dir.join(crate::budget::ledger::LEDGER_FILE);
    if !path.is_file() {
        let _ = writeln!(err, "no ledger at {} yet", path.display());
        return 1;
    }
    let ledger = match Ledger::open(&path) {
        Ok(l) => l,
        Err(e) => {
            let _ = writeln!(err, "frugal usage: {}", e.explain(&path));
            return 1;
        }
    };
    let report = match build(&ledger, &SystemClock, &req) {
        Ok(r) => r,
        Err(e) => {
            let _ = writeln!(err, "frugal usage: {}", e.explain(&path));
            return 1;
        }
    };
    let written = if args.json {
        report
            .data
            .to_pretty_json()
            .map_err(std::io::Error::other)
            .and_then(|s| writeln!(out, "{s}"))
    } else {
        writeln!(out, "{}\n\n{}", report.title, report.lines.join("\n"))
    };
    match written.and_then(|()| out.flush()) {
        Ok(()) => 0,
        // A closed pipe (`frugal usage | head`) is not worth a message.
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => 0,
        Err(e) => {
            let _ = writeln!(err, "frugal usage: {e}");
            1
        }
    }
}

/// `$COLUMNS` when set, else 80.
fn terminal_width() -> usize {
    std::env::var("COLUMNS")
        .ok()
        .and_then(|c| c.trim().parse::<usize>().ok())
        .filter(|&c| c >= 40)
        .unwrap_or(80)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn os(v: &[&str]) -> Vec<OsString> {
        v.iter().map(OsString::from).collect()
    }

    #[test]
    fn parses_arguments() {
        let a = parse_args(&os(&["--project", "/x", "--json", "--data-dir=/d"])).unwrap();
        assert_eq!(a.project, Some(PathBuf::from("/x")));
        assert_eq!(a.data_dir, Some(PathBuf::from("/d")));
        assert!(a.json && !a.all);
        assert!(parse_args(&os(&["--all"])).unwrap().all);
        assert!(parse_args(&os(&["--project"])).is_err());
        assert!(parse_args(&os(&["--bogus"])).is_err());
        assert!(parse_args(&os(&["--all", "--project", "/x"])).is_err());
        assert!(parse_args(&os(&["--json=1"])).is_err());
    }

    #[test]
    fn finds_the_git_root() {
        let d = tempfile::tempdir().unwrap();
        let root = d.path().canonicalize().unwrap().join("repo");
        std::fs::create_dir_all(root.join("src/deep")).unwrap();
        std::fs::create_dir(root.join(".git")).unwrap();
        assert_eq!(project_root(&root.join("src/deep")).unwrap(), root);
        let plain = d.path().canonicalize().unwrap().join("plain");
        std::fs::create_dir(&plain).unwrap();
        // No .git above a temp dir (normally): the directory itself.
        if !d.path().ancestors().any(|a| a.join(".git").exists()) {
            assert_eq!(project_root(&plain).unwrap(), plain);
        }
        assert!(project_root(&d.path().join("missing")).is_err());
    }
}
