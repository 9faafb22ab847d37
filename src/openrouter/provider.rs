//! The request's `provider` object: OpenRouter's routing preferences, which the gate's policy
//! fills in (a wire type of the client, so it lives beside it).

use crate::budget::money::Price;
use serde::Serialize;
use serde_json::value::RawValue;

/// OpenRouter's `provider` routing preferences, sent to an OpenRouter `base_url` only. Every
/// field OpenRouter-only requests carry lives here, so [`Endpoint`] keeps all of them from a
/// plain endpoint at once.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Provider {
    /// No provider dearer than this (per million tokens; per request). Always sent under a cap.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_price: Option<MaxPrice>,
    /// The project's `[privacy] data_collection` (`"deny"` / `"allow"`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub data_collection: Option<String>,
    /// Only providers that honour every parameter sent — `max_tokens` above all, which bounds
    /// the answer's cost (and its length on the wire).
    pub require_parameters: bool,
}

/// `provider.max_price`: USD per million prompt / completion tokens, and per request.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MaxPrice {
    pub prompt: Decimal,
    pub completion: Decimal,
    pub request: Decimal,
}

impl MaxPrice {
    /// The list price, exactly (a float could come out a hair below it and exclude the very
    /// provider the price was reserved for).
    pub fn of(list: Price) -> MaxPrice {
        MaxPrice {
            prompt: Decimal::new(list.prompt.per_million_decimal()),
            completion: Decimal::new(list.completion.per_million_decimal()),
            request: Decimal::new(list.request.exact_decimal()),
        }
    }
}

/// An exact decimal written into the JSON body as a number, as is (not through `f64`).
#[derive(Debug, Clone)]
pub struct Decimal(Box<RawValue>);

impl Decimal {
    /// `digits` must be a JSON number: [`Usd::exact_decimal`] and its kin write only those.
    fn new(digits: String) -> Decimal {
        Decimal(RawValue::from_string(digits).expect("an exact decimal is a JSON number"))
    }

    pub fn as_str(&self) -> &str {
        self.0.get()
    }
}

impl PartialEq for Decimal {
    fn eq(&self, other: &Decimal) -> bool {
        self.as_str() == other.as_str()
    }
}

impl Serialize for Decimal {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.0.serialize(s)
    }
}
