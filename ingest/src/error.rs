//! Every way an ingest request can fail, and the one place they become HTTP answers with
//! the documented error envelope. What every service shares is [`CommonError`].

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use linktrace_domain::{ErrorCode, ErrorEnvelope};
use linktrace_platform::error::CommonError;

#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    #[error(transparent)]
    Common(#[from] CommonError),
    #[error("too many requests for this API key; retry after {retry_after_secs} s")]
    RateLimited { retry_after_secs: u64 },
    #[error("monthly event quota exceeded")]
    QuotaExceeded { resets_on: String },
    #[error("this Idempotency-Key was used with another request body")]
    IdempotencyKeyReused,
    #[error("the event stream is unavailable; retry later")]
    Unavailable(#[source] anyhow::Error),
}

impl IngestError {
    pub fn validation(message: impl Into<String>) -> Self {
        CommonError::Validation(message.into()).into()
    }

    pub fn status(&self) -> StatusCode {
        match self {
            IngestError::Common(common) => common.status(),
            IngestError::QuotaExceeded { .. } | IngestError::RateLimited { .. } => {
                StatusCode::TOO_MANY_REQUESTS
            }
            IngestError::IdempotencyKeyReused => StatusCode::UNPROCESSABLE_ENTITY,
            IngestError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
        }
    }

    /// The label used for `events_rejected_total{reason}`.
    pub fn reason(&self) -> &'static str {
        match self {
            IngestError::Common(common) => common.reason(),
            IngestError::QuotaExceeded { .. } => "quota",
            IngestError::RateLimited { .. } => "rate_limited",
            IngestError::IdempotencyKeyReused => "idempotency_key_reused",
            IngestError::Unavailable(_) => "stream_unavailable",
        }
    }

    pub fn envelope(&self) -> ErrorEnvelope {
        match self {
            IngestError::Common(common) => common.envelope(),
            IngestError::RateLimited { .. } => {
                ErrorEnvelope::new(ErrorCode::RateLimited, self.to_string())
            }
            IngestError::QuotaExceeded { resets_on } => {
                ErrorEnvelope::quota_exceeded(resets_on.clone())
            }
            IngestError::IdempotencyKeyReused => {
                ErrorEnvelope::new(ErrorCode::IdempotencyKeyReused, self.to_string())
            }
            IngestError::Unavailable(_) => {
                ErrorEnvelope::new(ErrorCode::Unavailable, self.to_string())
            }
        }
    }
}

linktrace_platform::wraps_common_error!(IngestError);

impl IntoResponse for IngestError {
    fn into_response(self) -> Response {
        match &self {
            IngestError::Unavailable(cause) => {
                tracing::error!(error = ?cause, "event stream unavailable")
            }
            IngestError::Common(CommonError::Database(cause)) => {
                tracing::error!(error = %cause, "database unavailable")
            }
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
