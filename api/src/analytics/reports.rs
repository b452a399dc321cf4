//! The rollup reports (`/api/v1/analytics/{totals,timeseries,funnel,top-links}` and a
//! link's totals). Every one is a rollup read, never a scan of an account's raw history:
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
//! is a named `…_query` returning its [`Sql`], so the exact SQL it runs can be shown (see
//! [`catalog`]).

use std::collections::BTreeMap;

use chrono::{DateTime, Duration, DurationRound, NaiveDate, Utc};
use chrono_tz::Tz;
use clickhouse::{Client, Row};
use linktrace_domain::{Environment, SystemEvent};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::analytics::interval::Interval;
use crate::analytics::sql::{secs, Sql};

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

/// A `Date` bound, as text.
fn date(day: NaiveDate) -> String {
    day.format("%Y-%m-%d").to_string()
}

/// `account_id = ? AND environment = ?` for the scope's owner.
fn owner(sql: &mut Sql, scope: &Scope) {
    sql.push("account_id = ")
        .value(scope.account_id.to_string())
        .push(" AND environment = ")
        .value(scope.environment.storage_name());
}

/// ` AND column = ?`, unless `value` is empty (any).
fn equal_unless_empty(sql: &mut Sql, column: &str, value: &str) {
    if !value.is_empty() {
        sql.push(&format!(" AND {column} = ")).value(value);
    }
}

/// The rows of both count rollups over `range`, as one sub-query with the columns
/// `bucket_day` (UInt32 seconds, the UTC day), `bucket_hour` (UInt32 seconds, the hour;
/// the day for rows of the daily rollup, so hourly buckets read [`HourRange::hours_only`]),
/// `event_name`, `link_short_code`, `events`. An empty `short_code` or `event_name` is any.
fn counts(scope: &Scope, range: HourRange, short_code: &str, event_name: &str) -> Sql {
    let mut sql = Sql::new(
        "(SELECT toUInt32(toDateTime(day)) AS bucket_day, toUInt32(toDateTime(day)) AS bucket_hour, \
                 event_name, link_short_code, events FROM event_counts_daily WHERE ",
    );
    owner(&mut sql, scope);
    sql.push(" AND day >= toDate(")
        .value(date(range.days_from.date_naive()))
        .push(") AND day < toDate(")
        .value(date(range.days_to.date_naive()))
        .push(")");
    equal_unless_empty(&mut sql, "link_short_code", short_code);
    equal_unless_empty(&mut sql, "event_name", event_name);
    sql.push(
        " UNION ALL \
         SELECT toUInt32(toStartOfDay(hour)) AS bucket_day, toUInt32(hour) AS bucket_hour, \
                event_name, link_short_code, events FROM event_counts_hourly WHERE ",
    );
    owner(&mut sql, scope);
    sql.push(" AND ((hour >= toDateTime(")
        .value(secs(range.from))
        .push(") AND hour < toDateTime(")
        .value(secs(range.days_from))
        .push(")) OR (hour >= toDateTime(")
        .value(secs(range.days_to))
        .push(") AND hour < toDateTime(")
        .value(secs(range.to))
        .push(")))");
    equal_unless_empty(&mut sql, "link_short_code", short_code);
    equal_unless_empty(&mut sql, "event_name", event_name);
    sql.push(")");
    sql
}

