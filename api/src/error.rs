//! Every way an api request can fail, mapped to HTTP and the documented envelope here only.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use linktrace_domain::{ErrorCode, ErrorEnvelope};
use linktrace_platform::keys::PlanUpgradeRequired;
use linktrace_platform::request::{BodyError, FieldError};

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("{0}")]
    Validation(String),
    #[error("request body is too large")]
    PayloadTooLarge,
    #[error("missing or invalid API key")]
    Unauthorized,
    #[error("missing or invalid admin token")]
    AdminUnauthorized,
    #[error("this endpoint needs the Scale plan")]
    PlanUpgradeRequired,
    #[error("link not found")]
    LinkNotFound,
    #[error("{0} not found")]
    NotFound(&'static str),
    #[error("short code is already taken")]
    ShortCodeTaken,
    #[error("a dependency is unavailable; retry later")]
    Database(#[from] sqlx::Error),
    #[error("analytics are unavailable; retry later")]
    Analytics(#[from] clickhouse::error::Error),
    #[error("the event stream is unavailable; retry later")]
    Stream(String),
}

impl From<BodyError> for ApiError {
    fn from(error: BodyError) -> Self {
        match error {
            BodyError::TooLarge => ApiError::PayloadTooLarge,
            other => ApiError::Validation(other.to_string()),
        }
    }
}

impl From<PlanUpgradeRequired> for ApiError {
    fn from(_: PlanUpgradeRequired) -> Self {
        ApiError::PlanUpgradeRequired
    }
}

impl From<FieldError> for ApiError {
    fn from(error: FieldError) -> Self {
        ApiError::Validation(error.0)
    }
}

impl ApiError {
    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::Validation(_) => StatusCode::BAD_REQUEST,
            ApiError::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::Unauthorized | ApiError::AdminUnauthorized => StatusCode::UNAUTHORIZED,
            ApiError::PlanUpgradeRequired => StatusCode::FORBIDDEN,
            ApiError::LinkNotFound | ApiError::NotFound(_) => StatusCode::NOT_FOUND,
            ApiError::ShortCodeTaken => StatusCode::CONFLICT,
            ApiError::Database(_) | ApiError::Analytics(_) | ApiError::Stream(_) => {
                StatusCode::SERVICE_UNAVAILABLE
            }
        }
    }

    fn code(&self) -> ErrorCode {
        match self {
            ApiError::Validation(_) => ErrorCode::ValidationError,
            ApiError::PayloadTooLarge => ErrorCode::PayloadTooLarge,
            ApiError::Unauthorized | ApiError::AdminUnauthorized => ErrorCode::Unauthorized,
            ApiError::PlanUpgradeRequired => ErrorCode::PlanUpgradeRequired,
            ApiError::LinkNotFound => ErrorCode::LinkNotFound,
            ApiError::NotFound(_) => ErrorCode::NotFound,
            ApiError::ShortCodeTaken => ErrorCode::ShortCodeTaken,
            ApiError::Database(_) | ApiError::Analytics(_) | ApiError::Stream(_) => {
                ErrorCode::Unavailable
            }
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        match &self {
            ApiError::Database(cause) => tracing::error!(error = %cause, "database error"),
            ApiError::Analytics(cause) => tracing::error!(error = %cause, "ClickHouse error"),
            ApiError::Stream(cause) => tracing::error!(error = %cause, "event stream error"),
            _ => {}
        }
        (
            self.status(),
            Json(ErrorEnvelope::new(self.code(), self.to_string())),
        )
            .into_response()
    }
}
