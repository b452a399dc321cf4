//! Who may reach what, before any handler runs (spec, "Keys, limits and abuse"):
//! - `/admin/v1/*` is served only to `ADMIN_NETWORKS` (default loopback); to anyone else it
//!   does not exist (404). The local stack's development token is accepted from loopback
//!   only, whatever the networks say.
//! - Failed authentication (a wrong admin token, a wrong or revoked API key) is throttled
//!   per client address: after `AUTH_FAILURES_PER_MINUTE` failures in a minute, that
//!   address gets `429 RATE_LIMITED` with `Retry-After` until the minute is over, even with
//!   a right key (a guesser learns nothing from a late hit).
//! - In production (`LINKTRACE_ENV=production`, what compose sets) the api will not start
//!   without an admin token of its own ([`check_production`]).
//!
//! The client address is the TCP peer, or what the trusted gateway says (`TRUSTED_PROXIES`).

use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use linktrace_platform::client_ip::{canonical, Networks};
use linktrace_platform::failed_auth::FailedAuthentications;

use crate::error::ApiError;
use crate::state::AppState;

/// The token `deploy/up.sh` uses for the local stack (published in the README).
pub const DEVELOPMENT_ADMIN_TOKEN: &str = "lt_admin_local_dev_token";
/// The shortest admin token production accepts.
pub const MIN_PRODUCTION_TOKEN_LEN: usize = 32;

/// `LINKTRACE_ENV=production`: refuse to start without a real admin token.
pub fn check_production(deployment: &str, admin_token: &str) -> anyhow::Result<()> {
    match deployment {
        "development" => Ok(()),
        "production" => {
            anyhow::ensure!(
                !admin_token.is_empty(),
                "LINKTRACE_ADMIN_TOKEN must be set in production (LINKTRACE_ENV=production)"
            );
            anyhow::ensure!(
                admin_token != DEVELOPMENT_ADMIN_TOKEN,
                "LINKTRACE_ADMIN_TOKEN is the published development token; set one of your own"
            );
            anyhow::ensure!(
                admin_token.len() >= MIN_PRODUCTION_TOKEN_LEN,
                "LINKTRACE_ADMIN_TOKEN must be at least {MIN_PRODUCTION_TOKEN_LEN} characters in production"
            );
            Ok(())
        }
        other => anyhow::bail!("LINKTRACE_ENV must be development or production, not {other:?}"),
    }
}

/// Admin networks and the failed-authentication throttle.
pub struct Access {
    pub admin_networks: Networks,
    pub failures: FailedAuthentications,
}

impl Access {
    pub fn new(admin_networks: Networks, failures: FailedAuthentications) -> Self {
        Self {
            admin_networks,
            failures,
        }
    }
}

/// The layer of `/admin/v1/*`.
pub async fn admin_only(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let ip = state.access.failures.client_ip(&request);
    let development_token = state.settings.admin_token.expose() == DEVELOPMENT_ADMIN_TOKEN;
    let allowed = state.access.admin_networks.contains(ip)
        && (!development_token || canonical(ip).is_loopback());
    if !allowed {
        return ApiError::NotFound("route").into_response();
    }
    state.access.failures.guard(ip, request, next).await
}

/// The layer of the key-authenticated `/api/v1/*` routes.
pub async fn throttle_failed_keys(
    State(state): State<AppState>,
    request: Request,
    next: Next,
) -> Response {
    if !request.uri().path().starts_with("/api/") {
        return next.run(request).await;
    }
    throttle_failed_authentication(State(state), request, next).await
}

/// The layer of routes that authenticate every request (the dashboard's sign-in): a 401 is
/// a failed authentication of its address, as a wrong `x-api-key` is.
pub async fn throttle_failed_authentication(
    State(state): State<AppState>,
    request: Request,
    next: Next,
) -> Response {
    let ip = state.access.failures.client_ip(&request);
    state.access.failures.guard(ip, request, next).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn production_needs_a_token_of_its_own() {
        assert!(check_production("development", "").is_ok());
        assert!(check_production("production", "").is_err());
        assert!(check_production("production", DEVELOPMENT_ADMIN_TOKEN).is_err());
        assert!(check_production("production", "short").is_err());
        assert!(check_production("production", &"k".repeat(32)).is_ok());
        assert!(check_production("staging", &"k".repeat(32)).is_err());
    }
}
