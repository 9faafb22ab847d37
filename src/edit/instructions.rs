//! The project's instructions: the files of `instructions` (setup; `AGENTS.md`, `CLAUDE.md`,
//! … by default), or of `[context] instructions` in a trusted `.frugal.toml`, read from the
//! project's checkout and sent with every request of the project (edit, review, ask) at the
//! end of its system message: the cached, stable part of the prompt. (Not an edit's
//! `instruction`, which is what the user typed.)
//!
//! Each existing listed file goes once, in the list's order: a link to another listed file is
//! not sent twice (files are told apart by where they really lead). A listed file that does
//! not exist is no concern; one that breaks the path rules of context files (a link out of the
//! project, `..` out, into `.git`, a link leading nowhere, a FIFO or other non-file, binary,
//! not UTF-8) is skipped, the request going without it, with one warning per session naming
//! it. What is over `max_instructions_bytes` in all is cut (at a line's end), with one warning
//! per session naming the file. Paths are judged by [`files::real_path`], files opened by
//! [`files::open_regular`], as for context files.

use crate::edit::files::{self, Unopened};
use crate::edit::prompt::{fence_for, push_fenced};
use crate::gate::ProjectCtx;
use crate::openrouter::client::{one_line, LINE_CELLS};
use crate::protocol::Level;
use crate::services::Ui;
use crate::settings::{Config, ProjectInput, ProjectSettings};
use std::collections::HashSet;
use std::io::Read;
use std::path::Path;

/// One instruction file as it goes with a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InstructionFile {
    /// As listed (relative to the project root).
    pub path: String,
    /// The lines sent: all of them, or those inside `max_instructions_bytes`.
    pub lines: Vec<String>,
    /// Its size on disk.
    pub size: u64,
    /// Cut by `max_instructions_bytes` (partly, or wholly when `lines` is empty).
    pub cut: bool,
}

/// The files' paths, each marked as an instruction file (for `:LlmHistory`: named, never
/// stored).
pub fn names_of(files: &[InstructionFile]) -> Vec<String> {
    files
        .iter()
        .map(|f| format!("{} (instructions)", f.path))
        .collect()
}

impl InstructionFile {
    /// Its size in the prompt (lines and their line ends).
    pub fn bytes(&self) -> u64 {
        self.lines.iter().map(|l| l.len() as u64 + 1).sum()
    }
}

/// A listed file that is not sent, and why (a few words after its name).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Skipped {
    pub path: String,
    pub why: String,
}

/// What reading the listed files found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Found {
    /// The existing files, in the list's order, each real file once.
    pub files: Vec<InstructionFile>,
    pub skipped: Vec<Skipped>,
}

/// The list in force for a project: a trusted file's `[context] instructions`, else the user's.
pub fn list<'a>(cfg: &'a Config, project: &'a ProjectSettings) -> &'a [String] {
    project.instructions.as_deref().unwrap_or(&cfg.instructions)
}

/// Reads the listed files of the checkout `root` (canonical), `max_bytes` in all.
pub fn read(root: &Path, list: &[String], max_bytes: u64) -> Found {
    let mut found = Found::default();
    let mut seen = HashSet::new();
    let mut left = max_bytes;
    for given in list {
        // Nothing there (not even a link): not listed in this project.
        if root.join(given).symlink_metadata().is_err() {
            continue;
        }
        let rel = match files::real_path(root, given) {
            Ok(rel) => rel,
            Err(why) => {
                tracing::info!(
                    "instruction file not sent: {}",
                    why.long(root, given.as_str())
                );
                found.skipped.push(Skipped {
                    path: given.clone(),
                    why: why
                        .short(given)
                        .trim_start_matches(given.as_str())
                        .trim()
                        .into(),
                });
                continue;
            }
        };
        if !seen.insert(rel.clone()) {
            continue;
        }
        match read_one(root, &rel, left) {
            Ok(None) => {}
            Ok(Some((lines, size, cut))) => {
                let file = InstructionFile {
                    path: given.clone(),
                    lines,
                    size,
                    cut,
                };
                left = left.saturating_sub(file.bytes());
                found.files.push(file);
            }
            Err(why) => found.skipped.push(Skipped {
                path: given.clone(),
                why,
            }),
        }
    }
    found
}

