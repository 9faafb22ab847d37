//! `check_path`: the accept-time check of a hunk's file. The shim never judges paths itself:
//! before it fills a buffer it created or loaded for an edit, it asks here whether the path
//! still leads where a hunk may be applied (it may have been turned into a link since the
//! proposal). Quick (a few `lstat`s), so it is served inline.

use crate::edit::files;
use crate::protocol::{Accepted, Answer, CheckPathArgs, ProtocolError};

pub(super) fn check(args: CheckPathArgs) -> Result<Answer, ProtocolError> {
    let root = files::checkout_root(&args.file);
    files::check_accept(&root, &args.path, args.new_file)
        .map(|()| Answer::Accepted(Accepted {}))
        .map_err(ProtocolError::Refused)
}
