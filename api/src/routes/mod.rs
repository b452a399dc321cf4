pub mod admin;
pub mod analytics;
pub mod attributions;
pub mod dashboard;
pub mod links;
pub mod redirect;

use axum::http::HeaderMap;
use linktrace_platform::request::header_value;

use crate::accounts::{self, Caller};
use crate::error::ApiError;
use crate::state::AppState;

/// Resolves the caller's `x-api-key`.
pub async fn caller(state: &AppState, headers: &HeaderMap) -> Result<Caller, ApiError> {
    accounts::authenticate(&state.pool, header_value(headers, &["x-api-key"])).await
}
