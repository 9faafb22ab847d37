//! The files of an edit: which paths a request may read (inside the project's checkout, never
//! through `..` or a symlink leading out), reading a context file that is not open in Neovim
//! (UTF-8 text only), and which file a path in the model's answer means.
//!
//! The backend is the authority on path safety, and judges a path by where it really leads
//! ([`real_path`]), never by its spelling: the shim checks context paths too, for quick
//! messages, but whatever it sends is checked again here, and before it fills a buffer it
//! created or loaded for an edit it asks again ([`check_accept`], the `check_path` call).

use std::path::{Component, Path, PathBuf};

/// Where a path of the answer leads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// One of the request's files, by index.
    File(usize),
    /// A file that does not exist yet, inside the checkout: its path relative to the root.
    New(String),
    /// Not applied: the path as the model wrote it, and why.
    Refused { path: String, why: String },
    /// A path inside the project that names no file (and the block edits one): a label the
    /// model made up, or a file it imagined. Its path relative to the root.
    Missing(String),
}

/// One file an edit sees and may change.
#[derive(Debug, Clone)]
pub struct EditFile {
    /// Relative to the checkout's root, `/`-separated.
    pub path: String,
    /// Its buffer in Neovim, 0 when not loaded (the shim loads it for a hunk).
    pub buf: i64,
    /// The lines sent: a window of the current file, the whole of a context file.
    pub lines: Vec<String>,
    /// The buffer row of `lines[0]`.
    pub win_start: usize,
    /// Where an ambiguous match is preferred, as rows of `lines`.
    pub prefer: (usize, usize),
    /// Proposed by the answer: exists neither on disk nor in a buffer.
    pub new_file: bool,
}

impl EditFile {
    /// A file sent whole (a context file): from its first line, no place preferred over another.
    pub fn whole(path: String, buf: i64, lines: Vec<String>) -> EditFile {
        EditFile {
            prefer: (0, lines.len()),
            path,
            buf,
            lines,
            win_start: 0,
            new_file: false,
        }
    }

    /// Its size in the prompt (lines and their line ends).
    pub fn bytes(&self) -> u64 {
        self.lines.iter().map(|l| l.len() as u64 + 1).sum()
    }
}

/// The checkout's root from the project file's path (`<checkout>/.frugal.toml`), canonical.
pub fn checkout_root(project_file: &str) -> PathBuf {
    let dir = Path::new(project_file)
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_default();
    dir.canonicalize().unwrap_or(dir)
}

/// The files of an edit request: the current file first (its window), then each context file
/// once, checked to be inside the project and read (from its buffer's lines when sent, else
/// from disk). Fails with a message naming the first file that cannot be sent.
pub fn load(
    root: &Path,
    req: &crate::edit::request::EditRequest,
    limit: u64,
) -> Result<Vec<EditFile>, String> {
    let ws = req.win_start;
    let mut files = vec![EditFile {
        path: req.file.clone(),
        buf: req.buf,
        lines: req.lines.clone(),
        win_start: ws,
        prefer: (req.sel_start - ws, req.sel_end - ws),
        new_file: false,
    }];
    for c in &req.context {
        let rel = inside(root, &c.path)?;
        if files.iter().any(|f| f.path == rel) {
            continue;
        }
        let lines = match &c.lines {
            Some(lines) => lines.clone(),
            None => read_lines(root, &rel, limit)?,
        };
        files.push(EditFile::whole(rel, c.buf, lines));
    }
    Ok(files)
}

/// `path` without `.` components and with `..` folded, lexically (no file system access).
/// `None` when `..` climbs above the start.
fn fold(path: &Path) -> Option<PathBuf> {
    let mut out = PathBuf::new();
    for c in path.components() {
        match c {
            Component::CurDir => {}
            Component::ParentDir => {
                if !out.pop() {
                    return None;
                }
            }
            Component::RootDir => out.push("/"),
            Component::Prefix(p) => out.push(p.as_os_str()),
            Component::Normal(n) => out.push(n),
        }
    }
    Some(out)
}

