//! The model catalogue (`GET /models`): prices for the pre-flight worst case, names for
//! `:LlmModel`. Cached on disk in `data_dir`: fresh for a day ([`TTL`]), then refreshed in the
//! background while it serves; past [`MAX_AGE`] (refreshes kept failing) its prices are no
//! longer trusted under a cap (the gate refuses, saying how old it is and why).

use crate::budget::money::{CachePrice, MoneyError, Price, Usd};
use serde::Deserialize;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

/// How long a cached catalogue is fresh; a stale one is still used while a refresh runs.
pub const TTL: Duration = Duration::from_secs(24 * 3600);

/// How long cached prices are trusted under a cap when every refresh fails: a week. Prices
/// change rarely, and a week offline is a holiday, not a habit; past it a promotion that ended
/// or a new price could make the bound wrong, so a cap refuses instead of guessing. A
/// catalogue this old is fetched before use, not in the background.
pub const MAX_AGE: Duration = Duration::from_secs(7 * 24 * 3600);

#[derive(Debug, Clone)]
pub struct ModelInfo {
    pub id: String,
    pub name: String,
    pub context_length: Option<u64>,
    /// The price the worst case is computed with: per prompt token the higher of `prompt` and
    /// `input_cache_write` (a provider may write the prompt to its cache), per answer token the
    /// higher of `completion` and `internal_reasoning`. `None` when the catalogue gives no
    /// usable price (missing, or `-1`: variable).
    pub price: Option<Price>,
    /// The plain `prompt` / `completion` / `request` prices: what `provider.max_price` allows
    /// and what the picker shows.
    pub list_price: Option<Price>,
    pub max_completion_tokens: Option<u64>,
    /// The list prompt price beside `input_cache_read`, when the catalogue gives both: what
    /// cached prompt tokens saved.
    pub cache_price: Option<CachePrice>,
    /// The request parameters some provider of the model honours (`response_format`,
    /// `structured_outputs`, `tools`, …): whether a request may ask for more than text.
    pub supported_parameters: Vec<String>,
    /// `expiration_date`: the day the model leaves the catalogue, when announced.
    pub expires: Option<jiff::civil::Date>,
}

/// The UTC calendar day of `now` (the catalogue's dates are UTC days).
pub fn utc_date(now: SystemTime) -> jiff::civil::Date {
    jiff::Timestamp::try_from(now)
        .unwrap_or(jiff::Timestamp::UNIX_EPOCH)
        .to_zoned(jiff::tz::TimeZone::UTC)
        .date()
}

/// A model leaving within this many days is named in a warning at the first edit of a session.
pub const LEAVING_WITHIN_DAYS: i64 = 30;

impl ModelInfo {
    /// Whether the model takes `response_format` with a JSON schema (its catalogue entry lists
    /// `structured_outputs` or `response_format`).
    pub fn structured_outputs(&self) -> bool {
        self.supported_parameters
            .iter()
            .any(|p| p == "structured_outputs" || p == "response_format")
    }

    /// Whether the model leaves within [`LEAVING_WITHIN_DAYS`] of `today` (or should have).
    pub fn leaving_by(&self, today: jiff::civil::Date) -> bool {
        self.expires
            .is_some_and(|d| i64::from((d - today).get_days()) <= LEAVING_WITHIN_DAYS)
    }
}

#[derive(Debug, Clone, Default)]
pub struct Catalogue {
    pub models: Vec<ModelInfo>,
    /// When the catalogue was fetched.
    pub fetched: Option<SystemTime>,
}

#[derive(Deserialize)]
struct Body {
    data: Vec<RawModel>,
}

#[derive(Deserialize)]
struct RawModel {
    id: String,
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    context_length: Option<u64>,
    #[serde(default)]
    pricing: Option<RawPricing>,
    #[serde(default)]
    top_provider: Option<RawTop>,
    #[serde(default, deserialize_with = "strings_or_nothing")]
    supported_parameters: Vec<String>,
    /// `"2025-11-30"` (a date, maybe with a time after it), or null.
    #[serde(default)]
    expiration_date: Option<serde_json::Value>,
}

