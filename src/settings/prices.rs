//! `setup({ prices = { [model_id] = { prompt = …, completion = … } } })`: prices the user gives,
//! USD per million tokens, for models on endpoints that publish none (a self-hosted server, a
//! plain OpenAI-compatible API) and over the catalogue's for the models it names.
//!
//! Each entry is read on its own: a bad one (not a table, an unknown field, a missing,
//! non-numeric or negative price) is dropped with a warning naming it, and that model stays
//! unpriced — so under a cap it is refused, never sent at a guessed price.

use crate::budget::money::{Price, Usd};
use rmpv::Value;
use std::collections::HashMap;

/// The fields of one entry.
pub const FIELDS: &[&str] = &["prompt", "completion"];

/// Picodollars per USD per million tokens: `x` USD/M is `x × 10⁶` picodollars per token.
const PS_PER_TOKEN_PER_USD_PER_MILLION: i64 = 1_000_000;

/// The entries read, and a message for each entry dropped.
pub fn parse(v: &Value) -> Result<(HashMap<String, Price>, Vec<String>), &'static str> {
    let entries = match v {
        Value::Map(entries) => entries.as_slice(),
        // An empty Lua table may arrive as an array.
        Value::Array(a) if a.is_empty() => &[],
        _ => return Err("table"),
    };
    let mut prices = HashMap::new();
    let mut problems = Vec::new();
    for (model, entry) in entries {
        let Some(model) = model.as_str().filter(|m| !m.trim().is_empty()) else {
            problems.push(format!(
                "setup key prices has an entry {model} that is not a model id (ignored)"
            ));
            continue;
        };
        match entry_price(entry) {
            Ok(p) => {
                prices.insert(model.to_string(), p);
            }
            Err(why) => problems.push(format!(
                "setup key prices entry {model:?} {why}: that model stays unpriced (refused under a cap)"
            )),
        }
    }
    Ok((prices, problems))
}

/// One `{ prompt = …, completion = … }` entry, USD per million tokens.
fn entry_price(entry: &Value) -> Result<Price, String> {
    let Value::Map(fields) = entry else {
        return Err(
            "must be a table { prompt = <USD per million>, completion = <USD per million> }".into(),
        );
    };
    let mut prompt = None;
    let mut completion = None;
    for (k, v) in fields {
        let name = k.as_str().unwrap_or_default();
        let slot = match name {
            "prompt" => &mut prompt,
            "completion" => &mut completion,
            _ => {
                return Err(format!(
                    "has an unknown field {:?} (known: {})",
                    k.as_str().map_or_else(|| k.to_string(), str::to_string),
                    FIELDS.join(", ")
                ))
            }
        };
        *slot = Some(per_million(name, v)?);
    }
    match (prompt, completion) {
        (Some(prompt), Some(completion)) => Ok(Price {
            prompt,
            completion,
            request: Usd::ZERO,
        }),
        (None, _) => Err("has no prompt price".into()),
        (_, None) => Err("has no completion price".into()),
    }
}

/// A price in USD per million tokens, as exact picodollars per token (rounded up: a price a
/// hair high only makes the bound more careful).
fn per_million(field: &str, v: &Value) -> Result<Usd, String> {
    let x = match v {
        Value::Integer(i) => i.as_f64(),
        Value::F32(x) => Some(*x as f64),
        Value::F64(x) => Some(*x),
        _ => None,
    }
    .ok_or_else(|| format!("{field} must be a number (USD per million tokens), got {v}"))?;
    if !x.is_finite() || x < 0.0 {
        return Err(format!(
            "{field} must be a positive number of USD per million tokens, got {x}"
        ));
    }
    let per_million = Usd::parse_decimal(&format!("{x}"))
        .map_err(|e| format!("{field} is not an amount of USD: {e}"))?;
    let ps = per_million.picos();
    let d = PS_PER_TOKEN_PER_USD_PER_MILLION;
    Ok(Usd(ps / d + i64::from(ps % d != 0)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(pairs: Vec<(&str, Value)>) -> Value {
        Value::Map(pairs.into_iter().map(|(k, v)| (k.into(), v)).collect())
    }

    fn entry(prompt: Value, completion: Value) -> Value {
        map(vec![("prompt", prompt), ("completion", completion)])
    }

    #[test]
    fn prices_per_million_become_exact_prices_per_token() {
        let v = map(vec![
            ("mistral-small", entry(Value::F64(0.15), Value::F64(0.35))),
            ("local/llama", entry(0.into(), 0.into())),
            ("big", entry(3.into(), 15.into())),
            // A millionth of a picodollar per token rounds up to one picodollar.
            ("tiny", entry(Value::F64(0.0000001), 0.into())),
        ]);
        let (prices, problems) = parse(&v).unwrap();
        assert!(problems.is_empty(), "{problems:?}");
        assert_eq!(prices["mistral-small"].prompt, Usd(150_000));
        assert_eq!(prices["mistral-small"].completion, Usd(350_000));
        assert!(prices["local/llama"].is_free());
        assert_eq!(
            prices["big"].prompt,
            Usd::parse_decimal("0.000003").unwrap()
        );
        assert_eq!(
            prices["big"].completion,
            Usd::parse_decimal("0.000015").unwrap()
        );
        assert_eq!(prices["tiny"].prompt, Usd(1));
    }

    #[test]
    fn a_bad_entry_is_dropped_with_a_warning_naming_it() {
        let v = map(vec![
            ("good", entry(1.into(), 2.into())),
            ("neg", entry(Value::F64(-1.0), 2.into())),
            ("text", entry("cheap".into(), 2.into())),
            (
                "extra",
                map(vec![
                    ("prompt", 1.into()),
                    ("completion", 1.into()),
                    ("request", 1.into()),
                ]),
            ),
            ("half", map(vec![("prompt", 1.into())])),
            ("flat", Value::F64(0.5)),
        ]);
        let (prices, mut problems) = parse(&v).unwrap();
        assert_eq!(prices.len(), 1);
        assert!(prices.contains_key("good"));
        problems.sort();
        let want = [
            "setup key prices entry \"extra\" has an unknown field \"request\" (known: prompt, completion): that model stays unpriced (refused under a cap)",
            "setup key prices entry \"flat\" must be a table { prompt = <USD per million>, completion = <USD per million> }: that model stays unpriced (refused under a cap)",
            "setup key prices entry \"half\" has no completion price: that model stays unpriced (refused under a cap)",
            "setup key prices entry \"neg\" prompt must be a positive number of USD per million tokens, got -1: that model stays unpriced (refused under a cap)",
            "setup key prices entry \"text\" prompt must be a number (USD per million tokens), got \"cheap\": that model stays unpriced (refused under a cap)",
        ];
        assert_eq!(problems, want);
        assert_eq!(parse(&Value::from("x")).unwrap_err(), "table");
        // An empty Lua table may come as an array.
        assert!(parse(&Value::Map(vec![])).unwrap().0.is_empty());
    }
}
