//! `GET /api/v1/analytics` reads: counts, series and breakdowns by any click fact, all
//! from the `event_breakdowns_15m` rollup (fifteen-minute buckets keyed by every fact).
//!
//! A range's whole buckets come from the rollup. Only when `from` or `to` falls inside a
//! bucket are the events of those partial buckets read from `events` (whose rows are
//! stored exactly once, so both halves are exact); the dashboard's and the default ranges
//! are whole buckets and never touch `events`. Series are bucketed in the caller's time
//! zone in Rust (chrono-tz), from the UTC fifteen-minute buckets, so every zone and every
//! DST change is exact on any ClickHouse version. Every value from the caller is bound.
//!
//! Every row also carries `uniques`: distinct visitors for clicks, distinct users for other
//! events, merged from the rollup's `uniqHLL12` sketches (approximate, exact for small sets;
//! answers say so). Sketches do not add up, so a series groups by the caller's buckets in
//! SQL: each UTC bucket's index among the caller's bucket starts, computed in Rust.

use std::collections::BTreeMap;

use chrono::{DateTime, Duration, DurationRound, Utc};
use chrono_tz::Tz;
use clickhouse::{Client, Row};
use linktrace_domain::{AmountSum, Environment, OS_FAMILY_SQL};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::analytics::event::EventSelector;
use crate::analytics::interval::Interval;
use crate::analytics::sql::{millis, secs, Sql};

/// The rollup's bucket.
pub const BUCKET: Duration = Duration::minutes(15);

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

/// Who an event came from, for `uniques`: the salted visitor key of a click, the user id of
/// any other event (the rollup's view keeps the same, migration 9).
const WHO: &str = "if(event_name = 'click', visitor, user_id)";

/// The rows the read runs over, as a sub-query with `bucket`, the facts' columns, `counted`
/// (events, less repeated clicks unless the selection includes them), `revenue_micros` and
/// `uniques` (a sketch of who they came from): the rollup's whole buckets, and the raw
/// events of partial ones.
fn source(selection: &Selection) -> Sql {
    let columns = COLUMNS.as_str();
    let account = selection.account_id.to_string();
    let environment = selection.environment.storage_name();
    let (rollup_counted, event_counted) = if selection.include_repeats {
        ("events", "toUInt64(1)")
    } else {
        ("toUInt64(events - repeats)", "toUInt64(1 - is_repeat)")
    };
    let (first, last) = selection.whole_buckets();
    let mut sql = Sql::new(&format!(
        "(SELECT bucket, {columns}, {rollup_counted} AS counted, revenue_micros, uniques FROM event_breakdowns_15m \
          WHERE account_id = "
    ));
    sql.value(account.as_str())
        .push(" AND environment = ")
        .value(environment)
        .push(" AND bucket >= toDateTime(")
        .value(secs(first))
        .push(") AND bucket < toDateTime(")
        .value(secs(last))
        .push(")");
    if selection.has_partial_buckets() {
        sql.push(&format!(
            " UNION ALL \
              SELECT toStartOfFifteenMinutes(event_time) AS bucket, {columns}, {event_counted} AS counted, \
                     toDecimal128(revenue_micros, 0) AS revenue_micros, \
                     arrayReduce('uniqHLL12State', arrayFilter(w -> w != '', [{WHO}])) AS uniques \
                FROM events WHERE account_id = "
        ))
        .value(account.as_str())
        .push(" AND environment = ")
        .value(environment)
        .push(" AND event_time >= toDateTime(")
        .value(secs(floor(selection.from)))
        .push(") AND event_time < toDateTime(")
        .value(secs(ceil(selection.to)))
        .push(") AND event_time_ms >= ")
        .value(millis(selection.from))
        .push(" AND event_time_ms < ")
        .value(millis(selection.to))
        .push(" AND (event_time_ms < ")
        .value(millis(first))
        .push(" OR event_time_ms >= ")
        .value(millis(last))
        .push(")");
    }
    sql.push(")");
    sql
}