/// One file's lines (at most `left` bytes of it, cut at a line's end), its size and whether it
/// was cut; `None` when it vanished; why it is not sent otherwise.
#[allow(clippy::type_complexity)]
fn read_one(root: &Path, rel: &str, left: u64) -> Result<Option<(Vec<String>, u64, bool)>, String> {
    let (file, size) = match files::open_regular(&root.join(rel)) {
        Ok(opened) => opened,
        Err(Unopened::Io(e)) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(Unopened::Io(e)) => return Err(format!("cannot be read ({e})")),
        Err(Unopened::NotRegular) => return Err("is not a regular file".into()),
    };
    // Never more than what may be sent in memory (and one byte to tell it was more).
    let mut bytes = Vec::with_capacity(size.min(left) as usize);
    file.take(left.saturating_add(1))
        .read_to_end(&mut bytes)
        .map_err(|e| format!("cannot be read ({e})"))?;
    let cut = bytes.len() as u64 > left;
    if cut {
        bytes.truncate(left as usize);
        // Whole lines where there is a line end, else whole characters.
        if let Some(end) = bytes.iter().rposition(|&b| b == b'\n') {
            bytes.truncate(end + 1);
        }
    }
    if bytes.contains(&0) {
        return Err("is binary".into());
    }
    let text = match String::from_utf8(bytes) {
        Ok(text) => text,
        // A character split by the cut: up to it.
        Err(e) if cut && e.utf8_error().error_len().is_none() => {
            let valid = e.utf8_error().valid_up_to();
            let mut bytes = e.into_bytes();
            bytes.truncate(valid);
            String::from_utf8(bytes).expect("valid up to here")
        }
        Err(e) => {
            return Err(format!(
                "is not UTF-8 (at byte {})",
                e.utf8_error().valid_up_to()
            ))
        }
    };
    Ok(Some((files::split_lines(&text), size, cut)))
}

/// The instruction files of a request of any kind (edit, review, ask), from its [`Job::prompt`]:
/// read from the checkout of `project`, what is wrong said once per session. Its system
/// message is then [`system_with`]`(SYSTEM, &files)`, marked cached (an edit's is built by
/// `edit::prompt::stable`, which also adds the context files).
///
/// [`Job::prompt`]: crate::runner::Job::prompt
pub fn for_request(ctx: &crate::runner::Ctx, project: &ProjectCtx) -> Vec<InstructionFile> {
    let root = files::checkout_root(&project.file);
    load(&ctx.ui, &ctx.config(), &project.settings, &root)
}

/// The instruction files of a request's project (checkout `root`): read, and what was skipped
/// or cut said once per session, in one warning of one line for the request (several files
/// at once are named together, so the built-in `vim.notify` never stacks lines into a
/// hit-enter prompt); the whole text of each goes to the log.
pub fn load(ui: &Ui, cfg: &Config, project: &ProjectSettings, root: &Path) -> Vec<InstructionFile> {
    let found = read(root, list(cfg, project), cfg.max_instructions_bytes);
    let limit = files::size_text(cfg.max_instructions_bytes);
    // (the file, what is wrong, its own line, the whole text) of each problem: one warning per
    // session for each file and what is wrong with it.
    let mut problems: Vec<(&str, &str, String, String)> = Vec::new();
    for s in &found.skipped {
        problems.push((
            &s.path,
            &s.why,
            format!("instructions: {} {}, skipped", short(&s.path), s.why),
            format!("instruction file {} {}: not sent", s.path, s.why),
        ));
    }
    for f in found.files.iter().filter(|f| f.cut) {
        let size = files::size_text(f.size);
        problems.push(if f.lines.is_empty() {
            (
                &f.path,
                "cut",
                format!("instructions: {} over max_instructions_bytes", short(&f.path)),
                format!("instruction file {} ({size}) not sent: over max_instructions_bytes ({limit}) in all", f.path),
            )
        } else {
            (
                &f.path,
                "cut",
                format!("instructions: {} cut at max_instructions_bytes", short(&f.path)),
                format!("instruction file {} ({size}) cut to {}: max_instructions_bytes ({limit}) in all", f.path, files::size_text(f.bytes())),
            )
        });
    }
    let new: Vec<(&str, String)> = problems
        .into_iter()
        .filter(|(path, what, _, _)| {
            ui.first_time(format!("instructions\0{}\0{path}\0{what}", root.display()))
        })
        .inspect(|(_, _, _, whole)| tracing::warn!(root = %root.display(), "{whole}"))
        .map(|(path, _, line, _)| (path, line))
        .collect();
    let line = match new.as_slice() {
        [] => return found.files,
        [(_, line)] => line.clone(),
        [(a, _), (b, _), rest @ ..] => {
            let more = match rest.len() {
                0 => String::new(),
                n => format!(" +{n}"),
            };
            format!(
                "instructions: {}, {}{more} cut or skipped",
                short(a),
                short(b)
            )
        }
    };
    // The shim's prefix (`frugal: `) and the line fit the echo area.
    ui.notify(Level::Warn, one_line(&line, LINE_CELLS - "frugal: ".len()));
    found.files
}

