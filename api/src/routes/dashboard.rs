//! The dashboard: `GET /dashboard`, a page over the public API (plain HTML and JS, no build
//! step) with charts drawn by uPlot, which deploy installs from the npm registry and this
//! module serves from `DASHBOARD_ASSETS_DIR` (never a CDN). Sign-in turns a key into an
//! `HttpOnly` session cookie (`dashboard_sessions`): the key is posted once by a plain HTML
//! form, or a one-time sign-in link is minted with it.

use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use axum::Json;
use chrono::{DateTime, Utc};
use linktrace_domain::ApiKey;
use linktrace_platform::error::CommonError;
use linktrace_platform::request::{self, header_value};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::dashboard_sessions::{self, Issued};
use crate::error::ApiError;
use crate::routes::caller;
use crate::state::AppState;
use linktrace_platform::openapi::{errors, Yes};

pub const PAGE: &str = "/dashboard";
pub const ASSET: &str = "/dashboard/assets/{file}";
pub const SIGN_IN: &str = "/dashboard/sign-in";
pub const SIGN_IN_LINK: &str = "/dashboard/sign-in/{token}";
pub const SIGN_OUT: &str = "/dashboard/sign-out";

pub async fn page() -> Response {
    (
        [
            // The page loads its own script and the charting library from this origin only.
            (
                header::CONTENT_SECURITY_POLICY,
                "default-src 'self'; script-src 'self' 'unsafe-inline'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; frame-ancestors 'none'",
            ),
            (header::REFERRER_POLICY, "no-referrer"),
        ],
        Html(include_str!("../../static/dashboard.html")),
    )
        .into_response()
}

/// The charting library's files: these two names only, from `DASHBOARD_ASSETS_DIR`.
pub async fn asset(State(state): State<AppState>, Path(file): Path<String>) -> Response {
    let content_type = match file.as_str() {
        "uPlot.iife.min.js" => "text/javascript; charset=utf-8",
        "uPlot.min.css" => "text/css; charset=utf-8",
        _ => return ApiError::NotFound("asset").into_response(),
    };
    let Some(dir) = &state.settings.dashboard_assets else {
        return ApiError::NotFound("asset").into_response();
    };
    match tokio::fs::read(dir.join(&file)).await {
        Ok(bytes) => (
            [
                (header::CONTENT_TYPE, content_type),
                (header::CACHE_CONTROL, "public, max-age=3600"),
            ],
            bytes,
        )
            .into_response(),
        Err(_) => ApiError::NotFound("asset").into_response(),
    }
}

/// The sign-in form's fields.
#[derive(Debug, Deserialize)]
pub struct SignInForm {
    #[serde(rename = "apiKey")]
    api_key: String,
}

/// `POST /dashboard/sign-in` (a form): the key, once, for a session cookie and the page.
/// A wrong key answers 401 (counted by the failed-authentication throttle).
pub async fn sign_in(
    State(state): State<AppState>,
    headers: HeaderMap,
    form: Result<axum::Form<SignInForm>, axum::extract::rejection::FormRejection>,
) -> Result<Response, ApiError> {
    if from_another_site(&headers) {
        return Ok(not_from_here());
    }
    let Ok(axum::Form(form)) = form else {
        return Err(ApiError::validation("apiKey: a form field is expected"));
    };
    let secret = form.api_key.trim();
    let Ok(key) = ApiKey::parse(secret) else {
        return Ok(refused("That is not an API key."));
    };
    if state.keys.resolve(Some(secret)).await?.is_none() {
        return Ok(refused("That key is not valid (revoked, or never issued)."));
    }
    let session = dashboard_sessions::start_session(&state.pool, key.hash().as_str()).await?;
    Ok(signed_in(&state, &session))
}