/// The WHERE conditions of the selection, over the source's columns.
fn conditions(selection: &Selection) -> Sql {
    let mut sql = selection.event.condition();
    if !selection.include_bots {
        sql.push(" AND bot = 0");
    }
    for filter in &selection.filters {
        if !filter.include.is_empty() {
            sql.push(&format!(" AND {} IN (", filter.column))
                .values(filter.include.iter().map(String::as_str))
                .push(")");
        }
        if !filter.exclude.is_empty() {
            sql.push(&format!(" AND {} NOT IN (", filter.column))
                .values(filter.exclude.iter().map(String::as_str))
                .push(")");
        }
    }
    sql
}

/// Sums per `key` (an expression over the source's columns) and currency, as a sub-query
/// with `key`, `revenue_currency`, `events`, `revenue` and `sketch` (the merged sketches).
fn sums_per_key(selection: &Selection, key: &str) -> Sql {
    let mut sql = Sql::new(&format!(
        "(SELECT {key} AS key, revenue_currency, sum(counted) AS events, \
                 sum(revenue_micros) AS revenue, uniqHLL12MergeState(uniques) AS sketch \
            FROM "
    ));
    sql.append(&source(selection))
        .push(" WHERE ")
        .append(&conditions(selection))
        .push(" GROUP BY key, revenue_currency)");
    sql
}

/// The answer's rows from [`sums_per_key`]'s: count, revenue by currency and uniques per key.
fn answer_rows(sums: &Sql, order: &str) -> Sql {
    Sql::wrap(
        sums,
        "SELECT key, sum(events) AS count, groupArray(revenue_currency) AS currencies, \
                groupArray(toString(revenue)) AS revenues, uniqHLL12Merge(sketch) AS uniques \
           FROM ",
        &format!(" GROUP BY key {order}"),
    )
}

/// Counts, revenue by currency and uniques per `key` (an expression over the source's
/// columns).
fn grouped_query(selection: &Selection, key: &str, limit: Option<u32>) -> Sql {
    let order = match limit {
        Some(limit) => format!("ORDER BY count DESC, key LIMIT {limit}"),
        None => "ORDER BY key".to_owned(),
    };
    answer_rows(&sums_per_key(selection, key), &order)
}

/// The total count and revenue of the selection.
pub fn count_query(selection: &Selection) -> Sql {
    grouped_query(selection, "''", None)
}

/// Count and revenue per value of a fact, the `limit` largest.
pub fn breakdown_query(selection: &Selection, group_by: GroupBy, limit: u32) -> Sql {
    let (column, _) = group_by.breakdown().unwrap_or(("''", ""));
    grouped_query(selection, column, Some(limit))
}

/// Count, revenue and uniques per bucket of the caller's, given the UTC start of each (in
/// time order): a row's key is the 1-based index of its bucket. Every zone's offset is a
/// multiple of fifteen minutes, so each rollup bucket lies inside one of the caller's. The
/// rollup's rows are summed per UTC bucket first, so the index is worked out once a bucket
/// (a few thousand at most), not once a rollup row.
pub fn series_query(selection: &Selection, starts: &[DateTime<Utc>]) -> Sql {
    let starts: Vec<String> = starts.iter().map(|s| secs(*s).to_string()).collect();
    let starts = if starts.is_empty() {
        "toUInt32(0)".to_owned()
    } else {
        starts.join(", ")
    };
    // `+ 0 * bucket`: ClickHouse 18.16 drops a sub-query's column that is used only inside
    // a lambda ("Unknown identifier").
    let per_bucket = Sql::wrap(
        &sums_per_key(selection, "toUInt32(bucket)"),
        &format!(
            "(SELECT toUInt32(arrayCount(start -> start <= bucket, [{starts}]) + 0 * bucket) AS key, \
                     revenue_currency, sum(bucket_events) AS events, sum(bucket_revenue) AS revenue, \
                     uniqHLL12MergeState(bucket_sketch) AS sketch \
                FROM (SELECT key AS bucket, revenue_currency, events AS bucket_events, \
                             revenue AS bucket_revenue, sketch AS bucket_sketch FROM "
        ),
        ") GROUP BY key, revenue_currency)",
    );
    answer_rows(&per_bucket, "ORDER BY key")
}

