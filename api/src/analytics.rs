//! Analytics reads over ClickHouse. Every dashboard read is a rollup read, never a scan
//! of an account's raw history:
//!
//! - counts come from `event_counts_daily` for the whole UTC days of a range and from
//!   `event_counts_hourly` for its partial days at either end (`sum(events)`: the rollups
//!   are `SummingMergeTree`s fed by the same INSERT as `events`, whose rows are exactly
//!   once, so the sums are exact at any moment);
//! - ranges are whole hours: `from` is rounded down and `to` up to the hour, and every
//!   answer says which range it counted;
//! - reads over every link that do not group by link (series, funnel) come from the
//!   all-links `event_totals_hourly` (one row per hour and event name);
//! - distinct users come from `event_users_daily` (a `uniqHLL12` sketch over the UTC days
//!   the range touches) and are labelled approximate;
//! - attribution matches read `clicks_by_id` and `clicks_by_ip`, ordered for them.
//!
//! Every value from the caller is a bound parameter, never spliced into SQL. Each read
//! has a `…_query` builder, so the exact SQL it runs can be shown (see [`catalog`]).

use std::collections::BTreeMap;

use chrono::{DateTime, Duration, DurationRound, NaiveDate, Utc};
use clickhouse::query::Query;
use clickhouse::{Client, Row};
use linktrace_domain::{Environment, SystemEvent};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// A time range and the optional filters of a dashboard query.
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

impl Scope {
    /// The range actually counted: `[from, to)` widened to whole hours.
    pub fn hours(&self) -> HourRange {
        HourRange::covering(self.from, self.to)
    }
}

/// A range of whole UTC hours, split into the whole UTC days inside it (read from the
/// daily rollup) and the hours before and after them (read from the hourly one).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HourRange {
    pub from: DateTime<Utc>,
    pub to: DateTime<Utc>,
    days_from: DateTime<Utc>,
    days_to: DateTime<Utc>,
}

impl HourRange {
    pub fn covering(from: DateTime<Utc>, to: DateTime<Utc>) -> Self {
        let hour = Duration::hours(1);
        let day = Duration::days(1);
        let from = from.duration_trunc(hour).unwrap_or(from);
        let to = {
            let floor = to.duration_trunc(hour).unwrap_or(to);
            if floor < to {
                floor + hour
            } else {
                floor
            }
        };
        let first_midnight = {
            let floor = from.duration_trunc(day).unwrap_or(from);
            if floor < from {
                floor + day
            } else {
                floor
            }
        };
        let last_midnight = to.duration_trunc(day).unwrap_or(to);
        let (days_from, days_to) = if first_midnight < last_midnight {
            (first_midnight, last_midnight)
        } else {
            // No whole day inside: everything from the hourly rollup.
            (from, from)
        };
        Self {
            from,
            to,
            days_from,
            days_to,
        }
    }

    fn date(at: DateTime<Utc>) -> String {
        at.date_naive().format("%Y-%m-%d").to_string()
    }

    /// The same range read from the hourly rollup alone (for hourly buckets).
    pub fn hours_only(self) -> Self {
        Self {
            days_from: self.from,
            days_to: self.from,
            ..self
        }
    }

    /// The UTC days the range touches, first and last included (for the users rollup).
    fn touched_days(&self) -> (NaiveDate, NaiveDate) {
        let last = (self.to - Duration::seconds(1)).max(self.from);
        (self.from.date_naive(), last.date_naive())
    }
}

/// A `DateTime` bound: seconds since the epoch, clamped to what ClickHouse's `DateTime` holds.
pub(crate) fn secs(at: DateTime<Utc>) -> u32 {
    at.timestamp().clamp(0, u32::MAX.into()) as u32
}

/// The rows of both count rollups over a range, as one sub-query with the columns
/// `bucket_day` (UInt32 seconds, the UTC day), `bucket_hour` (UInt32 seconds, the hour;
/// the day for rows of the daily rollup, so hourly buckets read [`HourRange::hours_only`]),
/// `event_name`, `link_short_code`, `events`. Bound, in order, by [`bind_counts_over`].
const COUNTS: &str = "(\
    SELECT toUInt32(toDateTime(day)) AS bucket_day, toUInt32(toDateTime(day)) AS bucket_hour, \
           event_name, link_short_code, events FROM event_counts_daily \
     WHERE account_id = ? AND environment = ? AND day >= toDate(?) AND day < toDate(?) \
       AND (? = '' OR link_short_code = ?) AND (? = '' OR event_name = ?) \
    UNION ALL \
    SELECT toUInt32(toStartOfDay(hour)) AS bucket_day, toUInt32(hour) AS bucket_hour, \
           event_name, link_short_code, events FROM event_counts_hourly \
     WHERE account_id = ? AND environment = ? \
       AND ((hour >= toDateTime(?) AND hour < toDateTime(?)) OR (hour >= toDateTime(?) AND hour < toDateTime(?))) \
       AND (? = '' OR link_short_code = ?) AND (? = '' OR event_name = ?))";

