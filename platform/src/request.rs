//! Reading requests the same way in every service: JSON bodies (content type, size, syntax,
//! typed fields whose errors name the field; unknown fields are ignored), query strings and
//! path segments — each failing with the error envelope, never axum's plain-text rejection.

use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Path, Query, Request};
use axum::http::header::CONTENT_TYPE;
use axum::http::request::Parts;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use linktrace_domain::{ErrorCode, ErrorEnvelope, ParseError};
use serde::de::DeserializeOwned;
use serde_json::{Map, Value};

/// Why a request body could not be read as a JSON object.
#[derive(Debug, thiserror::Error)]
pub enum BodyError {
    #[error("Content-Type must be application/json")]
    NotJson,
    #[error("request body is too large")]
    TooLarge,
    #[error("could not read the request body: {0}")]
    Unreadable(String),
    #[error("malformed JSON: {0}")]
    Malformed(String),
    #[error("request body must be a JSON object")]
    NotAnObject,
}

impl IntoResponse for BodyError {
    fn into_response(self) -> Response {
        let (status, code) = match self {
            BodyError::TooLarge => (StatusCode::PAYLOAD_TOO_LARGE, ErrorCode::PayloadTooLarge),
            _ => (StatusCode::BAD_REQUEST, ErrorCode::ValidationError),
        };
        (status, Json(ErrorEnvelope::new(code, self.to_string()))).into_response()
    }
}

/// A field that is missing or not of the documented type/rule; the message names it.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct FieldError(pub String);

impl IntoResponse for FieldError {
    fn into_response(self) -> Response {
        let envelope = ErrorEnvelope::new(ErrorCode::ValidationError, self.0);
        (StatusCode::BAD_REQUEST, Json(envelope)).into_response()
    }
}

/// Query-string parameters. Take it as `Result<QueryParams<T>, FieldError>` to check the
/// caller's key first; a malformed query (a repeated field, say) is then a 400 envelope.
pub struct QueryParams<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequestParts<S> for QueryParams<T> {
    type Rejection = FieldError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        Query::try_from_uri(&parts.uri)
            .map(|Query(params)| QueryParams(params))
            .map_err(|rejection| FieldError(rejection.body_text()))
    }
}

/// The route's one path parameter, percent-decoded. A segment that is not UTF-8 once
/// decoded names nothing we store: it reads as empty, which no identifier parser accepts,
/// so the handler gives its usual not-found answer.
pub struct PathSegment(pub String);

impl<S: Send + Sync> FromRequestParts<S> for PathSegment {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        Ok(PathSegment(
            Path::<String>::from_request_parts(parts, state)
                .await
                .map(|Path(segment)| segment)
                .unwrap_or_default(),
        ))
    }
}

/// A request body that is a JSON object sent as `application/json`.
pub struct JsonObject(pub Map<String, Value>);

impl<S: Send + Sync> FromRequest<S> for JsonObject {
    type Rejection = BodyError;

    async fn from_request(request: Request, state: &S) -> Result<Self, Self::Rejection> {
        let is_json = request
            .headers()
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .map(|v| {
                v.split(';')
                    .next()
                    .unwrap_or("")
                    .trim()
                    .eq_ignore_ascii_case("application/json")
            })
            .unwrap_or(false);
        if !is_json {
            return Err(BodyError::NotJson);
        }
        let bytes = Bytes::from_request(request, state)
            .await
            .map_err(|rejection| {
                if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
                    BodyError::TooLarge
                } else {
                    BodyError::Unreadable(rejection.to_string())
                }
            })?;
        // serde_json refuses nesting deeper than 128 levels with an error, not a stack overflow.
        match serde_json::from_slice(&bytes) {
            Ok(Value::Object(map)) => Ok(JsonObject(map)),
            Ok(_) => Err(BodyError::NotAnObject),
            Err(error) => Err(BodyError::Malformed(error.to_string())),
        }
    }
}

/// A required string field.
pub fn required_str<'a>(
    object: &'a Map<String, Value>,
    field: &str,
) -> Result<&'a str, FieldError> {
    optional_str(object, field)?.ok_or_else(|| FieldError(format!("{field} is required")))
}

/// An optional string field; `null` counts as absent.
pub fn optional_str<'a>(
    object: &'a Map<String, Value>,
    field: &str,
) -> Result<Option<&'a str>, FieldError> {
    match object.get(field) {
        None | Some(Value::Null) => Ok(None),
        // Postgres text cannot hold NUL; refuse it here rather than fail later with a 503.
        Some(Value::String(s)) if s.contains('\0') => Err(FieldError(format!(
            "{field} must not contain NUL characters"
        ))),
        Some(Value::String(s)) => Ok(Some(s.as_str())),
        Some(_) => Err(FieldError(format!("{field} must be a string"))),
    }
}

/// An optional string of at most `max` characters.
pub fn optional_bounded_str<'a>(
    object: &'a Map<String, Value>,
    field: &str,
    max: usize,
) -> Result<Option<&'a str>, FieldError> {
    let value = optional_str(object, field)?;
    if value.is_some_and(|v| v.chars().count() > max) {
        return Err(FieldError(format!(
            "{field} must be at most {max} characters"
        )));
    }
    Ok(value)
}

/// Turns a domain parse error into a message that names the field.
pub fn field_error(field: &str) -> impl Fn(ParseError) -> FieldError + '_ {
    move |e| FieldError(format!("{field} {e}"))
}

/// The secret from the first of `names` present in `headers`.
pub fn header_value<'a>(headers: &'a HeaderMap, names: &[&str]) -> Option<&'a str> {
    names
        .iter()
        .find_map(|name| headers.get(*name))
        .and_then(|v| v.to_str().ok())
}
