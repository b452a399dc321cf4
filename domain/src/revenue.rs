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