/// `supported_parameters` as a list of strings: anything else (null, a wrong type, an item
/// that is not a string) reads as nothing supported rather than an unreadable catalogue.
fn strings_or_nothing<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    let v = serde_json::Value::deserialize(d)?;
    Ok(v.as_array()
        .map(|a| {
            a.iter()
                .filter_map(|x| x.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default())
}

/// The date part of `expiration_date` (`"2025-11-30"`, `"2025-11-30T00:00:00Z"`); anything
/// else is no date.
fn expiry_of(v: Option<&serde_json::Value>) -> Option<jiff::civil::Date> {
    let s = v?.as_str()?;
    s.get(..10)?.parse().ok()
}

#[derive(Deserialize)]
struct RawPricing {
    #[serde(default)]
    prompt: Option<String>,
    #[serde(default)]
    completion: Option<String>,
    #[serde(default)]
    request: Option<String>,
    #[serde(default)]
    input_cache_read: Option<String>,
    #[serde(default)]
    input_cache_write: Option<String>,
    #[serde(default)]
    internal_reasoning: Option<String>,
}

#[derive(Deserialize)]
struct RawTop {
    #[serde(default)]
    max_completion_tokens: Option<u64>,
}

fn price_of(p: &RawPricing) -> Result<Price, MoneyError> {
    let (Some(prompt), Some(completion)) = (&p.prompt, &p.completion) else {
        return Err(MoneyError::Invalid("missing price".into()));
    };
    Price::from_catalogue(prompt, completion, p.request.as_deref().unwrap_or("0"))
}

/// The list prompt price and the cache-read price, when both are known.
fn cache_price(list: Price, p: &RawPricing) -> Option<CachePrice> {
    let read = Usd::parse_decimal(p.input_cache_read.as_deref()?).ok()?;
    Some(CachePrice {
        prompt: list.prompt,
        read,
    })
}

/// The list price raised by the dearer per-token variants a request may be billed at.
fn worst_price(list: Price, p: &RawPricing) -> Price {
    let higher = |base: Usd, other: &Option<String>| {
        other
            .as_deref()
            .and_then(|o| Usd::parse_decimal(o).ok())
            .map_or(base, |o| base.max(o))
    };
    Price {
        prompt: higher(list.prompt, &p.input_cache_write),
        completion: higher(list.completion, &p.internal_reasoning),
        request: list.request,
    }
}

impl Catalogue {
    /// Parses a `/models` body. Prices are decimal strings, USD per token, read exactly.
    pub fn parse(body: &str) -> Result<Catalogue, String> {
        let body: Body =
            serde_json::from_str(body).map_err(|e| format!("unreadable model catalogue: {e}"))?;
        let models = body
            .data
            .into_iter()
            .map(|m| {
                let list_price = m.pricing.as_ref().and_then(|p| price_of(p).ok());
                let price = match (list_price, m.pricing.as_ref()) {
                    (Some(l), Some(p)) => Some(worst_price(l, p)),
                    _ => None,
                };
                let cache = match (list_price, m.pricing.as_ref()) {
                    (Some(l), Some(p)) => cache_price(l, p),
                    _ => None,
                };
                (m, list_price, price, cache)
            })
            .map(|(m, list_price, price, cache_price)| ModelInfo {
                name: m.name.unwrap_or_else(|| m.id.clone()),
                cache_price,
                price,
                list_price,
                max_completion_tokens: m.top_provider.and_then(|t| t.max_completion_tokens),
                supported_parameters: m.supported_parameters,
                expires: expiry_of(m.expiration_date.as_ref()),
                context_length: m.context_length,
                id: m.id,
            })
            .collect();
        Ok(Catalogue {
            models,
            fetched: None,
        })
    }

    pub fn get(&self, id: &str) -> Option<&ModelInfo> {
        self.models.iter().find(|m| m.id == id)
    }

    /// Up to three alternatives to `id` (a model that left, or is leaving): models that are not
    /// leaving themselves within [`LEAVING_WITHIN_DAYS`] of `today`, ranked by the same vendor
    /// (the part before `/`) first, then the closest id (edit distance), then the closest
    /// price (prompt + completion per token; unpriced models last).
    pub fn alternatives(&self, id: &str, today: jiff::civil::Date) -> Vec<String> {
        let vendor = id.split('/').next().unwrap_or("");
        let price = self.get(id).and_then(|m| m.list_price);
        let per_token = |p: Price| i128::from(p.prompt.picos()) + i128::from(p.completion.picos());
        let price_gap = |m: &ModelInfo| match (price, m.list_price) {
            (Some(a), Some(b)) => (per_token(a) - per_token(b)).unsigned_abs(),
            (None, Some(_)) => 0,
            (_, None) => u128::MAX,
        };
        let mut scored: Vec<(bool, usize, u128, &str)> = self
            .models
            .iter()
            .filter(|m| m.id != id && !m.leaving_by(today))
            .map(|m| {
                let same = m.id.split('/').next() == Some(vendor);
                (
                    !same,
                    strsim::levenshtein(id, &m.id),
                    price_gap(m),
                    m.id.as_str(),
                )
            })
            .collect();
        scored.sort();
        scored
            .into_iter()
            .take(3)
            .map(|(.., id)| id.to_string())
            .collect()
    }

    /// Alternatives as of `now` (see [`Catalogue::alternatives`]).
    pub fn suggest(&self, id: &str, now: SystemTime) -> Vec<String> {
        self.alternatives(id, utc_date(now))
    }

    /// The warning for a model that leaves the catalogue within [`LEAVING_WITHIN_DAYS`] of
    /// `today` (or whose date has passed while it is still listed), with its alternatives.
    pub fn leaving_notice(&self, id: &str, today: jiff::civil::Date) -> Option<String> {
        let m = self.get(id)?;
        let date = m.expires.filter(|_| m.leaving_by(today))?;
        let days = (date - today).get_days();
        let when = match days {
            d if d < 0 => "was due to leave the catalogue".to_string(),
            0 => "leaves the catalogue today".to_string(),
            1 => "leaves the catalogue tomorrow".to_string(),
            d => format!("leaves the catalogue in {d} days"),
        };
        let alternatives = self.alternatives(id, today);
        let instead = if alternatives.is_empty() {
            String::new()
        } else {
            format!("; close alternatives: {}", alternatives.join(", "))
        };
        Some(format!(
            "model {id} {when} ({date}){instead}. Switch with :LlmModel or setup({{ model = … }})"
        ))
    }

    pub fn is_stale(&self) -> bool {
        self.fetched
            .and_then(|t| t.elapsed().ok())
            .is_none_or(|age| age > TTL)
    }

    /// How long ago it was fetched, at `now`: zero for one parsed just now (no fetch time) or
    /// one dated in the future (a clock set back).
    pub fn age(&self, now: SystemTime) -> Duration {
        self.fetched
            .and_then(|t| now.duration_since(t).ok())
            .unwrap_or_default()
    }

    /// Past [`MAX_AGE`]: fetched again before it is used.
    pub fn is_too_old(&self, now: SystemTime) -> bool {
        self.age(now) > MAX_AGE
    }

    pub fn cache_path(data_dir: &Path) -> PathBuf {
        data_dir.join("models.json")
    }

    /// Reads the disk cache (its modification time is the fetch time; one that cannot be
    /// read makes the cache as old as can be, never fresh).
    pub fn load(data_dir: &Path) -> Option<Catalogue> {
        let path = Self::cache_path(data_dir);
        let body = std::fs::read_to_string(&path).ok()?;
        let mut c = Self::parse(&body).ok()?;
        c.fetched = Some(
            std::fs::metadata(&path)
                .and_then(|m| m.modified())
                .unwrap_or(SystemTime::UNIX_EPOCH),
        );
        Some(c)
    }

    /// Writes the raw body atomically (temp file + rename), so a crash never leaves half a file;
    /// private (0600, in a 0700 directory) like everything frugal keeps.
    pub fn store(data_dir: &Path, body: &str) -> std::io::Result<()> {
        crate::private::private_dir(data_dir)?;
        let tmp = data_dir.join(format!("models.json.{}.tmp", std::process::id()));
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create(true).truncate(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, crate::private::PRIVATE_FILE);
        std::io::Write::write_all(&mut options.open(&tmp)?, body.as_bytes())?;
        crate::private::private_file(&tmp)?;
        std::fs::rename(&tmp, Self::cache_path(data_dir))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const BODY: &str = r#"{"data":[
      {"id":"anthropic/claude-sonnet-4.5","name":"Claude Sonnet 4.5","context_length":200000,
       "pricing":{"prompt":"0.000003","completion":"0.000015","request":"0","image":"0","input_cache_read":"0.0000003","input_cache_write":"0.00000375","internal_reasoning":"0"},
       "top_provider":{"context_length":200000,"max_completion_tokens":64000,"is_moderated":true},
       "supported_parameters":["max_tokens","structured_outputs"]},
      {"id":"mistralai/mistral-medium-3","pricing":{"prompt":"0.0000004","completion":"0.000002"},"supported_parameters":null},
      {"id":"openrouter/auto","pricing":{"prompt":"-1","completion":"-1"}},
      {"id":"meta-llama/llama-3.3-70b-instruct:free","pricing":{"prompt":"0","completion":"0","request":"0"}}
    ]}"#;

    #[test]
    fn parses_prices_exactly() {
        let c = Catalogue::parse(BODY).unwrap();
        let s = c.get("anthropic/claude-sonnet-4.5").unwrap();
        let p = s.list_price.unwrap();
        assert_eq!(p.prompt, Usd(3_000_000));
        assert_eq!(p.completion, Usd(15_000_000));
        assert_eq!(s.max_completion_tokens, Some(64000));
        // The worst case uses the dearer cache-write price per prompt token.
        assert_eq!(s.price.unwrap().prompt, Usd(3_750_000));
        assert_eq!(s.price.unwrap().completion, Usd(15_000_000));
        // Cache reads are priced against the list prompt price, not the worst one.
        assert_eq!(
            s.cache_price,
            Some(CachePrice {
                prompt: Usd(3_000_000),
                read: Usd(300_000)
            })
        );
        assert_eq!(
            c.get("mistralai/mistral-medium-3").unwrap().cache_price,
            None,
            "no input_cache_read"
        );
        assert_eq!(
            c.get("mistralai/mistral-medium-3")
                .unwrap()
                .price
                .unwrap()
                .prompt,
            Usd(400_000)
        );
        assert!(c.get("openrouter/auto").unwrap().price.is_none());
        assert!(s.structured_outputs());
        assert!(!c
            .get("mistralai/mistral-medium-3")
            .unwrap()
            .structured_outputs());
        assert!(!c.get("openrouter/auto").unwrap().structured_outputs());
        assert!(c
            .get("meta-llama/llama-3.3-70b-instruct:free")
            .unwrap()
            .price
            .unwrap()
            .is_free());
    }

    #[test]
    fn suggests_close_ids() {
        let c = Catalogue::parse(BODY).unwrap();
        let s = c.suggest("mistralai/mistral-large-2411", SystemTime::now());
        assert_eq!(s[0], "mistralai/mistral-medium-3");
    }

    /// Mistral Large leaving in 10 days; Mistral Small leaving too; a dear and a cheap
    /// alternative elsewhere.
    const LEAVING: &str = r#"{"data":[
      {"id":"mistralai/mistral-large-2411","pricing":{"prompt":"0.000002","completion":"0.000006"},"expiration_date":"2025-11-30"},
      {"id":"mistralai/mistral-small-2409","pricing":{"prompt":"0.0000002","completion":"0.0000006"},"expiration_date":"2025-12-01T00:00:00Z"},
      {"id":"mistralai/mistral-medium-3","pricing":{"prompt":"0.0000004","completion":"0.000002"},"expiration_date":null},
      {"id":"mistralai/codestral-2508","pricing":{"prompt":"0.0000003","completion":"0.0000009"}},
      {"id":"anthropic/claude-sonnet-4.5","pricing":{"prompt":"0.000003","completion":"0.000015"},"expiration_date":"2027-01-01"},
      {"id":"meta/llama-large","pricing":{"prompt":"0.000002","completion":"0.000006"}},
      {"id":"odd/date","pricing":{"prompt":"0","completion":"0"},"expiration_date":"soon"}
    ]}"#;

    fn day(s: &str) -> jiff::civil::Date {
        s.parse().unwrap()
    }

    #[test]
    fn a_model_leaving_within_30_days_is_named_with_alternatives_not_leaving() {
        let c = Catalogue::parse(LEAVING).unwrap();
        let today = day("2025-11-20");
        assert_eq!(
            c.get("mistralai/mistral-small-2409").unwrap().expires,
            Some(day("2025-12-01"))
        );
        assert_eq!(c.get("odd/date").unwrap().expires, None);
        // Same vendor first (not the leaving small one), then the closest id, then price.
        assert_eq!(
            c.alternatives("mistralai/mistral-large-2411", today),
            [
                "mistralai/mistral-medium-3",
                "mistralai/codestral-2508",
                "meta/llama-large"
            ]
        );
        assert_eq!(
            c.leaving_notice("mistralai/mistral-large-2411", today).unwrap(),
            "model mistralai/mistral-large-2411 leaves the catalogue in 10 days (2025-11-30); close alternatives: mistralai/mistral-medium-3, mistralai/codestral-2508, meta/llama-large. Switch with :LlmModel or setup({ model = … })"
        );
        // Past its date but still listed; 31 days ahead is not yet; no date, no notice.
        assert!(c
            .leaving_notice("mistralai/mistral-large-2411", day("2025-12-02"))
            .unwrap()
            .contains("was due to leave the catalogue (2025-11-30)"));
        assert!(c
            .leaving_notice("mistralai/mistral-large-2411", day("2025-10-30"))
            .is_none());
        assert!(c
            .leaving_notice("mistralai/mistral-large-2411", day("2025-10-31"))
            .is_some());
        assert!(c
            .leaving_notice("mistralai/mistral-medium-3", today)
            .is_none());
        assert!(c
            .leaving_notice("anthropic/claude-sonnet-4.5", today)
            .is_none());
        assert!(c.leaving_notice("nosuch/model", today).is_none());
        // A model that already left: alternatives by vendor, then name, never a leaving one.
        assert_eq!(
            c.alternatives("mistralai/mistral-large-2407", today)[0],
            "mistralai/mistral-medium-3"
        );
        assert!(!c
            .alternatives("mistralai/mistral-large-2407", today)
            .contains(&"mistralai/mistral-large-2411".to_string()));
    }

    #[test]
    fn disk_cache_round_trip() {
        let dir = tempfile::tempdir().unwrap();
        assert!(Catalogue::load(dir.path()).is_none());
        Catalogue::store(dir.path(), BODY).unwrap();
        let c = Catalogue::load(dir.path()).unwrap();
        assert_eq!(c.models.len(), 4);
        assert!(!c.is_stale());
        assert!(!c.is_too_old(SystemTime::now()));
    }

    #[test]
    fn a_cache_ages_from_its_file_time() {
        let dir = tempfile::tempdir().unwrap();
        Catalogue::store(dir.path(), BODY).unwrap();
        let day = Duration::from_secs(24 * 3600);
        let file = std::fs::File::options()
            .write(true)
            .open(Catalogue::cache_path(dir.path()))
            .unwrap();
        let now = SystemTime::now();
        file.set_modified(now - 3 * day).unwrap();
        let c = Catalogue::load(dir.path()).unwrap();
        assert!(c.is_stale());
        assert!(!c.is_too_old(now));
        assert!((c.age(now).as_secs() / 86_400) == 3);
        file.set_modified(now - 8 * day).unwrap();
        let c = Catalogue::load(dir.path()).unwrap();
        assert!(c.is_too_old(now));
        // A file dated in the future (a clock set back) is not older than now.
        file.set_modified(now + day).unwrap();
        assert_eq!(
            Catalogue::load(dir.path()).unwrap().age(now),
            Duration::ZERO
        );
        // Parsed just now: no age.
        assert_eq!(Catalogue::parse(BODY).unwrap().age(now), Duration::ZERO);
    }
}
