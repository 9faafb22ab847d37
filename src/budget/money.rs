//! Exact money: every amount the budget core handles is an integer number of picodollars.
//!
//! Floating point is never used for bookkeeping: caps must hold *exactly*, and summing a million
//! `f64` costs drifts. A picodollar (1e-12 USD) is fine enough to hold every catalogue price
//! OpenRouter publishes (the smallest seen have 10 decimals) and `i64` still reaches
//! ±9.2 million dollars, far beyond any budget.

use std::fmt;
use std::ops::{Add, AddAssign, Sub, SubAssign};

/// Picodollars in one US dollar.
pub const PS_PER_USD: i64 = 1_000_000_000_000;

/// Number of decimals a picodollar amount carries.
const SCALE: i64 = 12;

/// Why a price or cost string could not be turned into an exact amount.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MoneyError {
    /// OpenRouter's `"-1"`: the price is unknown or variable (e.g. auto-routers). The caller must
    /// not guess a worst case from it; it is a distinct variant so it can say so.
    #[error("the price is variable or unknown (\"-1\")")]
    Variable,
    /// A negative amount other than the `-1` marker: never a valid price or cost.
    #[error("negative amount {0:?}")]
    Negative(String),
    /// Not a decimal number (empty, stray characters, NaN, infinity).
    #[error("not a decimal amount: {0:?}")]
    Invalid(String),
    /// Larger than `i64::MAX` picodollars (about 9.2 million USD).
    #[error("amount too large: {0:?}")]
    Overflow(String),
}

/// An exact amount of US dollars, in picodollars (1e-12 USD).
///
/// Signed so that differences (headroom under a cap, a settlement's correction) are natural;
/// stored amounts are never negative.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Usd(pub i64);

impl Usd {
    /// Zero dollars.
    pub const ZERO: Usd = Usd(0);

    /// Whole dollars, for caps written in code and tests.
    pub const fn from_dollars(d: i64) -> Usd {
        Usd(d * PS_PER_USD)
    }

    /// Picodollars.
    pub const fn picos(self) -> i64 {
        self.0
    }

    /// `self × tokens`, or `None` on overflow: a per-token price times a token count.
    pub fn checked_mul_tokens(self, tokens: u64) -> Option<Usd> {
        let t = i64::try_from(tokens).ok()?;
        self.0.checked_mul(t).map(Usd)
    }

    /// `self + other`, or `None` on overflow.
    pub fn checked_add(self, other: Usd) -> Option<Usd> {
        self.0.checked_add(other.0).map(Usd)
    }

    /// Parses a catalogue price string (USD, decimal, optionally with an exponent: `"0.000003"`,
    /// `"0"`, `"1e-6"`).
    ///
    /// Digits beyond the 12th decimal round **up**: a price that is too high only makes the
    /// pre-flight bound more careful, one that is too low could let a cap be crossed.
    /// `"-1"` (OpenRouter: variable price) gives [`MoneyError::Variable`].
    pub fn parse_decimal(s: &str) -> Result<Usd, MoneyError> {
        let t = s.trim();
        let (neg, body) = match t.as_bytes().first() {
            Some(b'-') => (true, &t[1..]),
            Some(b'+') => (false, &t[1..]),
            _ => (false, t),
        };
        if body.starts_with(['+', '-']) {
            return Err(MoneyError::Invalid(s.to_string()));
        }
        let (mantissa, exp) = match body.find(['e', 'E']) {
            Some(i) => {
                let e = &body[i + 1..];
                let e: i64 = e.parse().map_err(|_| MoneyError::Invalid(s.to_string()))?;
                (&body[..i], e)
            }
            None => (body, 0),
        };
        let (int_part, frac_part) = match mantissa.find('.') {
            Some(i) => (&mantissa[..i], &mantissa[i + 1..]),
            None => (mantissa, ""),
        };
        let all_digits = |p: &str| p.bytes().all(|b| b.is_ascii_digit());
        if (int_part.is_empty() && frac_part.is_empty())
            || !all_digits(int_part)
            || !all_digits(frac_part)
        {
            return Err(MoneyError::Invalid(s.to_string()));
        }
        // The number is 0.DIGITS × 10^point, with DIGITS = int_part ++ frac_part.
        let digits: Vec<u8> = int_part
            .bytes()
            .chain(frac_part.bytes())
            .map(|b| b - b'0')
            .collect();
        let is_zero = digits.iter().all(|&d| d == 0);
        if neg && !is_zero {
            // Exactly -1 (in whatever spelling) is the "variable price" marker.
            let one = Usd::parse_decimal(body);
            return match one {
                Ok(Usd(v)) if v == PS_PER_USD => Err(MoneyError::Variable),
                Ok(_) => Err(MoneyError::Negative(s.to_string())),
                Err(e) => Err(e),
            };
        }
        if is_zero {
            return Ok(Usd::ZERO);
        }
        // Position of the picodollar point within `digits`.
        let point = (int_part.len() as i64)
            .saturating_add(exp)
            .saturating_add(SCALE);
        let len = digits.len() as i64;
        let (whole, rest): (&[u8], &[u8]) = if point <= 0 {
            (&[], &digits[..])
        } else if point >= len {
            (&digits[..], &[])
        } else {
            digits.split_at(point as usize)
        };
        let zeros_after = if point > len { point - len } else { 0 };
        let mut value: i64 = 0;
        let overflow = || MoneyError::Overflow(s.to_string());
        for &d in whole {
            value = value
                .checked_mul(10)
                .and_then(|v| v.checked_add(i64::from(d)))
                .ok_or_else(overflow)?;
        }
        if zeros_after > 0 {
            if zeros_after > 18 {
                return Err(overflow());
            }
            value = value
                .checked_mul(10i64.pow(zeros_after as u32))
                .ok_or_else(overflow)?;
        }
        if rest.iter().any(|&d| d != 0) {
            value = value.checked_add(1).ok_or_else(overflow)?;
        }
        Ok(Usd(value))
    }

