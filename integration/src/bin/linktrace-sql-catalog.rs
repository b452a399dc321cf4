//! Prints, as JSON, every ClickHouse migration statement and every analytics, attribution,
//! export and webhook query exactly as the services send them (for a fixed sample scope), so
//! that the test suite can run the same SQL on current ClickHouse (chdb) and on the
//! server: `cargo run -q -p linktrace-integration --bin linktrace-sql-catalog`.

use chrono::{DateTime, Utc};
use linktrace_api::analytics::{self, Scope};
use linktrace_api::breakdowns::{self, EventSelector, Selection};
use linktrace_api::export::{self, ExportScope};
use linktrace_domain::Environment;
use linktrace_platform::clickhouse::{statements, MIGRATIONS};
use linktrace_webhooks::settlement::stored_query;
use serde_json::json;

/// The account and range the sample queries are bound to (the test's fixture uses them).
const ACCOUNT: &str = "00000000-0000-4000-8000-00000000000a";
const FROM: &str = "2026-11-01T10:20:00Z";
const TO: &str = "2026-11-04T05:00:01Z";
/// The account of the `GET /api/v1/analytics` sample reads (its own fixture rows).
const V2_ACCOUNT: &str = "00000000-0000-4000-8000-00000000000c";

fn main() -> anyhow::Result<()> {
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
    };
    let queries: serde_json::Map<String, serde_json::Value> = analytics::catalog(&client, &scope)
        .into_iter()
        .chain(breakdowns::catalog(&client, &selection))
        .chain(export::catalog(
            &client,
            &ExportScope {
                account_id: selection.account_id,
                environment: Environment::Live,
                from: scope.from,
                to: scope.to,
                event: None,
            },
        ))
        .chain([(
            "webhook_stored_positions",
            // f06 and f08 are stored on topic "events"; f01 predates the offsets; "nope"
            // was never stored.
            stored_query(
                &client,
                "events",
                &[ACCOUNT.to_owned()],
                &["f06", "f08", "f01", "nope"].map(String::from),
            )
            .sql_display()
            .to_string(),
        )])
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
