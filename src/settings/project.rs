//! A project's `.frugal.toml`: read by the shim through `vim.secure.read()` (the trust prompt),
//! parsed and checked here. An untrusted file is ignored; a malformed one blocks the project's
//! requests until fixed (never a fall back to *no* caps).

use crate::budget::money::Usd;
use crate::budget::Caps;
use serde::Deserialize;

/// How the shim found the project file (`state` in the protocol: `"absent"`, `"untrusted"`,
/// `"trusted"`), and, once parsed, whether a trusted file is valid.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FileState {
    Absent,
    Untrusted,
    Trusted,
    /// Trusted but malformed: no request is sent for the project until it is fixed.
    Invalid(ConfigError),
}

impl<'de> Deserialize<'de> for FileState {
    /// Only the three states the shim can know; anything else is a malformed request.
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        match s.as_str() {
            "absent" => Ok(FileState::Absent),
            "untrusted" => Ok(FileState::Untrusted),
            "trusted" => Ok(FileState::Trusted),
            other => Err(serde::de::Error::custom(format!(
                "state must be \"absent\", \"untrusted\" or \"trusted\", got {other:?}"
            ))),
        }
    }
}

impl FileState {
    pub fn as_str(&self) -> &'static str {
        match self {
            FileState::Absent => "absent",
            FileState::Untrusted => "untrusted",
            FileState::Trusted => "trusted",
            FileState::Invalid(_) => "invalid",
        }
    }
}

/// What is wrong with a project file: the file, the line and the field when known.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct ConfigError {
    pub file: String,
    /// 1-based.
    pub line: Option<usize>,
    pub field: Option<String>,
    pub message: String,
}

impl std::fmt::Display for ConfigError {
    /// `/p/.frugal.toml line 2 (daily_usd): invalid type: string "lots", expected f64`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.file)?;
        if let Some(line) = self.line {
            write!(f, " line {line}")?;
        }
        if let Some(field) = &self.field {
            write!(f, " ({field})")?;
        }
        write!(f, ": {}", self.message)
    }
}

/// A bad `[budget]` field (shared by `.frugal.toml` and `setup()`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field} {problem}")]
pub struct CapError {
    pub field: &'static str,
    pub problem: String,
}

/// The project part of a request. The shim sends the buffer's file (`path`) and what it read
/// of the project file; the backend finds the project itself ([`super::paths::project_of_file`]):
/// the ledger key is never a root the shim names.
#[derive(Debug, Clone, Deserialize)]
#[serde(try_from = "ProjectWire")]
pub struct ProjectInput {
    /// The ledger's project key, found here from the buffer's file.
    pub root: String,
    /// The project file (`<checkout>/.frugal.toml`).
    pub file: String,
    pub state: FileState,
    /// The file's text, only when trusted.
    #[serde(default)]
    pub content: Option<String>,
    /// The shim's read-only trust lookup saw the file denied (`:trust ++deny`); for display.
    #[serde(default)]
    pub denied: bool,
}

/// The project part of a request as the shim sends it.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ProjectWire {
    /// The buffer's file (absolute).
    path: String,
    /// The project file the shim read (the `file` of the `project` call's reply).
    file: String,
    state: FileState,
    #[serde(default)]
    content: Option<String>,
    #[serde(default)]
    denied: bool,
}

impl TryFrom<ProjectWire> for ProjectInput {
    type Error = String;

    /// The project of `path`; the shim's file must be that project's file (else it read
    /// another project's, and its text must not apply here).
    fn try_from(w: ProjectWire) -> Result<Self, String> {
        let dirs = super::paths::project_of_file(std::path::Path::new(&w.path));
        let file = super::paths::project_file(&dirs.checkout);
        if file.as_os_str() != w.file.as_str() {
            return Err(format!(
                "the project file of {} is {}, not {}",
                w.path,
                file.display(),
                w.file
            ));
        }
        Ok(ProjectInput {
            root: dirs.root.display().to_string(),
            file: w.file,
            state: w.state,
            content: w.content,
            denied: w.denied,
        })
    }
}

