//! `GET /api/v1/events/export`: an account's stored events of one environment, streamed from
//! ClickHouse as CSV or NDJSON. ClickHouse formats the rows; the api passes its answer on chunk
//! by chunk, so its memory stays flat whatever the range (tested with an export larger than
//! the memory it is allowed).

use chrono::{DateTime, Utc};
use clickhouse::Client;
use linktrace_domain::Environment;
use uuid::Uuid;

use crate::analytics::sql::{millis, secs, Sql};
use crate::analytics::EventSelector;

/// The export's columns, in order, as the file shows them.
const COLUMNS: &str = "\
    event_id, event_name, link_short_code, \
    concat(replaceOne(toString(toDateTime(intDiv(event_time_ms, 1000)), 'UTC'), ' ', 'T'), '.', \
           substring(toString(1000 + event_time_ms % 1000), 2), 'Z') AS event_time, \
    entity_id, user_id, source, properties, revenue_currency, \
    revenue_micros / 1000000 AS revenue_amount, click_id, ip, user_agent, country, city, device, \
    os, browser, referrer_host, utm_source, utm_medium, utm_campaign, utm_term, utm_content, bot, \
    visitor";

/// The text columns a visitor or a customer's client can fill, which CSV neutralises.
const TEXT_COLUMNS: &[&str] = &[
    "event_id",
    "event_name",
    "link_short_code",
    "entity_id",
    "user_id",
    "source",
    "properties",
    "revenue_currency",
    "click_id",
    "ip",
    "user_agent",
    "country",
    "city",
    "device",
    "os",
    "browser",
    "referrer_host",
    "utm_source",
    "utm_medium",
    "utm_campaign",
    "utm_term",
    "utm_content",
    "visitor",
];

/// [`COLUMNS`] for CSV: a text cell that a spreadsheet would read as a formula (it starts
/// with `=`, `+`, `-`, `@`, a tab or a carriage return) gets a leading `'`, so opening the
/// export runs nothing a visitor wrote (spec, "Keys, limits and abuse"). Numeric columns
/// stay numbers.
static CSV_COLUMNS: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
    TEXT_COLUMNS
        .iter()
        .fold(COLUMNS.to_owned(), |columns, column| {
            neutralise(&columns, column)
        })
});

/// `column` in `columns` (as a whole word, where it is selected) wrapped in the formula
/// guard. The computed `event_time` is built from digits and never needs it.
fn neutralise(columns: &str, column: &str) -> String {
    let guarded = format!(
        r"if(match({column}, '^[-=+@\t\r]'), concat('\'', {column}), {column}) AS {column}"
    );
    columns
        .split(", ")
        .map(|part| {
            if part.trim() == column {
                part.replace(column, &guarded)
            } else {
                part.to_owned()
            }
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// CSV (with a header row) or newline-delimited JSON.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Format {
    Csv,
    #[default]
    Ndjson,
}

impl Format {
    /// ClickHouse's name for the format.
    pub fn clickhouse(self) -> &'static str {
        match self {
            Format::Csv => "CSVWithNames",
            Format::Ndjson => "JSONEachRow",
        }
    }

    pub fn content_type(self) -> &'static str {
        match self {
            Format::Csv => "text/csv; charset=utf-8",
            Format::Ndjson => "application/x-ndjson",
        }
    }

    pub fn extension(self) -> &'static str {
        match self {
            Format::Csv => "csv",
            Format::Ndjson => "ndjson",
        }
    }
}

/// What one export covers.
#[derive(Debug, Clone)]
pub struct ExportScope {
    pub account_id: Uuid,
    pub environment: Environment,
    /// `[from, to)`, to the millisecond.
    pub from: DateTime<Utc>,
    pub to: DateTime<Utc>,
    /// `None`: every event.
    pub event: Option<EventSelector>,
    pub format: Format,
}

pub fn export_query(scope: &ExportScope) -> Sql {
    // Filtered in a sub-query: the outer `event_time` (ISO text) would otherwise shadow the
    // column in the conditions on current ClickHouse.
    let columns = match scope.format {
        Format::Csv => CSV_COLUMNS.as_str(),
        Format::Ndjson => COLUMNS,
    };
    let mut sql = Sql::new(&format!(
        "SELECT {columns} FROM (SELECT * FROM events WHERE account_id = "
    ));
    sql.value(scope.account_id.to_string())
        .push(" AND environment = ")
        .value(scope.environment.storage_name())
        .push(" AND event_time >= toDateTime(")
        .value(secs(scope.from))
        .push(") AND event_time <= toDateTime(")
        .value(secs(scope.to))
        .push(") AND event_time_ms >= ")
        .value(millis(scope.from))
        .push(" AND event_time_ms < ")
        .value(millis(scope.to));
    if let Some(event) = &scope.event {
        sql.push(" AND ").append(&event.condition());
    }
    sql.push(") ORDER BY event_time_ms, event_id");
    sql
}

/// The export's SQL for the catalog the SQL tests run on both ClickHouse versions.
pub fn catalog(client: &Client, scope: &ExportScope) -> Vec<(&'static str, String)> {
    let purchases = ExportScope {
        event: Some(EventSelector::Named("purchase".into())),
        ..scope.clone()
    };
    vec![
        ("export_all", export_query(scope).display(client)),
        ("export_purchases", export_query(&purchases).display(client)),
        (
            "export_all_csv",
            export_query(&ExportScope {
                format: Format::Csv,
                ..scope.clone()
            })
            .display(client),
        ),
    ]
}
