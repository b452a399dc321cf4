//! `/api/v1/analytics/{totals,timeseries,funnel,top-links}`: the rollup reports
//! (`crate::analytics::reports`).

use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use axum::Json;
use chrono::{DateTime, Duration, Utc};
use chrono_tz::Tz;
use linktrace_domain::{Endpoint, ShortCode};
use linktrace_platform::openapi::{errors, Yes};
use linktrace_platform::request::{Limit, QueryParams, RequestError};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::analytics::reports::{self, Funnel, Point, Scope, TopLink, TotalRow};
use crate::analytics::{EventNameParam, Interval, RangeBound, RangeRule};
use crate::error::ApiError;
use crate::routes::caller;
use crate::state::AppState;

/// The default and the longest range of one report (as `GET /api/v1/analytics`).
const RANGE: RangeRule = RangeRule {
    default_days: 30,
    max_days: 400,
    noun: "the range",
};

/// What every analytics read is scoped by, besides the caller's account and environment.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(rename_all = "camelCase")]
#[into_params(parameter_in = Query, rename_all = "camelCase")]
pub struct RangeQuery {
    /// ISO-8601 date-time, or a date (UTC midnight). Default: `to` minus 30 days; at most
    /// 400 days before `to`.
    #[param(inline)]
    from: Option<RangeBound>,
    /// ISO-8601 date-time, or a date (the end of that UTC day). Default: now plus 1 hour.
    #[param(inline)]
    to: Option<RangeBound>,
    /// Only this link.
    #[param(inline)]
    short_code: Option<ShortCode>,
    /// Only this event (`click`, `install` and `open` included).
    #[param(inline)]
    event_name: Option<EventNameParam>,
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct SeriesQuery {
    /// `hour` (ranges of up to 31 days), `day` (default), `week` (from Monday) or `month`,
    /// all in UTC.
    #[param(inline)]
    interval: Option<Interval>,
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct TopQuery {
    /// 1-100, default 10.
    #[param(inline)]
    limit: Option<Limit<100>>,
}

/// The range counted: the asked one widened to whole hours (`from` down, `to` up).
#[derive(Debug, Serialize, ToSchema)]
pub struct CountedRange {
    pub from: DateTime<Utc>,
    pub to: DateTime<Utc>,
}

impl CountedRange {
    fn of(scope: &Scope) -> Self {
        let hours = scope.hours();
        CountedRange {
            from: hours.from,
            to: hours.to,
        }
    }
}

/// Exact totals per link and event name.
#[derive(Debug, Serialize, ToSchema)]
pub struct Totals {
    pub success: Yes,
    pub range: CountedRange,
    pub totals: Vec<TotalRow>,
}

/// Counts per bucket.
#[derive(Debug, Serialize, ToSchema)]
pub struct Series {
    pub success: Yes,
    pub range: CountedRange,
    pub interval: Interval,
    pub points: Vec<Point>,
}

/// Click, install, then each post-install event.
#[derive(Debug, Serialize, ToSchema)]
pub struct FunnelAnswer {
    pub success: Yes,
    pub range: CountedRange,
    pub funnel: Funnel,
}

/// Links with the most events of a name.
#[derive(Debug, Serialize, ToSchema)]
pub struct TopLinks {
    pub success: Yes,
    pub range: CountedRange,
    pub links: Vec<TopLink>,
}

/// The caller's scope: the key is checked before the query.
async fn scope(
    state: &AppState,
    headers: &HeaderMap,
    query: Result<QueryParams<RangeQuery>, RequestError>,
) -> Result<Scope, ApiError> {
    let caller = caller(state, headers).await?;
    caller.require(Endpoint::Analytics)?;
    let QueryParams(query) = query?;
    let (from, to) = RANGE.resolve(
        query.from,
        query.to,
        Tz::UTC,
        state.clock.now() + Duration::hours(1),
    )?;
    Ok(Scope {
        account_id: caller.account_id,
        environment: caller.environment,
        from,
        to,
        short_code: query
            .short_code
            .map(|code| code.as_str().to_owned())
            .unwrap_or_default(),
        event_name: query.event_name.map(|name| name.0).unwrap_or_default(),
    })
}

/// Exact totals per link and event name
#[utoipa::path(
    get,
    path = "/api/v1/analytics/totals",
    operation_id = "getTotals",
    tag = "api",
    params(RangeQuery),
    responses(
        (status = 200, description = "Totals", body = Totals),
        errors::BadRequest, errors::Unauthorized, errors::PlanUpgradeRequired, errors::Unavailable,
    ),
    security(("apiKey" = [])),
)]
pub async fn totals(
    State(state): State<AppState>,
    headers: HeaderMap,
    query: Result<QueryParams<RangeQuery>, RequestError>,
) -> Result<Response, ApiError> {
    let scope = scope(&state, &headers, query).await?;
    let totals = reports::totals(&state.clickhouse, &scope).await?;
    Ok(Json(Totals {
        success: Yes,
        range: CountedRange::of(&scope),
        totals,
    })
    .into_response())
}

