//! `GET /api/v1/analytics`: one endpoint for every count, series and breakdown a dashboard
//! needs (`crate::analytics::breakdowns`).

use std::collections::BTreeMap;

use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use axum::Json;
use chrono_tz::Tz;
use linktrace_domain::Endpoint;
use linktrace_platform::openapi::{errors, Yes};
use linktrace_platform::request::{Flag, Limit, QueryParams, RequestError};
use serde::{Deserialize, Deserializer, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::analytics::breakdowns::{self, Filter, GroupBy, Revenue, Selection};
use crate::analytics::{EventParam, EventSelector, Interval, RangeBound, RangeRule, Zone};
use crate::error::ApiError;
use crate::routes::caller;
use crate::state::AppState;

/// The default and the longest range of one read.
const RANGE: RangeRule = RangeRule {
    default_days: 30,
    max_days: 400,
    noun: "the range",
};
/// The most values one filter may list.
const MAX_FILTER_VALUES: usize = 100;

#[derive(Debug, Deserialize, IntoParams)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[into_params(parameter_in = Query, rename_all = "camelCase")]
pub struct AnalyticsQuery {
    /// `clicks` (default), `installs`, `events` (every post-install event) or one event name.
    #[param(inline)]
    event: Option<EventParam>,
    /// `count` (default), `timeseries`, or the breakdown to answer.
    #[param(inline)]
    group_by: Option<GroupBy>,
    /// ISO-8601 date-time, or a date (midnight in `timezone`). Default: `to` minus 30 days.
    #[param(inline)]
    from: Option<RangeBound>,
    /// ISO-8601 date-time, or a date (the end of that day in `timezone`). Default: now.
    #[param(inline)]
    to: Option<RangeBound>,
    /// Bucket of a timeseries: `hour` (ranges up to 31 days), `day` (default), `week`
    /// (starting Monday), `month`.
    #[param(inline)]
    interval: Option<Interval>,
    /// IANA time-zone name (default `UTC`): series buckets and date bounds follow it.
    #[param(inline)]
    timezone: Option<Zone>,
    /// Comma-separated; a leading `-` excludes the value instead.
    #[param(inline)]
    short_code: Option<FilterList>,
    #[param(inline)]
    event_name: Option<FilterList>,
    /// ISO 3166-1 alpha-2 codes.
    #[param(inline)]
    country: Option<FilterList>,
    /// `mobile`, `tablet`, `desktop`, `bot`.
    #[param(inline)]
    device: Option<FilterList>,
    #[param(inline)]
    os: Option<FilterList>,
    #[param(inline)]
    browser: Option<FilterList>,
    /// Referrer hosts (`google.com`).
    #[param(inline)]
    referrer: Option<FilterList>,
    #[param(inline)]
    utm_source: Option<FilterList>,
    #[param(inline)]
    utm_medium: Option<FilterList>,
    #[param(inline)]
    utm_campaign: Option<FilterList>,
    /// Only the account's links with this tag.
    #[param(inline)]
    tag: Option<linktrace_platform::request::Text<1, 64>>,
    /// Count bots (crawlers, preview fetchers, `HEAD`s) too. Default `false`.
    #[param(inline)]
    include_bots: Option<Flag>,
    /// Count repeated clicks too (a visitor's clicks on a link within an hour of a counted
    /// one). Default `false`: each is counted once.
    #[param(inline)]
    include_repeats: Option<Flag>,
    /// Breakdown rows, 1-1000 (default 100).
    #[param(inline)]
    limit: Option<Limit<1000>>,
}

/// Comma-separated values, each to include, or (with a leading `-`) to exclude.
#[derive(Debug, Clone, Default)]
pub struct FilterList {
    include: Vec<String>,
    exclude: Vec<String>,
}

impl<'de> Deserialize<'de> for FilterList {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        use serde::de::Error;
        let raw = String::deserialize(deserializer)?;
        let mut list = FilterList::default();
        for item in raw.split(',') {
            let (target, value) = match item.trim().strip_prefix('-') {
                Some(value) => (&mut list.exclude, value),
                None => (&mut list.include, item.trim()),
            };
            if value.is_empty() || value.chars().count() > 255 || value.contains('\0') {
                return Err(D::Error::custom(
                    "must be a comma-separated list of values of 1-255 characters",
                ));
            }
            target.push(value.to_owned());
        }
        if list.include.len() + list.exclude.len() > MAX_FILTER_VALUES {
            return Err(D::Error::custom(format!(
                "may list at most {MAX_FILTER_VALUES} values"
            )));
        }
        Ok(list)
    }
}

impl utoipa::PartialSchema for FilterList {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        linktrace_domain::schema::text(
            None,
            Some(1),
            None,
            "comma-separated values; a leading - excludes (e.g. DE,FR or -US)",
        )
    }
}
impl ToSchema for FilterList {}

impl FilterList {
    fn into_filter(self, column: &'static str, normalise: fn(&str) -> String) -> Filter {
        Filter {
            column,
            include: self.include.iter().map(|v| normalise(v)).collect(),
            exclude: self.exclude.iter().map(|v| normalise(v)).collect(),
        }
    }
}

