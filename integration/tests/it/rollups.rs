//! Rollups that disagree with `events` after a partial failure, mended by the consumer's
//! reconciler (`linktrace_consumer::reconcile`), against real ClickHouse 18.16, Kafka and
//! Postgres: a write that reached `events` and none of its views is repaired exactly once,
//! and passes that run while a consumer writes never repair a write still under way.

use std::collections::HashSet;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::sync::Mutex;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Duration as Span, NaiveDate, Utc};
use envconfig::Envconfig;
use linktrace_consumer::config::ConsumerConfig;
use linktrace_consumer::reconcile::{Reconciler, RollupChecks};
use linktrace_consumer::row::EventRow;
use linktrace_consumer::startup::Application;
use linktrace_consumer::writer::{ClickHouseWriter, EventWriter, WriteError};
use linktrace_domain::{
    ClickFacts, ClientFacts, Environment, EventRecord, EventSource, SCHEMA_VERSION,
};
use linktrace_integration::{Running, TestEnv};
use uuid::Uuid;

/// The views a failed write misses here: every view but the offsets one, so the consumer
/// still sees the write as stored when it resolves it (and does not write it again).
const MISSED_VIEWS: &[&str] = &[
    "event_counts_hourly_mv",
    "event_counts_daily_mv",
    "event_totals_hourly_mv",
    "event_users_daily_by_link_mv",
    "event_users_daily_all_links_mv",
    "clicks_by_id_mv",
    "clicks_by_ip_mv",
    "event_breakdowns_15m_mv",
];

/// A writer whose chosen write reaches `events` and none of `MISSED_VIEWS`, and then
/// answers an error: what a server or replica lost between the parts of one INSERT leaves.
struct ViewsLost {
    inner: ClickHouseWriter,
    client: clickhouse::Client,
    database: String,
    /// The first write holding any of these events loses its views (then none does).
    lose: Mutex<HashSet<String>>,
    attempts: AtomicUsize,
}

#[async_trait]
impl EventWriter for ViewsLost {
    async fn stored_through(
        &self,
        topic: &str,
        partition: i32,
        from: i64,
        to: i64,
    ) -> Result<Option<i64>, WriteError> {
        self.inner.stored_through(topic, partition, from, to).await
    }

    async fn write(&self, rows: &[EventRow], tag: &str) -> Result<(), WriteError> {
        self.attempts.fetch_add(1, Ordering::SeqCst);
        let lose = {
            let mut lose = self.lose.lock().unwrap();
            let hit = rows.iter().any(|row| lose.contains(&row.event_id));
            if hit {
                lose.clear();
            }
            hit
        };
        if !lose {
            return self.inner.write(rows, tag).await;
        }
        for view in MISSED_VIEWS {
            self.statement(&format!("DETACH TABLE {}.{view}", self.database))
                .await;
        }
        let written = self.inner.write(rows, tag).await;
        for view in MISSED_VIEWS {
            self.statement(&format!("ATTACH TABLE {}.{view}", self.database))
                .await;
        }
        written?;
        Err(WriteError::Retryable(
            "the server went away between the parts of the INSERT (simulated)".into(),
        ))
    }

    async fn in_flight(&self, tag: &str) -> Result<bool, WriteError> {
        self.inner.in_flight(tag).await
    }
}

impl ViewsLost {
    async fn statement(&self, sql: &str) {
        self.client.query(sql).execute().await.expect(sql);
    }
}

fn event(account: Uuid, n: usize, at: DateTime<Utc>) -> EventRecord {
    let click = n.is_multiple_of(3);
    EventRecord {
        schema_version: SCHEMA_VERSION,
        event_id: Uuid::new_v4(),
        account_id: account,
        environment: Environment::Live,
        link_short_code: Some(format!("code{}", n % 4)),
        event_name: if click { "click" } else { "purchase" }.into(),
        entity_id: None,
        // Everyone once: a row missed shows in every sketch too.
        user_id: (!click).then(|| format!("user{n}")),
        properties: None,
        revenue: None,
        claimed: false,
        source: if click {
            EventSource::Redirect
        } else {
            EventSource::Api
        },
        client: click.then(|| {
            Box::new(ClientFacts {
                ip: Some(format!("203.0.113.{}", n % 50)),
                click_id: Some(Uuid::new_v4().to_string()),
                platform: Some("ios".into()),
                facts: Some(ClickFacts {
                    country: ["DE", "JP", "US"][n % 3].into(),
                    visitor: format!("visitor{n}"),
                    ..ClickFacts::default()
                }),
                ..ClientFacts::default()
            })
        }),
        // Two days: today's events and yesterday's, sent late with their own times.
        event_time: (n % 2 == 1).then(|| at - Span::days(1)),
        request_id: None,
        received_at: at,
    }
}