impl ProjectInput {
    /// The settings that apply under the trust rules: a trusted file's, parsed (an error names
    /// the file, line and field); the defaults for an absent or untrusted file.
    ///
    /// A project file that is a symbolic link (or a directory, a FIFO…) is invalid whatever
    /// the shim reported (the backend looks at the file itself): trust is keyed by the real
    /// path, so a link would borrow the trust, and the named key, of the file it points to.
    pub fn settings(&self) -> Result<ProjectSettings, ConfigError> {
        refuse_special(std::path::Path::new(&self.file))?;
        match (&self.state, &self.content) {
            (FileState::Trusted, Some(text)) => parse(&self.file, text),
            (FileState::Invalid(e), _) => Err(e.clone()),
            _ => Ok(ProjectSettings::default()),
        }
    }

    /// The file's state after parsing, and the settings that apply (the defaults unless the
    /// file is trusted and valid).
    pub fn resolve(&self) -> (FileState, ProjectSettings) {
        match self.settings() {
            Ok(s) => (self.state.clone(), s),
            Err(e) => (FileState::Invalid(e), ProjectSettings::default()),
        }
    }
}

/// A `[budget]` resolved: the caps in exact dollars (`None` = no cap), as the ledger checks
/// them and the report shows them, and the fraction at which to warn.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct BudgetCaps {
    pub caps: Caps,
    /// Fraction of a cap at which to warn, in thousandths (0.8 → 800).
    pub warn_at_milli: Option<u32>,
    /// A request whose worst case is above this is sent only once the user confirms it.
    pub confirm_above: Option<Usd>,
}

impl BudgetCaps {
    /// Each field of `self` where set, else `defaults`' (a file setting only `warn_at` must
    /// not lift the user's caps). `confirm_above` is the lower of the two: asking is the
    /// careful side, and neither the file nor the user can silence the other's threshold.
    pub fn over(self, defaults: BudgetCaps) -> BudgetCaps {
        let confirm_above = match (self.confirm_above, defaults.confirm_above) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        BudgetCaps {
            caps: self.caps.over(defaults.caps),
            warn_at_milli: self.warn_at_milli.or(defaults.warn_at_milli),
            confirm_above,
        }
    }
}

/// The `[budget]` fields, as written (USD floats), shared by `.frugal.toml` and `setup()`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BudgetSpec {
    pub daily_usd: Option<f64>,
    pub monthly_usd: Option<f64>,
    pub total_usd: Option<f64>,
    pub per_request_usd: Option<f64>,
    pub warn_at: Option<f64>,
    /// Ask before sending a request whose worst case is above this (not a cap).
    pub confirm_above_usd: Option<f64>,
}

