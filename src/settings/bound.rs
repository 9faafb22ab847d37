//! The key bound to a project by `:LlmKey create`: an ordinary OpenRouter key whose server-side
//! limit caps the project on every machine that uses it.
//!
//! It is kept in `data_dir/keys/` (0700), one file per project (0600), never in the project:
//! the file holds the key itself, with its OpenRouter hash, its name and the project's path.
//! A request of the project uses it unless the project's trusted `.frugal.toml` names a key of
//! `setup({ keys })` (that still wins). The key never reaches a log line, the ledger or a
//! message: only its hash (`bound:<hash>` in the ledger's `key_id`) and its name do.

use super::keys::ApiKey;
use super::paths::private_dir;
#[cfg(unix)]
use super::paths::PRIVATE_FILE;
use super::Config;
use super::Endpoint;
use crate::message::{Failure, Reason};
use std::fmt;
use std::path::{Path, PathBuf};

/// The key bound to one project.
#[derive(Clone)]
pub struct BoundKey {
    /// The project's root, as the ledger names it.
    pub project: String,
    /// OpenRouter's id of the key (`GET/PATCH /keys/{hash}`).
    pub hash: String,
    /// `frugal: <project folder name>`.
    pub name: String,
    /// OpenRouter's masked form of the key (`sk-or-v1-abc...xyz`), for display.
    pub label: String,
    pub key: ApiKey,
}

impl fmt::Debug for BoundKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BoundKey")
            .field("project", &self.project)
            .field("hash", &self.hash)
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

impl BoundKey {
    /// What the ledger records for a request through it (`requests.key_id`).
    pub fn key_id(&self) -> String {
        format!("bound:{}", self.hash)
    }

    /// The hash as shown to the user: its first 8 characters.
    pub fn short_hash(&self) -> &str {
        &self.hash[..self.hash.len().min(8)]
    }
}

/// For a request of `project`: its bound key, unless the project file names a key
/// (`key_name`), and what the ledger records as `key_id` (`bound:<hash>`, `named:<name>`, or
/// `None` for `api_key`).
///
/// Keys go only where they belong (SPEC, *Security*): a bound key only to OpenRouter (with
/// another `base_url` the project's requests use `api_key`), and `api_key` to another host only
/// when `setup()` set it: its default (`env:OPENROUTER_API_KEY`) is an OpenRouter key, so such
/// a request is refused here, before anything is sent. A named key is the user's own choice in
/// `setup({ keys })` and goes wherever `base_url` points.
pub fn for_request(
    cfg: &Config,
    project: &str,
    key_name: Option<&str>,
) -> Result<(Option<BoundKey>, Option<String>), Failure> {
    if let Some(name) = key_name {
        return Ok((None, Some(format!("named:{name}"))));
    }
    if !Endpoint::of(&cfg.base_url).is_openrouter() {
        if !cfg.api_key_set {
            return Err(Failure::new(
                Reason::Config,
                format!(
                    "refused, nothing was sent: api_key is not set in setup(), and base_url (host {}) is not OpenRouter. The default api_key (env:OPENROUTER_API_KEY) is an OpenRouter key and is never sent to another host. Set setup({{ api_key = \"env:NAME\" }}) (or \"cmd:…\") to this endpoint's key, or api_key = false for a server that takes no key",
                    host_of(&cfg.base_url)
                ),
            )
            .with_line("frugal: not sent: set api_key in setup() for this base_url".to_string()));
        }
        return Ok((None, None));
    }
    let bound = load(&cfg.data_dir, project);
    if bound.is_none() && cfg.api_key.is_none() {
        return Err(Failure::new(
            Reason::Config,
            "refused, nothing was sent: api_key = false sends no key, and base_url is OpenRouter, which needs one. Set setup({ api_key = \"env:OPENROUTER_API_KEY\" }), or bind a key to this project with :LlmKey create".into(),
        )
        .with_line("frugal: not sent: api_key = false, and OpenRouter needs a key".to_string()));
    }
    let id = bound.as_ref().map(BoundKey::key_id);
    Ok((bound, id))
}

/// Whether `project`'s requests use its bound key: bound, OpenRouter, and no key named by the
/// project file (see [`for_request`]).
pub fn in_use(cfg: &Config, project: &str, key_name: Option<&str>) -> Option<BoundKey> {
    if key_name.is_some() || !Endpoint::of(&cfg.base_url).is_openrouter() {
        return None;
    }
    load(&cfg.data_dir, project)
}

/// The host of `base_url` for a message: never its `user:password@`, path or query.
fn host_of(base_url: &str) -> String {
    reqwest::Url::parse(base_url.trim())
        .ok()
        .and_then(|u| {
            u.host_str().map(|h| match u.port() {
                Some(p) => format!("{h}:{p}"),
                None => h.to_string(),
            })
        })
        .unwrap_or_else(|| "not a URL".into())
}

