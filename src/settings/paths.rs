//! Paths: where Neovim keeps its data, found the way Neovim finds it, for when the shim cannot
//! say (`frugal usage` at a terminal); a `setup()` path expanded; the project of a directory,
//! as `lua/frugal/project.lua` finds it (the two must agree); and the private modes of what
//! frugal keeps (directories 0700, files 0600: spend per project is nobody else's business).

use std::ffi::OsString;
use std::path::{Path, PathBuf};

/// Neovim's `stdpath("data")`: `$XDG_DATA_HOME/$NVIM_APPNAME`, with `XDG_DATA_HOME`
/// defaulting to `~/.local/share` and `NVIM_APPNAME` to `nvim`. `None` without a home
/// directory.
pub fn nvim_data_home(env: impl Fn(&str) -> Option<OsString>) -> Option<PathBuf> {
    let set = |k: &str| env(k).filter(|v| !v.is_empty());
    let base = match set("XDG_DATA_HOME").map(PathBuf::from) {
        Some(p) if p.is_absolute() => p,
        _ => PathBuf::from(set("HOME")?).join(".local").join("share"),
    };
    let app = set("NVIM_APPNAME").unwrap_or_else(|| "nvim".into());
    Some(base.join(app))
}

/// The default `data_dir`: `stdpath("data") .. "/frugal"`.
pub fn default_data_dir(env: impl Fn(&str) -> Option<OsString>) -> Option<PathBuf> {
    nvim_data_home(env).map(|d| d.join("frugal"))
}

/// A path as written in `setup()`: a leading `~` is the home directory (`HOME`), `$NAME` and
/// `${NAME}` are environment variables, and the result must be absolute. A relative path would
/// name another directory in every working directory (a ledger per folder, each spending the
/// full cap), so it is refused, as is a variable that is unset or empty. The error is the rest
/// of "setup key data_dir …".
pub fn expand(given: &str, env: impl Fn(&str) -> Option<OsString>) -> Result<PathBuf, String> {
    let var = |name: &str| -> Result<OsString, String> {
        match env(name) {
            Some(v) if !v.is_empty() => Ok(v),
            Some(_) => Err(format!("uses ${name}, which is empty")),
            None => Err(format!("uses ${name}, which is not set")),
        }
    };
    let mut out = OsString::new();
    let mut rest = given;
    if let Some(after) = rest.strip_prefix('~') {
        if !(after.is_empty() || after.starts_with('/')) {
            return Err(format!(
                "must start with ~/ or / (~user is not supported: write the full path), got {given:?}"
            ));
        }
        match env("HOME").filter(|h| !h.is_empty()) {
            Some(home) => out.push(home),
            None => return Err("starts with ~, but HOME is not set".into()),
        }
        rest = after;
    }
    while let Some(i) = rest.find('$') {
        out.push(&rest[..i]);
        let after = &rest[i + 1..];
        let (name, next) = if let Some(braced) = after.strip_prefix('{') {
            let Some(end) = braced.find('}') else {
                return Err(format!("has an unclosed ${{ in {given:?}"));
            };
            (&braced[..end], &braced[end + 1..])
        } else {
            let end = after
                .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                .unwrap_or(after.len());
            (&after[..end], &after[end..])
        };
        let valid = name
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
            && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
        if !valid {
            return Err(format!(
                "has a $ that starts no variable name ($NAME or ${{NAME}}) in {given:?}"
            ));
        }
        out.push(var(name)?);
        rest = next;
    }
    out.push(rest);
    let path = PathBuf::from(out);
    if !path.is_absolute() {
        return Err(format!(
            "must be an absolute path (~ and $VARIABLES are expanded), got {given:?}: a relative one would mean another directory, and another ledger, in every working directory"
        ));
    }
    Ok(path)
}

/// The project of a directory: where its spend counts and whose `.frugal.toml` applies.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProjectDirs {
    /// The ledger's project key: the git root, or, for a git worktree, the root of its main
    /// repository (so the worktrees of one repository share its caps); else the directory.
    pub root: PathBuf,
    /// The checkout the directory is in (its git root, or the directory): its `.frugal.toml`
    /// is the project file, read and trusted per path.
    pub checkout: PathBuf,
}