/// `GET /dashboard/sign-in/{token}`: a one-time sign-in link, redeemed for a session.
pub async fn sign_in_link(
    State(state): State<AppState>,
    Path(token): Path<String>,
) -> Result<Response, ApiError> {
    let Some(key_hash) = dashboard_sessions::redeem_sign_in_link(&state.pool, &token).await? else {
        return Ok(refused(
            "This sign-in link was used already, or has expired.",
        ));
    };
    let session = dashboard_sessions::start_session(&state.pool, &key_hash).await?;
    Ok(signed_in(&state, &session))
}

/// `POST /dashboard/sign-out` (a form): ends the session and removes its cookie.
pub async fn sign_out(
    State(state): State<AppState>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    if from_another_site(&headers) {
        return Ok(not_from_here());
    }
    if let Some(token) = dashboard_sessions::cookie_token(&headers) {
        dashboard_sessions::end(&state.pool, &token).await?;
    }
    Ok((
        StatusCode::SEE_OTHER,
        [
            (
                header::SET_COOKIE,
                dashboard_sessions::removal_cookie(state.settings.secure_cookies),
            ),
            (header::LOCATION, PAGE.to_owned()),
        ],
    )
        .into_response())
}

fn signed_in(state: &AppState, session: &Issued) -> Response {
    (
        StatusCode::SEE_OTHER,
        [
            (
                header::SET_COOKIE,
                dashboard_sessions::session_cookie(session, state.settings.secure_cookies),
            ),
            (header::LOCATION, PAGE.to_owned()),
            (header::CACHE_CONTROL, "no-store".to_owned()),
        ],
    )
        .into_response()
}

/// A form posted by another site's page (the browser says so in `Sec-Fetch-Site`): such a
/// sign-in would put the visitor in the other site's account (login CSRF), such a sign-out
/// would end their session. Clients that are not browsers send no such header.
fn from_another_site(headers: &HeaderMap) -> bool {
    matches!(
        headers.get("sec-fetch-site").and_then(|v| v.to_str().ok()),
        Some("cross-site" | "same-site")
    )
}

fn not_from_here() -> Response {
    notice(
        StatusCode::FORBIDDEN,
        "Sign in and out from the dashboard's own page.",
        "Open the dashboard",
    )
}

fn refused(why: &str) -> Response {
    notice(StatusCode::UNAUTHORIZED, why, "Back to the dashboard")
}

/// A small page saying why, with a link to the dashboard.
fn notice(status: StatusCode, why: &str, back: &str) -> Response {
    let page = format!(
        "<!doctype html><meta charset=\"utf-8\"><title>LinkTrace sign-in</title>\
         <p role=\"alert\">{why}</p><p><a href=\"{PAGE}\">{back}</a></p>"
    );
    (status, Html(page)).into_response()
}

/// A one-time sign-in link to the dashboard.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SignInLinkAnswer {
    pub success: Yes,
    /// Opens the dashboard signed in with the key that minted it; redeemable once.
    pub url: String,
    pub expires_at: DateTime<Utc>,
}

/// A one-time link that signs a browser in to the dashboard with this key (10 minutes)
#[utoipa::path(
    post,
    path = "/api/v1/dashboard/sign-in-links",
    operation_id = "createDashboardSignInLink",
    tag = "api",
    responses(
        (status = 201, description = "The link", body = SignInLinkAnswer),
        errors::Unauthorized, errors::Unavailable,
    ),
    security(("apiKey" = [])),
)]
pub async fn create_sign_in_link(
    State(state): State<AppState>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    caller(&state, &headers).await?;
    // Minted with the key itself (a session cannot mint links for another browser).
    let key = header_value(&headers, &[request::API_KEY])
        .and_then(|secret| ApiKey::parse(secret).ok())
        .ok_or(ApiError::Common(CommonError::Unauthorized))?;
    let link = dashboard_sessions::mint_sign_in_link(&state.pool, key.hash().as_str()).await?;
    let base = state.settings.public_base_url.trim_end_matches('/');
    let answer = SignInLinkAnswer {
        success: Yes,
        url: format!("{base}/dashboard/sign-in/{}", link.token),
        expires_at: link.expires_at,
    };
    Ok((StatusCode::CREATED, Json(answer)).into_response())
}