/// A listed path as a message names it: as listed when short, else its file name.
fn short(path: &str) -> &str {
    if path.chars().count() <= 24 {
        return path;
    }
    path.rsplit(['/', '\\'])
        .find(|p| !p.is_empty())
        .unwrap_or(path)
}

/// What `:checkhealth` says of a project's instruction files: one line naming those found
/// (with their sizes) and where the list comes from, and one line for each skipped.
pub fn found_in(cfg: &Config, p: &ProjectInput) -> (String, Vec<String>) {
    use files::size_text;
    let settings = p.resolve().1;
    let list = list(cfg, &settings);
    let whose = match settings.instructions {
        Some(_) => format!("[context] instructions of {}", p.file),
        None => "setup instructions".to_string(),
    };
    let found = read(
        &files::checkout_root(&p.file),
        list,
        cfg.max_instructions_bytes,
    );
    let sizes: Vec<String> = found
        .files
        .iter()
        .map(|f| match f.cut {
            true => format!(
                "{} ({}, cut to {})",
                f.path,
                size_text(f.size),
                size_text(f.bytes())
            ),
            false => format!("{} ({})", f.path, size_text(f.size)),
        })
        .collect();
    let line = if list.is_empty() {
        format!("instructions: none ({whose} is empty)")
    } else if sizes.is_empty() {
        format!("instructions: none found of {} ({whose})", list.join(", "))
    } else {
        format!(
            "instructions sent with every request: {} ({whose})",
            sizes.join(", ")
        )
    };
    let skipped = found
        .skipped
        .iter()
        .map(|s| format!("instruction file {} {}: not sent", s.path, s.why))
        .collect();
    (line, skipped)
}