/// The rows of the all-links hourly rollup over the scope's range, as one sub-query with
/// the columns `bucket_day`, `bucket_hour`, `event_name`, `events` (as [`counts`], without
/// `link_short_code`): for reads that neither filter nor group by link.
fn all_links(scope: &Scope, event_name: &str) -> Sql {
    let range = scope.hours();
    let mut sql = Sql::new(
        "(SELECT toUInt32(toStartOfDay(hour)) AS bucket_day, toUInt32(hour) AS bucket_hour, \
                 event_name, events FROM event_totals_hourly WHERE ",
    );
    owner(&mut sql, scope);
    sql.push(" AND hour >= toDateTime(")
        .value(secs(range.from))
        .push(") AND hour < toDateTime(")
        .value(secs(range.to))
        .push(")");
    equal_unless_empty(&mut sql, "event_name", event_name);
    sql.push(")");
    sql
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

pub fn link_totals_query(account_id: Uuid, short_code: &str, environment: Environment) -> Sql {
    let mut sql =
        Sql::new("SELECT event_name, sum(events) AS n FROM event_counts_daily WHERE account_id = ");
    sql.value(account_id.to_string())
        .push(" AND environment = ")
        .value(environment.storage_name())
        .push(" AND link_short_code = ")
        .value(short_code)
        .push(" GROUP BY event_name");
    sql
}

/// All-time totals of one link, in the caller's environment.
pub async fn link_totals(
    client: &Client,
    account_id: Uuid,
    short_code: &str,
    environment: Environment,
) -> Result<LinkTotals, clickhouse::error::Error> {
    let rows = link_totals_query(account_id, short_code, environment)
        .query(client)
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

pub fn totals_query(scope: &Scope) -> Sql {
    let rows = counts(scope, scope.hours(), &scope.short_code, &scope.event_name);
    Sql::wrap(
        &rows,
        "SELECT link_short_code AS short_code, event_name, sum(events) AS count FROM ",
        " GROUP BY link_short_code, event_name ORDER BY link_short_code, event_name",
    )
}

/// Exact totals per link and event name over the range.
pub async fn totals(
    client: &Client,
    scope: &Scope,
) -> Result<Vec<TotalRow>, clickhouse::error::Error> {
    totals_query(scope)
        .query(client)
        .fetch_all::<TotalRow>()
        .await
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

/// Counts per UTC hour (`hourly`) or day, buckets with events only.
pub fn timeseries_query(scope: &Scope, hourly: bool) -> Sql {
    let (bucket, range) = if hourly {
        ("bucket_hour", scope.hours().hours_only())
    } else {
        ("bucket_day", scope.hours())
    };
    let rows = if scope.short_code.is_empty() {
        all_links(scope, &scope.event_name)
    } else {
        counts(scope, range, &scope.short_code, &scope.event_name)
    };
    Sql::wrap(
        &rows,
        &format!("SELECT {bucket} AS bucket, sum(events) AS count FROM "),
        " GROUP BY bucket ORDER BY bucket",
    )
}

/// Exact counts per UTC hour, day, week (from Monday) or month over the range; buckets with
/// no events are left out. Weeks and months are folded from days.
pub async fn timeseries(
    client: &Client,
    scope: &Scope,
    interval: Interval,
) -> Result<Vec<Point>, clickhouse::error::Error> {
    let rows = timeseries_query(scope, interval == Interval::Hour)
        .query(client)
        .fetch_all::<BucketRow>()
        .await?;
    let mut points: BTreeMap<DateTime<Utc>, u64> = BTreeMap::new();
    for row in rows {
        let at = DateTime::from_timestamp(row.bucket.into(), 0).unwrap_or_default();
        let start = interval
            .bucket_start(at.with_timezone(&Tz::UTC))
            .with_timezone(&Utc);
        *points.entry(start).or_default() += row.count;
    }
    Ok(points
        .into_iter()
        .map(|(time, count)| Point { time, count })
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

pub fn funnel_events_query(scope: &Scope) -> Sql {
    let rows = if scope.short_code.is_empty() {
        all_links(scope, "")
    } else {
        counts(scope, scope.hours(), &scope.short_code, "")
    };
    Sql::wrap(
        &rows,
        "SELECT event_name, sum(events) AS events FROM ",
        " GROUP BY event_name ORDER BY events DESC, event_name",
    )
}

pub fn funnel_users_query(scope: &Scope) -> Sql {
    let (first, last) = scope.hours().touched_days();
    let link = if scope.short_code.is_empty() {
        "*"
    } else {
        scope.short_code.as_str()
    };
    let mut sql =
        Sql::new("SELECT event_name, uniqHLL12Merge(users) AS users FROM event_users_daily WHERE ");
    owner(&mut sql, scope);
    sql.push(" AND link_short_code = ")
        .value(link)
        .push(" AND day >= toDate(")
        .value(date(first))
        .push(") AND day <= toDate(")
        .value(date(last))
        .push(") GROUP BY event_name");
    sql
}

/// Click → install → each post-install event, over the range.
pub async fn funnel(client: &Client, scope: &Scope) -> Result<Funnel, clickhouse::error::Error> {
    let (rows, users) = futures::try_join!(
        funnel_events_query(scope)
            .query(client)
            .fetch_all::<FunnelRow>(),
        funnel_users_query(scope)
            .query(client)
            .fetch_all::<UsersRow>(),
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

pub fn top_links_query(scope: &Scope, limit: u32) -> Sql {
    let event = if scope.event_name.is_empty() {
        SystemEvent::Click.as_str()
    } else {
        scope.event_name.as_str()
    };
    let mut sql = Sql::wrap(
        &counts(scope, scope.hours(), "", event),
        "SELECT link_short_code AS short_code, sum(events) AS count FROM ",
        " WHERE link_short_code != '' \
          GROUP BY link_short_code ORDER BY count DESC, short_code LIMIT ",
    );
    sql.value(limit);
    sql
}

/// The links with the most events of `scope.event_name` (clicks when empty).
pub async fn top_links(
    client: &Client,
    scope: &Scope,
    limit: u32,
) -> Result<Vec<TopLink>, clickhouse::error::Error> {
    top_links_query(scope, limit)
        .query(client)
        .fetch_all::<TopLink>()
        .await
}

/// Every read above as the SQL it sends for a sample scope, by name: what the test suite
/// runs on current ClickHouse (chdb) as well as on the server.
pub fn catalog(client: &Client, scope: &Scope) -> Vec<(&'static str, String)> {
    let show = |sql: Sql| sql.display(client);
    let mut by_link = scope.clone();
    by_link.short_code = "alpha123".into();
    vec![
        (
            "link_totals",
            show(link_totals_query(
                scope.account_id,
                "alpha123",
                scope.environment,
            )),
        ),
        ("totals", show(totals_query(scope))),
        ("totals_by_link", show(totals_query(&by_link))),
        ("timeseries_hour", show(timeseries_query(scope, true))),
        ("timeseries_day", show(timeseries_query(scope, false))),
        (
            "timeseries_hour_by_link",
            show(timeseries_query(&by_link, true)),
        ),
        (
            "timeseries_day_by_link",
            show(timeseries_query(&by_link, false)),
        ),
        ("funnel_events", show(funnel_events_query(scope))),
        ("funnel_events_by_link", show(funnel_events_query(&by_link))),
        ("funnel_users", show(funnel_users_query(scope))),
        ("funnel_users_by_link", show(funnel_users_query(&by_link))),
        ("top_links", show(top_links_query(scope, 10))),
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
