use crate::ParseError;

/// The customer's own id for an event, which makes the event deduplicable: at most 255
/// characters.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct EntityId(String);

impl EntityId {
    pub const MAX_LEN: usize = 255;

    pub fn parse(raw: &str) -> Result<Self, ParseError> {
        Self::parse_owned(raw.to_owned())
    }

    /// [`parse`](Self::parse), keeping `raw` as the id rather than copying it.
    pub fn parse_owned(raw: String) -> Result<Self, ParseError> {
        if raw.is_empty() {
            return Err(ParseError::new("must not be empty"));
        }
        if raw.contains('\0') {
            return Err(ParseError::new("must not contain NUL characters"));
        }
        if raw.chars().count() > Self::MAX_LEN {
            return Err(ParseError::new(format!(
                "must be at most {} characters",
                Self::MAX_LEN
            )));
        }
        Ok(Self(raw))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn into_string(self) -> String {
        self.0
    }
}

crate::text_value!(EntityId, EntityId::parse_owned);

impl utoipa::PartialSchema for EntityId {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        crate::schema::text(
            Some("^[^\\u0000]*$"),
            Some(1),
            Some(Self::MAX_LEN),
            "your id for the event; makes it deduplicable",
        )
    }
}

impl utoipa::ToSchema for EntityId {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn length_limit_counts_characters() {
        assert!(EntityId::parse(&"x".repeat(255)).is_ok());
        assert!(EntityId::parse(&"x".repeat(256)).is_err());
        assert!(EntityId::parse(&"é".repeat(255)).is_ok());
        assert!(EntityId::parse("").is_err());
        assert!(EntityId::parse("a\0b").is_err());
    }
}
