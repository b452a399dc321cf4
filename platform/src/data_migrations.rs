//! Data migrations that need ClickHouse's rows to rewrite Postgres's: each runs once, is
//! recorded in Postgres `data_migrations`, and runs under the schema runner's advisory lock
//! ([`crate::clickhouse::ClickHouseConfig::ensure_schema`]), so services that start together
//! never run one twice at once. Each is also safe to run again (a crash before it is
//! recorded only repeats it).

use clickhouse::{Client, Row};
use linktrace_domain::Environment;
use serde::Deserialize;
use sqlx::PgPool;
use uuid::Uuid;

/// How many ids one Postgres statement moves.
const CHUNK: usize = 10_000;

/// Rows written before Postgres kept the environment (`0006_environments_apart.sql`) took
/// `live`; the ones whose stored events say `test` move to `test`. A row whose test twin
/// was claimed since (during the upgrade) is left alone rather than collide with it.
pub const ENVIRONMENTS_FROM_CLICKHOUSE: &str = "environments_from_clickhouse";

/// The named SQL this module sends to ClickHouse (the SQL catalog runs it on both versions).
pub mod sql {
    /// Entity events stored as test traffic, with their tuples.
    pub const TEST_ENTITY_EVENTS: &str = "SELECT DISTINCT toString(event_id) AS event_id, \
         toString(account_id) AS account_id, link_short_code, event_name, entity_id \
         FROM events WHERE environment = 'test' AND entity_id != ''";
    /// Users whose install was attributed with a test key.
    pub const TEST_INSTALLS: &str = "SELECT DISTINCT account_id, user_id FROM events \
         WHERE environment = 'test' AND event_name = 'install' AND user_id != ''";
}

#[derive(Debug, Row, Deserialize)]
struct TestEntityEvent {
    event_id: String,
    account_id: String,
    link_short_code: String,
    event_name: String,
    entity_id: String,
}

#[derive(Debug, Row, Deserialize)]
struct Install {
    account_id: String,
    user_id: String,
}

/// Runs every data migration not yet recorded. The caller holds the schema lock.
pub async fn run(pool: &PgPool, clickhouse: &Client) -> anyhow::Result<()> {
    let done: Option<i32> = sqlx::query_scalar("SELECT 1 FROM data_migrations WHERE name = $1")
        .bind(ENVIRONMENTS_FROM_CLICKHOUSE)
        .fetch_optional(pool)
        .await?;
    if done.is_none() {
        let moved = environments_from_clickhouse(pool, clickhouse).await?;
        sqlx::query("INSERT INTO data_migrations (name) VALUES ($1) ON CONFLICT DO NOTHING")
            .bind(ENVIRONMENTS_FROM_CLICKHOUSE)
            .execute(pool)
            .await?;
        tracing::info!(
            entity_events = moved.0,
            attributions = moved.1,
            "data migration {ENVIRONMENTS_FROM_CLICKHOUSE} applied"
        );
    }
    Ok(())
}

async fn environments_from_clickhouse(
    pool: &PgPool,
    clickhouse: &Client,
) -> anyhow::Result<(u64, u64)> {
    // A claim of a test tuple was made under the live key (every claim was live then): it
    // moves to the test key, keeping the id its event was stored with.
    let events: Vec<TestEntityEvent> = clickhouse
        .query(sql::TEST_ENTITY_EVENTS)
        .fetch_all()
        .await?;
    let mut moves: (Vec<Uuid>, Vec<Uuid>, Vec<Uuid>) = Default::default();
    for event in &events {
        let (Ok(stored_id), Ok(account_id)) = (event.event_id.parse(), event.account_id.parse())
        else {
            continue;
        };
        let key = |environment| {
            linktrace_domain::entity_claim_key(
                account_id,
                environment,
                &event.link_short_code,
                &event.event_name,
                &event.entity_id,
            )
        };
        moves.0.push(key(Environment::Live));
        moves.1.push(key(Environment::Test));
        moves.2.push(stored_id);
    }
    let mut entity_events = 0;
    for ((live, test), stored) in moves
        .0
        .chunks(CHUNK)
        .zip(moves.1.chunks(CHUNK))
        .zip(moves.2.chunks(CHUNK))
    {
        entity_events += sqlx::query(
            "UPDATE entity_claims c SET event_id = m.test_key, stored_event_id = NULLIF(m.stored_id, m.test_key) \
             FROM unnest($1::uuid[], $2::uuid[], $3::uuid[]) AS m(live_key, test_key, stored_id) \
             WHERE c.event_id = m.live_key AND coalesce(c.stored_event_id, c.event_id) = m.stored_id \
               AND NOT EXISTS (SELECT 1 FROM entity_claims t WHERE t.event_id = m.test_key)",
        )
        .bind(live)
        .bind(test)
        .bind(stored)
        .execute(pool)
        .await?
        .rows_affected();
    }
    let installs: Vec<Install> = clickhouse.query(sql::TEST_INSTALLS).fetch_all().await?;
    let (accounts, users): (Vec<Uuid>, Vec<&str>) = installs
        .iter()
        .filter_map(|i| Some((i.account_id.parse::<Uuid>().ok()?, i.user_id.as_str())))
        .unzip();
    let mut attributions = 0;
    for (accounts, users) in accounts.chunks(CHUNK).zip(users.chunks(CHUNK)) {
        attributions += sqlx::query(
            "UPDATE attributions a SET environment = 'test' \
             FROM unnest($1::uuid[], $2::text[]) AS t(account_id, user_id) \
             WHERE (a.account_id, a.user_id) = (t.account_id, t.user_id) \
               AND a.environment = 'live' AND NOT EXISTS ( \
                 SELECT 1 FROM attributions o WHERE o.environment = 'test' \
                   AND (o.account_id, o.user_id) = (a.account_id, a.user_id))",
        )
        .bind(accounts)
        .bind(users)
        .execute(pool)
        .await?
        .rows_affected();
    }
    Ok((entity_events, attributions))
}
