//! A project's `.frugal.toml`: read by the shim through `vim.secure.read()` (the trust prompt),
//! parsed and checked here. An untrusted file is ignored; a malformed one blocks the project's
//! requests until fixed (never a fall back to *no* caps).

use crate::budget::money::Usd;
use serde::Deserialize;

/// What the shim found at the project root.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(from = "String")]
pub enum FileState {
    Absent,
    Untrusted,
    Trusted,
}

/// From the shim's string (msgpack has no enums). Anything unknown counts as untrusted: the
/// safe reading, since an untrusted file is ignored.
impl From<String> for FileState {
    fn from(s: String) -> Self {
        match s.as_str() {
            "absent" => FileState::Absent,
            "trusted" => FileState::Trusted,
            _ => FileState::Untrusted,
        }
    }
}

impl FileState {
    pub fn as_str(&self) -> &'static str {
        match self {
            FileState::Absent => "absent",
            FileState::Untrusted => "untrusted",
            FileState::Trusted => "trusted",
        }
    }
}

/// The project part of an edit request.
#[derive(Debug, Clone, Deserialize)]
pub struct ProjectInput {
    pub root: String,
    pub file: String,
    pub state: FileState,
    /// The file's text, only when trusted.
    #[serde(default)]
    pub content: Option<String>,
}

impl ProjectInput {
    /// The settings that apply under the trust rules: a trusted file's, parsed (an error names
    /// the file, line and field); the defaults for an absent or untrusted file.
    pub fn settings(&self) -> Result<ProjectSettings, String> {
        match (&self.state, &self.content) {
            (FileState::Trusted, Some(text)) => parse(&self.file, text),
            _ => Ok(ProjectSettings::default()),
        }
    }
}

/// Caps in exact dollars; `None` = no cap.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct BudgetCaps {
    pub daily: Option<Usd>,
    pub monthly: Option<Usd>,
    pub total: Option<Usd>,
    pub per_request: Option<Usd>,
    /// Fraction of a cap at which to warn, in thousandths (0.8 → 800).
    pub warn_at_milli: Option<u32>,
}

