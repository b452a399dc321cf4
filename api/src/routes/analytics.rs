//! `/api/v1/analytics/*`: dashboard reads over ClickHouse, scoped to the caller's account
//! and environment (a test key reads test events).

use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use axum::Json;
use chrono::{DateTime, Duration, Utc};
use linktrace_domain::{Endpoint, EventName, ShortCode};
use linktrace_platform::request::{FieldError, QueryParams};
use serde::Deserialize;
use serde_json::json;

use crate::analytics::{self, Interval, Scope};
use crate::error::ApiError;
use crate::routes::caller;
use crate::state::AppState;

/// The longest range one query may cover.
const MAX_RANGE_DAYS: i64 = 400;

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AnalyticsQuery {
    from: Option<String>,
    to: Option<String>,
    short_code: Option<String>,
    event_name: Option<String>,
    interval: Option<String>,
    limit: Option<String>,
}

/// The caller's scope and the query it asked with: the key is checked before the query.
async fn scope(
    state: &AppState,
    headers: &HeaderMap,
    query: Result<QueryParams<AnalyticsQuery>, FieldError>,
) -> Result<(Scope, AnalyticsQuery), ApiError> {
    let caller = caller(state, headers).await?;
    caller.require(Endpoint::Analytics)?;
    let QueryParams(query) = query?;
    let now = state.clock.now();
    let to = query
        .to
        .as_deref()
        .map(|raw| time(raw, "to"))
        .transpose()?
        .unwrap_or(now + Duration::hours(1));
    let from = query
        .from
        .as_deref()
        .map(|raw| time(raw, "from"))
        .transpose()?
        .unwrap_or(to - Duration::days(30));
    if from >= to {
        return Err(ApiError::validation("from must be before to"));
    }
    if to - from > Duration::days(MAX_RANGE_DAYS) {
        return Err(ApiError::validation(format!(
            "the range may cover at most {MAX_RANGE_DAYS} days"
        )));
    }
    let short_code = match query.short_code.as_deref() {
        Some(raw) => ShortCode::parse(raw)
            .map_err(|e| ApiError::validation(format!("shortCode {e}")))?
            .as_str()
            .to_owned(),
        None => String::new(),
    };
    let event_name = match query.event_name.as_deref() {
        // click and install are valid filters here, though customers cannot send them.
        Some(raw) if ["click", "install"].contains(&raw.to_lowercase().as_str()) => {
            raw.to_lowercase()
        }
        Some(raw) => EventName::parse(raw)
            .map_err(|e| ApiError::validation(format!("eventName {e}")))?
            .as_str()
            .to_owned(),
        None => String::new(),
    };
    let scope = Scope {
        account_id: caller.account_id,
        environment: caller.environment,
        from,
        to,
        short_code,
        event_name,
    };
    Ok((scope, query))
}

fn time(raw: &str, field: &str) -> Result<DateTime<Utc>, ApiError> {
    DateTime::parse_from_rfc3339(raw)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|_| ApiError::validation(format!("{field} must be an ISO-8601 date-time")))
}

/// The range counted: the asked one widened to whole hours.
fn range(scope: &Scope) -> serde_json::Value {
    let hours = scope.hours();
    json!({ "from": hours.from, "to": hours.to })
}

pub async fn totals(
    State(state): State<AppState>,
    headers: HeaderMap,
    query: Result<QueryParams<AnalyticsQuery>, FieldError>,
) -> Result<Response, ApiError> {
    let (scope, _) = scope(&state, &headers, query).await?;
    let rows = analytics::totals(&state.clickhouse, &scope).await?;
    Ok(Json(json!({ "success": true, "range": range(&scope), "totals": rows })).into_response())
}

pub async fn timeseries(
    State(state): State<AppState>,
    headers: HeaderMap,
    query: Result<QueryParams<AnalyticsQuery>, FieldError>,
) -> Result<Response, ApiError> {
    let (scope, query) = scope(&state, &headers, query).await?;
    let interval = match query.interval.as_deref().unwrap_or("day") {
        "hour" => Interval::Hour,
        "day" => Interval::Day,
        _ => return Err(ApiError::validation("interval must be \"hour\" or \"day\"")),
    };
    if interval == Interval::Hour && scope.to - scope.from > Duration::days(31) {
        return Err(ApiError::validation(
            "hourly series may cover at most 31 days",
        ));
    }
    let points = analytics::timeseries(&state.clickhouse, &scope, interval).await?;
    Ok(Json(json!({ "success": true, "range": range(&scope), "interval": query.interval.as_deref().unwrap_or("day"), "points": points }))
        .into_response())
}

pub async fn funnel(
    State(state): State<AppState>,
    headers: HeaderMap,
    query: Result<QueryParams<AnalyticsQuery>, FieldError>,
) -> Result<Response, ApiError> {
    let (scope, _) = scope(&state, &headers, query).await?;
    let funnel = analytics::funnel(&state.clickhouse, &scope).await?;
    Ok(Json(json!({ "success": true, "range": range(&scope), "funnel": funnel })).into_response())
}

pub async fn top_links(
    State(state): State<AppState>,
    headers: HeaderMap,
    query: Result<QueryParams<AnalyticsQuery>, FieldError>,
) -> Result<Response, ApiError> {
    let (scope, query) = scope(&state, &headers, query).await?;
    let limit: u32 = match query.limit.as_deref() {
        None => 10,
        Some(raw) => raw
            .parse()
            .ok()
            .filter(|n| (1..=100).contains(n))
            .ok_or_else(|| ApiError::validation("limit must be 1-100"))?,
    };
    let links = analytics::top_links(&state.clickhouse, &scope, limit).await?;
    Ok(Json(json!({ "success": true, "range": range(&scope), "links": links })).into_response())
}