/// The project of `dir` (symlinks resolved first): the nearest ancestor (or `dir`) holding a
/// `.git` entry, else `dir`; a git worktree (a `.git` file whose git directory has a
/// `commondir`) counts under its main repository. A submodule (a `.git` file without
/// `commondir`) stays a project of its own.
pub fn project_dirs(dir: &Path) -> std::io::Result<ProjectDirs> {
    let dir = dir.canonicalize()?;
    let checkout = dir
        .ancestors()
        .find(|d| d.join(".git").symlink_metadata().is_ok())
        .map(Path::to_path_buf)
        .unwrap_or(dir);
    let root = main_repository(&checkout).unwrap_or_else(|| checkout.clone());
    Ok(ProjectDirs { root, checkout })
}

/// The project of a buffer's file, as the shim asks for it: [`project_dirs`] of its
/// directory; for a directory that does not exist (yet), the nearest ancestor holding a `.git`
/// entry, else the directory as written. Never fails: an unsaved buffer has a project too.
pub fn project_of_file(file: &Path) -> ProjectDirs {
    let dir = file.parent().unwrap_or(Path::new("/"));
    if let Ok(p) = project_dirs(dir) {
        return p;
    }
    let checkout = dir
        .ancestors()
        .find(|d| d.join(".git").symlink_metadata().is_ok())
        .map(|d| d.canonicalize().unwrap_or_else(|_| d.to_path_buf()))
        .unwrap_or_else(|| dir.to_path_buf());
    let root = main_repository(&checkout).unwrap_or_else(|| checkout.clone());
    ProjectDirs { root, checkout }
}

/// The project file of a checkout: `<checkout>/.frugal.toml`, read and trusted per path.
pub fn project_file(checkout: &Path) -> PathBuf {
    checkout.join(".frugal.toml")
}

/// The main repository's root of a worktree checkout, `None` for anything else. A bare
/// repository (whose common directory is not a `.git` inside a checkout) is the repository
/// directory itself.
fn main_repository(checkout: &Path) -> Option<PathBuf> {
    let dotgit = checkout.join(".git");
    if !std::fs::metadata(&dotgit).ok()?.is_file() {
        return None;
    }
    let text = std::fs::read_to_string(&dotgit).ok()?;
    let gitdir = text.lines().next()?.strip_prefix("gitdir:")?.trim();
    // A relative gitdir is relative to the checkout; join keeps an absolute one as is.
    let gitdir = checkout.join(gitdir);
    let common = std::fs::read_to_string(gitdir.join("commondir")).ok()?;
    let common = gitdir
        .join(common.lines().next()?.trim())
        .canonicalize()
        .ok()?;
    if common.file_name().is_some_and(|n| n == ".git") {
        common.parent().map(Path::to_path_buf)
    } else {
        Some(common)
    }
}

