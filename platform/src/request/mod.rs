//! Reading requests the same way in every service. Bodies and query strings are read into
//! derived request types (`serde`, camelCase as the contract spells it) whose fields are
//! domain newtypes that parse themselves; a refusal names the field by its path
//! (`serde_path_to_error`) and becomes the error envelope, never axum's plain-text
//! rejection. Unknown fields are ignored.

mod fields;

pub use fields::*;

use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Path, Request};
use axum::http::header::CONTENT_TYPE;
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use linktrace_domain::{ErrorCode, ErrorEnvelope};
use serde::de::DeserializeOwned;

/// Why a request's body or query string was refused.
#[derive(Debug, thiserror::Error)]
pub enum RequestError {
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
    /// A field missing or not of its documented type or rule; the message names it.
    #[error("{0}")]
    Invalid(String),
}

impl IntoResponse for RequestError {
    fn into_response(self) -> Response {
        let (status, code) = match self {
            RequestError::TooLarge => (StatusCode::PAYLOAD_TOO_LARGE, ErrorCode::PayloadTooLarge),
            _ => (StatusCode::BAD_REQUEST, ErrorCode::ValidationError),
        };
        (status, Json(ErrorEnvelope::new(code, self.to_string()))).into_response()
    }
}

/// A request body sent as `application/json`, read into `T`. Take it as
/// `Result<JsonBody<T>, RequestError>` to check the caller's key first.
pub struct JsonBody<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for JsonBody<T> {
    type Rejection = RequestError;

    async fn from_request(request: Request, state: &S) -> Result<Self, Self::Rejection> {
        if !is_json(request.headers()) {
            return Err(RequestError::NotJson);
        }
        let bytes = Bytes::from_request(request, state)
            .await
            .map_err(|rejection| {
                if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
                    RequestError::TooLarge
                } else {
                    RequestError::Unreadable(rejection.to_string())
                }
            })?;
        from_json(&bytes).map(JsonBody)
    }
}

fn is_json(headers: &HeaderMap) -> bool {
    headers
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|v| v.trim().eq_ignore_ascii_case("application/json"))
}

/// Reads one JSON document into `T`. serde_json refuses nesting deeper than 128 levels
/// with an error, not a stack overflow.
pub fn from_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, RequestError> {
    // serde reads a struct from an array too (by position); a body must be an object.
    let first = bytes.iter().find(|b| !b.is_ascii_whitespace());
    if first.is_some_and(|&b| b != b'{')
        && serde_json::from_slice::<serde::de::IgnoredAny>(bytes).is_ok()
    {
        return Err(RequestError::NotAnObject);
    }
    // The common case, a valid body, without the path bookkeeping; a refusal is read again
    // with it, so that its message names the field.
    if let Ok(value) = serde_json::from_slice(bytes) {
        return Ok(value);
    }
    let mut deserializer = serde_json::Deserializer::from_slice(bytes);
    let value = serde_path_to_error::deserialize(&mut deserializer).map_err(|error| {
        let path = error.path().to_string();
        let error = error.into_inner();
        if !error.is_data() {
            return RequestError::Malformed(error.to_string());
        }
        let message = without_position(error.to_string());
        if path == "." && message.starts_with("invalid type") {
            return RequestError::NotAnObject;
        }
        RequestError::Invalid(field_message(&path, &message))
    })?;
    deserializer
        .end()
        .map_err(|error| RequestError::Malformed(error.to_string()))?;
    Ok(value)
}

/// serde_json appends " at line L column C"; the field's path says more.
fn without_position(mut message: String) -> String {
    if let Some(at) = message.rfind(" at line ") {
        message.truncate(at);
    }
    message
}

/// Says what is wrong with the field at `path` in the words of our envelope: serde's own
/// messages rephrased, a domain rule's message after the field's name.
pub(crate) fn field_message(path: &str, message: &str) -> String {
    let field = |name: &str| match path {
        "." => name.to_owned(),
        parent => format!("{parent}.{name}"),
    };
    let quoted = |s: &str| s.replace('`', "\"");
    if let Some(name) = message
        .strip_prefix("missing field `")
        .and_then(|rest| rest.strip_suffix('`'))
    {
        return format!("{} is required", field(name));
    }
    if let Some(name) = message
        .strip_prefix("duplicate field `")
        .and_then(|rest| rest.strip_suffix('`'))
    {
        return format!("{} must be given once", field(name));
    }
    if let Some((_, expected)) = message
        .strip_prefix("invalid type: ")
        .and_then(|rest| rest.rsplit_once(", expected "))
    {
        let expected = match expected {
            e if e.starts_with("struct ") || e == "a map" => "an object",
            "a sequence" => "an array",
            "a string" | "a boolean" => expected,
            e if e.starts_with('u') || e.starts_with('i') => "an integer",
            other => return format!("{path} must be {}", quoted(other)),
        };
        return format!("{path} must be {expected}");
    }
    if let Some((_, expected)) = message
        .strip_prefix("unknown variant ")
        .and_then(|rest| rest.split_once(", expected "))
    {
        let expected = expected.strip_prefix("one of ").unwrap_or(expected);
        return format!("{path} must be {}", quoted(expected));
    }
    if message.starts_with("invalid value: ") {
        let expected = message.rsplit_once(", expected ").map_or("", |(_, e)| e);
        return format!("{path} must be {}", quoted(expected));
    }
    // A nested object's refusal, already naming the field inside it (see `object`).
    if message.starts_with('.') {
        return format!("{path}{message}");
    }
    // A domain newtype's own rule ("must be 4-32 characters long (got 3)").
    format!("{path} {message}")
}

