//! The model catalogue (`GET /models`): prices for the pre-flight worst case, names for
//! `:LlmModel`. Cached on disk in `data_dir`, one file per endpoint (`base_url`: switching
//! endpoints never prices a request from another's catalogue): fresh for a day ([`TTL`]), then
//! refreshed in the background while it serves; past [`MAX_AGE`] (refreshes kept failing) its
//! prices are no longer trusted under a cap (the gate refuses, saying how old it is and why).

use crate::budget::money::{CachePrice, MoneyError, Price, Usd, WireDecimal};
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
    /// The price the worst case is computed with: per prompt token the highest of `prompt`,
    /// `input_cache_write` and `input_cache_write_1h` (a provider may write the prompt to its
    /// cache), per answer token the higher of `completion` and `internal_reasoning`. `None`
    /// when the catalogue gives no usable price (missing, `-1`: variable, or a tier that cannot
    /// be read). The base price: a request's is [`ModelInfo::prices_for`] its prompt bound.
    pub price: Option<Price>,
    /// The plain `prompt` / `completion` / `request` prices: what the picker shows, and what
    /// `provider.max_price` allows below the first tier.
    pub list_price: Option<Price>,
    pub max_completion_tokens: Option<u64>,
    /// The list prompt price beside `input_cache_read`, when the catalogue gives both: what
    /// cached prompt tokens saved.
    pub cache_price: Option<CachePrice>,
    /// Dearer prices from a prompt size up (`pricing.overrides`), by increasing
    /// `min_prompt_tokens`: see [`ModelInfo::prices_for`].
    pub tiers: Vec<Tier>,
    /// The request parameters some provider of the model honours (`response_format`,
    /// `structured_outputs`, `tools`, …): whether a request may ask for more than text.
    pub supported_parameters: Vec<String>,
    /// `expiration_date`: the day the model leaves the catalogue, when announced.
    pub expires: Option<jiff::civil::Date>,
}

/// The prices that replace the base ones for a prompt of `min_prompt_tokens` tokens and more
/// (the catalogue's `pricing.overrides`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Tier {
    pub min_prompt_tokens: u64,
    /// The worst-case price from there (see [`ModelInfo::price`]).
    pub price: Price,
    /// The list price from there (see [`ModelInfo::list_price`]).
    pub list_price: Price,
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
    /// The worst-case price and the list price that can apply to a request of at most
    /// `prompt_bound` prompt tokens: field by field the highest of the base price and of every
    /// tier whose `min_prompt_tokens` the bound reaches (the prompt may be anywhere up to it).
    /// `None` where the base price is unknown.
    pub fn prices_for(&self, prompt_bound: u64) -> (Option<Price>, Option<Price>) {
        let reached = || {
            self.tiers
                .iter()
                .filter(move |t| t.min_prompt_tokens <= prompt_bound)
        };
        let price = self
            .price
            .map(|p| reached().fold(p, |p, t| p.max_each(t.price)));
        let list = self
            .list_price
            .map(|p| reached().fold(p, |p, t| p.max_each(t.list_price)));
        (price, list)
    }

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
    /// The endpoint it is the catalogue of ([`endpoint_key`] of its `base_url`; empty for one
    /// just parsed).
    pub endpoint: String,
}

/// What tells endpoints apart: `base_url` without surrounding blanks or trailing slashes.
pub fn endpoint_key(base_url: &str) -> String {
    base_url.trim().trim_end_matches('/').to_string()
}

/// 64-bit FNV-1a: a stable hash (the same in every build and release, unlike std's hasher) to
/// name an endpoint's cache file.
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// The cache file of an endpoint's catalogue: `models-<host>-<hash of base_url>.json`
/// (`models-openrouter.ai-1a2b3c4d5e6f7a8b.json`). The host makes it readable, the hash
/// unique per `base_url` (two paths or ports of one host are two endpoints).
pub fn cache_file_name(base_url: &str) -> String {
    let key = endpoint_key(base_url);
    let host: String = reqwest::Url::parse(&key)
        .ok()
        .and_then(|u| u.host_str().map(str::to_ascii_lowercase))
        .unwrap_or_else(|| "endpoint".into())
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || *c == '.' || *c == '-')
        .take(48)
        .collect();
    format!("models-{host}-{:016x}.json", fnv1a(key.as_bytes()))
}

