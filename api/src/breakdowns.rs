//! `GET /api/v1/analytics` reads: counts, series and breakdowns by any click fact, all
//! from the `event_breakdowns_15m` rollup (fifteen-minute buckets keyed by every fact).
//!
//! A range's whole buckets come from the rollup. Only when `from` or `to` falls inside a
//! bucket are the events of those partial buckets read from `events` (whose rows are
//! stored exactly once, so both halves are exact); the dashboard's and the default ranges
//! are whole buckets and never touch `events`. Series are bucketed in the caller's time
//! zone in Rust (chrono-tz), from the UTC fifteen-minute buckets, so every zone and every
//! DST change is exact on any ClickHouse version. Every value from the caller is bound.

use std::collections::BTreeMap;

use chrono::{DateTime, Datelike, Duration, DurationRound, NaiveDate, TimeZone, Timelike, Utc};
use chrono_tz::Tz;
use clickhouse::query::Query;
use clickhouse::{Client, Row};
use linktrace_domain::{AmountSum, Environment, SystemEvent, OS_FAMILY_SQL};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::analytics::secs;

/// The rollup's bucket.
pub const BUCKET: Duration = Duration::minutes(15);

/// Which events are counted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EventSelector {
    Clicks,
    Installs,
    /// Opens of an installed app through a link (`POST /api/v1/opens`).
    Opens,
    /// Every custom post-install event (all but clicks, installs and opens).
    Events,
    Named(String),
}

impl EventSelector {
    /// The condition on `event_name` this selects, and the value it binds (a name).
    pub fn condition(&self) -> (String, Option<String>) {
        let (click, install, open) = (
            SystemEvent::Click.as_str(),
            SystemEvent::Install.as_str(),
            SystemEvent::Open.as_str(),
        );
        match self {
            EventSelector::Clicks => (format!("event_name = '{click}'"), None),
            EventSelector::Installs => (format!("event_name = '{install}'"), None),
            EventSelector::Opens => (format!("event_name = '{open}'"), None),
            EventSelector::Events => (
                format!("event_name NOT IN ('{click}', '{install}', '{open}')"),
                None,
            ),
            EventSelector::Named(name) => ("event_name = ?".to_owned(), Some(name.clone())),
        }
    }
}

/// What rows are grouped by.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum GroupBy {
    Count,
    Timeseries,
    Links,
    Events,
    Countries,
    Cities,
    Devices,
    Os,
    Browsers,
    Referrers,
    UtmSources,
    UtmMediums,
    UtmCampaigns,
    UtmTerms,
    UtmContents,
}

impl GroupBy {
    /// The rollup column and the answer's key of a breakdown (`None`: count, series).
    pub fn breakdown(self) -> Option<(&'static str, &'static str)> {
        Some(match self {
            GroupBy::Count | GroupBy::Timeseries => return None,
            GroupBy::Links => ("link_short_code", "shortCode"),
            GroupBy::Events => ("event_name", "eventName"),
            GroupBy::Countries => ("country", "country"),
            GroupBy::Cities => ("city", "city"),
            GroupBy::Devices => ("device", "device"),
            GroupBy::Os => ("os_family", "os"),
            GroupBy::Browsers => ("browser", "browser"),
            GroupBy::Referrers => ("referrer_host", "referrer"),
            GroupBy::UtmSources => ("utm_source", "utmSource"),
            GroupBy::UtmMediums => ("utm_medium", "utmMedium"),
            GroupBy::UtmCampaigns => ("utm_campaign", "utmCampaign"),
            GroupBy::UtmTerms => ("utm_term", "utmTerm"),
            GroupBy::UtmContents => ("utm_content", "utmContent"),
        })
    }
}

/// A series' bucket.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Interval {
    Hour,
    #[default]
    Day,
    Week,
    Month,
}

/// One filter: a column, the values it must be one of (empty: any), and those it must not be.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Filter {
    pub column: &'static str,
    pub include: Vec<String>,
    pub exclude: Vec<String>,
}

/// Everything one read is scoped by.
#[derive(Debug, Clone)]
pub struct Selection {
    pub account_id: Uuid,
    pub environment: Environment,
    /// `[from, to)`, to the millisecond.
    pub from: DateTime<Utc>,
    pub to: DateTime<Utc>,
    pub event: EventSelector,
    pub filters: Vec<Filter>,
    pub include_bots: bool,
    /// Count repeated clicks (a visitor's clicks on a link within an hour of a counted one).
    pub include_repeats: bool,
}