/// Query-string parameters read into `T`. Take it as `Result<QueryParams<T>, RequestError>`
/// to check the caller's key first.
pub struct QueryParams<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequestParts<S> for QueryParams<T> {
    type Rejection = RequestError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        let query = parts.uri.query().unwrap_or_default();
        let deserializer =
            serde_urlencoded::Deserializer::new(form_urlencoded::parse(query.as_bytes()));
        serde_path_to_error::deserialize(deserializer)
            .map(QueryParams)
            .map_err(|error| {
                let path = error.path().to_string();
                RequestError::Invalid(field_message(&path, &error.into_inner().to_string()))
            })
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

/// The header an API key comes in.
pub const API_KEY: HeaderName = HeaderName::from_static("x-api-key");

/// The secret from the first of `names` present in `headers`. (Names, not text: a look-up
/// by text parses the name every time.)
pub fn header_value<'a>(headers: &'a HeaderMap, names: &[HeaderName]) -> Option<&'a str> {
    first_present(headers, names).and_then(|v| v.to_str().ok())
}

fn first_present<'a>(headers: &'a HeaderMap, names: &[HeaderName]) -> Option<&'a HeaderValue> {
    names.iter().find_map(|name| headers.get(name))
}

/// The API key a request presents, as an extractor: the first of the key headers present,
/// [`API_KEY`] unless a route says otherwise (`from_headers`). Taken alone, not by
/// extracting the `HeaderMap`, which copies every header of the request (two allocations
/// and each header's reference count, per request).
#[derive(Debug, Clone, Default)]
pub struct PresentedKey(Option<HeaderValue>);

impl PresentedKey {
    /// The first of `names` present in `headers`.
    pub fn from_headers(headers: &HeaderMap, names: &[HeaderName]) -> Self {
        Self(first_present(headers, names).cloned())
    }

    /// The key as text; `None` when absent or not visible ASCII.
    pub fn secret(&self) -> Option<&str> {
        self.0.as_ref().and_then(|v| v.to_str().ok())
    }
}

impl<S: Sync> FromRequestParts<S> for PresentedKey {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(Self::from_headers(&parts.headers, &[API_KEY]))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use linktrace_domain::{EventName, ShortCode};
    use serde::Deserialize;

    #[derive(Debug, Deserialize)]
    #[serde(rename_all = "camelCase")]
    #[allow(dead_code)]
    struct Sample {
        link_short_code: ShortCode,
        event_name: Option<EventName>,
        note: Option<Text<0, 5>>,
        #[serde(default, deserialize_with = "optional_object")]
        nested: Option<Nested>,
        environment: Option<linktrace_domain::Environment>,
        #[serde(default, deserialize_with = "present")]
        cleared: Option<Option<Text<0, 5>>>,
    }

    #[derive(Debug, Deserialize)]
    #[serde(rename_all = "camelCase")]
    #[allow(dead_code)]
    struct Nested {
        title: Text<1, 3>,
    }

    fn refusal(json: &str) -> String {
        match from_json::<Sample>(json.as_bytes()) {
            Err(RequestError::Invalid(message)) => message,
            other => panic!("{json}: {other:?}"),
        }
    }

    #[test]
    fn messages_name_the_field_and_its_rule() {
        assert_eq!(refusal("{}"), "linkShortCode is required");
        assert_eq!(
            refusal(r#"{"linkShortCode": 7}"#),
            "linkShortCode must be a string"
        );
        assert_eq!(
            refusal(r#"{"linkShortCode": "ab"}"#),
            "linkShortCode must be 4-32 characters long (got 2)"
        );
        assert_eq!(
            refusal(r#"{"linkShortCode": "abcd", "note": "toolong"}"#),
            "note must be at most 5 characters"
        );
        assert_eq!(
            refusal(r#"{"linkShortCode": "abcd", "note": "a\u0000"}"#),
            "note must not contain NUL characters"
        );
        assert_eq!(
            refusal(r#"{"linkShortCode": "abcd", "nested": {}}"#),
            "nested.title is required"
        );
        assert_eq!(
            refusal(r#"{"linkShortCode": "abcd", "nested": {"title": ""}}"#),
            "nested.title must be 1-3 characters"
        );
        assert_eq!(
            refusal(r#"{"linkShortCode": "abcd", "nested": []}"#),
            "nested must be an object"
        );
        assert_eq!(
            refusal(r#"{"linkShortCode": "abcd", "environment": "prod"}"#),
            "environment must be \"live\" or \"test\""
        );
        assert_eq!(
            refusal(r#"{"linkShortCode": "abcd", "eventName": "click"}"#),
            "eventName 'click' is reserved"
        );
    }

    #[test]
    fn syntax_and_shape_are_told_apart_from_fields() {
        assert!(matches!(
            from_json::<Sample>(b"{"),
            Err(RequestError::Malformed(_))
        ));
        assert!(matches!(
            from_json::<Sample>(br#"{"linkShortCode": "abcd"} x"#),
            Err(RequestError::Malformed(_))
        ));
        assert!(matches!(
            from_json::<Sample>(b"[1]"),
            Err(RequestError::NotAnObject)
        ));
    }

    #[test]
    fn patch_fields_tell_absent_from_null() {
        let absent: Sample = from_json(br#"{"linkShortCode": "abcd"}"#).unwrap();
        assert_eq!(absent.cleared, None);
        let null: Sample = from_json(br#"{"linkShortCode": "abcd", "cleared": null}"#).unwrap();
        assert_eq!(null.cleared, Some(None));
    }
}