impl BudgetSpec {
    /// The fields, as written in `[budget]` and `setup({ budget })`.
    pub const FIELDS: &'static [&'static str] = &[
        "daily_usd",
        "monthly_usd",
        "total_usd",
        "per_request_usd",
        "warn_at",
        "confirm_above_usd",
    ];

    /// Exact caps. A float is read through its shortest decimal form, so `0.1` is exactly ten
    /// cents. Negative or non-finite amounts are errors naming the field.
    pub fn caps(&self) -> Result<BudgetCaps, CapError> {
        let usd = |field: &'static str, v: Option<f64>| -> Result<Option<Usd>, CapError> {
            match v {
                None => Ok(None),
                Some(x) if !x.is_finite() || x < 0.0 => Err(CapError {
                    field,
                    problem: format!("must be a positive amount of USD, got {x}"),
                }),
                Some(x) => Usd::parse_decimal(&format!("{x}"))
                    .map(Some)
                    .map_err(|e| CapError {
                        field,
                        problem: format!("is not an amount of USD: {e}"),
                    }),
            }
        };
        let warn_at_milli = match self.warn_at {
            None => None,
            Some(w) if w > 0.0 && w <= 1.0 => Some((w * 1000.0).round() as u32),
            Some(w) => {
                return Err(CapError {
                    field: "warn_at",
                    problem: format!("must be a fraction in (0, 1], got {w}"),
                })
            }
        };
        Ok(BudgetCaps {
            caps: Caps {
                daily: usd("daily_usd", self.daily_usd)?,
                monthly: usd("monthly_usd", self.monthly_usd)?,
                total: usd("total_usd", self.total_usd)?,
                per_request: usd("per_request_usd", self.per_request_usd)?,
            },
            warn_at_milli,
            confirm_above: usd("confirm_above_usd", self.confirm_above_usd)?,
        })
    }
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct ModelSection {
    default: Option<String>,
    allow: Option<Vec<String>>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct PrivacySection {
    data_collection: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct ContextSection {
    instructions: Option<Vec<String>>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileBody {
    key: Option<String>,
    budget: Option<BudgetSpec>,
    model: Option<ModelSection>,
    privacy: Option<PrivacySection>,
    context: Option<ContextSection>,
}

/// The project's settings after the trust rules.
#[derive(Debug, Clone, Default)]
pub struct ProjectSettings {
    /// `Some` when a trusted file has a `[budget]` table: it replaces the user's defaults.
    pub budget: Option<BudgetCaps>,
    pub key_name: Option<String>,
    pub default_model: Option<String>,
    pub allow: Option<Vec<String>>,
    /// `"deny"` or `"allow"`, sent as `provider.data_collection`.
    pub data_collection: Option<String>,
    /// `[context] instructions`: the project's instruction files, replacing the user's list.
    pub instructions: Option<Vec<String>>,
}

/// The top-level fields and sections, as written in the file.
const KNOWN_TOP: &[&str] = &["key", "budget", "model", "privacy", "context"];
/// How the known top level is named in messages.
const KNOWN_TOP_SHOWN: &str = "key, [budget], [model], [privacy], [context]";
/// What only `setup()` may set: named in the message when a project file tries.
const SETUP_ONLY: &[&str] = &["base_url", "api_key", "keys", "data_dir", "binary"];

/// A table's keys with where they are written.
type SpannedKeys = std::collections::BTreeMap<toml::Spanned<String>, toml::Value>;

/// The sections' keys with where they are written (a section that is not a table fails here
/// with a type error, as it would in [`FileBody`]).
#[derive(Deserialize)]
struct SectionKeys {
    budget: Option<SpannedKeys>,
    model: Option<SpannedKeys>,
    privacy: Option<SpannedKeys>,
    context: Option<SpannedKeys>,
}

/// Parses a trusted file's text. Errors name the file, the line and the field. An unknown
/// section or field anywhere makes the file invalid, exactly like a malformed value: a
/// misspelt `[budgets]` ignored would drop every cap in it.
pub fn parse(file: &str, text: &str) -> Result<ProjectSettings, ConfigError> {
    let _syntax: toml::Table = text
        .parse()
        .map_err(|e: toml::de::Error| locate(file, text, &e))?;
    check_known(file, text)?;
    let body: FileBody = toml::from_str(text).map_err(|e| locate(file, text, &e))?;
    let fail = |field: &str, message: String| ConfigError {
        file: file.to_string(),
        line: line_of(text, field),
        field: Some(field.to_string()),
        message,
    };
    let budget = match &body.budget {
        Some(b) => Some(b.caps().map_err(|e| fail(e.field, e.problem))?),
        None => None,
    };
    let (default_model, allow) = match body.model {
        Some(m) => (m.default, m.allow),
        None => (None, None),
    };
    if let Some(allow) = &allow {
        if allow.iter().any(|p| p.trim().is_empty()) {
            return Err(fail("allow", "an empty pattern matches nothing".into()));
        }
    }
    let data_collection = match body.privacy.and_then(|p| p.data_collection) {
        None => None,
        Some(v) if v == "deny" || v == "allow" => Some(v),
        Some(v) => {
            return Err(fail(
                "data_collection",
                format!("must be \"deny\" or \"allow\", got {v:?}"),
            ))
        }
    };
    let instructions = body.context.and_then(|c| c.instructions);
    if let Some(list) = &instructions {
        if let Some(i) = list
            .iter()
            .position(|p| p.trim().is_empty() || p.contains('\0'))
        {
            return Err(fail(
                "instructions",
                format!(
                    "entry {} must be a path relative to the project root",
                    i + 1
                ),
            ));
        }
    }
    Ok(ProjectSettings {
        budget,
        key_name: body.key,
        default_model,
        allow,
        data_collection,
        instructions,
    })
}

/// Refuses an unknown top-level field or section, and an unknown field inside a section, with
/// the line it is on and the closest known name.
fn check_known(file: &str, text: &str) -> Result<(), ConfigError> {
    let at = |key: &toml::Spanned<String>, message: String| ConfigError {
        file: file.to_string(),
        line: Some(
            text[..key.span().start.min(text.len())]
                .matches('\n')
                .count()
                + 1,
        ),
        field: Some(key.get_ref().clone()),
        message,
    };
    let top: SpannedKeys = toml::from_str(text).map_err(|e| locate(file, text, &e))?;
    // In the file's order: the first unknown name is the one reported.
    let mut top: Vec<_> = top.iter().collect();
    top.sort_by_key(|(k, _)| k.span().start);
    for (key, value) in top {
        let k = key.get_ref();
        if KNOWN_TOP.contains(&k.as_str()) {
            continue;
        }
        let mut message = if value.is_table() {
            format!("unknown section [{k}] (known: {KNOWN_TOP_SHOWN}")
        } else {
            format!("unknown field {k:?} (known: {KNOWN_TOP_SHOWN}")
        };
        if SETUP_ONLY.contains(&k.as_str()) {
            message.push_str(&format!(
                "; {k} can only be set in your setup(), never by a project"
            ));
        } else if let Some(near) = closest(k, KNOWN_TOP) {
            let near = if near == "key" {
                near.to_string()
            } else {
                format!("[{near}]")
            };
            message.push_str(&format!("; did you mean {near}?"));
        }
        message.push(')');
        return Err(at(key, message));
    }
    let sections: SectionKeys = toml::from_str(text).map_err(|e| locate(file, text, &e))?;
    let mut unknown: Vec<_> = [
        ("budget", &sections.budget, BudgetSpec::FIELDS),
        ("model", &sections.model, &["default", "allow"][..]),
        ("privacy", &sections.privacy, &["data_collection"][..]),
        ("context", &sections.context, &["instructions"][..]),
    ]
    .into_iter()
    .flat_map(|(name, keys, known)| {
        keys.iter()
            .flat_map(|k| k.keys())
            .filter(|k| !known.contains(&k.get_ref().as_str()))
            .map(move |k| (name, k, known))
    })
    .collect();
    unknown.sort_by_key(|(_, k, _)| k.span().start);
    if let Some((name, key, known)) = unknown.first() {
        let k = key.get_ref();
        let mut message = format!(
            "unknown field {k:?} in [{name}] (known: {}",
            known.join(", ")
        );
        if let Some(near) = closest(k, known) {
            message.push_str(&format!("; did you mean {near}?"));
        }
        message.push(')');
        return Err(at(key, message));
    }
    Ok(())
}

/// The known name closest to a misspelt one (case aside, at most two edits away).
fn closest<'a>(name: &str, known: &[&'a str]) -> Option<&'a str> {
    let lower = name.to_lowercase();
    known
        .iter()
        .map(|k| (strsim::damerau_levenshtein(&lower, k), *k))
        .filter(|(d, _)| *d <= 2)
        .min()
        .map(|(_, k)| k)
}

