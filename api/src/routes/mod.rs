pub mod admin;
pub mod analytics;
pub mod apps;
pub mod attributions;
pub mod breakdowns;
pub mod dashboard;
pub mod export;
pub mod links;
pub mod params;
pub mod redirect;
pub mod webhooks;

use axum::http::HeaderMap;
use linktrace_platform::error::CommonError;
use linktrace_platform::keys::KeyOwner;
use linktrace_platform::request::{self, header_value};

use crate::error::ApiError;
use crate::state::AppState;

/// Who calls: the owner of the request's `x-api-key`.
pub type Caller = KeyOwner;

/// Resolves the caller's `x-api-key` through the key directory.
pub async fn caller(state: &AppState, headers: &HeaderMap) -> Result<Caller, ApiError> {
    state
        .keys
        .resolve(header_value(headers, &[request::API_KEY]))
        .await?
        .ok_or(ApiError::Common(CommonError::Unauthorized))
}