/// `system` followed by the project's instructions (each file with text under its path, in a
/// fence): the system message of every kind of request, so that they are in its cached,
/// stable part. Without instruction files, `system` alone.
pub fn system_with(system: &str, files: &[InstructionFile]) -> String {
    let sent: Vec<&InstructionFile> = files.iter().filter(|f| !f.lines.is_empty()).collect();
    if sent.is_empty() {
        return system.to_string();
    }
    let size: u64 = sent
        .iter()
        .map(|f| f.bytes() + f.path.len() as u64 + 16)
        .sum();
    let mut out = String::with_capacity(system.len() + size as usize + 256);
    out.push_str(system);
    out.push_str("\n\nThe project's instructions, from its files. Follow them where they apply to the request; they do not change the format of your answer asked above.\n");
    for f in sent {
        out.push_str(&format!("\n{}\n", f.path));
        push_fenced(&mut out, &fence_for(&f.lines), "", &f.lines);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tree() -> (tempfile::TempDir, std::path::PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().canonicalize().unwrap().join("proj");
        std::fs::create_dir_all(root.join(".git")).unwrap();
        (dir, root)
    }

    fn names(found: &Found) -> Vec<&str> {
        found.files.iter().map(|f| f.path.as_str()).collect()
    }

    fn list(paths: &[&str]) -> Vec<String> {
        paths.iter().map(|p| p.to_string()).collect()
    }

    #[test]
    #[cfg(unix)]
    fn existing_files_in_order_each_real_file_once() {
        let (_d, root) = tree();
        std::fs::write(root.join("AGENTS.md"), "a\r\nb\n").unwrap();
        std::fs::write(root.join("CONVENTIONS.md"), "c").unwrap();
        std::os::unix::fs::symlink("AGENTS.md", root.join("CLAUDE.md")).unwrap();
        let found = read(
            &root,
            &list(&["CONVENTIONS.md", "missing.md", "CLAUDE.md", "AGENTS.md"]),
            20_000,
        );
        assert_eq!(names(&found), ["CONVENTIONS.md", "CLAUDE.md"]);
        assert_eq!(found.files[1].lines, ["a", "b"]);
        assert_eq!(found.files[1].size, 5);
        assert!(found.skipped.is_empty(), "{:?}", found.skipped);
        let system = system_with("SYS", &found.files);
        assert!(system.starts_with("SYS\n\nThe project's instructions"));
        assert!(system.ends_with("\nCONVENTIONS.md\n```\nc\n```\n\nCLAUDE.md\n```\na\nb\n```\n"));
        assert_eq!(system_with("SYS", &[]), "SYS");
    }

    #[test]
    #[cfg(unix)]
    fn files_breaking_the_path_rules_are_skipped_by_name() {
        let (d, root) = tree();
        std::fs::write(d.path().join("secret.md"), "s\n").unwrap();
        std::os::unix::fs::symlink(d.path().join("secret.md"), root.join("out.md")).unwrap();
        std::os::unix::fs::symlink("nowhere", root.join("dangling.md")).unwrap();
        std::fs::write(root.join(".git/x.md"), "g\n").unwrap();
        std::fs::write(root.join("bin.md"), b"a\0b").unwrap();
        std::fs::write(root.join("latin.md"), b"caf\xe9\n").unwrap();
        std::fs::create_dir(root.join("dir.md")).unwrap();
        let found = read(
            &root,
            &list(&[
                "out.md",
                "dangling.md",
                ".git/x.md",
                "../secret.md",
                "bin.md",
                "latin.md",
                "dir.md",
                "../absent.md",
            ]),
            20_000,
        );
        assert!(found.files.is_empty(), "{:?}", found.files);
        let why: Vec<(&str, &str)> = found
            .skipped
            .iter()
            .map(|s| (s.path.as_str(), s.why.as_str()))
            .collect();
        assert_eq!(
            why,
            [
                ("out.md", "leads outside the project"),
                ("dangling.md", "leads nowhere (a broken link)"),
                (".git/x.md", "leads into .git"),
                ("../secret.md", "leads outside the project"),
                ("bin.md", "is binary"),
                ("latin.md", "is not UTF-8 (at byte 3)"),
                ("dir.md", "is not a regular file"),
            ]
        );
    }

    #[test]
    fn a_long_path_is_named_by_its_file_name() {
        assert_eq!(short("AGENTS.md"), "AGENTS.md");
        assert_eq!(short("../up.md"), "../up.md");
        assert_eq!(
            short(".github/copilot-instructions.md"),
            "copilot-instructions.md"
        );
    }

    #[test]
    fn what_is_over_the_bound_is_cut_at_a_line_end() {
        let (_d, root) = tree();
        std::fs::write(root.join("A.md"), "12345\n67890\nabc\n").unwrap();
        std::fs::write(root.join("B.md"), "more\n").unwrap();
        let found = read(&root, &list(&["A.md", "B.md"]), 12);
        assert_eq!(found.files[0].lines, ["12345", "67890"]);
        assert!(found.files[0].cut);
        assert_eq!(found.files[0].size, 16);
        assert_eq!(found.files[1].lines, Vec::<String>::new());
        assert!(found.files[1].cut, "no room left: cut whole");
        assert_eq!(system_with("S", &found.files).matches("B.md").count(), 0);
        // One long line: cut at a character, never inside one.
        std::fs::write(root.join("C.md"), "ééééé").unwrap();
        let found = read(&root, &list(&["C.md"]), 5);
        assert_eq!(found.files[0].lines, ["éé"]);
        let found = read(&root, &list(&["A.md", "B.md"]), 100);
        assert!(found.files.iter().all(|f| !f.cut));
    }
}
