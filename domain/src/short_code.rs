use std::fmt;

use rand::Rng;

use crate::ParseError;

/// A referral link's short code: 4–32 ASCII letters and digits.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ShortCode(String);

impl ShortCode {
    pub const MIN_LEN: usize = 4;
    pub const MAX_LEN: usize = 32;

    pub fn parse(raw: &str) -> Result<Self, ParseError> {
        Self::parse_owned(raw.to_owned())
    }

    /// [`parse`](Self::parse), keeping `raw` as the code rather than copying it.
    pub fn parse_owned(raw: String) -> Result<Self, ParseError> {
        let len = raw.len();
        if !(Self::MIN_LEN..=Self::MAX_LEN).contains(&len) {
            return Err(ParseError::new(format!(
                "must be {}-{} characters long (got {len})",
                Self::MIN_LEN,
                Self::MAX_LEN
            )));
        }
        if !raw.bytes().all(|b| b.is_ascii_alphanumeric()) {
            return Err(ParseError::new(
                "must contain only ASCII letters and digits",
            ));
        }
        Ok(Self(raw))
    }

    /// A fresh code of 8 lowercase hex characters, as documented for links created
    /// without a custom code.
    pub fn generate() -> Self {
        let bytes: [u8; 4] = rand::thread_rng().gen();
        Self(hex::encode(bytes))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn into_string(self) -> String {
        self.0
    }
}

impl fmt::Display for ShortCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl AsRef<str> for ShortCode {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

crate::text_value!(ShortCode, ShortCode::parse_owned);

impl utoipa::PartialSchema for ShortCode {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        crate::schema::text(
            Some("^[A-Za-z0-9]{4,32}$"),
            Some(Self::MIN_LEN),
            Some(Self::MAX_LEN),
            "4-32 ASCII letters and digits",
        )
    }
}

impl utoipa::ToSchema for ShortCode {}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn accepts_documented_example_and_bounds() {
        assert!(ShortCode::parse("497b3422").is_ok());
        assert!(ShortCode::parse("abcd").is_ok());
        assert!(ShortCode::parse(&"a".repeat(32)).is_ok());
    }

    #[test]
    fn rejects_length_and_characters() {
        assert!(ShortCode::parse("abc").is_err());
        assert!(ShortCode::parse(&"a".repeat(33)).is_err());
        assert!(ShortCode::parse("abc-d").is_err());
        assert!(ShortCode::parse("abcd ").is_err());
        assert!(ShortCode::parse("ábcd").is_err());
        assert!(ShortCode::parse("").is_err());
    }

    #[test]
    fn generated_codes_are_eight_lowercase_hex() {
        for _ in 0..100 {
            let code = ShortCode::generate();
            assert_eq!(code.as_str().len(), 8);
            assert!(code
                .as_str()
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)));
        }
    }

    proptest! {
        #[test]
        fn parse_never_panics_and_accepts_exactly_the_rule(s in "\\PC{0,40}") {
            let ok = ShortCode::parse(&s).is_ok();
            let rule = (4..=32).contains(&s.len()) && s.bytes().all(|b| b.is_ascii_alphanumeric());
            prop_assert_eq!(ok, rule);
        }
    }
}