/// One row of the answer.
#[derive(Debug, Serialize, ToSchema)]
pub struct AnalyticsRow {
    /// The start of a timeseries bucket (ISO-8601 in the request's time zone).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub time: Option<String>,
    /// A breakdown's key and value: `shortCode`, `eventName`, `country`, `city`, `device`,
    /// `os`, `browser`, `referrer`, `utmSource`, `utmMedium`, `utmCampaign`, `utmTerm` or
    /// `utmContent` (empty string: unknown).
    #[serde(flatten)]
    #[schema(value_type = Object)]
    pub key: BTreeMap<&'static str, String>,
    pub count: u64,
    /// Revenue of the counted events, summed per ISO 4217 currency (major units).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<std::collections::HashMap<String, f64>>)]
    pub revenue: Option<Revenue>,
    /// Distinct visitors (clicks: salted visitor keys, which change every UTC day) or
    /// distinct users (other events) among the counted events.
    pub uniques: u64,
    /// Always `true`: `uniques` are merged HyperLogLog sketches, exact for small sets and
    /// within about 1.6% beyond.
    #[serde(rename = "uniquesApproximate")]
    pub uniques_approximate: bool,
}

/// Rows ordered by count, descending (a timeseries: in time order).
#[derive(Debug, Serialize, ToSchema)]
pub struct AnalyticsAnswer {
    pub success: Yes,
    pub data: Vec<AnalyticsRow>,
}

/// Counts, series and breakdowns by link, event, country, city, device, OS, browser, referrer and UTM
#[utoipa::path(
    get,
    path = "/api/v1/analytics",
    operation_id = "getAnalytics",
    tag = "api",
    params(AnalyticsQuery),
    responses(
        (status = 200, description = "Exact counts", body = AnalyticsAnswer),
        errors::BadRequest, errors::Unauthorized, errors::PlanUpgradeRequired, errors::Unavailable,
    ),
    security(("apiKey" = [])),
)]
pub async fn analytics(
    State(state): State<AppState>,
    headers: HeaderMap,
    query: Result<QueryParams<AnalyticsQuery>, RequestError>,
) -> Result<Response, ApiError> {
    let caller = caller(&state, &headers).await?;
    caller.require(Endpoint::Analytics)?;
    let QueryParams(query) = query?;
    let zone = query.timezone.map_or(Tz::UTC, |z| z.0);
    let (from, to) = RANGE.resolve(
        query.from,
        query.to,
        zone,
        breakdowns::ceil(state.clock.now()),
    )?;
    let group_by = query.group_by.unwrap_or(GroupBy::Count);
    let interval = query.interval.unwrap_or_default();
    if group_by == GroupBy::Timeseries {
        interval.check_range(from, to)?;
    }
    let as_is = |v: &str| v.to_owned();
    let lower = |v: &str| v.to_lowercase();
    let upper = |v: &str| v.to_uppercase();
    // `os=iPhone` means the family too, as the answers name it.
    let os_family = |v: &str| linktrace_domain::os_family(v).to_owned();
    let mut filters: Vec<_> = [
        (
            query.short_code,
            "link_short_code",
            as_is as fn(&str) -> String,
        ),
        (query.event_name, "event_name", lower),
        (query.country, "country", upper),
        (query.device, "device", lower),
        (query.os, "os_family", os_family),
        (query.browser, "browser", as_is),
        (query.referrer, "referrer_host", lower),
        (query.utm_source, "utm_source", as_is),
        (query.utm_medium, "utm_medium", as_is),
        (query.utm_campaign, "utm_campaign", as_is),
    ]
    .into_iter()
    .filter_map(|(list, column, normalise)| list.map(|l| l.into_filter(column, normalise)))
    .collect();
    if let Some(tag) = &query.tag {
        let mut codes =
            crate::links::codes_tagged(&state.pool, caller.account_id, tag.as_str().trim()).await?;
        if codes.len() as i64 > crate::links::MAX_TAGGED_LINKS {
            return Err(ApiError::validation(format!(
                "tag covers more than {} links; filter by shortCode instead",
                crate::links::MAX_TAGGED_LINKS
            )));
        }
        if codes.is_empty() {
            // No link has it: nothing matches (no short code is "-").
            codes.push("-".to_owned());
        }
        filters.push(breakdowns::Filter {
            column: "link_short_code",
            include: codes,
            exclude: Vec::new(),
        });
    }
    let selection = Selection {
        account_id: caller.account_id,
        environment: caller.environment,
        from,
        to,
        event: query.event.map_or(EventSelector::Clicks, |e| e.0),
        filters,
        include_bots: query.include_bots.is_some_and(|f| f.0),
        include_repeats: query.include_repeats.is_some_and(|f| f.0),
    };
    let client = &state.clickhouse;
    let data = match group_by {
        GroupBy::Count => {
            let total = breakdowns::count(client, &selection).await?;
            vec![AnalyticsRow {
                time: None,
                key: BTreeMap::new(),
                count: total.count,
                revenue: total.revenue,
                uniques: total.uniques,
                uniques_approximate: true,
            }]
        }
        GroupBy::Timeseries => breakdowns::series(client, &selection, interval, zone)
            .await?
            .into_iter()
            .map(|bucket| AnalyticsRow {
                time: Some(bucket.key.to_rfc3339()),
                key: BTreeMap::new(),
                count: bucket.count,
                revenue: bucket.revenue,
                uniques: bucket.uniques,
                uniques_approximate: true,
            })
            .collect(),
        breakdown => {
            let (_, key) = breakdown.breakdown().expect("a breakdown");
            let limit = query.limit.map_or(100, Limit::get);
            breakdowns::breakdown(client, &selection, breakdown, limit)
                .await?
                .into_iter()
                .map(|row| AnalyticsRow {
                    time: None,
                    key: BTreeMap::from([(key, row.key)]),
                    count: row.count,
                    revenue: row.revenue,
                    uniques: row.uniques,
                    uniques_approximate: true,
                })
                .collect()
        }
    };
    Ok(Json(AnalyticsAnswer { success: Yes, data }).into_response())
}