    /// Converts a `usage.cost` JSON number (USD) exactly as written by the server.
    ///
    /// Goes through the shortest round-trip decimal string (`0.00095` → `"0.00095"`) rather than
    /// multiplying the binary double, which would give 949_999_999.99… picodollars.
    pub fn from_cost_f64(x: f64) -> Result<Usd, MoneyError> {
        if !x.is_finite() {
            return Err(MoneyError::Invalid(format!("{x}")));
        }
        if x < 0.0 {
            return Err(MoneyError::Negative(format!("{x}")));
        }
        Usd::parse_decimal(&format!("{x}"))
    }

    /// Dollars as a float, for display and JSON only; never for bookkeeping.
    pub fn to_f64(self) -> f64 {
        let whole = self.0 / PS_PER_USD;
        let frac = self.0 % PS_PER_USD;
        whole as f64 + frac as f64 / PS_PER_USD as f64
    }
}

// Saturating: a release build does not check overflow, and money that wraps around turns a
// spend near the limit of i64 (an endpoint's absurd `usage.cost`, a huge `prices` entry times
// the tokens it reported) into a negative one, and a full cap into an empty one. Saturated,
// such a spend still fills every cap.
impl Add for Usd {
    type Output = Usd;
    fn add(self, rhs: Usd) -> Usd {
        Usd(self.0.saturating_add(rhs.0))
    }
}

impl Sub for Usd {
    type Output = Usd;
    fn sub(self, rhs: Usd) -> Usd {
        Usd(self.0.saturating_sub(rhs.0))
    }
}

impl AddAssign for Usd {
    fn add_assign(&mut self, rhs: Usd) {
        *self = *self + rhs;
    }
}

impl SubAssign for Usd {
    fn sub_assign(&mut self, rhs: Usd) {
        *self = *self - rhs;
    }
}

impl Usd {
    /// The amount for people, with at least `min_decimals` decimals below one dollar (two from
    /// one dollar up), and more when fewer would hide it: below a dollar, decimals are added
    /// until two significant digits show (`$0.00004`, never `$0.0000`), and zeros past
    /// `min_decimals` are dropped. Rounded half away from zero; `$0.00` only for zero.
    pub fn text(self, min_decimals: u32) -> String {
        let sign = if self.0 < 0 { "-" } else { "" };
        let abs = self.0.unsigned_abs();
        let ps = PS_PER_USD as u64;
        if abs == 0 {
            return "$0.00".into();
        }
        let scale = SCALE as u32;
        let round_to = |decimals: u32| -> u64 {
            let unit = 10u64.pow(scale - decimals);
            (abs + unit / 2) / unit
        };
        if abs < ps {
            // The first significant digit is at decimal `first` (0.004 → 3).
            let first = scale - abs.ilog10();
            let decimals = (first + 1).max(min_decimals).min(scale);
            let units = round_to(decimals);
            if units < 10u64.pow(decimals) {
                let mut digits = format!("{units:0width$}", width = decimals as usize);
                while digits.len() > min_decimals as usize && digits.ends_with('0') {
                    digits.pop();
                }
                return format!("{sign}$0.{digits}");
            }
        }
        let cents = round_to(2);
        format!("{sign}${}.{:02}", cents / 100, cents % 100)
    }

