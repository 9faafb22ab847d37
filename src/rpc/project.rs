//! `project`: the project of a buffer's file and the `:LlmContext` paths judged against it. The
//! backend decides both (the ledger's key is what it computes, never a root the shim sends);
//! the shim only reads the project file it names, through the trust prompt, and shows what it
//! answers. Quick (a few `stat`s), so it is served inline.

use crate::edit::files;
use crate::settings::paths;
use serde::{Deserialize, Serialize};
use std::path::Path;

/// `project`'s parameters.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProjectArgs {
    /// The buffer's file, absolute.
    pub path: String,
    /// Neovim's working directory: a typed path not found under the checkout is read from it.
    #[serde(default)]
    pub cwd: Option<String>,
    /// Paths as the user typed them (a leading `~` expanded), for `:LlmContext add|remove`.
    #[serde(default)]
    pub paths: Vec<String>,
}

/// `project`'s result.
#[derive(Debug, Clone, Serialize)]
pub struct ProjectReply {
    /// The ledger's project key: the checkout, or a worktree's main repository.
    pub root: String,
    /// The checkout (git root, else the file's directory): paths are relative to it.
    pub checkout: String,
    /// `<checkout>/.frugal.toml`, the file to read through the trust prompt.
    pub file: String,
    /// `path` relative to the checkout, when it is inside.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rel: Option<String>,
    /// Each of `paths`, in order.
    pub paths: Vec<PathVerdict>,
}

/// A typed path: accepted (`rel`, relative to the checkout) or refused (`message`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PathVerdict {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rel: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

/// The project of `args.path`, its relative path, and each typed path accepted or refused.
pub(super) fn project(args: ProjectArgs) -> ProjectReply {
    let dirs = paths::project_of_file(Path::new(&args.path));
    let checkout = &dirs.checkout;
    let cwd = args.cwd.as_deref().map(Path::new);
    let paths = args
        .paths
        .iter()
        .map(|given| match files::context_path(checkout, cwd, given) {
            Ok(rel) => PathVerdict {
                rel: Some(rel),
                message: None,
            },
            Err(message) => PathVerdict {
                rel: None,
                message: Some(message),
            },
        })
        .collect();
    let file = Path::new(&args.path);
    let real = file.canonicalize().unwrap_or_else(|_| file.to_path_buf());
    let rel = real
        .strip_prefix(checkout)
        .ok()
        .filter(|r| !r.as_os_str().is_empty())
        .map(|r| r.to_string_lossy().into_owned());
    ProjectReply {
        root: dirs.root.display().to_string(),
        checkout: checkout.display().to_string(),
        file: paths::project_file(checkout).display().to_string(),
        rel,
        paths,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[cfg(unix)]
    #[test]
    fn project_names_the_root_and_judges_typed_paths() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().canonicalize().unwrap();
        std::fs::create_dir_all(root.join(".git")).unwrap();
        std::fs::create_dir_all(root.join("src")).unwrap();
        std::fs::write(root.join("src/a.lua"), "x\n").unwrap();
        let outside = tempfile::tempdir().unwrap();
        std::fs::write(outside.path().join("s.txt"), "s\n").unwrap();
        std::os::unix::fs::symlink(outside.path().join("s.txt"), root.join("link.txt")).unwrap();
        let r = project(ProjectArgs {
            path: root.join("src/a.lua").display().to_string(),
            cwd: Some(root.join("src").display().to_string()),
            paths: vec![
                "src/a.lua".into(),
                "a.lua".into(),
                "link.txt".into(),
                "src".into(),
                "gone.txt".into(),
                "../../x".into(),
            ],
        });
        assert_eq!(r.root, root.display().to_string());
        assert_eq!(r.file, root.join(".frugal.toml").display().to_string());
        assert_eq!(r.rel.as_deref(), Some("src/a.lua"));
        let said: Vec<String> = r
            .paths
            .iter()
            .map(|v| v.rel.clone().or(v.message.clone()).unwrap())
            .collect();
        assert_eq!(said[0], "src/a.lua");
        assert_eq!(said[1], "src/a.lua", "found from the working directory");
        assert!(
            said[2].starts_with("link.txt is outside the project"),
            "{}",
            said[2]
        );
        assert_eq!(said[3], "src is a directory: add its files one by one");
        assert_eq!(said[4], "gone.txt does not exist");
        assert!(
            said[5].starts_with("../../x is outside the project"),
            "{}",
            said[5]
        );
    }
}
