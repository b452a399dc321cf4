//! Migrations: applied on start-up by every service; running them again changes nothing.

use clickhouse::Client;
use linktrace_integration::TestEnv;
use linktrace_platform::clickhouse::{migrate_to, ClickHouseConfig, MIGRATIONS};
use linktrace_platform::postgres::MIGRATOR;

#[tokio::test]
async fn migrations_twice_in_a_row_are_a_no_op() {
    // TestEnv::new applied both sets once already.
    let env = TestEnv::new().await;
    assert_eq!(
        env.clickhouse.ensure_schema(&env.pool).await.unwrap(),
        0,
        "nothing left to apply in ClickHouse"
    );
    let recorded: u64 = env
        .clickhouse
        .client()
        .query("SELECT count() FROM schema_migrations")
        .fetch_one()
        .await
        .unwrap();
    assert_eq!(recorded, MIGRATIONS.len() as u64);

    MIGRATOR
        .run(&env.pool)
        .await
        .expect("a second run succeeds");
    let applied: i64 = sqlx::query_scalar("SELECT count(*) FROM _sqlx_migrations WHERE success")
        .fetch_one(&env.pool)
        .await
        .unwrap();
    assert_eq!(applied as usize, MIGRATOR.iter().count());
    let plans: Vec<(String, i64)> =
        sqlx::query_as("SELECT name, monthly_event_quota FROM plans ORDER BY name")
            .fetch_all(&env.pool)
            .await
            .unwrap();
    assert_eq!(
        plans,
        vec![("free".to_owned(), 1000), ("scale".to_owned(), 5000)],
        "plans are data, seeded once"
    );
}

