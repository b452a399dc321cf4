//! The typed fields requests are made of, each parsing itself and describing itself in the
//! OpenAPI document: bounded text, bounded JSON objects, limits, timestamps, flags, and the
//! serde helpers for nested objects and PATCH's absent-or-null fields.

use std::fmt;

use linktrace_domain::ParseError;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Deserializer};
use utoipa::openapi::schema::{ObjectBuilder, Schema, Type};
use utoipa::openapi::RefOr;

use super::field_message;

/// Free text of `MIN` to `MAX` characters (Unicode scalar values), without NUL: Postgres
/// text cannot hold one, so it is refused here rather than failing later with a 503.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Text<const MIN: usize, const MAX: usize>(String);

impl<const MIN: usize, const MAX: usize> Text<MIN, MAX> {
    pub fn parse(raw: &str) -> Result<Self, ParseError> {
        if raw.contains('\0') {
            return Err(ParseError::new("must not contain NUL characters"));
        }
        let length = raw.chars().count();
        if length < MIN || length > MAX {
            return Err(ParseError::new(if MIN == 0 {
                format!("must be at most {MAX} characters")
            } else {
                format!("must be {MIN}-{MAX} characters")
            }));
        }
        Ok(Self(raw.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn into_string(self) -> String {
        self.0
    }
}

impl<'de, const MIN: usize, const MAX: usize> Deserialize<'de> for Text<MIN, MAX> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let raw = String::deserialize(deserializer)?;
        Self::parse(&raw).map_err(serde::de::Error::custom)
    }
}

impl<const MIN: usize, const MAX: usize> utoipa::PartialSchema for Text<MIN, MAX> {
    fn schema() -> RefOr<Schema> {
        ObjectBuilder::new()
            .schema_type(Type::String)
            .min_length((MIN > 0).then_some(MIN))
            .max_length(Some(MAX))
            .pattern(Some("^[^\\u0000]*$"))
            .into()
    }
}

impl<const MIN: usize, const MAX: usize> utoipa::ToSchema for Text<MIN, MAX> {
    fn name() -> std::borrow::Cow<'static, str> {
        format!("Text{MIN}To{MAX}").into()
    }
}

/// A JSON object of at most `MAX_BYTES` serialised (free-form data a request carries).
#[derive(Debug, Clone)]
pub struct JsonObject<const MAX_BYTES: usize>(pub serde_json::Map<String, serde_json::Value>);

impl<const MAX_BYTES: usize> JsonObject<MAX_BYTES> {
    pub fn within(map: serde_json::Map<String, serde_json::Value>) -> Result<Self, ParseError> {
        let size = serde_json::to_vec(&map)
            .map_err(|e| ParseError::new(e.to_string()))?
            .len();
        if size > MAX_BYTES {
            return Err(ParseError::new(format!(
                "must be at most {} KB serialised (got {size} bytes)",
                MAX_BYTES / 1024
            )));
        }
        Ok(Self(map))
    }
}

impl<'de, const MAX_BYTES: usize> Deserialize<'de> for JsonObject<MAX_BYTES> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let map = serde_json::Map::deserialize(deserializer)?;
        Self::within(map).map_err(serde::de::Error::custom)
    }
}

impl<const MAX_BYTES: usize> utoipa::PartialSchema for JsonObject<MAX_BYTES> {
    fn schema() -> RefOr<Schema> {
        ObjectBuilder::new()
            .schema_type(Type::Object)
            .description(Some(format!(
                "JSON object, at most {} KB serialised",
                MAX_BYTES / 1024
            )))
            .into()
    }
}

impl<const MAX_BYTES: usize> utoipa::ToSchema for JsonObject<MAX_BYTES> {
    fn name() -> std::borrow::Cow<'static, str> {
        format!("JsonObject{MAX_BYTES}").into()
    }
}

/// A page size or count limit from a query string: an integer from 1 to `MAX`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limit<const MAX: u32>(u32);

impl<const MAX: u32> Limit<MAX> {
    pub fn get(self) -> u32 {
        self.0
    }
}