/// Every rollup against `events`, for `account`: (what the rollup says, what events say).
async fn rollups_against_events(env: &TestEnv, account: Uuid) -> Vec<(String, u64, u64)> {
    let client = env.clickhouse.client();
    let one = |sql: String| {
        let client = client.clone();
        async move {
            client
                .query(&sql)
                .bind(account.to_string())
                .fetch_one::<u64>()
                .await
                .expect(&sql)
        }
    };
    let events = one("SELECT count() FROM events WHERE account_id = ?".into()).await;
    let clicks =
        one("SELECT count() FROM events WHERE account_id = ? AND event_name = 'click'".into())
            .await;
    // A sketch's estimate of the same set is the same number: what the events' own
    // sketches say, group by group, is what the rollup's merged sketches must say.
    let users = one(
        "SELECT toUInt64(sum(u)) FROM (SELECT uniqHLL12(user_id) AS u FROM events \
         WHERE account_id = ? AND user_id != '' GROUP BY toDate(event_time), event_name, link_short_code)"
            .into(),
    )
    .await;
    let visitors = one(
        "SELECT toUInt64(sum(u)) FROM (SELECT uniqHLL12(visitor) AS u FROM events \
         WHERE account_id = ? AND event_name = 'click' \
         GROUP BY toStartOfFifteenMinutes(event_time), link_short_code, country)"
            .into(),
    )
    .await;
    let mut out = Vec::new();
    for (table, sql, expected) in [
        (
            "event_counts_hourly",
            "SELECT toUInt64(sum(events)) FROM event_counts_hourly WHERE account_id = ?",
            events,
        ),
        (
            "event_counts_daily",
            "SELECT toUInt64(sum(events)) FROM event_counts_daily WHERE account_id = ?",
            events,
        ),
        (
            "event_totals_hourly",
            "SELECT toUInt64(sum(events)) FROM event_totals_hourly WHERE account_id = ?",
            events,
        ),
        (
            "event_breakdowns_15m",
            "SELECT toUInt64(sum(events)) FROM event_breakdowns_15m WHERE account_id = ?",
            events,
        ),
        (
            "clicks_by_id",
            "SELECT count() FROM (SELECT click_id FROM clicks_by_id WHERE account_id = ? GROUP BY click_id)",
            clicks,
        ),
        (
            "clicks_by_ip",
            "SELECT count() FROM (SELECT click_id FROM clicks_by_ip WHERE account_id = ? GROUP BY click_id)",
            clicks,
        ),
        // Sketches: per (day, event, link), the users.
        (
            "event_users_daily",
            "SELECT toUInt64(sum(u)) FROM (SELECT uniqHLL12Merge(users) AS u FROM event_users_daily \
             WHERE account_id = ? AND link_short_code != '*' GROUP BY day, event_name, link_short_code)",
            users,
        ),
        (
            "event_breakdowns_15m uniques",
            "SELECT toUInt64(sum(u)) FROM (SELECT uniqHLL12Merge(uniques) AS u FROM event_breakdowns_15m \
             WHERE account_id = ? AND event_name = 'click' GROUP BY bucket, link_short_code, country)",
            visitors,
        ),
    ] {
        out.push((table.to_owned(), one(sql.into()).await, expected));
    }
    out
}

fn disagreeing(rows: &[(String, u64, u64)]) -> Vec<&(String, u64, u64)> {
    rows.iter()
        .filter(|(_, said, truth)| said != truth)
        .collect()
}

fn reconciler(env: &TestEnv, settle: Duration) -> Reconciler {
    Reconciler {
        checks: RollupChecks::new(env.pool.clone()),
        shards: vec![env.clickhouse.client()],
        database: env.clickhouse.database.clone(),
        settle,
    }
}

async fn marked_days(env: &TestEnv) -> Vec<NaiveDate> {
    sqlx::query_scalar("SELECT day FROM rollup_checks ORDER BY day")
        .fetch_all(&env.pool)
        .await
        .unwrap()
}

async fn spawn_consumer(env: &TestEnv, writer: Arc<dyn EventWriter>) -> Running {
    // The consumer's own reconciler stays out of the way: the test runs passes itself.
    let config = ConsumerConfig::init_from_hashmap(
        &env.service_env_with(&[("CONSUMER_RECONCILE_EVERY_SECS", "86400")]),
    )
    .unwrap();
    let app = Application::build_with(&config, writer).await.unwrap();
    Running::spawn(app.port(), |stop| app.run_until_stopped(stop))
}

