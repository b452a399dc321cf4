//! `POST /api/v1/opens` (spec, "Attribution to the app"): an installed app opened through a
//! link says so; the open is recorded as an `open` event on the link for that user
//! (re-engagement), and the answer gives the app the link's deep link and data.

use axum::extract::State;
use axum::http::HeaderMap;
use axum::Json;
use linktrace_domain::{ClientFacts, Endpoint, EventRecord, ShortCode};
use linktrace_platform::error::CommonError;
use linktrace_platform::openapi::{errors, Yes};
use linktrace_platform::request::{JsonBody, RequestError, Text};
use linktrace_platform::request_id;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use crate::error::ApiError;
use crate::links::{self, LinkView};
use crate::routes::caller;
use crate::state::AppState;

/// The link an app was opened with, and by whom.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct OpenBody {
    /// The link URL the app was opened with (`…/l/{shortCode}` or a link domain's
    /// `/{shortCode}`); or `shortCode`.
    pub url: Option<Text<1, 2048>>,
    pub short_code: Option<ShortCode>,
    /// The app's id of the user.
    pub user_id: Text<1, 255>,
    /// The click the open came from, when the app knows it.
    pub click_id: Option<Text<0, 64>>,
}

/// The open recorded, and the link for the app to route its user by.
#[derive(Debug, Serialize, ToSchema)]
pub struct OpenAnswer {
    pub success: Yes,
    pub link: LinkView,
}

/// The short code a link URL names: its last path segment (`/l/{code}` or `/{code}`).
fn short_code_of(url: &str) -> Option<ShortCode> {
    let parsed = url::Url::parse(url).ok()?;
    let segment = parsed.path_segments()?.rev().find(|s| !s.is_empty())?;
    ShortCode::parse(segment).ok()
}

/// Record that an installed app was opened through a link; answer its deep link
#[utoipa::path(
    post,
    path = "/api/v1/opens",
    operation_id = "recordOpen",
    tag = "api",
    request_body = OpenBody,
    responses(
        (status = 200, description = "Recorded: the link, with its deepLinkPath and data", body = OpenAnswer),
        errors::BadRequest, errors::Unauthorized, errors::PlanUpgradeRequired,
        errors::NotFound, errors::PayloadTooLarge, errors::Unavailable,
    ),
    security(("apiKey" = [])),
)]
pub async fn record(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Result<JsonBody<OpenBody>, RequestError>,
) -> Result<Json<OpenAnswer>, ApiError> {
    let caller = caller(&state, &headers).await?;
    caller.require(Endpoint::CreateAttribution)?;
    let JsonBody(body) = body?;
    let short_code = match (&body.short_code, &body.url) {
        (Some(code), _) => code.clone(),
        (None, Some(url)) => short_code_of(url.as_str()).ok_or_else(|| {
            ApiError::Common(CommonError::Validation(
                "url must be a link URL ending in its short code".into(),
            ))
        })?,
        (None, None) => {
            return Err(ApiError::Common(CommonError::Validation(
                "url or shortCode is required".into(),
            )))
        }
    };
    let link = links::find_owned(&state.pool, caller.account_id, short_code.as_str()).await?;
    let client = ClientFacts {
        click_id: body.click_id.as_ref().map(|c| c.as_str().to_owned()),
        ..ClientFacts::default()
    };
    let open = EventRecord::open(
        Uuid::new_v4(),
        caller.account_id,
        caller.environment,
        body.user_id.as_str(),
        &link.short_code,
        client,
        state.clock.now(),
    )
    .with_request_id(request_id::current());
    state
        .sink
        .send(&open)
        .await
        .map_err(|error| ApiError::Stream(error.to_string()))?;
    Ok(Json(OpenAnswer {
        success: Yes,
        link: link.view(&state.settings.public_base_url),
    }))
}
