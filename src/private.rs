//! The modes of what frugal writes (its directories 0700, its files 0600): the ledger, the
//! catalogue cache and the bound keys hold what others on the machine must not read. A leaf:
//! the ledger, the catalogue and the settings all use it.

use std::path::Path;

/// The mode of frugal's directories.
pub const PRIVATE_DIR: u32 = 0o700;
/// The mode of frugal's files.
pub const PRIVATE_FILE: u32 = 0o600;

/// Creates `dir` (and its missing parents) as 0700, or tightens an existing one to 0700. A
/// directory that is not ours, or sticky (shared, like `/tmp`), is left as it is: a `data_dir`
/// pointed at such a place must not change it for others.
pub fn private_dir(dir: &Path) -> std::io::Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt;
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(PRIVATE_DIR)
            .create(dir)?;
        tighten(dir, PRIVATE_DIR, true)
    }
    #[cfg(not(unix))]
    std::fs::create_dir_all(dir)
}

/// Tightens an existing file of ours to 0600; nothing when it is absent or not ours.
pub fn private_file(path: &Path) -> std::io::Result<()> {
    match tighten(path, PRIVATE_FILE, false) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        r => r,
    }
}

/// Sets `mode` on `path` when it grants more than `mode` and is owned by us (a directory: and
/// not sticky).
#[cfg(unix)]
fn tighten(path: &Path, mode: u32, dir: bool) -> std::io::Result<()> {
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    let m = std::fs::metadata(path)?;
    // SAFETY: geteuid has no preconditions and cannot fail.
    let ours = m.uid() == unsafe { libc::geteuid() };
    let sticky = m.mode() & 0o1000 != 0;
    if !ours || (dir && sticky) || m.mode() & 0o777 & !mode == 0 {
        return Ok(());
    }
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
}

#[cfg(not(unix))]
fn tighten(path: &Path, _mode: u32, _dir: bool) -> std::io::Result<()> {
    std::fs::metadata(path).map(|_| ())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn private_modes_are_set_and_shared_places_left_alone() {
        use std::os::unix::fs::PermissionsExt;
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o7777;
        let set = |p: &Path, m: u32| {
            std::fs::set_permissions(p, std::fs::Permissions::from_mode(m)).unwrap()
        };
        let d = tempfile::tempdir().unwrap();
        // Created: 0700 whatever the umask.
        let new = d.path().join("a/b/frugal");
        private_dir(&new).unwrap();
        assert_eq!(mode(&new), 0o700);
        assert_eq!(mode(&d.path().join("a")), 0o700);
        // Existing and open to others: tightened.
        let old = d.path().join("old");
        std::fs::create_dir(&old).unwrap();
        set(&old, 0o755);
        private_dir(&old).unwrap();
        assert_eq!(mode(&old), 0o700);
        let f = old.join("ledger.sqlite3");
        std::fs::write(&f, "").unwrap();
        set(&f, 0o644);
        private_file(&f).unwrap();
        assert_eq!(mode(&f), 0o600);
        // Already tighter: unchanged.
        set(&f, 0o400);
        private_file(&f).unwrap();
        assert_eq!(mode(&f), 0o400);
        // Absent: nothing to do.
        private_file(&old.join("none")).unwrap();
        // A sticky, shared directory is left as it is.
        let shared = d.path().join("shared");
        std::fs::create_dir(&shared).unwrap();
        set(&shared, 0o1777);
        private_dir(&shared).unwrap();
        assert_eq!(mode(&shared), 0o1777);
    }
}
