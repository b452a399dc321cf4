pub mod batch;
pub mod capture;
pub mod events;

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use linktrace_domain::{ErrorCode, ErrorEnvelope};

/// Unknown paths answer with the envelope too.
pub async fn not_found() -> Response {
    (
        StatusCode::NOT_FOUND,
        Json(ErrorEnvelope::new(ErrorCode::NotFound, "no such endpoint")),
    )
        .into_response()
}

pub async fn method_not_allowed() -> Response {
    (
        StatusCode::METHOD_NOT_ALLOWED,
        Json(ErrorEnvelope::new(
            ErrorCode::ValidationError,
            "method not allowed on this endpoint",
        )),
    )
        .into_response()
}