#[tokio::test]
async fn a_write_that_reached_events_and_not_its_rollups_is_repaired_once() {
    let env = TestEnv::with_partitions(1).await;
    let account = Uuid::new_v4();
    let now = Utc::now();
    let today = now.date_naive();
    let first: Vec<EventRecord> = (0..120).map(|n| event(account, n, now)).collect();
    let second: Vec<EventRecord> = (120..300).map(|n| event(account, n, now)).collect();
    env.produce_all(&first).await;
    let writer = Arc::new(ViewsLost {
        inner: ClickHouseWriter::new(env.clickhouse.client(), Duration::from_secs(30)),
        client: env.clickhouse.client(),
        database: env.clickhouse.database.clone(),
        lose: Mutex::new(second.iter().map(|e| e.event_id.to_string()).collect()),
        attempts: AtomicUsize::new(0),
    });
    let consumer = spawn_consumer(&env, writer.clone()).await;
    let filter = format!("account_id = '{account}'");
    assert_eq!(
        env.wait_for_stored(&filter, 120, Duration::from_secs(30))
            .await,
        120
    );
    // The first events were written whole; the first write of the others loses its views.
    env.produce_all(&second).await;
    assert_eq!(
        env.wait_for_stored(&filter, 300, Duration::from_secs(30))
            .await,
        300,
        "the lost answer's write was resolved as stored, not written again"
    );
    consumer.stop().await.unwrap();
    assert!(
        writer.lose.lock().unwrap().is_empty(),
        "a write lost its views"
    );

    let before = rollups_against_events(&env, account).await;
    assert_eq!(
        disagreeing(&before).len(),
        before.len(),
        "every rollup missed the second write: {before:?}"
    );
    let yesterday = today.pred_opt().unwrap();
    assert_eq!(marked_days(&env).await, vec![yesterday, today]);

    // One pass repairs; the days stay marked until a pass finds them in agreement.
    let reconciler = reconciler(&env, Duration::from_millis(500));
    assert_eq!(reconciler.pass().await.unwrap(), Vec::<NaiveDate>::new());
    let after = rollups_against_events(&env, account).await;
    assert!(disagreeing(&after).is_empty(), "repaired: {after:?}");
    assert_eq!(marked_days(&env).await, vec![yesterday, today]);
    // The next finds nothing to do and clears them; a repair is never made twice.
    assert_eq!(reconciler.pass().await.unwrap(), vec![yesterday, today]);
    assert!(marked_days(&env).await.is_empty());
    sqlx::query("INSERT INTO rollup_checks (day) VALUES ($1), ($2)")
        .bind(yesterday)
        .bind(today)
        .execute(&env.pool)
        .await
        .unwrap();
    assert_eq!(reconciler.pass().await.unwrap(), vec![yesterday, today]);
    assert_eq!(rollups_against_events(&env, account).await, after);
}

#[tokio::test]
async fn passes_while_a_consumer_writes_never_repair_a_write_under_way() {
    let env = TestEnv::with_partitions(2).await;
    let account = Uuid::new_v4();
    let writer = Arc::new(ClickHouseWriter::new(
        env.clickhouse.client(),
        Duration::from_secs(30),
    ));
    let consumer = spawn_consumer(&env, writer).await;
    let today = Utc::now().date_naive();
    let reconciler = Arc::new(reconciler(&env, Duration::from_secs(1)));
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    // Passes over both days, back to back, for as long as events arrive.
    let passes = tokio::spawn({
        let reconciler = reconciler.clone();
        let stop = stop.clone();
        let pool = env.pool.clone();
        async move {
            let mut passes = 0;
            while !stop.load(Ordering::SeqCst) {
                sqlx::query(
                    "INSERT INTO rollup_checks (day) VALUES ($1), ($2) ON CONFLICT DO NOTHING",
                )
                .bind(today.pred_opt().unwrap())
                .bind(today)
                .execute(&pool)
                .await
                .unwrap();
                reconciler.pass().await.unwrap();
                passes += 1;
            }
            passes
        }
    });
    let mut sent = 0;
    for wave in 0..16 {
        let events: Vec<EventRecord> = (0..400)
            .map(|n| event(account, wave * 400 + n, Utc::now()))
            .collect();
        env.produce_all(&events).await;
        sent += events.len() as u64;
        tokio::time::sleep(Duration::from_millis(400)).await;
    }
    let filter = format!("account_id = '{account}'");
    assert_eq!(
        env.wait_for_stored(&filter, sent, Duration::from_secs(60))
            .await,
        sent
    );
    stop.store(true, Ordering::SeqCst);
    let passes = passes.await.unwrap();
    assert!(passes >= 3, "{passes} passes ran during the writes");
    consumer.stop().await.unwrap();
    let rows = rollups_against_events(&env, account).await;
    assert!(
        disagreeing(&rows).is_empty(),
        "no pass repaired a write under way: {rows:?}"
    );
}