/// The directory of bound keys under `data_dir`.
pub fn dir(data_dir: &Path) -> PathBuf {
    data_dir.join("keys")
}

/// The file of `project`'s bound key: named by a hash of the root (a path makes a poor file
/// name); the file repeats the root, which is checked on reading.
pub fn path(data_dir: &Path, project: &str) -> PathBuf {
    // FNV-1a, 64 bits: stable across versions and platforms (std's hasher is not).
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in project.as_bytes() {
        h ^= *b as u64;
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    dir(data_dir).join(format!("{h:016x}.json"))
}

#[derive(serde::Serialize, serde::Deserialize)]
struct Stored {
    project: String,
    hash: String,
    name: String,
    #[serde(default)]
    label: String,
    key: String,
}

/// The key bound to `project`, if any. A file that cannot be read is logged (never its
/// content) and counts as no binding.
pub fn load(data_dir: &Path, project: &str) -> Option<BoundKey> {
    let p = path(data_dir, project);
    // A keys directory of ours opened to others by hand is tightened, not ignored.
    if std::fs::symlink_metadata(dir(data_dir)).is_ok_and(|m| m.is_dir()) {
        let _ = private_dir(&dir(data_dir));
    }
    let text = match checked_dir(data_dir).and_then(|_| read_private(&p)) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return None,
        Err(e) => {
            tracing::warn!("bound key file {}: {e}", p.display());
            return None;
        }
    };
    match serde_json::from_str::<Stored>(&text) {
        Ok(s) if s.project == project && !s.key.is_empty() && !s.hash.is_empty() => {
            Some(BoundKey {
                project: s.project,
                hash: s.hash,
                name: s.name,
                label: s.label,
                key: ApiKey::new(s.key),
            })
        }
        Ok(_) => None,
        Err(_) => {
            // serde's message could quote the file: only say that it is unreadable.
            tracing::warn!("bound key file {} is unreadable: ignored", p.display());
            None
        }
    }
}

/// The keys directory, when it is a real directory (not a symlink) of this user, open to
/// no one else: whoever can write in a shared `data_dir` must neither receive a key nor
/// slip one of theirs into this project's requests.
fn checked_dir(data_dir: &Path) -> std::io::Result<PathBuf> {
    let d = dir(data_dir);
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        let m = std::fs::symlink_metadata(&d)?;
        // SAFETY: geteuid has no preconditions and cannot fail.
        let ours = m.uid() == unsafe { libc::geteuid() };
        if !m.is_dir() || !ours || m.mode() & 0o077 != 0 {
            return Err(std::io::Error::new(
                std::io::ErrorKind::PermissionDenied,
                format!(
                    "{} is not a private directory of this user (a symlink, another user's, or open to others): bound keys are neither stored nor read there",
                    d.display()
                ),
            ));
        }
    }
    Ok(d)
}

/// A key file's text: a regular file of this user, never through a symlink.
fn read_private(p: &Path) -> std::io::Result<String> {
    use std::io::Read;
    let mut opts = std::fs::OpenOptions::new();
    opts.read(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK);
    }
    // Windows: open a symlink (a reparse point) itself, never its target; it is then not a
    // regular file and refused below.
    #[cfg(windows)]
    {
        use std::os::windows::fs::OpenOptionsExt;
        opts.custom_flags(windows_sys::Win32::Storage::FileSystem::FILE_FLAG_OPEN_REPARSE_POINT);
    }
    let f = opts.open(p)?;
    let m = f.metadata()?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        // SAFETY: geteuid has no preconditions and cannot fail.
        if m.uid() != unsafe { libc::geteuid() } {
            return Err(std::io::Error::new(
                std::io::ErrorKind::PermissionDenied,
                "not owned by this user: ignored",
            ));
        }
    }
    if !m.is_file() || m.len() > 64 * 1024 {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            "not a key file (not a regular file, or too large): ignored",
        ));
    }
    let mut text = String::new();
    f.take(64 * 1024).read_to_string(&mut text)?;
    Ok(text)
}

