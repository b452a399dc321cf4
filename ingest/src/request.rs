//! Reading requests: the JSON body (content type, size, syntax) and typed fields with
//! messages that name the field. Unknown fields are ignored.

use axum::body::Bytes;
use axum::extract::{FromRequest, Request};
use axum::http::header::CONTENT_TYPE;
use axum::http::{HeaderMap, StatusCode};
use serde_json::{Map, Value};

use crate::error::IngestError;

/// A request body that is a JSON object sent as `application/json`.
pub struct JsonObject(pub Map<String, Value>);

impl<S: Send + Sync> FromRequest<S> for JsonObject {
    type Rejection = IngestError;

    async fn from_request(request: Request, state: &S) -> Result<Self, Self::Rejection> {
        let value = json_body(request, state).await?;
        match value {
            Value::Object(map) => Ok(JsonObject(map)),
            _ => Err(IngestError::Validation(
                "request body must be a JSON object".into(),
            )),
        }
    }
}

pub async fn json_body<S: Send + Sync>(request: Request, state: &S) -> Result<Value, IngestError> {
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
        return Err(IngestError::Validation(
            "Content-Type must be application/json".into(),
        ));
    }
    let bytes = Bytes::from_request(request, state)
        .await
        .map_err(|rejection| {
            if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
                IngestError::PayloadTooLarge
            } else {
                IngestError::Validation(format!("could not read the request body: {rejection}"))
            }
        })?;
    serde_json::from_slice(&bytes)
        .map_err(|e| IngestError::Validation(format!("malformed JSON: {e}")))
}

/// A required string field.
pub fn required_str<'a>(
    object: &'a Map<String, Value>,
    field: &str,
) -> Result<&'a str, IngestError> {
    optional_str(object, field)?
        .ok_or_else(|| IngestError::Validation(format!("{field} is required")))
}

/// An optional string field; `null` counts as absent.
pub fn optional_str<'a>(
    object: &'a Map<String, Value>,
    field: &str,
) -> Result<Option<&'a str>, IngestError> {
    match object.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.as_str())),
        Some(_) => Err(IngestError::Validation(format!("{field} must be a string"))),
    }
}

/// Turns a domain parse error into a message that names the field.
pub fn field_error(field: &str) -> impl Fn(linktrace_domain::ParseError) -> IngestError + '_ {
    move |e| IngestError::Validation(format!("{field} {e}"))
}

/// The secret from the first of `headers` present.
pub fn api_key_header<'a>(headers: &'a HeaderMap, names: &[&str]) -> Option<&'a str> {
    names
        .iter()
        .find_map(|name| headers.get(*name))
        .and_then(|v| v.to_str().ok())
}
