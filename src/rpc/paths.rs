//! `project`: the project of a buffer's file and the `:LlmContext` paths judged against it
//! (the backend decides both; the shim shows what it answers).
//!
//! `check_path`: the accept-time check of a hunk's file. The shim never judges paths itself:
//! before it fills a buffer it created or loaded for an edit, it asks here whether the path
//! still leads where a hunk may be applied (it may have been turned into a link since the
//! proposal). Quick (a few `lstat`s), so it is served inline.

use crate::edit::files;
use crate::protocol::{
    Accepted, Answer, CheckPathArgs, PathVerdict, ProjectArgs, ProjectReply, ProtocolError,
};
use crate::settings::paths;
use std::path::Path;

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

pub(super) fn check(args: CheckPathArgs) -> Result<Answer, ProtocolError> {
    let root = files::checkout_root(&args.file);
    files::check_accept(&root, &args.path, args.new_file)
        .map(|()| Answer::Accepted(Accepted {}))
        .map_err(ProtocolError::Refused)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::Call;
    use rmpv::Value;

    fn call(file: &str, path: &str, new_file: bool) -> Result<Answer, ProtocolError> {
        let params = Value::Map(vec![
            ("file".into(), file.into()),
            ("path".into(), path.into()),
            ("new_file".into(), new_file.into()),
        ]);
        match Call::decode("check_path", params).unwrap() {
            Call::CheckPath(a) => check(a),
            other => panic!("{other:?}"),
        }
    }

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

    #[cfg(unix)]
    #[test]
    fn check_path_refuses_what_leads_into_git() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().canonicalize().unwrap();
        std::fs::create_dir_all(root.join(".git")).unwrap();
        std::os::unix::fs::symlink(".git", root.join("gitdir")).unwrap();
        let file = root.join(".frugal.toml");
        let file = file.to_str().unwrap();
        assert!(call(file, "src/new.py", true).is_ok());
        assert_eq!(
            call(file, "gitdir/commondir", true).unwrap_err(),
            ProtocolError::Refused("gitdir/commondir leads into .git".into())
        );
        // A malformed call names the method.
        let e = Call::decode("check_path", Value::Map(vec![])).unwrap_err();
        assert!(e.to_string().starts_with("check_path: malformed"), "{e}");
    }
}