/// The path relative to the root, with `/` separators.
fn rel_string(rel: &Path) -> String {
    rel.components()
        .filter_map(|c| match c {
            Component::Normal(n) => Some(n.to_string_lossy().into_owned()),
            _ => None,
        })
        .collect::<Vec<_>>()
        .join("/")
}

/// The file `given` (absolute, or relative to `root`) as a path relative to the checkout
/// `root` (canonical), or why it may not be read: outside the root lexically (`..`, absolute
/// elsewhere) or once symlinks are followed. A path that does not exist is checked through
/// its nearest existing ancestor.
pub fn inside(root: &Path, given: &str) -> Result<String, String> {
    let outside = || {
        format!(
            "{given} is outside the project ({}): only files of the project can be sent or changed",
            root.display()
        )
    };
    let given_path = Path::new(given);
    let joined = if given_path.is_absolute() {
        given_path.to_path_buf()
    } else {
        root.join(given_path)
    };
    let folded = fold(&joined).ok_or_else(outside)?;
    let rel = folded.strip_prefix(root).map_err(|_| outside())?;
    if rel.as_os_str().is_empty() {
        return Err(format!("{given} is the project's directory, not a file"));
    }
    // Follow symlinks: the nearest existing ancestor (the file itself when it exists) must
    // stay inside the root.
    let mut probe = folded.as_path();
    loop {
        match probe.canonicalize() {
            Ok(real) => {
                if !real.starts_with(root) {
                    return Err(format!(
                        "{given} leads outside the project through a symlink ({}): only files of the project can be sent or changed",
                        real.display()
                    ));
                }
                break;
            }
            // Something is there that cannot be followed: a symlink leading nowhere (yet).
            // Writing the path would create its target, wherever that is.
            Err(_) if probe.symlink_metadata().is_ok() => {
                return Err(format!(
                    "{given} is a symlink that leads nowhere (or cannot be followed): only files of the project can be sent or changed"
                ));
            }
            Err(_) => match probe.parent() {
                Some(p) => probe = p,
                None => return Err(outside()),
            },
        }
    }
    Ok(rel_string(rel))
}

/// A path the user typed for `:LlmContext` (absolute, relative to the checkout `root`, or, when
/// no such file is there, relative to Neovim's working directory `cwd`) as a path relative to
/// `root` (canonical), or why it cannot be a context file: outside the project (where it
/// really leads, links followed), missing, or a directory. Nothing is expanded: the shim
/// sends what was typed with only a leading `~` made home.
pub fn context_path(root: &Path, cwd: Option<&Path>, given: &str) -> Result<String, String> {
    let outside = || {
        format!(
            "{given} is outside the project ({}): only files of the project can be added",
            root.display()
        )
    };
    let typed = Path::new(given);
    let mut abs = root.join(typed);
    if !typed.is_absolute() && std::fs::metadata(&abs).is_err() {
        if let Some(cwd) = cwd {
            abs = cwd.join(typed);
        }
    }
    let real = match abs.canonicalize() {
        Ok(real) => real,
        Err(_) => {
            return match fold(&abs) {
                Some(lexical) if lexical.starts_with(root) && lexical != root => {
                    Err(format!("{given} does not exist"))
                }
                _ => Err(outside()),
            }
        }
    };
    let rel = match real.strip_prefix(root) {
        Ok(rel) if !rel.as_os_str().is_empty() => rel,
        _ => return Err(outside()),
    };
    if real.is_dir() {
        return Err(format!("{given} is a directory: add its files one by one"));
    }
    Ok(rel_string(rel))
}