/// Stores `key` as `project`'s bound key: a 0600 file in a 0700 directory, written whole
/// (a temporary file renamed over the old one), so a reader never sees half a key.
pub fn store(data_dir: &Path, key: &BoundKey) -> std::io::Result<PathBuf> {
    private_dir(&dir(data_dir))?;
    checked_dir(data_dir)?;
    let target = path(data_dir, &key.project);
    let tmp = target.with_extension(format!("tmp{}", std::process::id()));
    let text = serde_json::to_string(&Stored {
        project: key.project.clone(),
        hash: key.hash.clone(),
        name: key.name.clone(),
        label: key.label.clone(),
        key: key.key.expose().to_string(),
    })
    .map_err(std::io::Error::other)?;
    let _ = std::fs::remove_file(&tmp);
    {
        use std::io::Write;
        let mut opts = std::fs::OpenOptions::new();
        opts.write(true).create_new(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            opts.mode(PRIVATE_FILE);
        }
        let mut f = opts.open(&tmp)?;
        f.write_all(text.as_bytes())?;
        f.sync_all()?;
    }
    if let Err(e) = std::fs::rename(&tmp, &target) {
        let _ = std::fs::remove_file(&tmp);
        return Err(e);
    }
    Ok(target)
}

/// Unbinds `project`'s key (deletes its file); nothing when none is bound.
pub fn remove(data_dir: &Path, project: &str) -> std::io::Result<()> {
    match std::fs::remove_file(path(data_dir, project)) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        r => r,
    }
}

/// The message for a bound key that OpenRouter refused (401): disabled or deleted on
/// OpenRouter. Names the project and what to do; never the key.
pub fn refused_message(key: &BoundKey, detail: &str) -> String {
    format!(
        "OpenRouter refused the key bound to project {} by :LlmKey create ({}, hash {}…; 401: {detail}): it was disabled or deleted on OpenRouter. Run :LlmKey create to make a new one (it replaces this binding), or :LlmKey disable to go back to api_key. Nothing was charged",
        key.project,
        key.name,
        key.short_hash()
    )
}

