pub mod admin;
pub mod analytics;
pub mod apps;
pub mod attributions;
pub mod dashboard;
pub mod domains;
pub mod export;
pub mod links;
pub mod opens;
pub mod redirect;
pub mod webhooks;

use axum::http::HeaderMap;
use linktrace_platform::error::CommonError;
use linktrace_platform::keys::KeyOwner;
use linktrace_platform::rate_limit::KeyRateLimiter;
use linktrace_platform::request::{self, header_value};

use crate::error::ApiError;
use crate::state::AppState;

/// Who calls: the owner of the request's `x-api-key`, or of the key its dashboard session
/// was started with.
pub type Caller = KeyOwner;

/// Resolves the caller's `x-api-key` through the key directory (without one: the
/// dashboard's session, `dashboard_sessions`), and takes one request of its rate
/// (`API_RATE_LIMIT_PER_SEC`).
pub async fn caller(state: &AppState, headers: &HeaderMap) -> Result<Caller, ApiError> {
    let owner = match header_value(headers, &[request::API_KEY]) {
        Some(key) => state.keys.resolve(Some(key)).await?,
        None => crate::dashboard_sessions::owner(state, headers).await?,
    };
    let caller = owner.ok_or(ApiError::Common(CommonError::Unauthorized))?;
    state
        .rate_limiter
        .check(caller.account_id, caller.environment)
        .map_err(|wait| ApiError::RateLimited {
            retry_after_secs: KeyRateLimiter::retry_after_secs(wait),
        })?;
    Ok(caller)
}

/// Test keys send test events and read; what live traffic uses (links' routing, apps) only
/// the live key changes.
pub fn require_live(caller: &Caller) -> Result<(), ApiError> {
    match caller.environment {
        linktrace_domain::Environment::Live => Ok(()),
        linktrace_domain::Environment::Test => Err(ApiError::LiveOnly),
    }
}
