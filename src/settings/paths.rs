//! Where Neovim keeps its data, found the way Neovim finds it, for when the shim cannot say
//! (`frugal usage` at a terminal).

use std::ffi::OsString;
use std::path::PathBuf;

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

#[cfg(test)]
mod tests {
    use super::*;

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