    /// The exact decimal, as few digits as it takes (`"0.000003"`, `"12.5"`, `"0"`): for wire
    /// formats that must not go through a float.
    pub fn exact_decimal(self) -> String {
        exact_decimal(i128::from(self.0), SCALE as u32)
    }

    /// A per-token price as USD per million tokens, exactly (`0.0000004` → `"0.4"`): what
    /// OpenRouter's `provider.max_price` wants.
    pub fn per_million_decimal(self) -> String {
        // picodollars per token × 10^6 tokens = 10^-6 USD units per million tokens.
        exact_decimal(i128::from(self.0), SCALE as u32 - 6)
    }
}

/// `units × 10^-scale` as a decimal string without trailing zeros.
fn exact_decimal(units: i128, scale: u32) -> String {
    let sign = if units < 0 { "-" } else { "" };
    let abs = units.unsigned_abs();
    let one = 10u128.pow(scale);
    let (whole, frac) = (abs / one, abs % one);
    if frac == 0 {
        return format!("{sign}{whole}");
    }
    let frac = format!("{frac:0width$}", width = scale as usize);
    format!("{sign}{whole}.{}", frac.trim_end_matches('0'))
}

impl fmt::Display for Usd {
    /// `$1.50` from one dollar up, four decimals below (`$0.0042`: small requests would all
    /// read `$0.00` otherwise), more for amounts below $0.001 (`$0.00004`), `$0.00` for zero.
    /// See [`Usd::text`].
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text(4))
    }
}

/// A decimal amount as the wire wrote it: a JSON number (`0.0076509169000000005`, OpenRouter's
/// `usage.cost` with its float noise) or a string holding one (`"0.000003"`, a catalogue price),
/// kept as its text so that it is read exactly ([`Usd::parse_decimal`]), never through `f64`
/// (serde_json reads that cost one picodollar low).
///
/// Read from the raw JSON text (serde_json's `RawValue`): only `serde_json::from_str` and its
/// kin give it, not `from_value`. Anything other than a number or a string keeps a text that
/// is no amount, so one odd field never makes a whole answer unreadable.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct WireDecimal(pub String);

impl WireDecimal {
    /// The amount, exactly (see [`Usd::parse_decimal`]: digits past the 12th decimal round up).
    pub fn usd(&self) -> Result<Usd, MoneyError> {
        Usd::parse_decimal(&self.0)
    }
}

impl<'de> serde::Deserialize<'de> for WireDecimal {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<WireDecimal, D::Error> {
        let raw = <Box<serde_json::value::RawValue>>::deserialize(d)?;
        let text = raw.get().trim();
        Ok(WireDecimal(if text.starts_with('"') {
            serde_json::from_str::<String>(text).unwrap_or_default()
        } else {
            text.to_string()
        }))
    }
}

/// For `#[serde(default, deserialize_with = "wire_usd")]` on an `Option<Usd>`: a cost as the
/// wire wrote it, exactly ([`WireDecimal`]); `None` when absent, null, or no valid amount
/// (negative, `-1`, not a number) — the caller then estimates, as without one.
pub fn wire_usd<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<Usd>, D::Error> {
    let raw: Option<WireDecimal> = serde::Deserialize::deserialize(d)?;
    Ok(raw.and_then(|w| match w.usd() {
        Ok(u) => Some(u),
        Err(e) => {
            tracing::warn!("an amount on the wire is no valid cost: {e}");
            None
        }
    }))
}

/// A model's catalogue price: `prompt` and `completion` per token, `request` flat per request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Price {
    /// USD per prompt (input) token.
    pub prompt: Usd,
    /// USD per completion (output) token, reasoning tokens included.
    pub completion: Usd,
    /// Flat USD per request.
    pub request: Usd,
}

impl Price {
    /// Parses the catalogue's `pricing.prompt`, `pricing.completion` and `pricing.request`
    /// strings.
    pub fn from_catalogue(
        prompt: &str,
        completion: &str,
        request: &str,
    ) -> Result<Price, MoneyError> {
        Ok(Price {
            prompt: Usd::parse_decimal(prompt)?,
            completion: Usd::parse_decimal(completion)?,
            request: Usd::parse_decimal(request)?,
        })
    }