/// Reads a context file that is not open in Neovim: whole lines, UTF-8 text only, at most
/// `limit` bytes. Each refusal names the file and what to do.
pub fn read_lines(root: &Path, rel: &str, limit: u64) -> Result<Vec<String>, String> {
    use std::io::Read;
    let (mut file, len) = match open_regular(&root.join(rel)) {
        Ok(opened) => opened,
        Err(Unopened::NotRegular) => {
            return Err(format!(
                "the context file {rel} is not a regular file: remove it (:LlmContext remove {rel})"
            ))
        }
        Err(Unopened::Io(e)) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(format!(
                "the context file {rel} no longer exists: remove it (:LlmContext remove {rel})"
            ))
        }
        Err(Unopened::Io(e)) => return Err(format!("the context file {rel} cannot be read: {e}")),
    };
    if len > limit {
        return Err(format!(
            "the context file {rel} is {len} bytes, more than max_context_bytes ({limit}) on its own: remove it (:LlmContext remove {rel}) or raise max_context_bytes (setup)"
        ));
    }
    // Never more than the limit in memory, whatever the file grew to since.
    let mut bytes = Vec::with_capacity(len as usize);
    (&mut file)
        .take(limit.saturating_add(1))
        .read_to_end(&mut bytes)
        .map_err(|e| format!("the context file {rel} cannot be read: {e}"))?;
    if bytes.len() as u64 > limit {
        return Err(format!(
            "the context file {rel} is more than max_context_bytes ({limit}) on its own: remove it (:LlmContext remove {rel}) or raise max_context_bytes (setup)"
        ));
    }
    text_lines(rel, bytes)
}

/// Why [`open_regular`] did not open a file.
#[derive(Debug)]
pub enum Unopened {
    Io(std::io::Error),
    /// A FIFO, a directory, a device.
    NotRegular,
}

/// Opens `path` for reading when it is a regular file: the handle and the file's size. One
/// open, then everything asked of the handle, so the path cannot turn into a FIFO between the
/// check and the read; O_NONBLOCK: opening a FIFO never waits for a writer (and changes
/// nothing for a regular file).
pub fn open_regular(path: &Path) -> Result<(std::fs::File, u64), Unopened> {
    let mut opts = std::fs::OpenOptions::new();
    opts.read(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.custom_flags(libc::O_NONBLOCK);
    }
    let file = opts.open(path).map_err(Unopened::Io)?;
    let meta = file.metadata().map_err(Unopened::Io)?;
    if !meta.is_file() {
        return Err(Unopened::NotRegular);
    }
    Ok((file, meta.len()))
}

/// A file's bytes as lines, refusing binary and non-UTF-8 content.
pub fn text_lines(rel: &str, bytes: Vec<u8>) -> Result<Vec<String>, String> {
    if bytes.contains(&0) {
        return Err(format!(
            "the context file {rel} is binary: frugal sends text only (:LlmContext remove {rel})"
        ));
    }
    let text = String::from_utf8(bytes).map_err(|e| {
        format!(
            "the context file {rel} is not valid UTF-8 (at byte {}): frugal sends UTF-8 text only (:LlmContext remove {rel})",
            e.utf8_error().valid_up_to()
        )
    })?;
    Ok(split_lines(&text))
}

/// A text's lines, without their ends (`\n`, `\r\n`); a final line end starts no line.
pub(crate) fn split_lines(text: &str) -> Vec<String> {
    let mut lines: Vec<String> = text
        .split('\n')
        .map(|l| l.strip_suffix('\r').unwrap_or(l).to_string())
        .collect();
    if lines.last().is_some_and(String::is_empty) {
        lines.pop();
    }
    lines
}

