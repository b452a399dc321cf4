//! Every way an api request can fail, mapped to HTTP and the documented envelope here only.
//! What every service shares is [`CommonError`].

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use linktrace_domain::{ErrorCode, ErrorEnvelope};
use linktrace_platform::error::CommonError;

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error(transparent)]
    Common(#[from] CommonError),
    #[error("missing or invalid admin token")]
    AdminUnauthorized,
    #[error("{0} not found")]
    NotFound(&'static str),
    #[error("short code is already taken")]
    ShortCodeTaken,
    #[error("this domain is held by another account")]
    DomainTaken,
    #[error("analytics are unavailable; retry later")]
    Analytics(#[from] clickhouse::error::Error),
    #[error("the event stream is unavailable; retry later")]
    Stream(String),
    /// A test key asked to change what live traffic uses (spec, "Keys, limits and abuse").
    #[error("a test key cannot change what live traffic uses; use the live key")]
    LiveOnly,
    #[error("too many requests for this API key; retry after {retry_after_secs} s")]
    RateLimited { retry_after_secs: u64 },
}

impl ApiError {
    pub fn validation(message: impl Into<String>) -> Self {
        CommonError::Validation(message.into()).into()
    }

    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::Common(common) => common.status(),
            ApiError::AdminUnauthorized => StatusCode::UNAUTHORIZED,
            ApiError::NotFound(_) => StatusCode::NOT_FOUND,
            ApiError::ShortCodeTaken | ApiError::DomainTaken => StatusCode::CONFLICT,
            ApiError::LiveOnly => StatusCode::FORBIDDEN,
            ApiError::RateLimited { .. } => StatusCode::TOO_MANY_REQUESTS,
            ApiError::Analytics(_) | ApiError::Stream(_) => StatusCode::SERVICE_UNAVAILABLE,
        }
    }

    /// The envelope this error answers with (per item of a bulk request).
    pub fn envelope(&self) -> ErrorEnvelope {
        ErrorEnvelope::new(self.code(), self.to_string())
    }

    fn code(&self) -> ErrorCode {
        match self {
            ApiError::Common(common) => common.code(),
            ApiError::AdminUnauthorized => ErrorCode::Unauthorized,
            ApiError::NotFound(_) => ErrorCode::NotFound,
            ApiError::ShortCodeTaken => ErrorCode::ShortCodeTaken,
            ApiError::DomainTaken => ErrorCode::DomainTaken,
            ApiError::LiveOnly => ErrorCode::Forbidden,
            ApiError::RateLimited { .. } => ErrorCode::RateLimited,
            ApiError::Analytics(_) | ApiError::Stream(_) => ErrorCode::Unavailable,
        }
    }
}

linktrace_platform::wraps_common_error!(ApiError);

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        match &self {
            ApiError::Common(CommonError::Database(cause)) => {
                tracing::error!(error = %cause, "database error")
            }
            ApiError::Analytics(cause) => tracing::error!(error = %cause, "ClickHouse error"),
            ApiError::Stream(cause) => tracing::error!(error = %cause, "event stream error"),
            _ => {}
        }
        let mut response = (
            self.status(),
            Json(ErrorEnvelope::new(self.code(), self.to_string())),
        )
            .into_response();
        if let ApiError::RateLimited { retry_after_secs } = self {
            response
                .headers_mut()
                .insert(axum::http::header::RETRY_AFTER, retry_after_secs.into());
        }
        response
    }
}
