//! Prints, as JSON, every ClickHouse migration statement and every analytics, attribution,
//! export and webhook query exactly as the services send them (for a fixed sample scope), so
//! that the test suite can run the same SQL on current ClickHouse (chdb) and on the
//! server: `cargo run -q --workspace --bin linktrace-sql-catalog` (deploy/test.sh runs the
//! binary its test build made).
//!
//! `linktrace-sql-catalog rollups` reads a database's `system.tables` and `system.columns`
//! rows (JSON on stdin: `{"database", "day", "tables", "columns"}`) and prints the rollup
//! reconciler's SQL for them (`linktrace_consumer::reconcile`): that SQL is made from the
//! server's own view definitions, so the test asks each server for them first.

use chrono::{DateTime, Utc};
use linktrace_api::analytics::breakdowns::{self, Selection};
use linktrace_api::analytics::reports::{self, Scope};
use linktrace_api::analytics::EventSelector;
use linktrace_api::attributions;
use linktrace_api::export::{self, ExportScope};
use linktrace_consumer::reconcile;
use linktrace_domain::Environment;
use linktrace_platform::clickhouse::{statements, MIGRATIONS, STORED_OFFSETS_SQL};
use linktrace_platform::data_migrations;
use serde_json::json;

/// The account and range the sample queries are bound to (the test's fixture uses them).
const ACCOUNT: &str = "00000000-0000-4000-8000-00000000000a";
const FROM: &str = "2026-11-01T10:20:00Z";
const TO: &str = "2026-11-04T05:00:01Z";
/// The account of the `GET /api/v1/analytics` sample reads (its own fixture rows).
const V2_ACCOUNT: &str = "00000000-0000-4000-8000-00000000000c";

fn main() -> anyhow::Result<()> {
    if std::env::args().nth(1).as_deref() == Some("rollups") {
        return rollup_sql();
    }
    let scope = Scope {
        account_id: ACCOUNT.parse()?,
        environment: Environment::Live,
        from: FROM.parse::<DateTime<Utc>>()?,
        to: TO.parse::<DateTime<Utc>>()?,
        short_code: String::new(),
        event_name: String::new(),
    };
    let client = clickhouse::Client::default();
    let migrations: Vec<_> = MIGRATIONS
        .iter()
        .map(|m| json!({ "version": m.version, "name": m.name, "statements": statements(m.sql) }))
        .collect();
    let selection = Selection {
        account_id: V2_ACCOUNT.parse()?,
        environment: Environment::Live,
        from: scope.from,
        to: scope.to,
        event: EventSelector::Clicks,
        filters: vec![],
        include_bots: false,
        include_repeats: false,
    };
    let queries: serde_json::Map<String, serde_json::Value> = reports::catalog(&client, &scope)
        .into_iter()
        .chain(attributions::catalog(&client, scope.account_id, scope.from))
        .chain(breakdowns::catalog(&client, &selection))
        .chain(export::catalog(
            &client,
            &ExportScope {
                account_id: selection.account_id,
                environment: Environment::Live,
                from: scope.from,
                to: scope.to,
                event: None,
                format: export::Format::Ndjson,
            },
        ))
        .chain([(
            "running_write",
            client
                .query(linktrace_consumer::writer::RUNNING_WRITE_SQL)
                .bind("linktrace-write-nothing")
                .sql_display()
                .to_string(),
        )])
        .chain([(
            "stored_offsets",
            client
                .query(STORED_OFFSETS_SQL)
                .bind("events")
                .sql_display()
                .to_string(),
        )])
        .chain([
            (
                "data_migration_test_entity_events",
                data_migrations::sql::TEST_ENTITY_EVENTS.to_owned(),
            ),
            (
                "data_migration_test_installs",
                data_migrations::sql::TEST_INSTALLS.to_owned(),
            ),
        ])
        .map(|(name, sql)| (name.to_owned(), sql.into()))
        .collect();
    let catalog = json!({
        "scope": { "accountId": ACCOUNT, "v2AccountId": V2_ACCOUNT, "from": FROM, "to": TO },
        "migrations": migrations,
        "queries": queries,
    });
    println!("{}", serde_json::to_string_pretty(&catalog)?);
    Ok(())
}

/// The reconciler's SQL for the rollups the tables on stdin hold: per target, the day's
/// differences and a repair of the rows whose hashes replace `__HASHES__`.
fn rollup_sql() -> anyhow::Result<()> {
    #[derive(serde::Deserialize)]
    struct Described {
        database: String,
        day: chrono::NaiveDate,
        tables: Vec<reconcile::TableRow>,
        columns: Vec<reconcile::ColumnRow>,
    }
    let described: Described = serde_json::from_reader(std::io::stdin())?;
    let rollups = reconcile::discover(&described.database, &described.tables, &described.columns);
    let out: serde_json::Map<String, serde_json::Value> = rollups
        .iter()
        .map(|rollup| {
            let sql = json!({
                "differences": rollup.differences_sql(&described.database, described.day),
                "repair": rollup
                    .repair_sql(&described.database, described.day, &[0])
                    .replace("IN (0)", "IN (__HASHES__)"),
            });
            (
                format!("{} -> {}", rollup.views.join(" + "), rollup.target),
                sql,
            )
        })
        .collect();
    println!("{}", serde_json::to_string_pretty(&out)?);
    Ok(())
}