/// A project file must be a plain file. A symbolic link is refused (whatever it points to,
/// even nothing), because trust is keyed by the real path and a link would borrow another
/// file's trust; so is anything else that is not a regular file (a directory, a FIFO that would
/// block the reader, a device). Only the file itself is looked at (`lstat`).
pub fn refuse_special(file: &std::path::Path) -> Result<(), ConfigError> {
    let Ok(meta) = file.symlink_metadata() else {
        return Ok(());
    };
    let kind = meta.file_type();
    if kind.is_file() {
        return Ok(());
    }
    let message = if kind.is_symlink() {
        let target = std::fs::read_link(file)
            .map(|t| format!(" to {}", t.display()))
            .unwrap_or_default();
        format!(
            "is a symbolic link{target}: a project file must be a plain file, since a link \
             would borrow the trust (and the named key) of the file it points to; replace the \
             link with a file (a copy of the one you mean), then :trust it"
        )
    } else {
        let what = if kind.is_dir() {
            "a directory"
        } else {
            "not a regular file"
        };
        format!("is {what}: a project file must be a plain file; remove it or replace it with one")
    };
    Err(ConfigError {
        file: file.display().to_string(),
        line: None,
        field: None,
        message,
    })
}

/// `toml`'s error with the file name, a 1-based line and the field on that line.
fn locate(file: &str, text: &str, e: &toml::de::Error) -> ConfigError {
    let message = e.message().trim().to_string();
    let Some(span) = e.span() else {
        return ConfigError {
            file: file.to_string(),
            line: None,
            field: None,
            message,
        };
    };
    let line = text[..span.start.min(text.len())].matches('\n').count() + 1;
    let field = text
        .lines()
        .nth(line - 1)
        .and_then(|l| l.split('=').next())
        .map(|f| f.trim().trim_matches(['[', ']']).to_string())
        .filter(|f| !f.is_empty());
    ConfigError {
        file: file.to_string(),
        line: Some(line),
        field,
        message,
    }
}

