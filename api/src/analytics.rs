//! Analytics reads over ClickHouse. Every count is `uniqExact(event_id)` (or its merge over
//! the hourly rollup), so a redelivered copy not yet merged away is never counted twice.
//! Every value from the caller is a bound parameter, never spliced into SQL.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use clickhouse::{Client, Row};
use linktrace_domain::Environment;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// A half-open time range `[from, to)` and the optional filters of a dashboard query.
#[derive(Debug, Clone)]
pub struct Scope {
    pub account_id: Uuid,
    pub environment: Environment,
    pub from: DateTime<Utc>,
    pub to: DateTime<Utc>,
    /// Empty: every link.
    pub short_code: String,
    /// Empty: every event name.
    pub event_name: String,
}

fn secs(at: DateTime<Utc>) -> u32 {
    at.timestamp().clamp(0, u32::MAX.into()) as u32
}

/// Binds a [`Scope`] to a query, in the order every analytics query writes its conditions:
/// `account_id = ? AND environment = ? AND <time> >= …(?) AND <time> < …(?)`, then
/// optionally `(? = '' OR link_short_code = ?) AND (? = '' OR event_name = ?)`.
trait ScopedQuery {
    fn with_scope(self, scope: &Scope) -> Self;
    fn with_filters(self, scope: &Scope) -> Self;
}

impl ScopedQuery for clickhouse::query::Query {
    fn with_scope(self, scope: &Scope) -> Self {
        self.bind(scope.account_id.to_string())
            .bind(scope.environment.storage_name())
            .bind(secs(scope.from))
            .bind(secs(scope.to))
    }

    fn with_filters(self, scope: &Scope) -> Self {
        self.bind(&scope.short_code)
            .bind(&scope.short_code)
            .bind(&scope.event_name)
            .bind(&scope.event_name)
    }
}

#[derive(Debug, Row, Deserialize)]
struct NameCount {
    event_name: String,
    n: u64,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct LinkTotals {
    pub clicks: u64,
    pub installs: u64,
    /// Post-install events (everything but clicks and installs).
    pub events: u64,
    pub by_event: BTreeMap<String, u64>,
}

/// All-time totals of one link, in the caller's environment.
pub async fn link_totals(
    client: &Client,
    account_id: Uuid,
    short_code: &str,
    environment: Environment,
) -> Result<LinkTotals, clickhouse::error::Error> {
    let rows = client
        .query(
            "SELECT event_name, uniqExact(event_id) AS n FROM events \
             WHERE account_id = ? AND environment = ? AND link_short_code = ? GROUP BY event_name",
        )
        .bind(account_id.to_string())
        .bind(environment.storage_name())
        .bind(short_code)
        .fetch_all::<NameCount>()
        .await?;
    let mut totals = LinkTotals {
        clicks: 0,
        installs: 0,
        events: 0,
        by_event: BTreeMap::new(),
    };
    for row in rows {
        match row.event_name.as_str() {
            "click" => totals.clicks = row.n,
            "install" => totals.installs = row.n,
            _ => {
                totals.events += row.n;
                totals.by_event.insert(row.event_name, row.n);
            }
        }
    }
    Ok(totals)
}

#[derive(Debug, Row, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TotalRow {
    pub short_code: String,
    pub event_name: String,
    pub count: u64,
}