impl Selection {
    /// The whole buckets inside the range, and whether partial buckets lie at its ends.
    fn whole_buckets(&self) -> (DateTime<Utc>, DateTime<Utc>) {
        let first = ceil(self.from);
        let last = floor(self.to).max(first);
        (first, last)
    }

    fn has_partial_buckets(&self) -> bool {
        let (first, last) = self.whole_buckets();
        first != self.from || last != self.to
    }
}

pub fn floor(at: DateTime<Utc>) -> DateTime<Utc> {
    at.duration_trunc(BUCKET).unwrap_or(at)
}

pub fn ceil(at: DateTime<Utc>) -> DateTime<Utc> {
    let floor = floor(at);
    if floor < at {
        floor + BUCKET
    } else {
        floor
    }
}

/// The facts' columns, as both sources name them; the OS as its family (`os_family`), so
/// clicks stored before families were kept group and filter with the rest.
static COLUMNS: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
    format!(
        "event_name, link_short_code, bot, country, city, device, {OS_FAMILY_SQL} AS os_family, \
         browser, referrer_host, utm_source, utm_medium, utm_campaign, utm_term, utm_content, \
         revenue_currency"
    )
});

/// The rows the read runs over, as a sub-query with `bucket`, the facts' columns, `counted`
/// (events, less repeated clicks unless the selection includes them) and `revenue_micros`:
/// the rollup's whole buckets, and the raw events of partial ones.
fn source(selection: &Selection) -> String {
    let columns = COLUMNS.as_str();
    let (rollup_counted, event_counted) = if selection.include_repeats {
        ("events", "toUInt64(1)")
    } else {
        ("toUInt64(events - repeats)", "toUInt64(1 - is_repeat)")
    };
    let rollup = format!(
        "SELECT bucket, {columns}, {rollup_counted} AS counted, revenue_micros FROM event_breakdowns_15m \
          WHERE account_id = ? AND environment = ? AND bucket >= toDateTime(?) AND bucket < toDateTime(?)"
    );
    if !selection.has_partial_buckets() {
        return format!("({rollup})");
    }
    format!(
        "({rollup} UNION ALL \
          SELECT toStartOfFifteenMinutes(event_time) AS bucket, {columns}, {event_counted} AS counted, \
                 toDecimal128(revenue_micros, 0) AS revenue_micros \
            FROM events \
           WHERE account_id = ? AND environment = ? \
             AND event_time >= toDateTime(?) AND event_time < toDateTime(?) \
             AND event_time_ms >= ? AND event_time_ms < ? \
             AND (event_time_ms < ? OR event_time_ms >= ?))"
    )
}

/// An `event_time_ms` bound: milliseconds since the epoch.
pub(crate) fn millis(at: DateTime<Utc>) -> u64 {
    at.timestamp_millis().max(0) as u64
}

fn bind_source(mut query: Query, selection: &Selection) -> Query {
    let account = selection.account_id.to_string();
    let environment = selection.environment.storage_name();
    let (first, last) = selection.whole_buckets();
    query = query
        .bind(&account)
        .bind(environment)
        .bind(secs(first))
        .bind(secs(last));
    if selection.has_partial_buckets() {
        query = query
            .bind(&account)
            .bind(environment)
            .bind(secs(floor(selection.from)))
            .bind(secs(ceil(selection.to)))
            .bind(millis(selection.from))
            .bind(millis(selection.to))
            .bind(millis(first))
            .bind(millis(last));
    }
    query
}

/// The WHERE conditions of the selection, over the source's columns, with their values
/// in binding order.
fn conditions(selection: &Selection) -> (String, Vec<String>) {
    let mut sql = vec![];
    let mut values = vec![];
    let (event, name) = selection.event.condition();
    sql.push(event);
    values.extend(name);
    if !selection.include_bots {
        sql.push("bot = 0".to_owned());
    }
    for filter in &selection.filters {
        let placeholders = |n: usize| vec!["?"; n].join(", ");
        if !filter.include.is_empty() {
            sql.push(format!(
                "{} IN ({})",
                filter.column,
                placeholders(filter.include.len())
            ));
            values.extend(filter.include.iter().cloned());
        }
        if !filter.exclude.is_empty() {
            sql.push(format!(
                "{} NOT IN ({})",
                filter.column,
                placeholders(filter.exclude.len())
            ));
            values.extend(filter.exclude.iter().cloned());
        }
    }
    (sql.join(" AND "), values)
}

