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

#[cfg(test)]
mod tests {
    use super::*;

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