/// The same, for `GET /key` (`:LlmUsage`): nothing was being charged.
pub fn deleted_message(key: &BoundKey) -> String {
    format!(
        "OpenRouter refused the key bound to project {} by :LlmKey create ({}, hash {}…; 401): it was disabled or deleted on OpenRouter, and this project's next request will fail. Run :LlmKey create to make a new one (it replaces this binding), or :LlmKey disable to go back to api_key",
        key.project,
        key.name,
        key.short_hash()
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::settings::KeySpec;

    fn key(project: &str) -> BoundKey {
        BoundKey {
            project: project.into(),
            hash: "abcdef0123456789".into(),
            name: "frugal: p".into(),
            label: "sk-or-v1-abc...xyz".into(),
            key: ApiKey::new("sk-or-v1-BOUNDSECRET".into()),
        }
    }

    #[test]
    fn stored_private_loaded_per_project_and_removed() {
        use std::os::unix::fs::PermissionsExt;
        let d = tempfile::tempdir().unwrap();
        assert!(load(d.path(), "/p").is_none());
        let file = store(d.path(), &key("/p")).unwrap();
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&file), 0o600);
        assert_eq!(mode(&dir(d.path())), 0o700);
        let k = load(d.path(), "/p").unwrap();
        assert_eq!(k.key.expose(), "sk-or-v1-BOUNDSECRET");
        assert_eq!(k.key_id(), "bound:abcdef0123456789");
        assert_eq!(k.short_hash(), "abcdef01");
        assert!(!format!("{k:?}").contains("SECRET"));
        assert!(load(d.path(), "/q").is_none());
        // Overwritten whole.
        let mut k2 = key("/p");
        k2.hash = "ffff".into();
        store(d.path(), &k2).unwrap();
        assert_eq!(load(d.path(), "/p").unwrap().hash, "ffff");
        assert_eq!(std::fs::read_dir(dir(d.path())).unwrap().count(), 1);
        // A request: the bound key unless the project file names one.
        let cfg = Config {
            data_dir: d.path().to_path_buf(),
            ..Config::default()
        };
        let (b, id) = for_request(&cfg, "/p", None).unwrap();
        assert_eq!(b.map(|b| b.hash), Some("ffff".to_string()));
        assert_eq!(id.as_deref(), Some("bound:ffff"));
        let (b, id) = for_request(&cfg, "/p", Some("client")).unwrap();
        assert!(b.is_none());
        assert_eq!(id.as_deref(), Some("named:client"));
        assert_eq!(for_request(&cfg, "/q", None).unwrap().1, None);
        remove(d.path(), "/p").unwrap();
        assert!(load(d.path(), "/p").is_none());
        remove(d.path(), "/p").unwrap();
        assert!(!refused_message(&k, "x").contains("SECRET"));
    }

    /// A bound key goes to OpenRouter only; the default `api_key` never goes to another host;
    /// `api_key = false` is no key, which OpenRouter refuses.
    #[test]
    fn keys_go_only_where_they_belong() {
        let d = tempfile::tempdir().unwrap();
        store(d.path(), &key("/p")).unwrap();
        let at = |base_url: &str, api_key: Option<KeySpec>| Config {
            data_dir: d.path().to_path_buf(),
            base_url: base_url.into(),
            api_key_set: api_key.is_some(),
            api_key: api_key.unwrap_or_else(|| Config::default().api_key),
            ..Config::default()
        };
        let plain = "http://user:pw@127.0.0.1:8080/v1?x=1";
        let or = "https://openrouter.ai/api/v1";
        // OpenRouter: the bound key, whatever api_key is.
        for api_key in [None, Some(KeySpec::none())] {
            let (b, id) = for_request(&at(or, api_key), "/p", None).unwrap();
            assert_eq!(b.unwrap().hash, "abcdef0123456789");
            assert_eq!(id.as_deref(), Some("bound:abcdef0123456789"));
        }
        assert!(in_use(&at(or, None), "/p", None).is_some());
        // A plain endpoint: never the bound key; api_key only when set.
        let env = KeySpec("env:LOCAL_KEY".into());
        for api_key in [env.clone(), KeySpec::none()] {
            let cfg = at(plain, Some(api_key));
            let (b, id) = for_request(&cfg, "/p", None).unwrap();
            assert!(b.is_none() && id.is_none());
            assert!(in_use(&cfg, "/p", None).is_none());
        }
        let f = for_request(&at(plain, None), "/p", None).unwrap_err();
        assert_eq!(f.reason, Reason::Config);
        assert!(
            f.message.contains("api_key is not set in setup()"),
            "{}",
            f.message
        );
        assert!(f.message.contains("host 127.0.0.1:8080)"), "{}", f.message);
        assert!(
            !f.message.contains("pw") && !f.message.contains("x=1"),
            "{}",
            f.message
        );
        let line = f.line.unwrap();
        assert!(
            line.starts_with("frugal: ") && line.chars().count() <= 68,
            "{line}"
        );
        // A named key is the user's choice: anywhere.
        let (b, id) = for_request(&at(plain, None), "/p", Some("client")).unwrap();
        assert!(b.is_none());
        assert_eq!(id.as_deref(), Some("named:client"));
        // No key and no bound key on OpenRouter: refused before anything is sent.
        let f = for_request(&at(or, Some(KeySpec::none())), "/q", None).unwrap_err();
        assert!(f.message.contains("api_key = false"), "{}", f.message);
        assert!(f.line.unwrap().chars().count() <= 68);
    }

    /// Whoever can write in `data_dir` (a shared or world-writable one) must not get a key
    /// stored in their directory, nor have one of theirs used for this project's requests.
    #[cfg(unix)]
    #[test]
    fn symlinks_are_never_followed_to_or_from_a_key() {
        let d = tempfile::tempdir().unwrap();
        let data = d.path().join("data");
        let elsewhere = d.path().join("elsewhere");
        std::fs::create_dir_all(&data).unwrap();
        std::fs::create_dir_all(&elsewhere).unwrap();
        // A planted `keys` directory link: nothing stored through it, nothing read.
        std::os::unix::fs::symlink(&elsewhere, dir(&data)).unwrap();
        let e = store(&data, &key("/p")).unwrap_err();
        assert!(e.to_string().contains("not a private directory"), "{e}");
        assert_eq!(std::fs::read_dir(&elsewhere).unwrap().count(), 0);
        let file = path(&data, "/p");
        let name = file.file_name().unwrap();
        let text = r#"{"project":"/p","hash":"evil","name":"n","key":"sk-or-v1-THEIRS"}"#;
        std::fs::write(elsewhere.join(name), text).unwrap();
        assert!(load(&data, "/p").is_none(), "read through a keys link");
        // A planted key file link inside the real directory: not read.
        std::fs::remove_file(dir(&data)).unwrap();
        store(&data, &key("/q")).unwrap();
        std::os::unix::fs::symlink(elsewhere.join(name), path(&data, "/p")).unwrap();
        assert!(load(&data, "/p").is_none(), "read through a key file link");
        // Storing replaces the link, never writes through it.
        store(&data, &key("/p")).unwrap();
        assert_eq!(std::fs::read_to_string(elsewhere.join(name)).unwrap(), text);
        assert_eq!(load(&data, "/p").unwrap().hash, "abcdef0123456789");
        // A keys directory open to others (made by hand) is tightened when read or stored.
        use std::os::unix::fs::PermissionsExt;
        let mode = || std::fs::metadata(dir(&data)).unwrap().permissions().mode() & 0o777;
        std::fs::set_permissions(dir(&data), std::fs::Permissions::from_mode(0o755)).unwrap();
        assert!(load(&data, "/p").is_some());
        assert_eq!(mode(), 0o700);
        std::fs::set_permissions(dir(&data), std::fs::Permissions::from_mode(0o755)).unwrap();
        store(&data, &key("/p")).unwrap();
        assert_eq!(mode(), 0o700);
    }
}