impl<'de, const MAX: u32> Deserialize<'de> for Limit<MAX> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let raw = String::deserialize(deserializer)?;
        raw.parse()
            .ok()
            .filter(|n| (1..=MAX).contains(n))
            .map(Limit)
            .ok_or_else(|| serde::de::Error::custom(format!("must be 1-{MAX}")))
    }
}

impl<const MAX: u32> utoipa::PartialSchema for Limit<MAX> {
    fn schema() -> RefOr<Schema> {
        ObjectBuilder::new()
            .schema_type(Type::Integer)
            .minimum(Some(1))
            .maximum(Some(MAX))
            .into()
    }
}

impl<const MAX: u32> utoipa::ToSchema for Limit<MAX> {
    fn name() -> std::borrow::Cow<'static, str> {
        format!("Limit{MAX}").into()
    }
}

/// An ISO-8601 (RFC 3339) date-time with an offset, read as UTC.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timestamp(pub chrono::DateTime<chrono::Utc>);

impl<'de> Deserialize<'de> for Timestamp {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let raw = String::deserialize(deserializer)?;
        chrono::DateTime::parse_from_rfc3339(&raw)
            .map(|t| Timestamp(t.with_timezone(&chrono::Utc)))
            .map_err(|_| serde::de::Error::custom("must be an ISO-8601 date-time"))
    }
}

impl utoipa::PartialSchema for Timestamp {
    fn schema() -> RefOr<Schema> {
        ObjectBuilder::new()
            .schema_type(Type::String)
            .format(Some(utoipa::openapi::SchemaFormat::KnownFormat(
                utoipa::openapi::KnownFormat::DateTime,
            )))
            .into()
    }
}

impl utoipa::ToSchema for Timestamp {}

/// For a field that is itself an object: serde would also read a struct from an array, by
/// position; this refuses anything but a JSON object. Use with
/// `#[serde(deserialize_with = "object")]` (or `optional_object` for an `Option`).
pub fn object<'de, T: DeserializeOwned, D: Deserializer<'de>>(
    deserializer: D,
) -> Result<T, D::Error> {
    let map = serde_json::Map::deserialize(deserializer)?;
    serde_path_to_error::deserialize(serde_json::Value::Object(map)).map_err(|error| {
        let path = error.path().to_string();
        let message = field_message(&path, &error.into_inner().to_string());
        serde::de::Error::custom(format!(".{message}"))
    })
}

/// [`object`] for a field that may be absent or `null`.
pub fn optional_object<'de, T: DeserializeOwned, D: Deserializer<'de>>(
    deserializer: D,
) -> Result<Option<T>, D::Error> {
    match Option::<serde_json::Map<String, serde_json::Value>>::deserialize(deserializer)? {
        None => Ok(None),
        Some(map) => object(serde_json::Value::Object(map))
            .map(Some)
            .map_err(|error: serde_json::Error| serde::de::Error::custom(error.to_string())),
    }
}

/// [`optional_object`] for a PATCH field: absent, `null`, or an object.
pub fn present_object<'de, T: DeserializeOwned, D: Deserializer<'de>>(
    deserializer: D,
) -> Result<Option<Option<T>>, D::Error> {
    optional_object(deserializer).map(Some)
}

/// For PATCH bodies: `Option<Option<T>>` where the outer `None` is an absent field and
/// `Some(None)` an explicit `null`. Use with `#[serde(default, deserialize_with = "present")]`.
pub fn present<'de, T: Deserialize<'de>, D: Deserializer<'de>>(
    deserializer: D,
) -> Result<Option<Option<T>>, D::Error> {
    Option::<T>::deserialize(deserializer).map(Some)
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0.to_rfc3339())
    }
}

/// `true` or `false` in a query string.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Flag(pub bool);

impl<'de> Deserialize<'de> for Flag {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        match String::deserialize(deserializer)?.as_str() {
            "true" => Ok(Flag(true)),
            "false" => Ok(Flag(false)),
            _ => Err(serde::de::Error::custom("must be true or false")),
        }
    }
}

impl utoipa::PartialSchema for Flag {
    fn schema() -> RefOr<Schema> {
        ObjectBuilder::new().schema_type(Type::Boolean).into()
    }
}

impl utoipa::ToSchema for Flag {}
