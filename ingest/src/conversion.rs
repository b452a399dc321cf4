//! What a conversion may carry besides its name: free-form `properties` and `revenue`
//! (`/events` and each batch item), or `event_data.amount` / `currency` (capture-event).

use linktrace_domain::{Currency, Revenue};
use linktrace_platform::request::JsonObject;
use serde::{Deserialize, Deserializer};
use serde_json::{Map, Value};

/// The most `properties` may take, serialised.
pub const MAX_PROPERTIES_BYTES: usize = 16 * 1024;

/// `properties`: a JSON object of at most [`MAX_PROPERTIES_BYTES`] serialised.
pub type Properties = JsonObject<MAX_PROPERTIES_BYTES>;

/// `{"amount": <number, major units>, "currency": "<ISO 4217>"}`.
#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RevenueBody {
    /// Major units (12.5 is twelve euros fifty); negative for a refund.
    pub amount: f64,
    #[schema(value_type = String, pattern = "^[A-Za-z]{3}$")]
    pub currency: Currency,
}

/// `revenue`, read and checked: a known currency and a finite, bounded amount.
#[derive(Debug, Clone)]
pub struct RevenueField(pub Revenue);

impl<'de> Deserialize<'de> for RevenueField {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let body = RevenueBody::deserialize(deserializer)?;
        Revenue::new(body.amount, body.currency)
            .map(RevenueField)
            .map_err(|e| serde::de::Error::custom(format!("amount {e}")))
    }
}

impl utoipa::PartialSchema for RevenueField {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        <RevenueBody as utoipa::PartialSchema>::schema()
    }
}
impl utoipa::ToSchema for RevenueField {}

/// Capture-event's revenue: `event_data.amount` and `event_data.currency` when they form a
/// valid pair (a finite number within [`linktrace_domain::revenue::MAX_AMOUNT`] and an ISO 4217
/// code). `event_data` is free-form in the fixed contract, so anything else (a `currency` beside
/// a `price`, an amount given as text, an unknown code) is never a reason to refuse the event:
/// it is stored without revenue, and `event_data` stays its properties.
pub fn from_event_data(data: &Map<String, Value>) -> Option<Revenue> {
    let amount = data.get("amount")?.as_f64()?;
    let currency = Currency::parse(data.get("currency")?.as_str()?).ok()?;
    Revenue::new(amount, currency).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn properties_are_bounded_objects() {
        assert!(serde_json::from_value::<Properties>(json!({"plan": "pro"})).is_ok());
        assert!(serde_json::from_value::<Properties>(json!(["a"])).is_err());
        let big = json!({ "x": "y".repeat(MAX_PROPERTIES_BYTES) });
        assert!(serde_json::from_value::<Properties>(big).is_err());
    }

    #[test]
    fn capture_revenue_is_a_valid_pair_or_none() {
        let data = |v: Value| v.as_object().unwrap().clone();
        assert_eq!(from_event_data(&data(json!({"sku": "x"}))), None);
        let revenue = from_event_data(&data(json!({"amount": 9.99, "currency": "usd"}))).unwrap();
        assert_eq!(
            (revenue.currency.as_str(), revenue.micros),
            ("USD", 9_990_000)
        );
        // Not a valid pair: no revenue, and never an error (event_data is free-form).
        for other in [
            json!({"amount": 9.99}),
            json!({"price": 249.99, "currency": "USD"}),
            json!({"amount": "9.99", "currency": "USD"}),
            json!({"amount": 1, "currency": "ZZZ"}),
            json!({"amount": 1e300, "currency": "USD"}),
            json!({"amount": 1, "currency": 840}),
        ] {
            assert_eq!(from_event_data(&data(other.clone())), None, "{other}");
        }
    }

    #[test]
    fn revenue_fields() {
        let revenue: RevenueField =
            serde_json::from_value(json!({"amount": 12.5, "currency": "eur"})).unwrap();
        assert_eq!(
            (revenue.0.currency.as_str(), revenue.0.micros),
            ("EUR", 12_500_000)
        );
        assert!(
            serde_json::from_value::<RevenueField>(json!({"amount": 1, "currency": "EURO"}))
                .is_err()
        );
        assert!(
            serde_json::from_value::<RevenueField>(json!({"amount": 1e13, "currency": "EUR"}))
                .is_err()
        );
        assert!(serde_json::from_value::<RevenueField>(json!({"amount": 1})).is_err());
        assert!(serde_json::from_value::<RevenueField>(
            json!({"amount": 1, "currency": "EUR", "x": 1})
        )
        .is_err());
    }
}