    /// Field by field the higher of the two: a price no part of which is below either.
    pub fn max_each(self, other: Price) -> Price {
        Price {
            prompt: self.prompt.max(other.prompt),
            completion: self.completion.max(other.completion),
            request: self.request.max(other.request),
        }
    }

    /// A model that costs nothing whatever the request: it stays usable at a cap.
    pub fn is_free(&self) -> bool {
        self.prompt == Usd::ZERO && self.completion == Usd::ZERO && self.request == Usd::ZERO
    }

    /// The most a request can cost: `prompt_tokens × prompt + max_tokens × completion +
    /// request`; `None` if that does not fit in `i64` picodollars.
    pub fn worst_case(&self, prompt_tokens: u64, max_tokens: u64) -> Option<Usd> {
        self.prompt
            .checked_mul_tokens(prompt_tokens)?
            .checked_add(self.completion.checked_mul_tokens(max_tokens)?)?
            .checked_add(self.request)
    }
}

/// A model's list price per prompt token beside its cache-read price (the catalogue's
/// `pricing.input_cache_read`): what reading prompt tokens from the provider's cache saves.
///
/// The saving is gross: what the cached tokens would have cost at the prompt price, less what
/// they cost at the read price. Writing a prompt to the cache can cost more than the prompt
/// price (Anthropic: 1.25×); that premium is in `usage.cost` already and is not netted here, so
/// a saving is never negative.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CachePrice {
    /// USD per prompt token, the list price.
    pub prompt: Usd,
    /// USD per prompt token read from the cache.
    pub read: Usd,
}