/// The rows of the all-links hourly rollup over a range, as one sub-query with the
/// columns `bucket_day`, `bucket_hour`, `event_name`, `events` (as [`COUNTS`], without
/// `link_short_code`): for reads that neither filter nor group by link. Bound by
/// [`bind_all_links`].
const ALL_LINKS: &str = "(\
    SELECT toUInt32(toStartOfDay(hour)) AS bucket_day, toUInt32(hour) AS bucket_hour, event_name, events \
      FROM event_totals_hourly \
     WHERE account_id = ? AND environment = ? AND hour >= toDateTime(?) AND hour < toDateTime(?) \
       AND (? = '' OR event_name = ?))";

fn bind_all_links(query: Query, scope: &Scope, event_name: &str) -> Query {
    let range = scope.hours();
    query
        .bind(scope.account_id.to_string())
        .bind(scope.environment.storage_name())
        .bind(secs(range.from))
        .bind(secs(range.to))
        .bind(event_name)
        .bind(event_name)
}

fn bind_counts(query: Query, scope: &Scope, short_code: &str, event_name: &str) -> Query {
    bind_counts_over(query, scope.hours(), scope, short_code, event_name)
}

fn bind_counts_over(
    query: Query,
    range: HourRange,
    scope: &Scope,
    short_code: &str,
    event_name: &str,
) -> Query {
    let account = scope.account_id.to_string();
    let environment = scope.environment.storage_name();
    query
        .bind(&account)
        .bind(environment)
        .bind(HourRange::date(range.days_from))
        .bind(HourRange::date(range.days_to))
        .bind(short_code)
        .bind(short_code)
        .bind(event_name)
        .bind(event_name)
        .bind(&account)
        .bind(environment)
        .bind(secs(range.from))
        .bind(secs(range.days_from))
        .bind(secs(range.days_to))
        .bind(secs(range.to))
        .bind(short_code)
        .bind(short_code)
        .bind(event_name)
        .bind(event_name)
}

#[derive(Debug, Row, Deserialize)]
struct NameCount {
    event_name: String,
    n: u64,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct LinkTotals {
    pub clicks: u64,
    pub installs: u64,
    /// Opens of the installed app through the link (`POST /api/v1/opens`).
    pub opens: u64,
    /// Custom post-install events (everything but clicks, installs and opens).
    pub events: u64,
    pub by_event: BTreeMap<String, u64>,
}

pub fn link_totals_query(
    client: &Client,
    account_id: Uuid,
    short_code: &str,
    environment: Environment,
) -> Query {
    client
        .query(
            "SELECT event_name, sum(events) AS n FROM event_counts_daily \
             WHERE account_id = ? AND environment = ? AND link_short_code = ? GROUP BY event_name",
        )
        .bind(account_id.to_string())
        .bind(environment.storage_name())
        .bind(short_code)
}

/// All-time totals of one link, in the caller's environment.
pub async fn link_totals(
    client: &Client,
    account_id: Uuid,
    short_code: &str,
    environment: Environment,
) -> Result<LinkTotals, clickhouse::error::Error> {
    let rows = link_totals_query(client, account_id, short_code, environment)
        .fetch_all::<NameCount>()
        .await?;
    let mut totals = LinkTotals {
        clicks: 0,
        installs: 0,
        opens: 0,
        events: 0,
        by_event: BTreeMap::new(),
    };
    for row in rows {
        match SystemEvent::parse(&row.event_name) {
            Some(SystemEvent::Click) => totals.clicks = row.n,
            Some(SystemEvent::Install) => totals.installs = row.n,
            Some(SystemEvent::Open) => totals.opens = row.n,
            None => {
                totals.events += row.n;
                totals.by_event.insert(row.event_name, row.n);
            }
        }
    }
    Ok(totals)
}

#[derive(Debug, Row, Deserialize, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct TotalRow {
    pub short_code: String,
    pub event_name: String,
    pub count: u64,
}

pub fn totals_query(client: &Client, scope: &Scope) -> Query {
    let query = client.query(&format!(
        "SELECT link_short_code AS short_code, event_name, sum(events) AS count FROM {COUNTS} \
         GROUP BY link_short_code, event_name ORDER BY link_short_code, event_name"
    ));
    bind_counts(query, scope, &scope.short_code, &scope.event_name)
}

