//! `check_path`: the accept-time check of a hunk's file. The shim never judges paths itself:
//! before it fills a buffer it created or loaded for an edit, it asks here whether the path
//! still leads where a hunk may be applied (it may have been turned into a link since the
//! proposal). Quick (a few `lstat`s), so it is served inline.

use super::wire::{Accepted, Answer};
use crate::edit::files;
use crate::protocol::ProtocolError;
use serde::Deserialize;

/// `check_path`: may a hunk of `path` be applied now (asked at accept, for a buffer the shim
/// created or loaded for an edit)?
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CheckPathArgs {
    /// The project file (`<checkout>/.frugal.toml`): its directory is the path's root.
    pub file: String,
    /// Relative to the checkout's root, as the `hunk` event named it.
    pub path: String,
    /// The hunk fills a proposed new file.
    #[serde(default)]
    pub new_file: bool,
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
    use crate::rpc::wire::Call;
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
