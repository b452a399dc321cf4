//! Migrations: applied on start-up by every service; running them again changes nothing.

use linktrace_integration::TestEnv;
use linktrace_platform::clickhouse::MIGRATIONS;
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