/// Counts and revenue per `key` (an expression over the source's columns), by currency.
fn grouped_query(client: &Client, selection: &Selection, key: &str, limit: Option<u32>) -> Query {
    let (conditions, values) = conditions(selection);
    let order = match limit {
        Some(limit) => format!("ORDER BY count DESC, key LIMIT {limit}"),
        None => "ORDER BY key".to_owned(),
    };
    let sql = format!(
        "SELECT key, sum(events) AS count, groupArray(revenue_currency) AS currencies, \
                groupArray(toString(revenue)) AS revenues \
           FROM (SELECT {key} AS key, revenue_currency, sum(counted) AS events, \
                        sum(revenue_micros) AS revenue \
                   FROM {} WHERE {conditions} GROUP BY key, revenue_currency) \
          GROUP BY key {order}",
        source(selection)
    );
    let mut query = bind_source(client.query(&sql), selection);
    for value in values {
        query = query.bind(value);
    }
    query
}

pub fn count_query(client: &Client, selection: &Selection) -> Query {
    grouped_query(client, selection, "''", None)
}

pub fn breakdown_query(
    client: &Client,
    selection: &Selection,
    group_by: GroupBy,
    limit: u32,
) -> Query {
    let (column, _) = group_by.breakdown().unwrap_or(("''", ""));
    grouped_query(client, selection, column, Some(limit))
}

pub fn series_query(client: &Client, selection: &Selection) -> Query {
    grouped_query(client, selection, "toUInt32(bucket)", None)
}

#[derive(Debug, Row, Deserialize)]
struct GroupedRow<K> {
    key: K,
    count: u64,
    currencies: Vec<String>,
    /// Decimal128 sums of micros, as text (exact at any size).
    revenues: Vec<String>,
}

/// Sums per ISO currency (major units), for the rows that carry revenue.
pub type Revenue = BTreeMap<String, AmountSum>;

fn revenue(currencies: &[String], revenues: &[String]) -> Option<Revenue> {
    let sums: Revenue = currencies
        .iter()
        .zip(revenues)
        .filter(|(currency, _)| !currency.is_empty())
        .filter_map(|(currency, micros)| Some((currency.clone(), AmountSum(micros.parse().ok()?))))
        .collect();
    (!sums.is_empty()).then_some(sums)
}

/// A row of an answer: a breakdown's key (or a series' time), its count, its revenue.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Counted<K> {
    pub key: K,
    pub count: u64,
    pub revenue: Option<Revenue>,
}

fn merge_revenue(into: &mut Option<Revenue>, more: Option<Revenue>) {
    if let Some(more) = more {
        let into = into.get_or_insert_with(Revenue::new);
        for (currency, amount) in more {
            *into.entry(currency).or_default() += amount;
        }
    }
}

pub async fn count(
    client: &Client,
    selection: &Selection,
) -> clickhouse::error::Result<Counted<()>> {
    let rows: Vec<GroupedRow<String>> = count_query(client, selection).fetch_all().await?;
    let mut total = Counted {
        key: (),
        count: 0,
        revenue: None,
    };
    for row in rows {
        total.count += row.count;
        merge_revenue(&mut total.revenue, revenue(&row.currencies, &row.revenues));
    }
    Ok(total)
}

pub async fn breakdown(
    client: &Client,
    selection: &Selection,
    group_by: GroupBy,
    limit: u32,
) -> clickhouse::error::Result<Vec<Counted<String>>> {
    let rows: Vec<GroupedRow<String>> = breakdown_query(client, selection, group_by, limit)
        .fetch_all()
        .await?;
    Ok(rows
        .into_iter()
        .map(|row| Counted {
            revenue: revenue(&row.currencies, &row.revenues),
            key: row.key,
            count: row.count,
        })
        .collect())
}