impl CachePrice {
    /// What `cached_tokens` read from the cache saved: `cached_tokens × (prompt − read)`, zero
    /// when reading is not cheaper; `None` on overflow.
    pub fn saved(&self, cached_tokens: u64) -> Option<Usd> {
        (self.prompt - self.read)
            .max(Usd::ZERO)
            .checked_mul_tokens(cached_tokens)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> Result<Usd, MoneyError> {
        Usd::parse_decimal(s)
    }

    #[test]
    fn parses_catalogue_prices() {
        assert_eq!(p("0.000003"), Ok(Usd(3_000_000)));
        assert_eq!(p("0.000015"), Ok(Usd(15_000_000)));
        assert_eq!(p("0"), Ok(Usd(0)));
        assert_eq!(p("0.0000000375"), Ok(Usd(37_500)));
        assert_eq!(p("0.00000375"), Ok(Usd(3_750_000)));
        assert_eq!(p("1"), Ok(Usd(PS_PER_USD)));
        assert_eq!(p("12.5"), Ok(Usd(12_500_000_000_000)));
        assert_eq!(p(".5"), Ok(Usd(500_000_000_000)));
        assert_eq!(p("5."), Ok(Usd(5 * PS_PER_USD)));
        assert_eq!(p(" 0.1 "), Ok(Usd(100_000_000_000)));
        assert_eq!(p("-0"), Ok(Usd(0)));
    }

    #[test]
    fn parses_scientific_notation() {
        assert_eq!(p("1e-6"), Ok(Usd(1_000_000)));
        assert_eq!(p("3.75E-7"), Ok(Usd(375_000)));
        assert_eq!(p("2e3"), Ok(Usd(2_000 * PS_PER_USD)));
        assert_eq!(p("1e-12"), Ok(Usd(1)));
        assert_eq!(p("0.0000000001e-3"), Ok(Usd(1)), "rounds up, never to zero");
        assert_eq!(p("1e-9999999999"), Ok(Usd(1)));
        assert!(matches!(p("1e30"), Err(MoneyError::Overflow(_))));
        assert!(matches!(p("1e99999999999"), Err(MoneyError::Overflow(_))));
    }

    #[test]
    fn rounds_up_beyond_twelve_decimals() {
        assert_eq!(p("0.0000000000001"), Ok(Usd(1)));
        assert_eq!(p("0.0000000000011"), Ok(Usd(2)));
        assert_eq!(
            p("0.000000000001000"),
            Ok(Usd(1)),
            "trailing zeros are exact"
        );
        assert_eq!(p("0.12345678901234"), Ok(Usd(123_456_789_013)));
    }

    #[test]
    fn rejects_bad_input() {
        assert_eq!(p("-1"), Err(MoneyError::Variable));
        assert_eq!(p("-1.000"), Err(MoneyError::Variable));
        assert!(matches!(p("-0.5"), Err(MoneyError::Negative(_))));
        assert!(matches!(p("-2"), Err(MoneyError::Negative(_))));
        for bad in [
            "", ".", "abc", "1.2.3", "1e", "0x10", "1,5", "NaN", "inf", "--1", "1e-",
        ] {
            assert!(matches!(p(bad), Err(MoneyError::Invalid(_))), "{bad:?}");
        }
        assert!(matches!(
            p("9223372036854775808"),
            Err(MoneyError::Overflow(_))
        ));
    }

    #[test]
    fn cost_floats_are_exact() {
        assert_eq!(Usd::from_cost_f64(0.00095), Ok(Usd(950_000_000)));
        assert_eq!(Usd::from_cost_f64(0.0), Ok(Usd(0)));
        assert_eq!(Usd::from_cost_f64(1e-7), Ok(Usd(100_000)));
        assert_eq!(Usd::from_cost_f64(0.1 + 0.2), Ok(Usd(300_000_000_001)));
        assert!(Usd::from_cost_f64(f64::NAN).is_err());
        assert!(Usd::from_cost_f64(f64::INFINITY).is_err());
        assert!(matches!(
            Usd::from_cost_f64(-0.5),
            Err(MoneyError::Negative(_))
        ));
        assert!((Usd(950_000_000).to_f64() - 0.00095).abs() < 1e-18);
    }

    #[test]
    fn wire_decimals_are_read_as_written() {
        #[derive(serde::Deserialize)]
        struct T {
            #[serde(default, deserialize_with = "wire_usd")]
            cost: Option<Usd>,
            #[serde(default)]
            price: Option<WireDecimal>,
        }
        let read = |json: &str| serde_json::from_str::<T>(json).unwrap();
        // Float noise past the 12th decimal rounds up, never down (serde_json's f64 of this
        // number is one picodollar low).
        assert_eq!(
            read(r#"{"cost":0.0076509169000000005}"#).cost,
            Some(Usd(7_650_916_901))
        );
        assert!(
            Usd::from_cost_f64(serde_json::from_str("0.0076509169000000005").unwrap())
                .is_ok_and(|u| u == Usd(7_650_916_900))
        );
        assert_eq!(read(r#"{"cost":0.0123}"#).cost, Some(Usd(12_300_000_000)));
        assert_eq!(read(r#"{"cost":1e-7}"#).cost, Some(Usd(100_000)));
        assert_eq!(read(r#"{"cost":"0.5"}"#).cost, Some(Usd(500_000_000_000)));
        assert_eq!(read(r#"{"cost":0}"#).cost, Some(Usd::ZERO));
        for none in [
            r#"{}"#,
            r#"{"cost":null}"#,
            r#"{"cost":-0.5}"#,
            r#"{"cost":-1}"#,
            r#"{"cost":true}"#,
            r#"{"cost":{"a":1}}"#,
        ] {
            assert_eq!(read(none).cost, None, "{none}");
        }
        // A catalogue price, a string or a number, its text kept.
        let p = read(r#"{"price":"0.000003"}"#).price.unwrap();
        assert_eq!(p.usd(), Ok(Usd(3_000_000)));
        let p = read(r#"{"price":0.0000225}"#).price.unwrap();
        assert_eq!(p.usd(), Ok(Usd(22_500_000)));
        assert_eq!(
            read(r#"{"price":"-1"}"#).price.unwrap().usd(),
            Err(MoneyError::Variable)
        );
        assert!(read(r#"{"price":[1]}"#).price.unwrap().usd().is_err());
        assert_eq!(read(r#"{"price":null}"#).price, None);
    }

    #[test]
    fn arithmetic() {
        let mut a = Usd(5);
        a += Usd(3);
        assert_eq!(a, Usd(8));
        a -= Usd(10);
        assert_eq!(a, Usd(-2));
        assert_eq!(Usd(1) + Usd(2) - Usd(4), Usd(-1));
        assert_eq!(Usd(3).checked_mul_tokens(4), Some(Usd(12)));
        assert_eq!(Usd(2).checked_mul_tokens(u64::MAX), None);
        assert_eq!(Usd(i64::MAX).checked_mul_tokens(2), None);
        assert!(Usd(1) < Usd(2));
        assert_eq!(Usd::default(), Usd::ZERO);
    }

    #[test]
    fn displays_dollars() {
        assert_eq!(Usd(0).to_string(), "$0.00");
        assert_eq!(Usd::from_dollars(1).to_string(), "$1.00");
        assert_eq!(p("1.5").unwrap().to_string(), "$1.50");
        assert_eq!(p("0.0042").unwrap().to_string(), "$0.0042");
        assert_eq!(p("0.00424").unwrap().to_string(), "$0.0042");
        assert_eq!(p("0.00425").unwrap().to_string(), "$0.0043");
        assert_eq!(p("0.99999").unwrap().to_string(), "$1.00");
        assert_eq!(p("1234.567").unwrap().to_string(), "$1234.57");
        assert_eq!(Usd(-4_200_000_000).to_string(), "-$0.0042");
        assert_eq!(Usd(1).to_string(), "$0.000000000001");
    }

    #[test]
    fn text_with_fewer_decimals_still_shows_tiny_amounts() {
        // As the model picker shows prices per million tokens.
        for (amount, want) in [
            ("3", "$3.00"),
            ("0.4", "$0.40"),
            ("0.05", "$0.05"),
            ("0.015", "$0.015"),
            ("0.001", "$0.001"),
            ("0.0000125", "$0.000013"),
        ] {
            assert_eq!(p(amount).unwrap().text(2), want, "{amount}");
        }
    }

    #[test]
    fn exact_decimals() {
        for (amount, exact, per_million) in [
            ("0.0000004", "0.0000004", "0.4"),
            ("0.000003", "0.000003", "3"),
            ("0.00000375", "0.00000375", "3.75"),
            ("0", "0", "0"),
            ("12.5", "12.5", "12500000"),
            ("0.000000000001", "0.000000000001", "0.000001"),
            ("0.0000001234567", "0.000000123457", "0.123457"),
        ] {
            let u = p(amount).unwrap();
            assert_eq!(u.exact_decimal(), exact, "{amount}");
            assert_eq!(u.per_million_decimal(), per_million, "{amount}");
        }
        // Never through a float: the classic 0.39999999999999997.
        assert_eq!(Usd(400_000).per_million_decimal(), "0.4");
        assert_eq!(Usd(i64::MAX).per_million_decimal(), "9223372036854.775807");
        assert_eq!(Usd(-5).exact_decimal(), "-0.000000000005");
    }

    #[test]
    fn tiny_amounts_show_a_significant_digit() {
        // Four decimals at least (as above), more until two significant digits show; the
        // zeros past the fourth decimal are dropped.
        for (amount, want) in [
            ("0.00004", "$0.00004"),
            ("0.000042", "$0.000042"),
            ("0.0000425", "$0.000043"),
            ("0.00042", "$0.00042"),
            ("0.0005", "$0.0005"),
            ("0.0050", "$0.0050"),
            ("0.000099999", "$0.0001"),
            ("0.0000000001", "$0.0000000001"),
        ] {
            assert_eq!(p(amount).unwrap().to_string(), want, "{amount}");
        }
        assert_eq!(Usd(-40_000_000).to_string(), "-$0.00004");
    }

    #[test]
    fn cache_reads_save_the_difference_to_the_prompt_price() {
        // Sonnet: $3/M prompt, $0.30/M cache read.
        let sonnet = CachePrice {
            prompt: p("0.000003").unwrap(),
            read: p("0.0000003").unwrap(),
        };
        assert_eq!(sonnet.saved(0), Some(Usd::ZERO));
        assert_eq!(sonnet.saved(1), Some(Usd(2_700_000)));
        // 12,300 tokens: $0.03321, exactly.
        assert_eq!(sonnet.saved(12_300), Some(p("0.03321").unwrap()));
        // In integer picodollars: no float drift however many tokens.
        let fine = CachePrice {
            prompt: p("0.0000001234").unwrap(),
            read: p("0.0000000123").unwrap(),
        };
        assert_eq!(fine.saved(1_000_000), Some(p("0.1111").unwrap()));
        // Reading not cheaper (a catalogue oddity): nothing saved, never a negative saving.
        let odd = CachePrice {
            prompt: Usd(100),
            read: Usd(300),
        };
        assert_eq!(odd.saved(1000), Some(Usd::ZERO));
        assert_eq!(sonnet.saved(u64::MAX), None);
    }

    #[test]
    fn prices() {
        let price = Price::from_catalogue("0.000003", "0.000015", "0").unwrap();
        assert!(!price.is_free());
        assert!(Price::default().is_free());
        assert_eq!(price.worst_case(1000, 100), Some(Usd(4_500_000_000)));
        assert_eq!(price.worst_case(u64::MAX, 0), None);
        assert_eq!(
            Price::from_catalogue("-1", "-1", "0"),
            Err(MoneyError::Variable)
        );
    }
}
