//! The failures every service answers the same way — invalid input, a body too large, a
//! bad key, a plan without the endpoint, an unknown or foreign link, Postgres away — with
//! their status, code and message in one place. Each service's own error enum wraps this
//! and adds what only it can fail with.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use linktrace_domain::{ErrorCode, ErrorEnvelope};

use crate::keys::PlanUpgradeRequired;
use crate::request::RequestError;

#[derive(Debug, thiserror::Error)]
pub enum CommonError {
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
    #[error("a dependency is unavailable; retry later")]
    Database(#[from] sqlx::Error),
}

impl CommonError {
    pub fn status(&self) -> StatusCode {
        match self {
            CommonError::Validation(_) => StatusCode::BAD_REQUEST,
            CommonError::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            CommonError::Unauthorized => StatusCode::UNAUTHORIZED,
            CommonError::PlanUpgradeRequired => StatusCode::FORBIDDEN,
            CommonError::LinkNotFound => StatusCode::NOT_FOUND,
            CommonError::Database(_) => StatusCode::SERVICE_UNAVAILABLE,
        }
    }

    pub fn code(&self) -> ErrorCode {
        match self {
            CommonError::Validation(_) => ErrorCode::ValidationError,
            CommonError::PayloadTooLarge => ErrorCode::PayloadTooLarge,
            CommonError::Unauthorized => ErrorCode::Unauthorized,
            CommonError::PlanUpgradeRequired => ErrorCode::PlanUpgradeRequired,
            CommonError::LinkNotFound => ErrorCode::LinkNotFound,
            CommonError::Database(_) => ErrorCode::Unavailable,
        }
    }

    /// The label of `…_rejected_total{reason}`.
    pub fn reason(&self) -> &'static str {
        match self {
            CommonError::Validation(_) => "validation",
            CommonError::PayloadTooLarge => "too_large",
            CommonError::Unauthorized => "unauthorized",
            CommonError::PlanUpgradeRequired => "plan",
            CommonError::LinkNotFound => "link_not_found",
            CommonError::Database(_) => "database_unavailable",
        }
    }

    pub fn envelope(&self) -> ErrorEnvelope {
        ErrorEnvelope::new(self.code(), self.to_string())
    }
}

impl From<RequestError> for CommonError {
    fn from(error: RequestError) -> Self {
        match error {
            RequestError::TooLarge => CommonError::PayloadTooLarge,
            other => CommonError::Validation(other.to_string()),
        }
    }
}

impl From<PlanUpgradeRequired> for CommonError {
    fn from(_: PlanUpgradeRequired) -> Self {
        CommonError::PlanUpgradeRequired
    }
}

impl IntoResponse for CommonError {
    fn into_response(self) -> Response {
        if let CommonError::Database(cause) = &self {
            tracing::error!(error = %cause, "database unavailable");
        }
        (self.status(), Json(self.envelope())).into_response()
    }
}

/// Implements `From` for a service error enum whose `Common` variant wraps [`CommonError`],
/// for each of the types that convert into it (request rejections, a plan refusal,
/// Postgres errors).
#[macro_export]
macro_rules! wraps_common_error {
    ($service:ident) => {
        $crate::wraps_common_error!(
            $service;
            $crate::request::RequestError,
            $crate::keys::PlanUpgradeRequired,
            sqlx::Error
        );
    };
    ($service:ident; $($from:ty),*) => {$(
        impl From<$from> for $service {
            fn from(error: $from) -> Self {
                $service::Common(error.into())
            }
        }
    )*};
}