/// A series in `zone`: every bucket from the one holding `from` to the one holding `to`,
/// empty ones as 0, in time order.
pub async fn series(
    client: &Client,
    selection: &Selection,
    interval: Interval,
    zone: Tz,
) -> clickhouse::error::Result<Vec<Counted<DateTime<Tz>>>> {
    let rows: Vec<GroupedRow<u32>> = series_query(client, selection).fetch_all().await?;
    let mut buckets = local_buckets(selection.from, selection.to, interval, zone);
    for row in rows {
        let at = Utc
            .timestamp_opt(i64::from(row.key), 0)
            .single()
            .unwrap_or_default();
        let start = bucket_start(at.with_timezone(&zone), interval);
        if let Some(bucket) = buckets.get_mut(&start.timestamp()) {
            bucket.count += row.count;
            merge_revenue(&mut bucket.revenue, revenue(&row.currencies, &row.revenues));
        }
    }
    Ok(buckets.into_values().collect())
}

/// The start of the bucket of `interval` holding `at`, in `at`'s zone.
pub fn bucket_start(at: DateTime<Tz>, interval: Interval) -> DateTime<Tz> {
    let zone = at.timezone();
    let date = at.date_naive();
    let day = match interval {
        Interval::Hour => {
            // Local hours can repeat or vanish at DST changes: step in UTC, truncate locally.
            let minutes = i64::from(at.minute()) * 60 + i64::from(at.second());
            return at - Duration::seconds(minutes) - Duration::nanoseconds(at.nanosecond().into());
        }
        Interval::Day => date,
        Interval::Week => date - Duration::days(date.weekday().num_days_from_monday().into()),
        Interval::Month => date.with_day(1).unwrap_or(date),
    };
    local_midnight(zone, day)
}

/// Midnight of `day` in `zone` (or the first instant of the day where DST skips midnight).
fn local_midnight(zone: Tz, day: NaiveDate) -> DateTime<Tz> {
    let midnight = day.and_hms_opt(0, 0, 0).expect("midnight exists");
    (0..=4)
        .find_map(|quarter| {
            zone.from_local_datetime(&(midnight + Duration::minutes(15 * quarter)))
                .earliest()
        })
        .unwrap_or_else(|| zone.from_utc_datetime(&midnight))
}

fn next_bucket(start: DateTime<Tz>, interval: Interval) -> DateTime<Tz> {
    let zone = start.timezone();
    let date = start.date_naive();
    match interval {
        Interval::Hour => bucket_start(start + Duration::hours(1), interval),
        Interval::Day => local_midnight(zone, date + Duration::days(1)),
        Interval::Week => local_midnight(zone, date + Duration::days(7)),
        Interval::Month => {
            let (year, month) = if date.month() == 12 {
                (date.year() + 1, 1)
            } else {
                (date.year(), date.month() + 1)
            };
            local_midnight(
                zone,
                NaiveDate::from_ymd_opt(year, month, 1).unwrap_or(date),
            )
        }
    }
}

/// Every bucket the range touches, keyed by its start (epoch seconds), counts at 0.
fn local_buckets(
    from: DateTime<Utc>,
    to: DateTime<Utc>,
    interval: Interval,
    zone: Tz,
) -> BTreeMap<i64, Counted<DateTime<Tz>>> {
    let mut buckets = BTreeMap::new();
    let mut start = bucket_start(from.with_timezone(&zone), interval);
    while start.with_timezone(&Utc) < to {
        buckets.insert(
            start.timestamp(),
            Counted {
                key: start,
                count: 0,
                revenue: None,
            },
        );
        let next = next_bucket(start, interval);
        if next <= start {
            break;
        }
        start = next;
    }
    buckets
}