#[derive(Debug, Row, Deserialize)]
struct GroupedRow<K> {
    key: K,
    count: u64,
    currencies: Vec<String>,
    /// Decimal128 sums of micros, as text (exact at any size).
    revenues: Vec<String>,
    uniques: u64,
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

/// A row of an answer: a breakdown's key (or a series' time), its count, its revenue, and
/// how many distinct visitors (clicks) or users (other events) it counts, approximately.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Counted<K> {
    pub key: K,
    pub count: u64,
    pub revenue: Option<Revenue>,
    pub uniques: u64,
}

pub async fn count(
    client: &Client,
    selection: &Selection,
) -> clickhouse::error::Result<Counted<()>> {
    let rows: Vec<GroupedRow<String>> = count_query(selection).query(client).fetch_all().await?;
    // One row (its key is ''), or none when nothing matches.
    Ok(rows.into_iter().next().map_or(
        Counted {
            key: (),
            count: 0,
            revenue: None,
            uniques: 0,
        },
        |row| Counted {
            key: (),
            count: row.count,
            revenue: revenue(&row.currencies, &row.revenues),
            uniques: row.uniques,
        },
    ))
}

pub async fn breakdown(
    client: &Client,
    selection: &Selection,
    group_by: GroupBy,
    limit: u32,
) -> clickhouse::error::Result<Vec<Counted<String>>> {
    let rows: Vec<GroupedRow<String>> = breakdown_query(selection, group_by, limit)
        .query(client)
        .fetch_all()
        .await?;
    Ok(rows
        .into_iter()
        .map(|row| Counted {
            revenue: revenue(&row.currencies, &row.revenues),
            key: row.key,
            count: row.count,
            uniques: row.uniques,
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
    let mut buckets: Vec<Counted<DateTime<Tz>>> = interval
        .buckets_between(selection.from, selection.to, zone)
        .into_iter()
        .map(|start| Counted {
            key: start,
            count: 0,
            revenue: None,
            uniques: 0,
        })
        .collect();
    let starts: Vec<DateTime<Utc>> = buckets.iter().map(|b| b.key.with_timezone(&Utc)).collect();
    let rows: Vec<GroupedRow<u32>> = series_query(selection, &starts)
        .query(client)
        .fetch_all()
        .await?;
    for row in rows {
        // Index 0: before the first start, which the range never reaches.
        let Some(bucket) = (row.key as usize)
            .checked_sub(1)
            .and_then(|i| buckets.get_mut(i))
        else {
            continue;
        };
        bucket.count = row.count;
        bucket.revenue = revenue(&row.currencies, &row.revenues);
        bucket.uniques = row.uniques;
    }
    Ok(buckets)
}

/// The reads `GET /api/v1/analytics` runs, as SQL (for the catalog the SQL tests run).
pub fn catalog(client: &Client, selection: &Selection) -> Vec<(&'static str, String)> {
    let show = |sql: Sql| sql.display(client);
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
        ("v2_count", show(count_query(selection))),
        ("v2_count_aligned", show(count_query(&aligned))),
        (
            "v2_series",
            show(series_query(
                selection,
                &Interval::Day
                    .buckets_between(selection.from, selection.to, Tz::UTC)
                    .into_iter()
                    .map(|s| s.with_timezone(&Utc))
                    .collect::<Vec<_>>(),
            )),
        ),
        (
            "v2_countries",
            show(breakdown_query(selection, GroupBy::Countries, 100)),
        ),
        (
            "v2_devices_filtered",
            show(breakdown_query(&filtered, GroupBy::Devices, 100)),
        ),
        (
            "v2_utm_sources_aligned",
            show(breakdown_query(&aligned, GroupBy::UtmSources, 100)),
        ),
        (
            "v2_purchase_revenue_by_link",
            show(breakdown_query(&purchases, GroupBy::Links, 100)),
        ),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::analytics::sql::Value;

    fn at(text: &str) -> DateTime<Utc> {
        text.parse().unwrap()
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
        assert!(!source(&selection).text().contains("FROM events"));
        let ragged = Selection {
            from: at("2026-11-01T10:07:00Z"),
            ..selection
        };
        assert!(source(&ragged).text().contains("FROM events"));
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
        let sql = conditions(&selection);
        assert_eq!(
            sql.text(),
            "event_name = ? AND country IN (?, ?) AND country NOT IN (?)"
        );
        let values: Vec<_> = ["purchase", "DE", "FR", "US"].map(Value::from).into();
        assert_eq!(sql.bound_values(), values);
    }
}
