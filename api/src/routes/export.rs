//! `GET /api/v1/events/export`: stored events as CSV or NDJSON, streamed (see `export`).

use axum::body::Body;
use axum::extract::State;
use axum::http::header::{CONTENT_DISPOSITION, CONTENT_TYPE};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use chrono::Utc;
use chrono_tz::Tz;
use futures::StreamExt;
use linktrace_domain::Endpoint;
use linktrace_platform::openapi::errors;
use linktrace_platform::request::{QueryParams, RequestError};
use serde::Deserialize;
use utoipa::IntoParams;

use crate::analytics::{EventParam, RangeBound, RangeRule};
use crate::error::ApiError;
use crate::export::{self, ExportScope, Format};
use crate::routes::caller;
use crate::state::AppState;

/// The default and the longest range of one export.
const RANGE: RangeRule = RangeRule {
    default_days: 1,
    max_days: 31,
    noun: "an export",
};

#[derive(Debug, Deserialize, IntoParams)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[into_params(parameter_in = Query, rename_all = "camelCase")]
pub struct ExportQuery {
    /// ISO-8601 date-time or date (UTC midnight). Default: `to` minus one day.
    #[param(inline)]
    from: Option<RangeBound>,
    /// ISO-8601 date-time or date (the end of that UTC day). Default: now. At most 31 days
    /// after `from`.
    #[param(inline)]
    to: Option<RangeBound>,
    /// `clicks`, `installs`, `events` (post-install) or one event name. Default: every event.
    #[param(inline)]
    event: Option<EventParam>,
    /// `ndjson` (default) or `csv` (with a header row).
    #[param(inline)]
    format: Option<Format>,
}

/// Stream the account's stored events (one environment) as CSV or NDJSON
#[utoipa::path(
    get,
    path = "/api/v1/events/export",
    operation_id = "exportEvents",
    tag = "api",
    params(ExportQuery),
    responses(
        (status = 200, description = "The events in time order, streamed: NDJSON, or CSV with a header row",
            content((String = "application/x-ndjson"), (String = "text/csv; charset=utf-8"))),
        errors::BadRequest, errors::Unauthorized, errors::PlanUpgradeRequired, errors::Unavailable,
    ),
    security(("apiKey" = [])),
)]
pub async fn events(
    State(state): State<AppState>,
    headers: HeaderMap,
    query: Result<QueryParams<ExportQuery>, RequestError>,
) -> Result<Response, ApiError> {
    let caller = caller(&state, &headers).await?;
    caller.require(Endpoint::Analytics)?;
    let QueryParams(query) = query?;
    let (from, to) = RANGE.resolve(query.from, query.to, Tz::UTC, Utc::now())?;
    let format = query.format.unwrap_or_default();
    let scope = ExportScope {
        account_id: caller.account_id,
        environment: caller.environment,
        from,
        to,
        event: query.event.map(|e| e.0),
        format,
    };
    let mut cursor = export::export_query(&scope)
        .query(&state.clickhouse)
        .fetch_bytes(format.clickhouse())
        .map_err(ApiError::Analytics)?;
    // The first chunk is awaited here, so a ClickHouse that cannot answer is a 503 envelope,
    // not a broken 200; after it, the rest is passed on as ClickHouse sends it.
    let first = cursor.next().await.map_err(ApiError::Analytics)?;
    let body = futures::stream::iter(first.map(Ok)).chain(cursor);
    let filename = format!(
        "attachment; filename=\"events-{}-{}.{}\"",
        from.format("%Y%m%dT%H%M%SZ"),
        to.format("%Y%m%dT%H%M%SZ"),
        format.extension()
    );
    let mut response = (StatusCode::OK, Body::from_stream(body)).into_response();
    response.headers_mut().insert(
        CONTENT_TYPE,
        HeaderValue::from_static(format.content_type()),
    );
    if let Ok(value) = HeaderValue::from_str(&filename) {
        response.headers_mut().insert(CONTENT_DISPOSITION, value);
    }
    Ok(response)
}