pub use crate::private::{private_dir, private_file, PRIVATE_DIR, PRIVATE_FILE};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn worktrees_count_under_their_main_repository_and_submodules_stay_apart() {
        let d = tempfile::tempdir().unwrap();
        let base = d.path().canonicalize().unwrap();
        let w = |p: &Path, text: &str| {
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(p, text).unwrap();
        };
        // The main checkout.
        let main = base.join("main");
        std::fs::create_dir_all(main.join(".git/worktrees/wt")).unwrap();
        std::fs::create_dir_all(main.join("src")).unwrap();
        let plain = project_dirs(&main.join("src")).unwrap();
        assert_eq!((plain.root, plain.checkout), (main.clone(), main.clone()));
        // A worktree, with an absolute gitdir as `git worktree add` writes it.
        let wt = base.join("wt");
        std::fs::create_dir_all(wt.join("deep")).unwrap();
        w(
            &wt.join(".git"),
            &format!("gitdir: {}\n", main.join(".git/worktrees/wt").display()),
        );
        w(&main.join(".git/worktrees/wt/commondir"), "../..\n");
        let p = project_dirs(&wt.join("deep")).unwrap();
        assert_eq!((p.root, p.checkout), (main.clone(), wt.clone()));
        // A relative gitdir (worktree.useRelativePaths).
        let rel = base.join("rel");
        std::fs::create_dir_all(&rel).unwrap();
        std::fs::create_dir_all(main.join(".git/worktrees/rel")).unwrap();
        w(&rel.join(".git"), "gitdir: ../main/.git/worktrees/rel\n");
        w(&main.join(".git/worktrees/rel/commondir"), "../..\n");
        assert_eq!(project_dirs(&rel).unwrap().root, main);
        // A submodule: a .git file without commondir.
        let sub = main.join("vendor/lib");
        std::fs::create_dir_all(main.join(".git/modules/lib")).unwrap();
        w(&sub.join(".git"), "gitdir: ../../.git/modules/lib\n");
        let p = project_dirs(&sub).unwrap();
        assert_eq!((p.root, p.checkout), (sub.clone(), sub.clone()));
        // A worktree of a bare repository counts under the repository directory.
        let bare = base.join("bare.git");
        std::fs::create_dir_all(bare.join("worktrees/b")).unwrap();
        w(&bare.join("worktrees/b/commondir"), "../..\n");
        let bw = base.join("bw");
        w(
            &bw.join(".git"),
            &format!("gitdir: {}\n", bare.join("worktrees/b").display()),
        );
        assert_eq!(project_dirs(&bw).unwrap().root, bare);
        // A .git file that says nothing usable: the checkout itself.
        let odd = base.join("odd");
        w(&odd.join(".git"), "not a gitdir line\n");
        assert_eq!(project_dirs(&odd).unwrap().root, odd);
        assert!(project_dirs(&base.join("missing")).is_err());
        // A buffer's file: its directory's project, or for a directory not made yet the
        // nearest checkout above it.
        assert_eq!(project_of_file(&wt.join("deep/x.py")).root, main);
        let unsaved = project_of_file(&wt.join("new/dir/x.py"));
        assert_eq!((unsaved.root, unsaved.checkout), (main.clone(), wt.clone()));
        let loose = project_of_file(&base.join("missing/x.py"));
        assert_eq!(loose.checkout, base.join("missing"));
    }

    #[test]
    fn expands_home_and_variables_and_refuses_relative_paths() {
        let env = |k: &str| match k {
            "HOME" => Some(OsString::from("/home/u")),
            "XDG_DATA_HOME" => Some(OsString::from("/data")),
            "REL" => Some(OsString::from("rel")),
            "EMPTY" => Some(OsString::new()),
            _ => None,
        };
        let ok = |s: &str| expand(s, env).unwrap_or_else(|e| panic!("{s}: {e}"));
        assert_eq!(ok("~/frugal"), PathBuf::from("/home/u/frugal"));
        assert_eq!(ok("~"), PathBuf::from("/home/u"));
        assert_eq!(ok("$XDG_DATA_HOME/frugal"), PathBuf::from("/data/frugal"));
        assert_eq!(ok("${XDG_DATA_HOME}/f"), PathBuf::from("/data/f"));
        assert_eq!(ok("${HOME}x/$REL"), PathBuf::from("/home/ux/rel"));
        assert_eq!(ok("/abs/path"), PathBuf::from("/abs/path"));
        assert_eq!(ok("/a~b/c"), PathBuf::from("/a~b/c"));
        let err = |s: &str| expand(s, env).unwrap_err();
        assert!(err("data/frugal").starts_with("must be an absolute path"));
        assert!(err("data/frugal").contains("\"data/frugal\""));
        assert!(err("").starts_with("must be an absolute path"));
        assert!(err("$REL/x").starts_with("must be an absolute path"));
        assert_eq!(err("$NOPE/x"), "uses $NOPE, which is not set");
        assert_eq!(err("${NOPE}"), "uses $NOPE, which is not set");
        assert_eq!(err("$EMPTY/x"), "uses $EMPTY, which is empty");
        assert!(err("~bob/x").contains("~user is not supported"));
        assert!(err("/a/${HOME").contains("unclosed"));
        assert!(err("/a/$/b").contains("starts no variable name"));
        assert!(err("/a/$1").contains("starts no variable name"));
        let no_home = |_: &str| None;
        assert_eq!(
            expand("~/x", no_home).unwrap_err(),
            "starts with ~, but HOME is not set"
        );
    }

    #[test]
    fn data_dir_follows_xdg_and_appname() {
        let env = |pairs: &'static [(&'static str, &'static str)]| {
            move |k: &str| {
                pairs
                    .iter()
                    .find(|(n, _)| *n == k)
                    .map(|(_, v)| OsString::from(v))
            }
        };
        assert_eq!(
            default_data_dir(env(&[("HOME", "/home/u")])),
            Some(PathBuf::from("/home/u/.local/share/nvim/frugal"))
        );
        assert_eq!(
            default_data_dir(env(&[
                ("HOME", "/home/u"),
                ("XDG_DATA_HOME", "/data"),
                ("NVIM_APPNAME", "lazyvim")
            ])),
            Some(PathBuf::from("/data/lazyvim/frugal"))
        );
        // A relative XDG_DATA_HOME is invalid per the spec and ignored, as Neovim does.
        assert_eq!(
            default_data_dir(env(&[("HOME", "/h"), ("XDG_DATA_HOME", "rel")])),
            Some(PathBuf::from("/h/.local/share/nvim/frugal"))
        );
        assert_eq!(default_data_dir(env(&[])), None);
    }
}