/// Which file a path written in the answer means. `paths`: the request's files relative to
/// the root (the first one the current file); `empty_search`: the block proposes a whole new
/// file. Spellings are forgiven when they lead to one file only: `./a`, `a\b`, a path
/// relative to the current file's directory, a trailing part of one file's path.
pub fn resolve(root: &Path, paths: &[String], written: &str, empty_search: bool) -> Target {
    let refused = |why: String| Target::Refused {
        path: written.to_string(),
        why,
    };
    if written.chars().any(char::is_control) {
        let shown: String = written.escape_default().collect();
        return Target::Refused {
            path: shown,
            why: "it holds control characters: not a file name; not applied".into(),
        };
    }
    let clean = written.replace('\\', "/");
    let clean = clean.trim_start_matches("./");
    let candidates = candidates(root, paths, clean);
    let mut hits: Vec<usize> = Vec::new();
    for c in &candidates {
        if let Some(i) = paths.iter().position(|p| p == c) {
            if !hits.contains(&i) {
                hits.push(i);
            }
        }
    }
    if hits.is_empty() && !clean.starts_with('/') && !clean.contains("..") {
        // A trailing part of one file's path (`a.rs` for `src/a.rs`).
        for (i, p) in paths.iter().enumerate() {
            if p.ends_with(&format!("/{clean}")) {
                hits.push(i);
            }
        }
    }
    match hits.as_slice() {
        // The current file is the one the user edits, wherever it is; another file of the
        // request is judged by where it really leads (the shim sends real paths, but the
        // backend checks what it is sent).
        [0] => return Target::File(0),
        [one] => {
            return match real_path(root, &paths[*one]) {
                Ok(_) => Target::File(*one),
                Err(why) => refused(format!("{}; not applied", why.long(root, written))),
            }
        }
        [_, _, ..] => {
            let names: Vec<&str> = hits.iter().map(|&i| paths[i].as_str()).collect();
            return refused(format!("it could mean {}: not applied", names.join(" or ")));
        }
        [] => {}
    }
    // Not a request file by its spelling: by where it really leads (relative to the root, or
    // absolute), each existing ancestor followed.
    let rel = match real_path(root, clean) {
        Ok(rel) => rel,
        Err(why) => return refused(format!("{}; not applied", why.long(root, written))),
    };
    // A request file reached another way (through a link).
    if let Some(i) = paths
        .iter()
        .position(|p| real_path(root, p).is_ok_and(|r| r == rel))
    {
        return Target::File(i);
    }
    if root.join(&rel).symlink_metadata().is_ok() {
        return refused(format!(
            "{rel} is not among this edit's files (add it with :LlmContext add {rel} or @{rel}): not applied"
        ));
    }
    if empty_search {
        if let Some(why) = not_proposable(&rel) {
            return refused(why);
        }
        return Target::New(rel);
    }
    Target::Missing(rel)
}

/// Why a path may not be written, from [`real_path`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Unwritable {
    /// A link on the way leads nowhere (or cannot be followed).
    Nowhere,
    /// `..` past what exists: it would be read by its spelling.
    DotDot,
    /// It leads out of the project, to this place.
    Outside(PathBuf),
    /// The project's directory itself.
    Root,
    /// Inside a `.git`, at this path relative to the root.
    Git(String),
}

impl Unwritable {
    /// The whole reason, naming `given` (for a block's problem and the log).
    pub fn long(&self, root: &Path, given: &str) -> String {
        match self {
            Unwritable::Nowhere => format!(
                "{given} leads through a symlink that leads nowhere (or cannot be followed)"
            ),
            Unwritable::DotDot => {
                format!("{given} climbs with .. through a directory that does not exist")
            }
            Unwritable::Outside(real) => format!(
                "{given} leads outside the project ({}) to {}",
                root.display(),
                real.display()
            ),
            Unwritable::Root => format!("{given} is the project's directory, not a file"),
            Unwritable::Git(rel) if rel == given.trim_start_matches("./") => format!(
                "{given} is inside .git: frugal never proposes or changes files there"
            ),
            Unwritable::Git(rel) => format!(
                "{given} is inside .git (it leads to {rel}): frugal never proposes or changes files there"
            ),
        }
    }

    /// A few words after `given`, for a one-line message.
    pub fn short(&self, given: &str) -> String {
        match self {
            Unwritable::Nowhere => format!("{given} leads nowhere (a broken link)"),
            Unwritable::DotDot => format!("{given} climbs with .. where nothing exists"),
            Unwritable::Outside(_) => format!("{given} leads outside the project"),
            Unwritable::Root => format!("{given} is the project's directory"),
            Unwritable::Git(_) => format!("{given} leads into .git"),
        }
    }
}