/// Exact totals per link and event name over the range.
pub async fn totals(
    client: &Client,
    scope: &Scope,
) -> Result<Vec<TotalRow>, clickhouse::error::Error> {
    client
        .query(
            "SELECT link_short_code AS short_code, event_name, uniqExact(event_id) AS count FROM events \
             WHERE account_id = ? AND environment = ? AND event_time >= toDateTime(?) AND event_time < toDateTime(?) \
               AND (? = '' OR link_short_code = ?) AND (? = '' OR event_name = ?) \
             GROUP BY link_short_code, event_name ORDER BY link_short_code, event_name",
        )
        .with_scope(scope)
        .with_filters(scope)
        .fetch_all::<TotalRow>()
        .await
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Interval {
    Hour,
    Day,
}

#[derive(Debug, Row, Deserialize)]
struct BucketRow {
    bucket: u32,
    count: u64,
}

#[derive(Debug, Serialize)]
pub struct Point {
    pub time: DateTime<Utc>,
    pub count: u64,
}

/// Counts per hour or day over the range, from the hourly rollup.
pub async fn timeseries(
    client: &Client,
    scope: &Scope,
    interval: Interval,
) -> Result<Vec<Point>, clickhouse::error::Error> {
    let bucket = match interval {
        Interval::Hour => "hour",
        Interval::Day => "toStartOfDay(hour)",
    };
    let rows = client
        .query(&format!(
            "SELECT toUInt32({bucket}) AS bucket, uniqExactMerge(events) AS count FROM events_hourly \
             WHERE account_id = ? AND environment = ? AND hour >= toStartOfHour(toDateTime(?)) AND hour < toDateTime(?) \
               AND (? = '' OR link_short_code = ?) AND (? = '' OR event_name = ?) \
             GROUP BY bucket ORDER BY bucket"
        ))
        .with_scope(scope)
        .with_filters(scope)
        .fetch_all::<BucketRow>()
        .await?;
    Ok(rows
        .into_iter()
        .map(|r| Point {
            time: DateTime::from_timestamp(r.bucket.into(), 0).unwrap_or_default(),
            count: r.count,
        })
        .collect())
}

#[derive(Debug, Row, Deserialize)]
struct FunnelRow {
    event_name: String,
    events: u64,
    users: u64,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct FunnelStep {
    pub event_name: String,
    pub events: u64,
    pub users: u64,
    /// Users who did this per install (0 when there were no installs).
    pub per_install: f64,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Funnel {
    pub clicks: u64,
    pub installs: u64,
    pub install_rate: f64,
    pub steps: Vec<FunnelStep>,
}

/// Click → install → each post-install event, over the range.
pub async fn funnel(client: &Client, scope: &Scope) -> Result<Funnel, clickhouse::error::Error> {
    let rows = client
        .query(
            "SELECT event_name, uniqExact(event_id) AS events, uniqExactIf(user_id, user_id != '') AS users FROM events \
             WHERE account_id = ? AND environment = ? AND event_time >= toDateTime(?) AND event_time < toDateTime(?) \
               AND (? = '' OR link_short_code = ?) \
             GROUP BY event_name ORDER BY events DESC, event_name",
        )
        .with_scope(scope)
        .bind(&scope.short_code)
        .bind(&scope.short_code)
        .fetch_all::<FunnelRow>()
        .await?;
    let count_of = |name: &str| {
        rows.iter()
            .find(|r| r.event_name == name)
            .map(|r| r.events)
            .unwrap_or(0)
    };
    let clicks = count_of("click");
    let installs = count_of("install");
    let ratio = |a: u64, b: u64| if b == 0 { 0.0 } else { a as f64 / b as f64 };
    let steps = rows
        .iter()
        .filter(|r| r.event_name != "click" && r.event_name != "install")
        .map(|r| FunnelStep {
            event_name: r.event_name.clone(),
            events: r.events,
            users: r.users,
            per_install: ratio(r.users, installs),
        })
        .collect();
    Ok(Funnel {
        clicks,
        installs,
        install_rate: ratio(installs, clicks),
        steps,
    })
}

#[derive(Debug, Row, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TopLink {
    pub short_code: String,
    pub count: u64,
}

/// The links with the most events of `scope.event_name` (clicks when empty).
pub async fn top_links(
    client: &Client,
    scope: &Scope,
    limit: u32,
) -> Result<Vec<TopLink>, clickhouse::error::Error> {
    let event = if scope.event_name.is_empty() {
        "click"
    } else {
        scope.event_name.as_str()
    };
    client
        .query(
            "SELECT link_short_code AS short_code, uniqExact(event_id) AS count FROM events \
             WHERE account_id = ? AND environment = ? AND event_time >= toDateTime(?) AND event_time < toDateTime(?) \
               AND event_name = ? AND link_short_code != '' \
             GROUP BY link_short_code ORDER BY count DESC, short_code LIMIT ?",
        )
        .with_scope(scope)
        .bind(event)
        .bind(limit)
        .fetch_all::<TopLink>()
        .await
}

#[derive(Debug, Row, Deserialize)]
pub struct ClickMatch {
    pub link_short_code: String,
    pub click_id: String,
}

/// The click with this id, in the account.
pub async fn click_by_id(
    client: &Client,
    account_id: Uuid,
    click_id: &str,
) -> Result<Option<ClickMatch>, clickhouse::error::Error> {
    client
        .query(
            "SELECT link_short_code, click_id FROM events \
             WHERE account_id = ? AND event_name = 'click' AND click_id = ? LIMIT 1",
        )
        .bind(account_id.to_string())
        .bind(click_id)
        .fetch_optional::<ClickMatch>()
        .await
}

/// The account's latest click from this device (same IP, and the same platform when
/// known) since `since`.
pub async fn click_by_fingerprint(
    client: &Client,
    account_id: Uuid,
    ip: &str,
    platform: &str,
    since: DateTime<Utc>,
) -> Result<Option<ClickMatch>, clickhouse::error::Error> {
    client
        .query(
            "SELECT link_short_code, click_id FROM events \
             WHERE account_id = ? AND event_name = 'click' AND ip = ? AND (? = '' OR platform = ?) \
               AND event_time >= toDateTime(?) \
             ORDER BY event_time_ms DESC LIMIT 1",
        )
        .bind(account_id.to_string())
        .bind(ip)
        .bind(platform)
        .bind(platform)
        .bind(secs(since))
        .fetch_optional::<ClickMatch>()
        .await
}