/// Whether a file name in `data_dir` is a catalogue cache (any endpoint's, or the single
/// `models.json` of versions that kept one for all).
pub fn is_cache_file(name: &str) -> bool {
    name == "models.json" || (name.starts_with("models-") && name.ends_with(".json"))
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

/// Prices as the catalogue writes them (decimal strings, or numbers), read exactly. The same
/// fields make the base prices and each tier of `overrides` (where a tier leaves a field out,
/// the base one stands). `web_search` is left out: frugal asks for no web search.
#[derive(Deserialize, Default)]
struct RawPricing {
    #[serde(default)]
    prompt: Option<WireDecimal>,
    #[serde(default)]
    completion: Option<WireDecimal>,
    #[serde(default)]
    request: Option<WireDecimal>,
    #[serde(default)]
    input_cache_read: Option<WireDecimal>,
    #[serde(default)]
    input_cache_write: Option<WireDecimal>,
    #[serde(default)]
    input_cache_write_1h: Option<WireDecimal>,
    #[serde(default)]
    internal_reasoning: Option<WireDecimal>,
    /// A tier's threshold (in `overrides` only).
    #[serde(default)]
    min_prompt_tokens: Option<u64>,
    /// Tiers: a list of `{min_prompt_tokens, …prices}`, kept raw until read (one that cannot
    /// be read leaves the model without a price, never with a price too low).
    #[serde(default)]
    overrides: Option<Box<serde_json::value::RawValue>>,
}

#[derive(Deserialize)]
struct RawTop {
    #[serde(default)]
    max_completion_tokens: Option<u64>,
}

/// A model's prices: its base list price and worst-case price, what cache reads cost, and its
/// tiers.
struct Priced {
    list: Price,
    worst: Price,
    cache: Option<CachePrice>,
    tiers: Vec<Tier>,
}

/// A field of a tier, else the base's.
fn field<'a>(
    tier: Option<&'a RawPricing>,
    base: &'a RawPricing,
    f: fn(&RawPricing) -> &Option<WireDecimal>,
) -> Option<&'a WireDecimal> {
    tier.and_then(|t| f(t).as_ref()).or(f(base).as_ref())
}

/// The list and worst-case prices of the base (`tier` None) or of a tier over it.
fn prices_of(base: &RawPricing, tier: Option<&RawPricing>) -> Result<(Price, Price), MoneyError> {
    let get = |f: fn(&RawPricing) -> &Option<WireDecimal>| field(tier, base, f);
    let (Some(prompt), Some(completion)) = (get(|p| &p.prompt), get(|p| &p.completion)) else {
        return Err(MoneyError::Invalid("missing price".into()));
    };
    let list = Price {
        prompt: prompt.usd()?,
        completion: completion.usd()?,
        request: get(|p| &p.request).map_or(Ok(Usd::ZERO), WireDecimal::usd)?,
    };
    // The list price raised by the dearer per-token variants a request may be billed at: a
    // provider may write the prompt to its cache (for five minutes or for an hour), and
    // reasoning may be priced apart.
    let higher = |base: Usd, other: Option<&WireDecimal>| {
        other
            .and_then(|o| o.usd().ok())
            .map_or(base, |o| base.max(o))
    };
    let prompt = higher(
        higher(list.prompt, get(|p| &p.input_cache_write)),
        get(|p| &p.input_cache_write_1h),
    );
    let worst = Price {
        prompt,
        completion: higher(list.completion, get(|p| &p.internal_reasoning)),
        request: list.request,
    };
    Ok((list, worst))
}