/// Counts per hour (ranges up to 31 days), day, week or month
#[utoipa::path(
    get,
    path = "/api/v1/analytics/timeseries",
    operation_id = "getTimeseries",
    tag = "api",
    params(RangeQuery, SeriesQuery),
    responses(
        (status = 200, description = "Points", body = Series),
        errors::BadRequest, errors::Unauthorized, errors::PlanUpgradeRequired, errors::Unavailable,
    ),
    security(("apiKey" = [])),
)]
pub async fn timeseries(
    State(state): State<AppState>,
    headers: HeaderMap,
    query: Result<QueryParams<RangeQuery>, RequestError>,
    series: Result<QueryParams<SeriesQuery>, RequestError>,
) -> Result<Response, ApiError> {
    let scope = scope(&state, &headers, query).await?;
    let QueryParams(series) = series?;
    let interval = series.interval.unwrap_or_default();
    interval.check_range(scope.from, scope.to)?;
    let points = reports::timeseries(&state.clickhouse, &scope, interval).await?;
    Ok(Json(Series {
        success: Yes,
        range: CountedRange::of(&scope),
        interval,
        points,
    })
    .into_response())
}

/// Click, install, then each post-install event
#[utoipa::path(
    get,
    path = "/api/v1/analytics/funnel",
    operation_id = "getFunnel",
    tag = "api",
    params(RangeQuery),
    responses(
        (status = 200, description = "The funnel", body = FunnelAnswer),
        errors::BadRequest, errors::Unauthorized, errors::PlanUpgradeRequired, errors::Unavailable,
    ),
    security(("apiKey" = [])),
)]
pub async fn funnel(
    State(state): State<AppState>,
    headers: HeaderMap,
    query: Result<QueryParams<RangeQuery>, RequestError>,
) -> Result<Response, ApiError> {
    let scope = scope(&state, &headers, query).await?;
    let funnel = reports::funnel(&state.clickhouse, &scope).await?;
    Ok(Json(FunnelAnswer {
        success: Yes,
        range: CountedRange::of(&scope),
        funnel,
    })
    .into_response())
}

/// Links with the most events of a name (clicks by default)
#[utoipa::path(
    get,
    path = "/api/v1/analytics/top-links",
    operation_id = "getTopLinks",
    tag = "api",
    params(RangeQuery, TopQuery),
    responses(
        (status = 200, description = "Links", body = TopLinks),
        errors::BadRequest, errors::Unauthorized, errors::PlanUpgradeRequired, errors::Unavailable,
    ),
    security(("apiKey" = [])),
)]
pub async fn top_links(
    State(state): State<AppState>,
    headers: HeaderMap,
    query: Result<QueryParams<RangeQuery>, RequestError>,
    top: Result<QueryParams<TopQuery>, RequestError>,
) -> Result<Response, ApiError> {
    let scope = scope(&state, &headers, query).await?;
    let QueryParams(top) = top?;
    let limit = top.limit.map_or(10, Limit::get);
    let links = reports::top_links(&state.clickhouse, &scope, limit).await?;
    Ok(Json(TopLinks {
        success: Yes,
        range: CountedRange::of(&scope),
        links,
    })
    .into_response())
}
