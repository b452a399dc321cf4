//! Revenue of a conversion: an ISO 4217 currency and an exact amount in millionths of its
//! major unit (sums of millions of purchases stay exact; floats would not).

use serde::{Deserialize, Serialize};

use crate::ParseError;

/// The largest amount accepted, in major units (a trillion: far above any one purchase, far
/// below where micros would overflow a sum).
pub const MAX_AMOUNT: f64 = 1e12;

/// An ISO 4217 currency code (upper case), known to the ISO list.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Currency(String);

impl Currency {
    pub fn parse(raw: &str) -> Result<Self, ParseError> {
        let code = raw.trim().to_ascii_uppercase();
        match iso_currency::Currency::from_code(&code) {
            Some(known) => Ok(Self(known.code().to_owned())),
            None => Err(ParseError::new(
                "must be an ISO 4217 currency code (e.g. EUR, USD, INR)",
            )),
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for Currency {
    type Error = ParseError;
    fn try_from(raw: String) -> Result<Self, ParseError> {
        Self::parse(&raw)
    }
}

impl From<Currency> for String {
    fn from(currency: Currency) -> Self {
        currency.0
    }
}

/// An amount in a currency, as it travels on the stream.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Revenue {
    pub currency: Currency,
    /// Millionths of the currency's major unit (12.5 EUR is 12,500,000).
    pub micros: i64,
}

impl Revenue {
    /// From an amount in major units: finite, at most [`MAX_AMOUNT`] either way (a negative
    /// amount is a refund), rounded to the micro-unit.
    pub fn new(amount: f64, currency: Currency) -> Result<Self, ParseError> {
        if !amount.is_finite() || amount.abs() > MAX_AMOUNT {
            return Err(ParseError::new(format!(
                "must be a finite number of at most {MAX_AMOUNT:e} in absolute value"
            )));
        }
        Ok(Self {
            currency,
            micros: (amount * 1e6).round() as i64,
        })
    }
}

/// A sum of amounts in micro-units, exact at any size an account can reach (sums are
/// Decimal128 in ClickHouse). Serialised as a JSON number in major units written out
/// exactly (`12.5`, `10000000000000.000001`), never through a float.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord)]
pub struct AmountSum(pub i128);

impl AmountSum {
    /// Major units, exactly, as decimal text (`12.5`, `100.0`).
    pub fn to_decimal_string(self) -> String {
        let sign = if self.0 < 0 { "-" } else { "" };
        let magnitude = self.0.unsigned_abs();
        let (whole, fraction) = (magnitude / 1_000_000, magnitude % 1_000_000);
        if fraction == 0 {
            // As a float prints a whole number: the answers' numbers keep their form.
            return format!("{sign}{whole}.0");
        }
        let fraction = format!("{fraction:06}");
        format!("{sign}{whole}.{}", fraction.trim_end_matches('0'))
    }
}

impl std::ops::AddAssign for AmountSum {
    fn add_assign(&mut self, more: Self) {
        self.0 = self.0.saturating_add(more.0);
    }
}

impl Serialize for AmountSum {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let number = serde_json::value::RawValue::from_string(self.to_decimal_string())
            .map_err(serde::ser::Error::custom)?;
        number.serialize(serializer)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn currencies_are_iso_codes() {
        assert_eq!(Currency::parse("eur").unwrap().as_str(), "EUR");
        assert_eq!(Currency::parse(" INR ").unwrap().as_str(), "INR");
        assert!(Currency::parse("XXY").is_err());
        assert!(Currency::parse("EURO").is_err());
        assert!(Currency::parse("").is_err());
    }

    #[test]
    fn sums_are_written_exactly() {
        let text = |micros: i128| serde_json::to_string(&AmountSum(micros)).unwrap();
        assert_eq!(text(12_500_000), "12.5");
        assert_eq!(text(-3_990_000), "-3.99");
        assert_eq!(text(0), "0.0");
        assert_eq!(text(100_000_000), "100.0");
        assert_eq!(text(10_000_000_000_000_000_001), "10000000000000.000001");
        assert_eq!(text(-1), "-0.000001");
        let value: serde_json::Value =
            serde_json::from_str(&text(10_000_000_000_000_000_000)).unwrap();
        assert_eq!(value, serde_json::json!(1e13));
    }

    #[test]
    fn amounts_are_exact_micros_and_bounded() {
        let eur = Currency::parse("EUR").unwrap();
        assert_eq!(Revenue::new(12.5, eur.clone()).unwrap().micros, 12_500_000);
        assert_eq!(
            Revenue::new(0.1 + 0.2, eur.clone()).unwrap().micros,
            300_000
        );
        assert_eq!(Revenue::new(-3.99, eur.clone()).unwrap().micros, -3_990_000);
        assert!(Revenue::new(f64::NAN, eur.clone()).is_err());
        assert!(Revenue::new(f64::INFINITY, eur.clone()).is_err());
        assert!(Revenue::new(2e12, eur).is_err());
    }
}