/// Where `given` (relative to `root`, or absolute) really leads, as a path relative to the
/// checkout `root` (canonical): its longest existing prefix with every link followed, then the
/// rest as written. Refused: a link leading nowhere, `..` past what exists (it would be read
/// by its spelling), anywhere outside the root, the root itself, and anything inside a `.git`
/// (the repository's, or a `.git` file or directory anywhere in the project: git reads and
/// runs what is there).
pub fn real_path(root: &Path, given: &str) -> Result<String, Unwritable> {
    let joined = root.join(given);
    let parts: Vec<Component> = joined.components().collect();
    let mut real = None;
    for k in (1..=parts.len()).rev() {
        let prefix: PathBuf = parts[..k].iter().collect();
        if prefix.symlink_metadata().is_err() {
            continue;
        }
        let mut found = prefix.canonicalize().map_err(|_| Unwritable::Nowhere)?;
        for c in &parts[k..] {
            match c {
                Component::Normal(n) => found.push(n),
                Component::CurDir => {}
                _ => return Err(Unwritable::DotDot),
            }
        }
        real = Some(found);
        break;
    }
    let real = real.ok_or_else(|| Unwritable::Outside(joined.clone()))?;
    let Ok(rel) = real.strip_prefix(root) else {
        return Err(Unwritable::Outside(real));
    };
    let rel = rel_string(rel);
    if rel.is_empty() {
        return Err(Unwritable::Root);
    }
    if rel.split('/').any(|p| p.eq_ignore_ascii_case(".git")) {
        return Err(Unwritable::Git(rel));
    }
    Ok(rel)
}

/// The accept-time check of a hunk's file (`rel`, relative to the checkout `root`), asked by
/// the shim before it fills a buffer it created or loaded for the edit: the path may have
/// been turned into a link since the proposal. As [`resolve`]: where it really leads must be
/// inside the project and outside `.git`; a new file must still not exist (a dangling link
/// there counts) and never be a budget file. The refusal is a few words naming `rel`; the
/// whole reason goes to the log.
pub fn check_accept(root: &Path, rel: &str, new_file: bool) -> Result<(), String> {
    if rel.chars().any(char::is_control) || Path::new(rel).is_absolute() {
        return Err(format!(
            "{} is not a path inside the project",
            rel.escape_default()
        ));
    }
    let real = real_path(root, rel).map_err(|why| {
        tracing::info!(path = rel, "refused at accept: {}", why.long(root, rel));
        why.short(rel)
    })?;
    if new_file {
        let there = |p: &str| root.join(p).symlink_metadata().is_ok();
        if there(rel) || there(&real) {
            return Err(format!("{rel} already exists"));
        }
        if not_proposable(&real).is_some() {
            return Err(format!("{rel} is a budget file"));
        }
    }
    Ok(())
}

/// Why a model may not propose `rel` as a new file, if it may not: nothing inside `.git`
/// (hooks, config: git runs or reads them), and no `.frugal.toml` (the budget file is the
/// user's to write; an accepted proposal and a habitual `:wa` would put the model's caps and
/// key choice on disk).
fn not_proposable(rel: &str) -> Option<String> {
    let parts: Vec<&str> = rel.split('/').collect();
    if parts.iter().any(|p| p.eq_ignore_ascii_case(".git")) {
        return Some(format!(
            "{rel} is inside .git: frugal never proposes or changes files there; not applied"
        ));
    }
    if parts
        .last()
        .is_some_and(|p| p.eq_ignore_ascii_case(".frugal.toml"))
    {
        return Some(format!(
            "{rel} is a frugal budget file: frugal never proposes one, write it yourself; not applied"
        ));
    }
    None
}

/// The root-relative paths `clean` may stand for, most likely first: as written (relative to
/// the root, or absolute inside it), then relative to the current file's directory.
fn candidates(root: &Path, paths: &[String], clean: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut push = |joined: PathBuf| {
        if let Some(f) = fold(&joined) {
            if let Ok(rel) = f.strip_prefix(root) {
                let s = rel_string(rel);
                if !s.is_empty() && !out.contains(&s) {
                    out.push(s);
                }
            }
        }
    };
    let p = Path::new(clean);
    if p.is_absolute() {
        push(p.to_path_buf());
        return out;
    }
    push(root.join(p));
    if let Some(dir) = paths.first().and_then(|f| Path::new(f).parent()) {
        push(root.join(dir).join(p));
    }
    out
}