/// Exact totals per link and event name over the range.
pub async fn totals(
    client: &Client,
    scope: &Scope,
) -> Result<Vec<TotalRow>, clickhouse::error::Error> {
    totals_query(client, scope).fetch_all::<TotalRow>().await
}

/// A series' bucket: `hour` (ranges of up to 31 days) or `day`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Interval {
    Hour,
    #[default]
    Day,
}
#[derive(Debug, Row, Deserialize)]
struct BucketRow {
    bucket: u32,
    count: u64,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Point {
    pub time: DateTime<Utc>,
    pub count: u64,
}

pub fn timeseries_query(client: &Client, scope: &Scope, interval: Interval) -> Query {
    let (bucket, range) = match interval {
        Interval::Hour => ("bucket_hour", scope.hours().hours_only()),
        Interval::Day => ("bucket_day", scope.hours()),
    };
    if scope.short_code.is_empty() {
        let query = client.query(&format!(
            "SELECT {bucket} AS bucket, sum(events) AS count FROM {ALL_LINKS} GROUP BY bucket ORDER BY bucket"
        ));
        return bind_all_links(query, scope, &scope.event_name);
    }
    let query = client.query(&format!(
        "SELECT {bucket} AS bucket, sum(events) AS count FROM {COUNTS} GROUP BY bucket ORDER BY bucket"
    ));
    bind_counts_over(query, range, scope, &scope.short_code, &scope.event_name)
}

/// Exact counts per UTC hour or day over the range (buckets with no events are left out).
pub async fn timeseries(
    client: &Client,
    scope: &Scope,
    interval: Interval,
) -> Result<Vec<Point>, clickhouse::error::Error> {
    let rows = timeseries_query(client, scope, interval)
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
}

#[derive(Debug, Row, Deserialize)]
struct UsersRow {
    event_name: String,
    users: u64,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct FunnelStep {
    pub event_name: String,
    /// Exact.
    pub events: u64,
    /// Distinct users, approximate (see [`Funnel::users_approximate`]).
    pub users: u64,
    /// Users who did this per install (0 when there were no installs).
    pub per_install: f64,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Funnel {
    pub clicks: u64,
    pub installs: u64,
    pub install_rate: f64,
    /// Opens of the installed app through a link (re-engagement).
    pub opens: u64,
    pub steps: Vec<FunnelStep>,
    /// Always true: `users` is a `uniqHLL12` sketch (~1.6% error) over the UTC days the
    /// range touches; every other number is exact.
    pub users_approximate: bool,
}

pub fn funnel_events_query(client: &Client, scope: &Scope) -> Query {
    let grouped = "GROUP BY event_name ORDER BY events DESC, event_name";
    if scope.short_code.is_empty() {
        let query = client.query(&format!(
            "SELECT event_name, sum(events) AS events FROM {ALL_LINKS} {grouped}"
        ));
        return bind_all_links(query, scope, "");
    }
    let query = client.query(&format!(
        "SELECT event_name, sum(events) AS events FROM {COUNTS} {grouped}"
    ));
    bind_counts(query, scope, &scope.short_code, "")
}

pub fn funnel_users_query(client: &Client, scope: &Scope) -> Query {
    let (first, last) = scope.hours().touched_days();
    let link = if scope.short_code.is_empty() {
        "*"
    } else {
        scope.short_code.as_str()
    };
    client
        .query(
            "SELECT event_name, uniqHLL12Merge(users) AS users FROM event_users_daily \
             WHERE account_id = ? AND environment = ? AND link_short_code = ? \
               AND day >= toDate(?) AND day <= toDate(?) \
             GROUP BY event_name",
        )
        .bind(scope.account_id.to_string())
        .bind(scope.environment.storage_name())
        .bind(link)
        .bind(first.format("%Y-%m-%d").to_string())
        .bind(last.format("%Y-%m-%d").to_string())
}

/// Click → install → each post-install event, over the range.
pub async fn funnel(client: &Client, scope: &Scope) -> Result<Funnel, clickhouse::error::Error> {
    let (rows, users) = futures::try_join!(
        funnel_events_query(client, scope).fetch_all::<FunnelRow>(),
        funnel_users_query(client, scope).fetch_all::<UsersRow>(),
    )?;
    let users: BTreeMap<String, u64> = users.into_iter().map(|u| (u.event_name, u.users)).collect();
    let count_of = |event: SystemEvent| {
        rows.iter()
            .find(|r| r.event_name == event.as_str())
            .map(|r| r.events)
            .unwrap_or(0)
    };
    let clicks = count_of(SystemEvent::Click);
    let installs = count_of(SystemEvent::Install);
    let opens = count_of(SystemEvent::Open);
    let ratio = |a: u64, b: u64| if b == 0 { 0.0 } else { a as f64 / b as f64 };
    let steps = rows
        .iter()
        .filter(|r| SystemEvent::parse(&r.event_name).is_none())
        .map(|r| {
            let users = users.get(&r.event_name).copied().unwrap_or(0);
            FunnelStep {
                event_name: r.event_name.clone(),
                events: r.events,
                users,
                per_install: ratio(users, installs),
            }
        })
        .collect();
    Ok(Funnel {
        clicks,
        installs,
        install_rate: ratio(installs, clicks),
        opens,
        steps,
        users_approximate: true,
    })
}

#[derive(Debug, Row, Deserialize, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct TopLink {
    pub short_code: String,
    pub count: u64,
}

pub fn top_links_query(client: &Client, scope: &Scope, limit: u32) -> Query {
    let event = if scope.event_name.is_empty() {
        SystemEvent::Click.as_str()
    } else {
        scope.event_name.as_str()
    };
    let query = client.query(&format!(
        "SELECT link_short_code AS short_code, sum(events) AS count FROM {COUNTS} \
         WHERE link_short_code != '' \
         GROUP BY link_short_code ORDER BY count DESC, short_code LIMIT ?"
    ));
    bind_counts(query, scope, "", event).bind(limit)
}

/// The links with the most events of `scope.event_name` (clicks when empty).
pub async fn top_links(
    client: &Client,
    scope: &Scope,
    limit: u32,
) -> Result<Vec<TopLink>, clickhouse::error::Error> {
    top_links_query(client, scope, limit)
        .fetch_all::<TopLink>()
        .await
}

/// Every read above as the SQL it sends for a sample scope, by name: what the test suite
/// runs on current ClickHouse (chdb) as well as on the server.
pub fn catalog(client: &Client, scope: &Scope) -> Vec<(&'static str, String)> {
    let show = |query: Query| query.sql_display().to_string();
    let mut by_link = scope.clone();
    by_link.short_code = "alpha123".into();
    vec![
        (
            "link_totals",
            show(link_totals_query(
                client,
                scope.account_id,
                "alpha123",
                scope.environment,
            )),
        ),
        ("totals", show(totals_query(client, scope))),
        ("totals_by_link", show(totals_query(client, &by_link))),
        (
            "timeseries_hour",
            show(timeseries_query(client, scope, Interval::Hour)),
        ),
        (
            "timeseries_day",
            show(timeseries_query(client, scope, Interval::Day)),
        ),
        (
            "timeseries_hour_by_link",
            show(timeseries_query(client, &by_link, Interval::Hour)),
        ),
        (
            "timeseries_day_by_link",
            show(timeseries_query(client, &by_link, Interval::Day)),
        ),
        ("funnel_events", show(funnel_events_query(client, scope))),
        (
            "funnel_events_by_link",
            show(funnel_events_query(client, &by_link)),
        ),
        ("funnel_users", show(funnel_users_query(client, scope))),
        (
            "funnel_users_by_link",
            show(funnel_users_query(client, &by_link)),
        ),
        ("top_links", show(top_links_query(client, scope, 10))),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(text: &str) -> DateTime<Utc> {
        text.parse().unwrap()
    }

    #[test]
    fn a_range_is_widened_to_whole_hours_and_split_at_midnights() {
        let range = HourRange::covering(at("2026-11-01T10:20:00Z"), at("2026-11-04T05:00:01Z"));
        assert_eq!(range.from, at("2026-11-01T10:00:00Z"));
        assert_eq!(range.to, at("2026-11-04T06:00:00Z"));
        assert_eq!(range.days_from, at("2026-11-02T00:00:00Z"));
        assert_eq!(range.days_to, at("2026-11-04T00:00:00Z"));
    }

    #[test]
    fn a_range_without_a_whole_day_reads_hours_only() {
        let range = HourRange::covering(at("2026-11-01T10:00:00Z"), at("2026-11-02T09:00:00Z"));
        assert_eq!(range.days_from, range.days_to);
        let aligned = HourRange::covering(at("2026-11-01T00:00:00Z"), at("2026-11-02T00:00:00Z"));
        assert_eq!(
            (aligned.days_from, aligned.days_to),
            (at("2026-11-01T00:00:00Z"), at("2026-11-02T00:00:00Z"))
        );
    }

    #[test]
    fn the_users_rollup_reads_every_day_the_range_touches() {
        let range = HourRange::covering(at("2026-11-01T23:00:00Z"), at("2026-11-03T00:00:00Z"));
        assert_eq!(
            range.touched_days(),
            ("2026-11-01".parse().unwrap(), "2026-11-02".parse().unwrap())
        );
    }
}
