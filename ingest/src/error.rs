//! Every way a request can fail, and the one place they become HTTP answers with the
//! documented error envelope.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use linktrace_domain::{ErrorCode, ErrorEnvelope};
use linktrace_platform::keys::PlanUpgradeRequired;
use linktrace_platform::request::{BodyError, FieldError};

#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    #[error("{0}")]
    Validation(String),
    #[error("request body is too large")]
    PayloadTooLarge,
    #[error("missing or invalid API key")]
    Unauthorized,
    #[error("this endpoint needs the Scale plan")]
    PlanUpgradeRequired,
    #[error("link not found")]
    LinkNotFound,
    #[error("too many requests for this API key; retry after {retry_after_secs} s")]
    RateLimited { retry_after_secs: u64 },
    #[error("monthly event quota exceeded")]
    QuotaExceeded { resets_on: String },
    #[error("the event stream is unavailable; retry later")]
    Unavailable(#[source] anyhow::Error),
    #[error("a dependency is unavailable; retry later")]
    Database(#[from] sqlx::Error),
}

impl From<BodyError> for IngestError {
    fn from(error: BodyError) -> Self {
        match error {
            BodyError::TooLarge => IngestError::PayloadTooLarge,
            other => IngestError::Validation(other.to_string()),
        }
    }
}

impl From<PlanUpgradeRequired> for IngestError {
    fn from(_: PlanUpgradeRequired) -> Self {
        IngestError::PlanUpgradeRequired
    }
}

impl From<FieldError> for IngestError {
    fn from(error: FieldError) -> Self {
        IngestError::Validation(error.0)
    }
}

impl IngestError {
    pub fn status(&self) -> StatusCode {
        match self {
            IngestError::Validation(_) => StatusCode::BAD_REQUEST,
            IngestError::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            IngestError::Unauthorized => StatusCode::UNAUTHORIZED,
            IngestError::PlanUpgradeRequired => StatusCode::FORBIDDEN,
            IngestError::LinkNotFound => StatusCode::NOT_FOUND,
            IngestError::QuotaExceeded { .. } | IngestError::RateLimited { .. } => {
                StatusCode::TOO_MANY_REQUESTS
            }
            IngestError::Unavailable(_) | IngestError::Database(_) => {
                StatusCode::SERVICE_UNAVAILABLE
            }
        }
    }

    /// The label used for `events_rejected_total{reason}`.
    pub fn reason(&self) -> &'static str {
        match self {
            IngestError::Validation(_) => "validation",
            IngestError::PayloadTooLarge => "too_large",
            IngestError::Unauthorized => "unauthorized",
            IngestError::PlanUpgradeRequired => "plan",
            IngestError::LinkNotFound => "link_not_found",
            IngestError::QuotaExceeded { .. } => "quota",
            IngestError::RateLimited { .. } => "rate_limited",
            IngestError::Unavailable(_) => "stream_unavailable",
            IngestError::Database(_) => "database_unavailable",
        }
    }

    pub fn envelope(&self) -> ErrorEnvelope {
        match self {
            IngestError::RateLimited { .. } => {
                ErrorEnvelope::new(ErrorCode::RateLimited, self.to_string())
            }
            IngestError::Validation(_) => {
                ErrorEnvelope::new(ErrorCode::ValidationError, self.to_string())
            }
            IngestError::PayloadTooLarge => {
                ErrorEnvelope::new(ErrorCode::PayloadTooLarge, self.to_string())
            }
            IngestError::Unauthorized => {
                ErrorEnvelope::new(ErrorCode::Unauthorized, self.to_string())
            }
            IngestError::PlanUpgradeRequired => {
                ErrorEnvelope::new(ErrorCode::PlanUpgradeRequired, self.to_string())
            }
            IngestError::LinkNotFound => {
                ErrorEnvelope::new(ErrorCode::LinkNotFound, self.to_string())
            }
            IngestError::QuotaExceeded { resets_on } => {
                ErrorEnvelope::quota_exceeded(resets_on.clone())
            }
            IngestError::Unavailable(_) | IngestError::Database(_) => {
                ErrorEnvelope::new(ErrorCode::Unavailable, self.to_string())
            }
        }
    }
}

impl IntoResponse for IngestError {
    fn into_response(self) -> Response {
        match &self {
            IngestError::Unavailable(cause) => {
                tracing::error!(error = ?cause, "event stream unavailable")
            }
            IngestError::Database(cause) => tracing::error!(error = %cause, "database unavailable"),
            _ => {}
        }
        let mut response = (self.status(), Json(self.envelope())).into_response();
        if let IngestError::RateLimited { retry_after_secs } = self {
            response
                .headers_mut()
                .insert(axum::http::header::RETRY_AFTER, retry_after_secs.into());
        }
        response
    }
}