fn priced(p: &RawPricing) -> Result<Priced, MoneyError> {
    let (list, worst) = prices_of(p, None)?;
    // The list prompt price beside the cache-read price, when both are known.
    let cache = p
        .input_cache_read
        .as_ref()
        .and_then(|r| r.usd().ok())
        .map(|read| CachePrice {
            prompt: list.prompt,
            read,
        });
    let mut tiers = Vec::new();
    if let Some(raw) = &p.overrides {
        let unreadable = |e: String| MoneyError::Invalid(format!("pricing.overrides: {e}"));
        let raw: Vec<RawPricing> =
            serde_json::from_str(raw.get()).map_err(|e| unreadable(e.to_string()))?;
        for t in &raw {
            let min = t
                .min_prompt_tokens
                .ok_or_else(|| unreadable("a tier without min_prompt_tokens".into()))?;
            let (list, worst) = prices_of(p, Some(t))?;
            tiers.push(Tier {
                min_prompt_tokens: min,
                price: worst,
                list_price: list,
            });
        }
        tiers.sort_by_key(|t| t.min_prompt_tokens);
    }
    Ok(Priced {
        list,
        worst,
        cache,
        tiers,
    })
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
                // A price that cannot be read (missing, `-1`, a tier unreadable) leaves the
                // model unpriced: never priced too low.
                let p = m.pricing.as_ref().and_then(|p| priced(p).ok());
                ModelInfo {
                    name: m.name.unwrap_or_else(|| m.id.clone()),
                    cache_price: p.as_ref().and_then(|p| p.cache),
                    price: p.as_ref().map(|p| p.worst),
                    list_price: p.as_ref().map(|p| p.list),
                    tiers: p.map(|p| p.tiers).unwrap_or_default(),
                    max_completion_tokens: m.top_provider.and_then(|t| t.max_completion_tokens),
                    supported_parameters: m.supported_parameters,
                    expires: expiry_of(m.expiration_date.as_ref()),
                    context_length: m.context_length,
                    id: m.id,
                }
            })
            .collect();
        Ok(Catalogue {
            models,
            fetched: None,
            endpoint: String::new(),
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

    /// Whether this is the catalogue of `base_url`.
    pub fn is_for(&self, base_url: &str) -> bool {
        self.endpoint == endpoint_key(base_url)
    }

    /// Where `base_url`'s catalogue is cached in `data_dir` (see [`cache_file_name`]). The
    /// single `models.json` older versions kept for every endpoint is not read: which endpoint
    /// wrote it cannot be told.
    pub fn cache_path(data_dir: &Path, base_url: &str) -> PathBuf {
        data_dir.join(cache_file_name(base_url))
    }

    /// Reads `base_url`'s disk cache (its modification time is the fetch time; one that cannot
    /// be read makes the cache as old as can be, never fresh).
    pub fn load(data_dir: &Path, base_url: &str) -> Option<Catalogue> {
        let path = Self::cache_path(data_dir, base_url);
        let body = std::fs::read_to_string(&path).ok()?;
        let mut c = Self::parse(&body).ok()?;
        c.fetched = Some(
            std::fs::metadata(&path)
                .and_then(|m| m.modified())
                .unwrap_or(SystemTime::UNIX_EPOCH),
        );
        c.endpoint = endpoint_key(base_url);
        Some(c)
    }

    /// Writes `base_url`'s raw body atomically (temp file + rename), so a crash never leaves
    /// half a file; private (0600, in a 0700 directory) like everything frugal keeps.
    pub fn store(data_dir: &Path, base_url: &str, body: &str) -> std::io::Result<()> {
        crate::private::private_dir(data_dir)?;
        let path = Self::cache_path(data_dir, base_url);
        let tmp = path.with_extension(format!("json.{}.tmp", std::process::id()));
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create(true).truncate(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, crate::private::PRIVATE_FILE);
        std::io::Write::write_all(&mut options.open(&tmp)?, body.as_bytes())?;
        crate::private::private_file(&tmp)?;
        std::fs::rename(&tmp, path)
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

    /// As the real catalogue lists Sonnet 4: a tier above 200,000 prompt tokens, the 1-hour
    /// cache write, a web_search fee (never asked for: ignored).
    const TIERED: &str = r#"{"data":[
      {"id":"anthropic/claude-sonnet-4","context_length":1000000,"pricing":{"prompt":"0.000003","completion":"0.000015","web_search":"0.01","input_cache_read":"0.0000003","input_cache_write":"0.00000375","input_cache_write_1h":"0.000006",
        "overrides":[{"min_prompt_tokens":200000,"prompt":"0.000006","completion":"0.0000225","input_cache_read":"0.0000006","input_cache_write":"0.0000075","input_cache_write_1h":"0.000012"}]}},
      {"id":"x/partial","pricing":{"prompt":0.000001,"completion":"0.000002","overrides":[{"min_prompt_tokens":1000,"prompt":"0.000004"},{"min_prompt_tokens":500,"completion":"0.000003"}]}},
      {"id":"x/broken-tier","pricing":{"prompt":"0.000001","completion":"0.000002","overrides":[{"prompt":"0.000004"}]}},
      {"id":"x/variable-tier","pricing":{"prompt":"0.000001","completion":"0.000002","overrides":[{"min_prompt_tokens":10,"prompt":"-1"}]}}
    ]}"#;

    #[test]
    fn tiers_apply_from_their_prompt_size_up() {
        let c = Catalogue::parse(TIERED).unwrap();
        let m = c.get("anthropic/claude-sonnet-4").unwrap();
        let price = |prompt: i64, completion: i64| Price {
            prompt: Usd(prompt),
            completion: Usd(completion),
            request: Usd::ZERO,
        };
        // Below the tier: the base; per prompt token the dearest cache write (1 h).
        assert_eq!(
            m.prices_for(199_999),
            (
                Some(price(6_000_000, 15_000_000)),
                Some(price(3_000_000, 15_000_000))
            )
        );
        // A bound that reaches it: the tier's.
        assert_eq!(
            m.prices_for(200_000),
            (
                Some(price(12_000_000, 22_500_000)),
                Some(price(6_000_000, 22_500_000))
            )
        );
        // The base price and what the picker shows stay the base.
        assert_eq!(m.list_price, Some(price(3_000_000, 15_000_000)));
        // A tier gives what it names; the base stands for the rest; tiers add up field by
        // field whatever their order (and a number is read as exactly as a string).
        let p = c.get("x/partial").unwrap();
        assert_eq!(p.prices_for(499).1, Some(price(1_000_000, 2_000_000)));
        assert_eq!(p.prices_for(500).1, Some(price(1_000_000, 3_000_000)));
        assert_eq!(p.prices_for(1000).1, Some(price(4_000_000, 3_000_000)));
        // A tier that cannot be read leaves the model unpriced, never priced too low.
        for id in ["x/broken-tier", "x/variable-tier"] {
            let m = c.get(id).unwrap();
            assert_eq!((m.price, m.list_price), (None, None), "{id}");
            assert_eq!(m.prices_for(u64::MAX), (None, None), "{id}");
        }
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

    const OR: &str = "https://openrouter.ai/api/v1";

    #[test]
    fn disk_cache_round_trip() {
        let dir = tempfile::tempdir().unwrap();
        assert!(Catalogue::load(dir.path(), OR).is_none());
        Catalogue::store(dir.path(), OR, BODY).unwrap();
        let c = Catalogue::load(dir.path(), OR).unwrap();
        assert_eq!(c.models.len(), 4);
        assert!(!c.is_stale());
        assert!(!c.is_too_old(SystemTime::now()));
        assert!(c.is_for("https://openrouter.ai/api/v1/ "));
        assert!(!c.is_for("http://localhost:8080/v1"));
    }

    /// One cache per endpoint: another base_url never reads it, nor the single file older
    /// versions kept for all.
    #[test]
    fn each_endpoint_has_its_own_cache() {
        let dir = tempfile::tempdir().unwrap();
        let plain = "http://127.0.0.1:8080/v1";
        Catalogue::store(dir.path(), OR, BODY).unwrap();
        assert!(Catalogue::load(dir.path(), plain).is_none());
        Catalogue::store(dir.path(), plain, LEAVING).unwrap();
        assert_eq!(Catalogue::load(dir.path(), OR).unwrap().models.len(), 4);
        assert_eq!(Catalogue::load(dir.path(), plain).unwrap().models.len(), 7);
        std::fs::write(dir.path().join("models.json"), BODY).unwrap();
        assert!(Catalogue::load(dir.path(), "https://api.scaleway.ai/v1").is_none());
        // Names: readable, stable, distinct per path and port, the same whatever the slash.
        let name = cache_file_name(OR);
        assert!(name.starts_with("models-openrouter.ai-") && name.ends_with(".json"));
        assert_eq!(name, cache_file_name("https://openrouter.ai/api/v1/"));
        assert_eq!(
            name,
            format!("models-openrouter.ai-{:016x}.json", fnv1a(OR.as_bytes()))
        );
        assert_eq!(fnv1a(b"a"), 0xaf63_dc4c_8601_ec8c, "FNV-1a, stable");
        for other in [
            "https://openrouter.ai/api/v2",
            "http://127.0.0.1:8081/v1",
            "http://127.0.0.1:8080/v1",
        ] {
            assert_ne!(cache_file_name(other), name, "{other}");
        }
        assert_ne!(
            cache_file_name("http://127.0.0.1:8080/v1"),
            cache_file_name("http://127.0.0.1:8081/v1")
        );
        assert!(cache_file_name("not a url").starts_with("models-endpoint-"));
        for n in [name.as_str(), "models.json"] {
            assert!(is_cache_file(n), "{n}");
        }
        assert!(!is_cache_file("ledger.sqlite3"));
    }

    #[test]
    fn a_cache_ages_from_its_file_time() {
        let dir = tempfile::tempdir().unwrap();
        Catalogue::store(dir.path(), OR, BODY).unwrap();
        let day = Duration::from_secs(24 * 3600);
        let file = std::fs::File::options()
            .write(true)
            .open(Catalogue::cache_path(dir.path(), OR))
            .unwrap();
        let now = SystemTime::now();
        file.set_modified(now - 3 * day).unwrap();
        let c = Catalogue::load(dir.path(), OR).unwrap();
        assert!(c.is_stale());
        assert!(!c.is_too_old(now));
        assert!((c.age(now).as_secs() / 86_400) == 3);
        file.set_modified(now - 8 * day).unwrap();
        let c = Catalogue::load(dir.path(), OR).unwrap();
        assert!(c.is_too_old(now));
        // A file dated in the future (a clock set back) is not older than now.
        file.set_modified(now + day).unwrap();
        assert_eq!(
            Catalogue::load(dir.path(), OR).unwrap().age(now),
            Duration::ZERO
        );
        // Parsed just now: no age.
        assert_eq!(Catalogue::parse(BODY).unwrap().age(now), Duration::ZERO);
    }
}