/// The caps alone, as the ledger checks them and the report shows them.
impl From<BudgetCaps> for crate::budget::Caps {
    fn from(b: BudgetCaps) -> Self {
        crate::budget::Caps {
            per_request: b.per_request,
            daily: b.daily,
            monthly: b.monthly,
            total: b.total,
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
}

impl BudgetSpec {
    /// Exact caps. A float is read through its shortest decimal form, so `0.1` is exactly ten
    /// cents. Negative or non-finite amounts are errors naming the field.
    pub fn caps(&self) -> Result<BudgetCaps, String> {
        let usd = |name: &str, v: Option<f64>| -> Result<Option<Usd>, String> {
            match v {
                None => Ok(None),
                Some(x) if !x.is_finite() || x < 0.0 => {
                    Err(format!("{name} must be a positive amount of USD, got {x}"))
                }
                Some(x) => Usd::parse_decimal(&format!("{x}"))
                    .map(Some)
                    .map_err(|e| format!("{name}: {e}")),
            }
        };
        let warn_at_milli = match self.warn_at {
            None => None,
            Some(w) if w > 0.0 && w <= 1.0 => Some((w * 1000.0).round() as u32),
            Some(w) => return Err(format!("warn_at must be a fraction in (0, 1], got {w}")),
        };
        Ok(BudgetCaps {
            daily: usd("daily_usd", self.daily_usd)?,
            monthly: usd("monthly_usd", self.monthly_usd)?,
            total: usd("total_usd", self.total_usd)?,
            per_request: usd("per_request_usd", self.per_request_usd)?,
            warn_at_milli,
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
struct FileBody {
    key: Option<String>,
    budget: Option<BudgetSpec>,
    model: Option<ModelSection>,
    privacy: Option<PrivacySection>,
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
    /// Non-fatal remarks (unknown fields).
    pub warnings: Vec<String>,
}

const KNOWN_TOP: &[&str] = &["key", "budget", "model", "privacy"];

/// Parses a trusted file's text. Errors name the file, the line and the field.
pub fn parse(file: &str, text: &str) -> Result<ProjectSettings, String> {
    let table: toml::Table = text
        .parse()
        .map_err(|e: toml::de::Error| locate(file, text, &e))?;
    let mut warnings = Vec::new();
    for key in table.keys() {
        if !KNOWN_TOP.contains(&key.as_str()) {
            warnings.push(format!(
                "{file}: unknown field {key:?} ignored (known: key, [budget], [model], [privacy])"
            ));
        }
    }
    let body: FileBody = toml::from_str(text).map_err(|e| locate(file, text, &e))?;
    let fail = |field: &str, msg: String| -> String {
        let line = line_of(text, field)
            .map(|l| format!(" line {l}"))
            .unwrap_or_default();
        format!("{file}{line}: {msg}")
    };
    let budget = match &body.budget {
        Some(b) => Some(b.caps().map_err(|m| {
            let field = m.split([' ', ':']).next().unwrap_or("budget").to_string();
            fail(&field, m)
        })?),
        None => None,
    };
    let (default_model, allow) = match body.model {
        Some(m) => (m.default, m.allow),
        None => (None, None),
    };
    if let Some(allow) = &allow {
        if allow.iter().any(|p| p.trim().is_empty()) {
            return Err(fail(
                "allow",
                "allow: an empty pattern matches nothing".into(),
            ));
        }
    }
    let data_collection = match body.privacy.and_then(|p| p.data_collection) {
        None => None,
        Some(v) if v == "deny" || v == "allow" => Some(v),
        Some(v) => {
            return Err(fail(
                "data_collection",
                format!("data_collection must be \"deny\" or \"allow\", got {v:?}"),
            ))
        }
    };
    Ok(ProjectSettings {
        budget,
        key_name: body.key,
        default_model,
        allow,
        data_collection,
        warnings,
    })
}

/// `toml`'s error with the file name and a 1-based line.
fn locate(file: &str, text: &str, e: &toml::de::Error) -> String {
    let msg = e.message().trim().to_string();
    match e.span() {
        Some(span) => {
            let line = text[..span.start.min(text.len())].matches('\n').count() + 1;
            let field = text
                .lines()
                .nth(line - 1)
                .and_then(|l| l.split('=').next())
                .map(|f| f.trim().trim_matches(['[', ']']).to_string())
                .filter(|f| !f.is_empty());
            match field {
                Some(f) => format!("{file} line {line} ({f}): {msg}"),
                None => format!("{file} line {line}: {msg}"),
            }
        }
        None => format!("{file}: {msg}"),
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
        assert_eq!(b.daily, Some(Usd::from_dollars(1)));
        assert_eq!(b.per_request, Some(Usd(250_000_000_000)));
        assert_eq!(b.warn_at_milli, Some(800));
        assert_eq!(s.key_name.as_deref(), Some("client"));
        assert_eq!(
            s.default_model.as_deref(),
            Some("mistralai/mistral-medium-3")
        );
        assert_eq!(s.data_collection.as_deref(), Some("deny"));
        assert!(s.warnings.is_empty());
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
        let e = parse("/p/.frugal.toml", "[budget]\ndaily_usd = \"lots\"\n").unwrap_err();
        assert!(e.starts_with("/p/.frugal.toml line 2"), "{e}");
        assert!(e.contains("daily_usd"), "{e}");
        let e = parse(
            "/p/.frugal.toml",
            "[budget]\ndaily_usd = 1.0\nmonthly_usd = -3.0\n",
        )
        .unwrap_err();
        assert!(e.contains("line 3") && e.contains("monthly_usd"), "{e}");
        let e = parse("/p/.frugal.toml", "[budget\n").unwrap_err();
        assert!(e.contains("line 1"), "{e}");
        let e = parse("/p/.frugal.toml", "[budget]\ndayly_usd = 1\n").unwrap_err();
        assert!(e.contains("line 2") && e.contains("dayly_usd"), "{e}");
        let e = parse(
            "/p/.frugal.toml",
            "[privacy]\ndata_collection = \"maybe\"\n",
        )
        .unwrap_err();
        assert!(e.contains("line 2") && e.contains("data_collection"), "{e}");
    }

    #[test]
    fn unknown_top_level_fields_warn() {
        let s = parse("/p/.frugal.toml", "base_url = \"http://evil\"\n").unwrap();
        assert_eq!(s.warnings.len(), 1);
        assert!(s.warnings[0].contains("base_url"));
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