/// A byte count as messages and the `:LlmContext` listing show it: `812 B`, `12.3 kB`.
pub fn size_text(bytes: u64) -> String {
    if bytes < 1000 {
        format!("{bytes} B")
    } else {
        format!("{:.1} kB", bytes as f64 / 1000.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tree() -> (tempfile::TempDir, PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().canonicalize().unwrap().join("proj");
        std::fs::create_dir_all(root.join("src/util")).unwrap();
        std::fs::write(root.join("src/a.rs"), "a\n").unwrap();
        std::fs::write(root.join("src/util/b.rs"), "b\n").unwrap();
        std::fs::write(root.join("other.rs"), "o\n").unwrap();
        std::fs::write(dir.path().join("secret.txt"), "s\n").unwrap();
        (dir, root)
    }

    #[test]
    fn paths_inside_the_root_only() {
        let (dir, root) = tree();
        assert_eq!(inside(&root, "src/a.rs").unwrap(), "src/a.rs");
        assert_eq!(inside(&root, "./src/../src/a.rs").unwrap(), "src/a.rs");
        let abs = root.join("src/a.rs");
        assert_eq!(inside(&root, abs.to_str().unwrap()).unwrap(), "src/a.rs");
        assert_eq!(inside(&root, "src/new/x.rs").unwrap(), "src/new/x.rs");
        let e = inside(&root, "../secret.txt").unwrap_err();
        assert!(e.starts_with("../secret.txt is outside the project"), "{e}");
        let secret = dir.path().join("secret.txt");
        let e = inside(&root, secret.to_str().unwrap()).unwrap_err();
        assert!(e.contains("outside the project"), "{e}");
        #[cfg(unix)]
        {
            std::os::unix::fs::symlink(&secret, root.join("link.txt")).unwrap();
            std::os::unix::fs::symlink(dir.path(), root.join("up")).unwrap();
            let e = inside(&root, "link.txt").unwrap_err();
            assert!(e.contains("through a symlink"), "{e}");
            let e = inside(&root, "up/new.txt").unwrap_err();
            assert!(e.contains("through a symlink"), "{e}");
        }
    }

    /// A dangling symlink in the checkout (`notes.md -> ~/.ssh/authorized_keys`, absent yet)
    /// is not a new file: accepting the proposal and writing the buffer would create its
    /// target outside the project.
    #[cfg(unix)]
    #[test]
    fn a_symlink_leading_nowhere_is_refused() {
        let (dir, root) = tree();
        let target = dir.path().join("outside/created.txt");
        std::os::unix::fs::symlink(&target, root.join("notes.md")).unwrap();
        let e = inside(&root, "notes.md").unwrap_err();
        assert!(e.contains("symlink that leads nowhere"), "{e}");
        let paths = vec!["src/a.rs".to_string()];
        assert!(
            matches!(resolve(&root, &paths, "notes.md", true), Target::Refused { why, .. } if why.contains("leads nowhere")),
            "{:?}",
            resolve(&root, &paths, "notes.md", true)
        );
        // Through a dangling directory link too.
        std::os::unix::fs::symlink(dir.path().join("nowhere"), root.join("gen")).unwrap();
        assert!(matches!(
            resolve(&root, &paths, "gen/x.rs", true),
            Target::Refused { .. }
        ));
    }

    /// New files inside `.git` or named `.frugal.toml` are never proposed.
    #[test]
    fn no_new_files_in_git_or_budget_files() {
        let (_dir, root) = tree();
        std::fs::create_dir_all(root.join(".git/hooks")).unwrap();
        let paths = vec!["src/a.rs".to_string()];
        for p in [
            ".git/hooks/pre-commit",
            ".git/info/attributes",
            "sub/.GIT/config",
            ".frugal.toml",
            "src/.frugal.toml",
        ] {
            match resolve(&root, &paths, p, true) {
                Target::Refused { path, why } => {
                    assert_eq!(path, p);
                    assert!(why.contains("never proposes"), "{why}");
                }
                t => panic!("{p}: {t:?}"),
            }
        }
        assert_eq!(
            resolve(&root, &paths, ".github/ci.yml", true),
            Target::New(".github/ci.yml".into())
        );
    }

    /// A path is judged by where it really leads: `.git` reached through a link (a committed
    /// `gitdir -> .git`, a directory link into `.git/hooks`, a file link into `.git`), a `.git`
    /// anywhere in the project, for new files and existing ones, in the request or not.
    #[cfg(unix)]
    #[test]
    fn a_path_through_a_link_into_git_is_refused() {
        use std::os::unix::fs::symlink;
        let (_dir, root) = tree();
        std::fs::create_dir_all(root.join(".git/hooks")).unwrap();
        std::fs::write(root.join(".git/config"), "[core]\n").unwrap();
        std::fs::create_dir_all(root.join("vendor/lib")).unwrap();
        std::fs::write(root.join("vendor/lib/.git"), "gitdir: x\n").unwrap();
        symlink(".git", root.join("gitdir")).unwrap();
        symlink("../.git/hooks", root.join("src/hooks")).unwrap();
        symlink("../.git/config", root.join("src/conf.rs")).unwrap();
        symlink("a.rs", root.join("src/alias.rs")).unwrap();
        let paths = vec!["src/a.rs".to_string(), "src/conf.rs".to_string()];
        let git = |t: Target, p: &str| match t {
            Target::Refused { path, why } => {
                assert_eq!(path, p);
                assert!(why.contains(".git"), "{p}: {why}");
            }
            t => panic!("{p}: {t:?}"),
        };
        for p in [
            "gitdir/commondir",
            "gitdir/hooks/pre-commit",
            "src/hooks/pre-commit",
            "./gitdir/hooks/../commondir",
            "vendor/lib/.git",
            "vendor/lib/.GIT/config",
        ] {
            git(resolve(&root, &paths, p, true), p);
        }
        // Existing files through a link: one in the request, one not.
        git(resolve(&root, &paths, "src/conf.rs", false), "src/conf.rs");
        git(
            resolve(&root, &paths, "gitdir/config", false),
            "gitdir/config",
        );
        let abs = root.join("gitdir/config");
        let abs = abs.to_str().unwrap();
        git(resolve(&root, &paths, abs, false), abs);
        // A link to a file of the request is that file.
        assert_eq!(
            resolve(&root, &paths, "src/alias.rs", false),
            Target::File(0)
        );
        // `..` past what exists is refused, not folded by its spelling.
        assert!(matches!(
            resolve(&root, &paths, "src/none/../../x.rs", true),
            Target::Refused { .. }
        ));
        // What is checked again at accept, after the proposal arrived.
        assert_eq!(check_accept(&root, "src/new.rs", true), Ok(()));
        assert_eq!(check_accept(&root, "src/a.rs", false), Ok(()));
        std::fs::create_dir_all(root.join("later")).unwrap();
        assert_eq!(check_accept(&root, "later/x.rs", true), Ok(()));
        std::fs::remove_dir(root.join("later")).unwrap();
        symlink(".git", root.join("later")).unwrap();
        let e = check_accept(&root, "later/x.rs", true).unwrap_err();
        assert!(e.contains(".git"), "{e}");
        let e = check_accept(&root, "src/a.rs", true).unwrap_err();
        assert!(e.contains("already exists"), "{e}");
        let e = check_accept(&root, "../x.rs", true).unwrap_err();
        assert_eq!(e, "../x.rs leads outside the project");
    }

    /// Answer paths with control characters are refused.
    #[test]
    fn control_characters_in_answer_paths_are_refused() {
        let (_dir, root) = tree();
        let paths = vec!["src/a.rs".to_string()];
        // A NUL makes the path a Blob in Neovim (bufadd throws); an escape has no place
        // in a name shown in a message.
        for p in ["x/..\0/y.rs", "a\u{1b}[2Jb.rs", "tab\there.rs"] {
            assert!(
                matches!(resolve(&root, &paths, p, true), Target::Refused { ref why, .. } if why.contains("control characters")),
                "{p:?}: {:?}",
                resolve(&root, &paths, p, true)
            );
        }
    }

    #[test]
    fn files_are_read_as_utf8_text_only() {
        let (_dir, root) = tree();
        assert_eq!(read_lines(&root, "src/a.rs", 100).unwrap(), ["a"]);
        std::fs::write(root.join("crlf.txt"), "x\r\ny\r\n").unwrap();
        assert_eq!(read_lines(&root, "crlf.txt", 100).unwrap(), ["x", "y"]);
        std::fs::write(root.join("bin"), b"ab\0cd").unwrap();
        assert!(read_lines(&root, "bin", 100)
            .unwrap_err()
            .contains("is binary"));
        std::fs::write(root.join("latin1.txt"), b"caf\xe9\n").unwrap();
        let e = read_lines(&root, "latin1.txt", 100).unwrap_err();
        assert!(e.contains("not valid UTF-8"), "{e}");
        let e = read_lines(&root, "gone.rs", 100).unwrap_err();
        assert!(e.contains("gone.rs no longer exists"), "{e}");
        let e = read_lines(&root, "src/a.rs", 1).unwrap_err();
        assert!(e.contains("max_context_bytes"), "{e}");
        // A FIFO in the project: refused at once, never waited on.
        #[cfg(unix)]
        {
            let fifo = std::ffi::CString::new(root.join("pipe").to_str().unwrap()).unwrap();
            // SAFETY: a valid NUL-terminated path.
            assert_eq!(unsafe { libc::mkfifo(fifo.as_ptr(), 0o600) }, 0);
            let e = read_lines(&root, "pipe", 100).unwrap_err();
            assert!(e.contains("not a regular file"), "{e}");
        }
        assert!(read_lines(&root, "src", 100)
            .unwrap_err()
            .contains("not a regular file"));
    }

    #[test]
    fn answer_paths_resolve_when_unambiguous() {
        let (_dir, root) = tree();
        let paths = vec!["src/a.rs".to_string(), "src/util/b.rs".to_string()];
        let r = |w: &str| resolve(&root, &paths, w, false);
        assert_eq!(r("src/a.rs"), Target::File(0));
        assert_eq!(r("./src/a.rs"), Target::File(0));
        assert_eq!(r("src\\util\\b.rs"), Target::File(1));
        // Relative to the current file (src/a.rs).
        assert_eq!(r("util/b.rs"), Target::File(1));
        assert_eq!(r("b.rs"), Target::File(1));
        let abs = root.join("src/a.rs");
        assert_eq!(r(abs.to_str().unwrap()), Target::File(0));
        match r("other.rs") {
            Target::Refused { path, why } => {
                assert_eq!(path, "other.rs");
                assert!(why.contains("not among this edit's files"), "{why}");
            }
            t => panic!("{t:?}"),
        }
        assert!(
            matches!(r("../secret.txt"), Target::Refused { why, .. } if why.contains("outside the project"))
        );
        assert!(
            matches!(r("/etc/passwd"), Target::Refused { why, .. } if why.contains("outside the project"))
        );
        assert_eq!(r("src/none.rs"), Target::Missing("src/none.rs".into()));
        assert_eq!(
            resolve(&root, &paths, "src/new.rs", true),
            Target::New("src/new.rs".into())
        );
        assert!(matches!(
            resolve(&root, &paths, "../new.rs", true),
            Target::Refused { .. }
        ));
        // Two files end the same way: ambiguous.
        let twins = vec![
            "main.rs".to_string(),
            "x/m.rs".to_string(),
            "y/m.rs".to_string(),
        ];
        std::fs::create_dir_all(root.join("x")).unwrap();
        assert!(matches!(
            resolve(&root, &twins, "m.rs", false),
            Target::Refused { why, .. } if why.contains("could mean x/m.rs or y/m.rs")
        ));
    }
}
