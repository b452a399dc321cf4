//! `PUT /api/v1/apps`, and the link host's `/.well-known/apple-app-site-association` and
//! `/.well-known/assetlinks.json` built from the apps of the account the link host was given to (see `apps`).

use axum::extract::State;
use axum::http::header::{CACHE_CONTROL, CONTENT_TYPE, HOST};
use axum::http::{HeaderMap, HeaderValue};
use axum::response::{IntoResponse, Response};
use axum::Json;
use linktrace_domain::Endpoint;
use linktrace_platform::openapi::{errors, Yes};
use linktrace_platform::request::{JsonBody, RequestError};
use serde::Serialize;
use utoipa::ToSchema;

use crate::apps::{self, Apps};
use crate::error::ApiError;
use crate::routes::caller;
use crate::state::AppState;

/// The account's apps, as stored.
#[derive(Debug, Serialize, ToSchema)]
pub struct AppsAnswer {
    pub success: Yes,
    pub apps: Apps,
}

/// Set the account's iOS and Android apps (universal links and App Links for its links)
#[utoipa::path(
    put,
    path = "/api/v1/apps",
    operation_id = "putApps",
    tag = "api",
    request_body = Apps,
    responses(
        (status = 200, description = "Stored; the link host's well-known files list them", body = AppsAnswer),
        errors::BadRequest, errors::Unauthorized, errors::PlanUpgradeRequired, errors::Unavailable,
    ),
    security(("apiKey" = [])),
)]
pub async fn put(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Result<JsonBody<Apps>, RequestError>,
) -> Result<Response, ApiError> {
    let caller = caller(&state, &headers).await?;
    caller.require(Endpoint::CreateReferralLink)?;
    crate::routes::require_live(&caller)?;
    let JsonBody(apps) = body?;
    apps::put(&state.pool, caller.account_id, &apps).await?;
    Ok(Json(AppsAnswer { success: Yes, apps }).into_response())
}

/// Apple's apple-app-site-association for the link host (application/json, no redirect)
#[utoipa::path(
    get,
    path = "/.well-known/apple-app-site-association",
    operation_id = "appleAppSiteAssociation",
    tag = "redirect",
    responses(
        (status = 200, description = "The iOS app of the account the operator gave the link host to (LINK_HOST_ACCOUNT; none without it) claims the links' paths", content_type = "application/json"),
        errors::Unavailable,
    ),
)]
pub async fn apple_app_site_association(
    State(state): State<AppState>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let (apps, paths) = host_apps(&state, &headers).await?;
    Ok(well_known(apps::apple_app_site_association(&apps, paths)))
}

/// The apps the requested host lists, and the paths its links take: an account's verified
/// link domain lists that account's; the shared host those of the account it was given to.
async fn host_apps(
    state: &AppState,
    headers: &HeaderMap,
) -> Result<(Vec<Apps>, &'static str), ApiError> {
    let host = headers.get(HOST).and_then(|v| v.to_str().ok());
    Ok(match state.domain_owners.owner_of(host).await? {
        Some(owner) => (
            apps::of_link_host(&state.pool, Some(owner)).await?,
            apps::LINK_DOMAIN_PATHS,
        ),
        None => (
            apps::of_link_host(&state.pool, state.settings.link_host_account).await?,
            apps::SHARED_HOST_PATHS,
        ),
    })
}

/// Google's Digital Asset Links for the link host (application/json)
#[utoipa::path(
    get,
    path = "/.well-known/assetlinks.json",
    operation_id = "assetLinks",
    tag = "redirect",
    responses(
        (status = 200, description = "The Android app of the account the operator gave the link host to (LINK_HOST_ACCOUNT; none without it) may handle the links", content_type = "application/json"),
        errors::Unavailable,
    ),
)]
pub async fn assetlinks(
    State(state): State<AppState>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let (apps, _) = host_apps(&state, &headers).await?;
    Ok(well_known(apps::assetlinks(&apps)))
}

fn well_known(document: serde_json::Value) -> Response {
    let mut response = Json(document).into_response();
    let headers = response.headers_mut();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    // Apple's CDN and Android's verifier fetch these now and then; a minute is fresh enough.
    headers.insert(
        CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=60"),
    );
    response
}
