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
    migrate_to(&client, 2, None).await.unwrap();
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
        count(
            "SELECT uniqHLL12Merge(uniques) FROM event_breakdowns_15m WHERE event_name != 'click'"
        )
        .await,
        1,
        "the history's users are in the rollup's sketches (migration 9), counting nothing twice"
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

/// Dedup claims and attributions written before Postgres kept their environment (migration
/// 6) are migrated in place: the ones ClickHouse stored as test traffic become `test`, the
/// rest `live`, and afterwards a live event or attribution of the same tuple or user is no
/// longer blocked by the test one.
#[tokio::test]
async fn environments_of_older_claims_and_attributions_are_migrated_in_place() {
    use std::borrow::Cow;
    let env = TestEnv::new().await;
    let old_url = format!("{}_env", env.postgres_url);
    let config = linktrace_platform::postgres::PostgresConfig {
        url: linktrace_platform::secret::Secret::new(old_url.clone()),
        max_connections: 4,
    };
    // A database as migrations 1-5 left it.
    let before = sqlx::migrate::Migrator {
        migrations: Cow::Owned(MIGRATOR.iter().take(5).cloned().collect()),
        ..sqlx::migrate::Migrator::DEFAULT
    };
    {
        use sqlx::migrate::MigrateDatabase;
        sqlx::Postgres::create_database(&old_url).await.unwrap();
    }
    let pool = linktrace_platform::postgres::connect(&config)
        .await
        .unwrap();
    before.run(&pool).await.unwrap();
    let account = uuid::Uuid::new_v4();
    sqlx::query("INSERT INTO accounts (id, name, plan) VALUES ($1, 'Old Co', 'scale')")
        .bind(account)
        .execute(&pool)
        .await
        .unwrap();
    let (test_id, live_id) = (uuid::Uuid::new_v4(), uuid::Uuid::new_v4());
    for (entity, id) in [("order-t", test_id), ("order-l", live_id)] {
        sqlx::query(
            "INSERT INTO entity_events (account_id, link_short_code, event_name, entity_id, event_id, event_time, state) \
             VALUES ($1, 'abcd1234', 'purchase', $2, $3, now(), 'stored')",
        )
        .bind(account)
        .bind(entity)
        .bind(id)
        .execute(&pool)
        .await
        .unwrap();
    }
    for user in ["user-t", "user-l"] {
        sqlx::query(
            "INSERT INTO attributions (account_id, user_id, match_type) VALUES ($1, $2, 'organic')",
        )
        .bind(account)
        .bind(user)
        .execute(&pool)
        .await
        .unwrap();
    }
    // What ClickHouse stored for them.
    let client = env.clickhouse.client();
    client
        .query(&format!(
            "INSERT INTO events (event_id, account_id, environment, link_short_code, event_name, entity_id, user_id, event_time, received_at) VALUES \
             ('{test_id}', '{account}', 'test', 'abcd1234', 'purchase', 'order-t', '', now(), now()), \
             ('{live_id}', '{account}', 'production', 'abcd1234', 'purchase', 'order-l', '', now(), now()), \
             ('{}', '{account}', 'test', '', 'install', '', 'user-t', now(), now()), \
             ('{}', '{account}', 'production', '', 'install', '', 'user-l', now(), now())",
            uuid::Uuid::new_v4(),
            uuid::Uuid::new_v4()
        ))
        .execute()
        .await
        .unwrap();

    // The upgrade: the rest of the Postgres migrations, then the schema runner (which runs
    // the data migrations), as a service starting on the new version does.
    MIGRATOR.run(&pool).await.unwrap();
    env.clickhouse.ensure_schema(&pool).await.unwrap();

    // Each claim under its tuple's key in its environment (migration 11's compact key),
    // keeping the id its event was stored with.
    let key = |environment, entity| {
        linktrace_domain::entity_claim_key(account, environment, "abcd1234", "purchase", entity)
    };
    let mut claims: Vec<(uuid::Uuid, Option<uuid::Uuid>)> =
        sqlx::query_as("SELECT event_id, stored_event_id FROM entity_claims WHERE account_id = $1")
            .bind(account)
            .fetch_all(&pool)
            .await
            .unwrap();
    claims.sort();
    let mut expected = vec![
        (
            key(linktrace_domain::Environment::Live, "order-l"),
            Some(live_id),
        ),
        (
            key(linktrace_domain::Environment::Test, "order-t"),
            Some(test_id),
        ),
    ];
    expected.sort();
    assert_eq!(claims, expected);
    // The key is the one ingest computes for the tuple (Postgres's function and Rust's agree).
    let computed: uuid::Uuid = sqlx::query_scalar(
        "SELECT entity_claim_key('test', $1, 'abcd1234', 'purchase', 'order-t')",
    )
    .bind(account)
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!(
        computed,
        key(linktrace_domain::Environment::Test, "order-t")
    );
    let users: Vec<(String, String)> = sqlx::query_as(
        "SELECT user_id, environment FROM attributions WHERE account_id = $1 ORDER BY user_id",
    )
    .bind(account)
    .fetch_all(&pool)
    .await
    .unwrap();
    assert_eq!(
        users,
        [
            ("user-l".into(), "live".into()),
            ("user-t".into(), "test".into())
        ]
    );
    // Recorded: a second start does not run it again.
    let recorded: i64 = sqlx::query_scalar("SELECT count(*) FROM data_migrations")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(recorded, 1);
    pool.close().await;
    {
        use sqlx::migrate::MigrateDatabase;
        let _ = sqlx::Postgres::drop_database(&old_url).await;
    }
}
