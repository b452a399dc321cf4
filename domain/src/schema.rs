//! How the text values of this crate travel on the wire: each parses itself from a JSON
//! string (so a request type can hold it directly and a refusal names the rule) and states
//! its rule in the OpenAPI description, beside the parser that enforces it.

use utoipa::openapi::schema::{ObjectBuilder, Schema, Type};
use utoipa::openapi::RefOr;

/// Implements `TryFrom<String>`, `Serialize` and `Deserialize` for a text newtype with
/// `parse(&str) -> Result<Self, ParseError>` and `as_str()`; given a second argument, a
/// `String` → `Result<Self, ParseError>` function, the text read is parsed by it instead.
#[macro_export]
macro_rules! text_value {
    ($type:ty) => {
        $crate::text_value!($type, |raw: String| <$type>::parse(&raw));
    };
    // `$parse_owned` takes the text read from a request as it is, so that a value read
    // once is not copied again into its newtype (`parse` takes a `&str` and copies it).
    ($type:ty, $parse_owned:expr) => {
        impl TryFrom<String> for $type {
            type Error = $crate::ParseError;
            fn try_from(raw: String) -> Result<Self, Self::Error> {
                ($parse_owned)(raw)
            }
        }

        impl serde::Serialize for $type {
            fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.serialize_str(self.as_str())
            }
        }

        impl<'de> serde::Deserialize<'de> for $type {
            fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                let raw = String::deserialize(deserializer)?;
                Self::try_from(raw).map_err(serde::de::Error::custom)
            }
        }
    };
}

/// A string schema: its pattern, length bounds and what it means.
pub fn text(
    pattern: Option<&str>,
    min_length: Option<usize>,
    max_length: Option<usize>,
    description: &str,
) -> RefOr<Schema> {
    ObjectBuilder::new()
        .schema_type(Type::String)
        .pattern(pattern)
        .min_length(min_length)
        .max_length(max_length)
        .description(Some(description))
        .into()
}