/// An install from before migration 3: events with unmerged copies (an older consumer
/// relied on `uniqExact`), the old rollup, no Kafka positions.
#[tokio::test]
async fn an_existing_install_is_upgraded_in_place_and_keeps_its_data() {
    let env = TestEnv::new().await;
    let old = ClickHouseConfig {
        database: format!("{}_old", env.clickhouse.database),
        ..env.clickhouse.clone()
    };
    old.drop_database().await.unwrap();
    let server = Client::default().with_url(&old.url);
    server
        .query(&format!("CREATE DATABASE {}", old.database))
        .execute()
        .await
        .unwrap();
    let client = old.client();
    migrate_to(&client, 2).await.unwrap();
    let account = "00000000-0000-4000-8000-0000000000aa";
    let row = |id: &str, name: &str, user: &str, click: &str, ip: &str| {
        format!(
            "('{id}', '{account}', 'production', 'alpha123', '{name}', '', '{user}', '', 'api', '{ip}', '', '', 'ios', \
             '{click}', toDateTime('2026-10-05 10:00:00'), 1791194400000, toDateTime('2026-10-05 10:00:00'))"
        )
    };
    let insert = |rows: &[String]| {
        format!(
            "INSERT INTO events (event_id, account_id, environment, link_short_code, event_name, entity_id, user_id, \
             properties, source, ip, user_agent, referrer, platform, click_id, event_time, event_time_ms, received_at) \
             VALUES {}",
            rows.join(", ")
        )
    };
    // One INSERT, one part: no background merge can collapse the copies before the upgrade.
    let legacy = [
        row("e1", "click", "", "c-1", "198.51.100.7"),
        row("e1", "click", "", "c-1", "198.51.100.7"),
        row("e2", "click", "", "c-2", "198.51.100.8"),
        row("e3", "install", "u1", "", ""),
        row("e4", "purchase", "u1", "", ""),
        row("e4", "purchase", "u1", "", ""),
    ];
    client.query(&insert(&legacy)).execute().await.unwrap();
    let count = |sql: &'static str| {
        let client = client.clone();
        async move { client.query(sql).fetch_one::<u64>().await.unwrap() }
    };
    assert_eq!(
        count("SELECT count() FROM events").await,
        6,
        "copies before"
    );

    assert_eq!(
        old.ensure_schema(&env.pool).await.unwrap(),
        MIGRATIONS.len() - 2
    );

    assert_eq!(
        count("SELECT count() FROM events").await,
        4,
        "count() is exact for the history"
    );
    assert_eq!(count("SELECT sum(events) FROM event_counts_daily").await, 4);
    assert_eq!(
        count("SELECT sum(events) FROM event_counts_hourly").await,
        4
    );
    assert_eq!(
        count("SELECT sum(events) FROM event_counts_daily WHERE event_name = 'click'").await,
        2
    );
    assert_eq!(
        count("SELECT uniqHLL12Merge(users) FROM event_users_daily WHERE link_short_code = '*'")
            .await,
        1
    );
    assert_eq!(count("SELECT count() FROM clicks_by_id FINAL").await, 2);
    assert_eq!(count("SELECT count() FROM clicks_by_ip FINAL").await, 2);
    assert_eq!(
        count("SELECT sum(events) FROM event_breakdowns_15m").await,
        4,
        "the breakdown rollup holds the history once"
    );
    assert_eq!(
        count("SELECT count() FROM system.tables WHERE database = currentDatabase() AND name LIKE 'events_hourly%'").await,
        0,
        "the old rollup is gone"
    );
    // New writes flow through the views.
    client
        .query(&insert(&[row("e5", "click", "", "c-5", "198.51.100.9")]))
        .execute()
        .await
        .unwrap();
    assert_eq!(count("SELECT sum(events) FROM event_counts_daily").await, 5);
    assert_eq!(
        count("SELECT sum(events) FROM event_breakdowns_15m").await,
        5
    );
    // A bot's click: in the breakdowns (includeBots reaches it), not in the older rollups.
    client
        .query(&format!(
            "INSERT INTO events (event_id, account_id, environment, link_short_code, event_name, event_time, event_time_ms, received_at, bot) \
             VALUES ('e6', '{account}', 'production', 'alpha123', 'click', toDateTime('2026-10-05 11:00:00'), 1791198000000, toDateTime('2026-10-05 11:00:00'), 1)"
        ))
        .execute()
        .await
        .unwrap();
    assert_eq!(
        count("SELECT sum(events) FROM event_breakdowns_15m").await,
        6
    );
    assert_eq!(
        count("SELECT sum(events) FROM event_breakdowns_15m WHERE bot = 1").await,
        1
    );
    assert_eq!(count("SELECT sum(events) FROM event_counts_daily").await, 5);
    assert_eq!(
        count("SELECT sum(events) FROM event_counts_hourly").await,
        5
    );
    assert_eq!(
        count("SELECT sum(events) FROM event_totals_hourly").await,
        5
    );
    assert_eq!(count("SELECT count() FROM clicks_by_id FINAL").await, 3);
    assert_eq!(old.ensure_schema(&env.pool).await.unwrap(), 0, "idempotent");
    old.drop_database().await.unwrap();
}

/// api and consumer start at once: the two runners serialise, each migration runs once.
#[tokio::test]
async fn two_runners_at_once_apply_each_migration_once() {
    let env = TestEnv::new().await;
    let fresh = ClickHouseConfig {
        database: format!("{}_race", env.clickhouse.database),
        ..env.clickhouse.clone()
    };
    fresh.drop_database().await.unwrap();
    let (a, b) = tokio::join!(
        fresh.ensure_schema(&env.pool),
        fresh.ensure_schema(&env.pool)
    );
    let mut applied = [a.unwrap(), b.unwrap()];
    applied.sort();
    assert_eq!(
        applied,
        [0, MIGRATIONS.len()],
        "one runner applied all, the other none"
    );
    let recorded: u64 = fresh
        .client()
        .query("SELECT count() FROM schema_migrations")
        .fetch_one()
        .await
        .unwrap();
    assert_eq!(recorded, MIGRATIONS.len() as u64);
    fresh.drop_database().await.unwrap();
}