/// The reads `GET /api/v1/analytics` runs, as SQL (for the catalog the SQL tests run).
pub fn catalog(client: &Client, selection: &Selection) -> Vec<(&'static str, String)> {
    let show = |query: Query| query.sql_display().to_string();
    let aligned = Selection {
        from: floor(selection.from),
        to: ceil(selection.to),
        ..selection.clone()
    };
    let filtered = Selection {
        include_bots: true,
        include_repeats: false,
        filters: vec![
            Filter {
                column: "country",
                include: vec!["DE".into(), "JP".into()],
                exclude: vec![],
            },
            Filter {
                column: "device",
                include: vec![],
                exclude: vec!["desktop".into()],
            },
        ],
        ..selection.clone()
    };
    let purchases = Selection {
        event: EventSelector::Named("purchase".into()),
        ..selection.clone()
    };
    vec![
        ("v2_count", show(count_query(client, selection))),
        ("v2_count_aligned", show(count_query(client, &aligned))),
        ("v2_series", show(series_query(client, selection))),
        (
            "v2_countries",
            show(breakdown_query(client, selection, GroupBy::Countries, 100)),
        ),
        (
            "v2_devices_filtered",
            show(breakdown_query(client, &filtered, GroupBy::Devices, 100)),
        ),
        (
            "v2_utm_sources_aligned",
            show(breakdown_query(client, &aligned, GroupBy::UtmSources, 100)),
        ),
        (
            "v2_purchase_revenue_by_link",
            show(breakdown_query(client, &purchases, GroupBy::Links, 100)),
        ),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(text: &str) -> DateTime<Utc> {
        text.parse().unwrap()
    }

    #[test]
    fn local_buckets_follow_the_zone() {
        let kolkata: Tz = "Asia/Kolkata".parse().unwrap();
        let days = local_buckets(
            at("2026-11-01T00:00:00Z"),
            at("2026-11-03T00:00:00Z"),
            Interval::Day,
            kolkata,
        );
        let starts: Vec<String> = days.values().map(|b| b.key.to_rfc3339()).collect();
        assert_eq!(
            starts,
            [
                "2026-11-01T00:00:00+05:30",
                "2026-11-02T00:00:00+05:30",
                "2026-11-03T00:00:00+05:30"
            ]
        );
        let months = local_buckets(
            at("2026-01-15T00:00:00Z"),
            at("2026-03-02T00:00:00Z"),
            Interval::Month,
            Tz::UTC,
        );
        assert_eq!(months.len(), 3);
        let weeks = local_buckets(
            at("2026-11-04T00:00:00Z"),
            at("2026-11-10T00:00:00Z"),
            Interval::Week,
            Tz::UTC,
        );
        let starts: Vec<String> = weeks.values().map(|b| b.key.to_rfc3339()).collect();
        assert_eq!(
            starts,
            ["2026-11-02T00:00:00+00:00", "2026-11-09T00:00:00+00:00"]
        );
    }

    #[test]
    fn dst_days_are_23_and_25_hours() {
        let berlin: Tz = "Europe/Berlin".parse().unwrap();
        let days = local_buckets(
            at("2026-03-28T12:00:00Z"),
            at("2026-03-30T12:00:00Z"),
            Interval::Day,
            berlin,
        );
        let starts: Vec<i64> = days.keys().copied().collect();
        assert_eq!(
            starts[2] - starts[1],
            23 * 3600,
            "29 March 2026 has 23 hours in Berlin"
        );
        let hours = local_buckets(
            at("2026-10-25T00:00:00Z"),
            at("2026-10-25T03:00:00Z"),
            Interval::Hour,
            berlin,
        );
        assert_eq!(hours.len(), 3, "a repeated local hour is two buckets");
    }

    #[test]
    fn partial_buckets_are_read_from_events_only_when_there_are_some() {
        let selection = Selection {
            account_id: Uuid::nil(),
            environment: Environment::Live,
            from: at("2026-11-01T10:00:00Z"),
            to: at("2026-11-02T10:15:00Z"),
            event: EventSelector::Clicks,
            filters: vec![],
            include_bots: false,
            include_repeats: false,
        };
        assert!(!source(&selection).contains("FROM events"));
        let ragged = Selection {
            from: at("2026-11-01T10:07:00Z"),
            ..selection
        };
        assert!(source(&ragged).contains("FROM events"));
        assert_eq!(
            ragged.whole_buckets(),
            (at("2026-11-01T10:15:00Z"), at("2026-11-02T10:15:00Z"))
        );
    }

    #[test]
    fn filters_bind_every_value() {
        let selection = Selection {
            account_id: Uuid::nil(),
            environment: Environment::Live,
            from: at("2026-11-01T10:00:00Z"),
            to: at("2026-11-02T10:00:00Z"),
            event: EventSelector::Named("purchase".into()),
            filters: vec![Filter {
                column: "country",
                include: vec!["DE".into(), "FR".into()],
                exclude: vec!["US".into()],
            }],
            include_bots: true,
            include_repeats: false,
        };
        let (sql, values) = conditions(&selection);
        assert_eq!(
            sql,
            "event_name = ? AND country IN (?, ?) AND country NOT IN (?)"
        );
        assert_eq!(values, ["purchase", "DE", "FR", "US"]);
    }
}