/// The first line that assigns `field`, 1-based.
fn line_of(text: &str, field: &str) -> Option<usize> {
    text.lines()
        .position(|l| {
            l.trim_start()
                .strip_prefix(field)
                .is_some_and(|rest| rest.trim_start().starts_with('='))
        })
        .map(|i| i + 1)
}

/// Does `model` match one of the `allow` patterns (`*` matches any run of characters)?
pub fn allowed(model: &str, allow: &[String]) -> bool {
    allow.iter().any(|p| glob(p.trim(), model))
}

fn glob(pattern: &str, text: &str) -> bool {
    let parts: Vec<&str> = pattern.split('*').collect();
    if parts.len() == 1 {
        return pattern == text;
    }
    let mut rest = text;
    for (i, part) in parts.iter().enumerate() {
        if i == 0 {
            match rest.strip_prefix(part) {
                Some(r) => rest = r,
                None => return false,
            }
        } else if i == parts.len() - 1 {
            return rest.ends_with(part);
        } else if let Some(pos) = rest.find(part) {
            rest = &rest[pos + part.len()..];
        } else {
            return false;
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    const FULL: &str = r#"key = "client"

[budget]
daily_usd = 1.00
monthly_usd = 5.00
total_usd = 50.00
per_request_usd = 0.25
warn_at = 0.8

[model]
default = "mistralai/mistral-medium-3"
allow = ["mistralai/*", "anthropic/claude-*"]

[privacy]
data_collection = "deny"
"#;

    #[test]
    fn parses_the_spec_example() {
        let s = parse("/p/.frugal.toml", FULL).unwrap();
        let b = s.budget.unwrap();
        assert_eq!(b.caps.daily, Some(Usd::from_dollars(1)));
        assert_eq!(b.caps.per_request, Some(Usd(250_000_000_000)));
        assert_eq!(b.warn_at_milli, Some(800));
        assert_eq!(s.key_name.as_deref(), Some("client"));
        assert_eq!(
            s.default_model.as_deref(),
            Some("mistralai/mistral-medium-3")
        );
        assert_eq!(s.data_collection.as_deref(), Some("deny"));
        assert!(allowed(
            "mistralai/mistral-medium-3",
            s.allow.as_ref().unwrap()
        ));
        assert!(allowed(
            "anthropic/claude-sonnet-4.5",
            s.allow.as_ref().unwrap()
        ));
        assert!(!allowed("openai/gpt-4o", s.allow.as_ref().unwrap()));
    }

    #[test]
    fn malformed_files_name_file_line_and_field() {
        let e = parse("/p/.frugal.toml", "[budget]\ndaily_usd = \"lots\"\n")
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("/p/.frugal.toml line 2"), "{e}");
        assert!(e.contains("daily_usd"), "{e}");
        let e = parse(
            "/p/.frugal.toml",
            "[budget]\ndaily_usd = 1.0\nmonthly_usd = -3.0\n",
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("line 3") && e.contains("monthly_usd"), "{e}");
        let e = parse("/p/.frugal.toml", "[budget\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("line 1"), "{e}");
        let e = parse("/p/.frugal.toml", "[budget]\ndayly_usd = 1\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("line 2") && e.contains("dayly_usd"), "{e}");
        let e = parse(
            "/p/.frugal.toml",
            "[privacy]\ndata_collection = \"maybe\"\n",
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("line 2") && e.contains("data_collection"), "{e}");
        // confirm_above_usd is read like a cap.
        let e = parse(
            "/p/.frugal.toml",
            "[budget]\ndaily_usd = 1.0\nconfirm_above_usd = -0.5\n",
        )
        .unwrap_err()
        .to_string();
        assert_eq!(
            e,
            "/p/.frugal.toml line 3 (confirm_above_usd): must be a positive amount of USD, got -0.5"
        );
        let e = parse(
            "/p/.frugal.toml",
            "[budget]\nconfirm_above_usd = \"a lot\"\n",
        )
        .unwrap_err()
        .to_string();
        assert!(
            e.contains("line 2") && e.contains("confirm_above_usd"),
            "{e}"
        );
        let s = parse("/p/.frugal.toml", "[budget]\nconfirm_above_usd = 0.02\n").unwrap();
        assert_eq!(
            s.budget.unwrap().confirm_above,
            Some(Usd::parse_decimal("0.02").unwrap())
        );
    }

    #[test]
    fn the_context_section_replaces_the_instruction_files() {
        let s = parse(
            "/p/.frugal.toml",
            "[context]\ninstructions = [\"docs/STYLE.md\", \"AGENTS.md\"]\n",
        )
        .unwrap();
        assert_eq!(
            s.instructions.as_deref(),
            Some(&["docs/STYLE.md".to_string(), "AGENTS.md".to_string()][..])
        );
        let s = parse("/p/.frugal.toml", "[context]\ninstructions = []\n").unwrap();
        assert_eq!(s.instructions.as_deref(), Some(&[][..]), "none");
        assert_eq!(parse("/p/.frugal.toml", "").unwrap().instructions, None);
        let e = parse("/p/.frugal.toml", "[context]\n\ninstructions = [\" \"]\n").unwrap_err();
        assert_eq!(
            (e.line, e.field.as_deref()),
            (Some(3), Some("instructions"))
        );
        let e = parse(
            "/p/.frugal.toml",
            "[context]\ninstructions = \"AGENTS.md\"\n",
        )
        .unwrap_err();
        assert_eq!(e.line, Some(2), "{e}");
        let e = parse("/p/.frugal.toml", "[context]\ninstruction = []\n").unwrap_err();
        assert!(e.to_string().contains("did you mean instructions?"), "{e}");
    }

    #[test]
    fn unknown_sections_and_fields_anywhere_are_errors() {
        let err = |text: &str| parse("/p/.frugal.toml", text).unwrap_err();
        // A misspelt section would silently drop every cap in it.
        for (text, line, field) in [
            ("[budgets]\ndaily_usd = 1\n", 1, "budgets"),
            ("key = \"k\"\n\n[Budget]\ndaily_usd = 1\n", 3, "Budget"),
            ("base_url = \"http://evil\"\n", 1, "base_url"),
            (
                "[budget]\ndaily_usd = 1\n[budget.extra]\nx = 1\n",
                3,
                "extra",
            ),
            ("[model]\ndefault = \"m\"\n  allw = [\"m\"]\n", 3, "allw"),
            ("privacy.data_colection = \"deny\"\n", 1, "data_colection"),
        ] {
            let e = err(text);
            assert_eq!(e.line, Some(line), "{text:?}: {e}");
            assert_eq!(e.field.as_deref(), Some(field), "{text:?}: {e}");
            assert!(e.to_string().starts_with("/p/.frugal.toml line "), "{e}");
        }
        let e = err("[budgets]\ndaily_usd = 1\n").to_string();
        assert!(e.contains("unknown section [budgets]"), "{e}");
        assert!(e.contains("did you mean [budget]?"), "{e}");
        let e = err("[Budget]\n").to_string();
        assert!(e.contains("did you mean [budget]?"), "{e}");
        let e = err("base_url = \"http://evil\"\n").to_string();
        assert!(e.contains("unknown field \"base_url\""), "{e}");
        assert!(e.contains("only be set in your setup()"), "{e}");
        let e = err("[budget]\ndayly_usd = 1\n").to_string();
        assert!(e.contains("unknown field \"dayly_usd\" in [budget]"), "{e}");
        assert!(e.contains("did you mean daily_usd?"), "{e}");
        // The first unknown name in the file is the one named.
        let e = err("zeta = 1\nalpha = 2\n[budget]\nzz = 1\naa = 2\n");
        assert_eq!(e.field.as_deref(), Some("zeta"), "{e}");
        let e = err("[privacy]\nzz = 1\n[budget]\naa = 2\n");
        assert_eq!(e.field.as_deref(), Some("zz"), "{e}");
        // Quoted keys are the same keys.
        assert!(parse("/p/.frugal.toml", "[\"budget\"]\n\"daily_usd\" = 1\n").is_ok());
    }

    #[test]
    fn a_symlinked_project_file_is_invalid_whatever_the_shim_says() {
        let d = tempfile::tempdir().unwrap();
        let real = d.path().join("trusted.toml");
        std::fs::write(&real, "[budget]\ndaily_usd = 100\n").unwrap();
        let file = d.path().join(".frugal.toml");
        std::os::unix::fs::symlink(&real, &file).unwrap();
        for (state, content) in [
            (
                FileState::Trusted,
                Some("[budget]\ndaily_usd = 100\n".to_string()),
            ),
            (FileState::Untrusted, None),
            (FileState::Absent, None),
        ] {
            let input = ProjectInput {
                root: d.path().display().to_string(),
                file: file.display().to_string(),
                state,
                content,
                denied: false,
            };
            let (state, settings) = input.resolve();
            let FileState::Invalid(e) = state else {
                panic!("a link was taken as {state:?}")
            };
            assert!(settings.budget.is_none());
            let msg = e.to_string();
            assert!(msg.contains("symbolic link"), "{msg}");
            assert!(msg.contains("replace the link with a file"), "{msg}");
        }
        // A dangling link too: it is not "absent".
        std::fs::remove_file(&real).unwrap();
        let input = ProjectInput {
            root: d.path().display().to_string(),
            file: file.display().to_string(),
            state: FileState::Absent,
            content: None,
            denied: false,
        };
        assert!(input.settings().is_err());
        // Nor is a directory or a FIFO a project file.
        std::fs::remove_file(&file).unwrap();
        std::fs::create_dir(&file).unwrap();
        let e = input.settings().unwrap_err().to_string();
        assert!(e.contains("is a directory"), "{e}");
        std::fs::remove_dir(&file).unwrap();
        let fifo = std::ffi::CString::new(file.to_str().unwrap()).unwrap();
        // SAFETY: a valid NUL-terminated path; mkfifo only creates a file.
        assert_eq!(unsafe { libc::mkfifo(fifo.as_ptr(), 0o600) }, 0);
        let e = input.settings().unwrap_err().to_string();
        assert!(e.contains("not a regular file"), "{e}");
    }

    #[test]
    fn globs() {
        assert!(glob("a*", "abc"));
        assert!(glob("*c", "abc"));
        assert!(glob("a*c", "abc"));
        assert!(glob("a*b*c", "aXbYc"));
        assert!(!glob("a*d", "abc"));
        assert!(glob("exact", "exact"));
        assert!(!glob("exact", "exactly"));
    }
}
