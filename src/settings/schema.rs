//! The settings schema, `lua/frugal/settings.json`: for each `setup()` key its default, its Lua
//! type(s), its range where one applies, where else it may be set (a `.frugal.toml` section),
//! whether only the shim uses it, and a one-line doc. Both sides read this one file: the shim
//! checks types from it (`lua/frugal/config.lua`), the backend takes defaults and ranges from it
//! ([`super::user`]). The tests below fail when `doc/frugal.txt` or the LuaCATS `frugal.Config`
//! class misses a key.
//!
//! Budget fields (`daily_usd`, …, `warn_at`, `confirm_above_usd`) are not in it: they are one
//! serde struct ([`super::project::BudgetSpec`]) read by both `setup()` and `[budget]`, and the
//! shim never looks inside a cap, so listing them here would add a copy rather than remove one.

use serde::Deserialize;
use std::collections::HashMap;
use std::sync::LazyLock;

/// The schema's text, compiled in (the shim reads the same file at run time).
pub const SCHEMA_JSON: &str = include_str!("../../lua/frugal/settings.json");

/// One setting.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Entry {
    /// `null` where the default is computed (`data_dir`, `binary`).
    pub default: serde_json::Value,
    /// The Lua types `setup()` takes, as `type()` names them, in the order warnings list them.
    #[serde(rename = "type")]
    pub types: Vec<String>,
    #[serde(default)]
    pub range: Option<Range>,
    /// Where a project file may set it too (e.g. `[budget]`); `None`: `setup()` only.
    #[serde(default)]
    pub project: Option<String>,
    /// Only Neovim uses it (`binary`, `keymaps`): never sent to the backend.
    #[serde(default)]
    pub shim_only: bool,
    pub doc: String,
}

/// The values a number may take.
#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Range {
    pub min: f64,
    pub max: f64,
    /// Whole numbers only.
    pub whole: bool,
}

impl Range {
    /// What a value out of this range must be, as the rest of "setup key X …".
    pub fn must_be(&self) -> String {
        let (min, max) = (self.min, self.max);
        match (self.whole, min == 0.0) {
            (true, true) => format!("must be a whole number from 0 to {max}"),
            (true, false) => format!("must be a whole number of at least {min} (at most {max})"),
            (false, _) => format!("must be between {min} and {max}"),
        }
    }

    pub fn contains(&self, x: f64) -> bool {
        (!self.whole || x.fract() == 0.0) && x >= self.min && x <= self.max
    }
}

/// Every setting, by key.
pub fn schema() -> &'static HashMap<String, Entry> {
    static SCHEMA: LazyLock<HashMap<String, Entry>> = LazyLock::new(|| {
        serde_json::from_str(SCHEMA_JSON).expect("lua/frugal/settings.json is a valid schema")
    });
    &SCHEMA
}

/// The entry of `key`, which the schema must hold (a typo here is a bug, caught by any test).
pub fn entry(key: &str) -> &'static Entry {
    schema()
        .get(key)
        .unwrap_or_else(|| panic!("{key} is not in lua/frugal/settings.json"))
}

/// The default of `key`.
pub fn default(key: &str) -> &'static serde_json::Value {
    &entry(key).default
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys() -> Vec<&'static str> {
        let mut k: Vec<&str> = schema().keys().map(String::as_str).collect();
        k.sort();
        k
    }

    #[test]
    fn the_schema_reads_and_every_range_is_on_a_number() {
        assert!(keys().len() >= 20, "{:?}", keys());
        for (k, e) in schema() {
            assert!(!e.types.is_empty(), "{k}");
            assert!(!e.doc.trim().is_empty(), "{k} has no doc");
            if e.range.is_some() {
                assert_eq!(e.types, ["number"], "{k}");
            }
        }
        assert!(entry("binary").shim_only && entry("keymaps").shim_only);
        assert!(entry("download_url").shim_only);
        assert!(!entry("model").shim_only);
    }

    /// `doc/frugal.txt` has an entry for every key (its name indented by two at the start of
    /// a line of the CONFIGURATION section), showing the schema's default where it is a plain
    /// value.
    #[test]
    fn every_key_is_documented_with_its_default() {
        let doc = include_str!("../../doc/frugal.txt");
        let start = doc
            .find("*frugal-config*")
            .expect("a configuration section");
        let end = doc[start..]
            .find("*frugal-commands*")
            .map_or(doc.len(), |e| start + e);
        let section = &doc[start..end];
        let mut missing = Vec::new();
        for key in keys() {
            let mut lines = section.lines().skip_while(|l| {
                !l.strip_prefix("  ")
                    .and_then(|rest| rest.strip_prefix(key))
                    .is_some_and(|rest| rest.starts_with(' ') || rest.is_empty())
            });
            let Some(first) = lines.next() else {
                missing.push(key);
                continue;
            };
            // The entry: its first line and the more indented ones after it.
            let line = std::iter::once(first)
                .chain(lines.take_while(|l| l.starts_with("   ")))
                .collect::<Vec<_>>()
                .join(" ");
            let shown = match default(key) {
                serde_json::Value::Object(m) if m.is_empty() => Some("`{}`".to_string()),
                v @ (serde_json::Value::String(_)
                | serde_json::Value::Number(_)
                | serde_json::Value::Bool(_)) => Some(format!("`{v}`")),
                _ => None,
            };
            if let Some(shown) = shown {
                assert!(
                    line.contains(&shown),
                    "doc/frugal.txt shows {key} without its default {shown}: {line:?}"
                );
            }
        }
        assert!(
            missing.is_empty(),
            "doc/frugal.txt (CONFIGURATION) misses {missing:?}"
        );
    }

    /// The LuaCATS class `frugal.Config` in `lua/frugal/config.lua` has a field for every key,
    /// and no other.
    #[test]
    fn the_luacats_config_class_has_every_key() {
        let lua = include_str!("../../lua/frugal/config.lua");
        let start = lua
            .find("---@class frugal.Config")
            .expect("a frugal.Config class");
        let fields: Vec<&str> = lua[start..]
            .lines()
            .skip(1)
            .map_while(|l| l.strip_prefix("---@field "))
            .filter_map(|l| l.split_whitespace().next())
            .collect();
        let mut missing: Vec<&str> = keys().into_iter().filter(|k| !fields.contains(k)).collect();
        missing.sort();
        assert!(missing.is_empty(), "frugal.Config misses {missing:?}");
        let extra: Vec<&&str> = fields
            .iter()
            .filter(|f| !schema().contains_key(**f))
            .collect();
        assert!(
            extra.is_empty(),
            "frugal.Config has {extra:?}, not in the schema"
        );
    }

    #[test]
    fn ranges_word_what_a_value_must_be() {
        let r = |min, max, whole| Range { min, max, whole };
        assert_eq!(
            r(0.0, 1e6, true).must_be(),
            "must be a whole number from 0 to 1000000"
        );
        assert_eq!(
            r(16.0, 4294967295.0, true).must_be(),
            "must be a whole number of at least 16 (at most 4294967295)"
        );
        assert_eq!(r(0.0, 2.0, false).must_be(), "must be between 0 and 2");
        assert!(r(1.0, 3600.0, true).contains(60.0));
        assert!(!r(1.0, 3600.0, true).contains(1.5));
        assert!(!r(1.0, 3600.0, true).contains(0.0));
        assert!(r(0.0, 2.0, false).contains(1.5));
    }
}
