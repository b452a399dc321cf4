//! The consumer against real Kafka, ClickHouse and Postgres: at-least-once delivery in,
//! exactly-once storage out, under duplicates, poison, outages, rebalances and SIGKILL.

use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use chrono::Utc;
use linktrace_consumer::exactly_once::HighWaterMarks;
use linktrace_consumer::row::EventRow;
use linktrace_consumer::startup::Application;
use linktrace_consumer::writer::{ClickHouseWriter, EventWriter, WriteError};
use linktrace_domain::{Environment, EventRecord, EventSource, WriteLayout, SCHEMA_VERSION};
use linktrace_integration::{Running, TestEnv};
use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::message::{Headers, OwnedMessage};
use rdkafka::Message;
use uuid::Uuid;

fn record(account: Uuid, code: &str, name: &str) -> EventRecord {
    EventRecord {
        schema_version: SCHEMA_VERSION,
        event_id: Uuid::new_v4(),
        account_id: account,
        environment: Environment::Live,
        link_short_code: Some(code.to_owned()),
        event_name: name.to_owned(),
        entity_id: None,
        user_id: None,
        properties: None,
        revenue: None,
        source: EventSource::Api,
        client: None,
        event_time: None,
        request_id: None,
        received_at: Utc::now(),
    }
}

async fn produce_all(env: &TestEnv, records: &[EventRecord]) {
    let producer = env.producer();
    let sends = records.iter().map(|r| {
        let payload = r.to_json();
        let key = r.partition_key().into_owned();
        let producer = producer.clone();
        let topic = env.kafka.events_topic.clone();
        async move {
            producer
                .send(
                    rdkafka::producer::FutureRecord::to(&topic)
                        .key(&key)
                        .payload(&payload),
                    Duration::from_secs(10),
                )
                .await
                .map_err(|(e, _)| e)
                .expect("produce");
        }
    });
    futures::future::join_all(sends).await;
}

fn account_filter(account: Uuid) -> String {
    format!("account_id = '{account}'")
}

#[tokio::test]
async fn n_events_with_redeliveries_mixed_in_are_stored_exactly_n_times() {
    let env = TestEnv::new().await;
    let account = Uuid::new_v4();
    let records: Vec<EventRecord> = (0..600)
        .map(|i| record(account, &format!("code{}", i % 7), "purchase"))
        .collect();
    produce_all(&env, &records).await;
    // A producer retry or a replay re-sends 150 of them.
    produce_all(&env, &records[..150]).await;
    let consumer = env.spawn_consumer().await;
    assert_eq!(
        env.wait_for_stored(&account_filter(account), 600, Duration::from_secs(30))
            .await,
        600
    );
    let distinct: u64 = env
        .clickhouse
        .client()
        .query("SELECT uniqExact(event_id) FROM events WHERE account_id = ?")
        .bind(account.to_string())
        .fetch_one()
        .await
        .unwrap();
    assert_eq!(distinct, 600);
    assert_eq!(env.rolled_up_events(&account_filter(account)).await, 600);
    consumer.stop().await.unwrap();
}

#[tokio::test]
async fn records_of_both_layouts_are_stored_with_their_times() {
    // A rolling upgrade: older writers' layout 1 (`eventTime` always) and this build's layout
    // 2 (`eventTime` only where it differs from `receivedAt`) on one stream.
    let env = TestEnv::with_partitions(1).await;
    let account = Uuid::new_v4();
    let received = chrono::DateTime::parse_from_rfc3339("2026-11-24T21:00:50.123456Z")
        .unwrap()
        .with_timezone(&Utc);
    let earlier = received - chrono::Duration::milliseconds(90_250);
    let plain = |name: &str| EventRecord {
        received_at: received,
        ..record(account, "abcd1234", name)
    };
    let (v1, v2): (WriteLayout, _) = ("1".parse().unwrap(), WriteLayout::CURRENT);
    let cases = [
        (plain("v1-plain").to_json_as(v1), received),
        (
            plain("v1-own-time").happened_at(earlier).to_json_as(v1),
            earlier,
        ),
        (plain("v2-plain").to_json_as(v2), received),
        (
            plain("v2-own-time").happened_at(earlier).to_json_as(v2),
            earlier,
        ),
    ];
    for (payload, _) in &cases {
        env.produce_raw("abcd1234", payload).await;
    }
    let consumer = env.spawn_consumer().await;
    assert_eq!(
        env.wait_for_stored(&account_filter(account), 4, Duration::from_secs(30))
            .await,
        4
    );
    let stored: Vec<(String, u64, u32)> = env
        .clickhouse
        .client()
        .query(
            "SELECT event_name, event_time_ms, toUInt32(received_at) FROM events \
             WHERE account_id = ? ORDER BY event_name",
        )
        .bind(account.to_string())
        .fetch_all()
        .await
        .unwrap();
    let mut expected: Vec<(String, u64, u32)> = cases
        .iter()
        .map(|(payload, at)| {
            let name = EventRecord::from_json(payload).unwrap().event_name;
            (
                name,
                at.timestamp_millis() as u64,
                received.timestamp() as u32,
            )
        })
        .collect();
    expected.sort();
    assert_eq!(stored, expected);
    assert_eq!(dead_letter_count(&env).await, 0);
    consumer.stop().await.unwrap();
}

#[tokio::test]
async fn poison_messages_go_to_the_dead_letter_topic_and_the_rest_is_written() {
    let env = TestEnv::with_partitions(1).await;
    let account = Uuid::new_v4();
    produce_all(&env, &[record(account, "abcd1234", "before")]).await;
    env.produce_raw("abcd1234", b"\x00\x01 definitely not json")
        .await;
    let mut future_version = serde_json::to_value(record(account, "abcd1234", "future")).unwrap();
    future_version["v"] = (SCHEMA_VERSION + 1).into();
    env.produce_raw("abcd1234", &serde_json::to_vec(&future_version).unwrap())
        .await;
    produce_all(&env, &[record(account, "abcd1234", "after")]).await;

    let consumer = env.spawn_consumer().await;
    assert_eq!(
        env.wait_for_stored(&account_filter(account), 2, Duration::from_secs(30))
            .await,
        2
    );

    let mut reasons = Vec::new();
    for message in env.read_topic(&env.kafka.dead_letter_topic, 2).await {
        let reason = dlq_reason(&message).unwrap();
        reasons.push(reason);
    }
    reasons.sort();
    assert_eq!(
        reasons,
        vec!["malformed".to_owned(), "unknown_schema_version".to_owned()]
    );
    consumer.stop().await.unwrap();
}

/// What goes wrong with a write, decided per attempt (numbered from 0) and its rows.
enum Fault {
    /// ClickHouse does not take the rows.
    Before(WriteError),
    /// ClickHouse stores the rows, but its answer never reaches the consumer.
    After(WriteError),
}

/// The real ClickHouse writer with a fault in front of it: a stand-in only for the fault.
struct Faulty<F> {
    inner: ClickHouseWriter,
    fault: F,
    attempts: AtomicUsize,
}

fn faulty<F>(env: &TestEnv, fault: F) -> Arc<Faulty<F>>
where
    F: Fn(usize, &[EventRow]) -> Option<Fault> + Send + Sync + 'static,
{
    Arc::new(Faulty {
        inner: ClickHouseWriter::new(env.clickhouse.client()),
        fault,
        attempts: AtomicUsize::new(0),
    })
}

#[async_trait]
impl<F> EventWriter for Faulty<F>
where
    F: Fn(usize, &[EventRow]) -> Option<Fault> + Send + Sync + 'static,
{
    async fn high_water_marks(&self, topic: &str) -> Result<HighWaterMarks, WriteError> {
        self.inner.high_water_marks(topic).await
    }

    async fn write(&self, rows: &[EventRow]) -> Result<(), WriteError> {
        let attempt = self.attempts.fetch_add(1, Ordering::SeqCst);
        match (self.fault)(attempt, rows) {
            None => self.inner.write(rows).await,
            Some(Fault::Before(error)) => Err(error),
            Some(Fault::After(error)) => {
                self.inner.write(rows).await?;
                Err(error)
            }
        }
    }
}

/// A consumer of `env` writing through `writer` (in-process).
async fn spawn_consumer_with(env: &TestEnv, writer: Arc<dyn EventWriter>) -> Running {
    let app = Application::build_with(&env.consumer_config(), writer)
        .await
        .unwrap();
    Running::spawn(app.port(), |stop| app.run_until_stopped(stop))
}

fn outage(message: &str) -> WriteError {
    WriteError::Retryable(format!("{message} (simulated)"))
}

#[tokio::test]
async fn a_clickhouse_outage_loses_nothing_and_dead_letters_nothing() {
    let env = TestEnv::new().await;
    let account = Uuid::new_v4();
    let records: Vec<EventRecord> = (0..300)
        .map(|i| record(account, &format!("c{}", i % 5), "purchase"))
        .collect();
    produce_all(&env, &records).await;
    let writer = faulty(&env, |attempt, _| {
        (attempt < 4).then(|| Fault::Before(outage("connection refused")))
    });
    let consumer = spawn_consumer_with(&env, writer.clone()).await;
    assert_eq!(
        env.wait_for_stored(&account_filter(account), 300, Duration::from_secs(40))
            .await,
        300
    );
    assert!(
        writer.attempts.load(Ordering::SeqCst) > 4,
        "the outage was retried"
    );
    consumer.stop().await.unwrap();
    let dead = dead_letter_count(&env).await;
    assert_eq!(dead, 0);
}

#[tokio::test]
async fn a_write_that_succeeded_unbeknownst_to_the_consumer_is_not_written_again() {
    let env = TestEnv::new().await;
    let account = Uuid::new_v4();
    let records: Vec<EventRecord> = (0..400)
        .map(|i| record(account, &format!("t{}", i % 9), "purchase"))
        .collect();
    produce_all(&env, &records).await;
    let writer = faulty(&env, |attempt, _| {
        (attempt < 3).then(|| Fault::After(outage("timed out waiting for ClickHouse")))
    });
    let consumer = spawn_consumer_with(&env, writer.clone()).await;
    assert_eq!(
        env.wait_for_stored(&account_filter(account), 400, Duration::from_secs(40))
            .await,
        400,
        "plain count(): the retries after the lost answers wrote nothing twice"
    );
    assert_eq!(env.rolled_up_events(&account_filter(account)).await, 400);
    assert!(
        writer.attempts.load(Ordering::SeqCst) > 3,
        "answers were lost and retried"
    );
    consumer.stop().await.unwrap();
}

#[tokio::test]
async fn rows_clickhouse_refuses_are_isolated_and_dead_lettered_and_the_rest_is_written() {
    let env = TestEnv::with_partitions(1).await;
    let account = Uuid::new_v4();
    let records: Vec<EventRecord> = (0..240)
        .map(|i| {
            let name = if i % 80 == 7 { "poisoned" } else { "purchase" };
            record(account, "abcd1234", name)
        })
        .collect();
    produce_all(&env, &records).await;
    let refusals = Arc::new(AtomicUsize::new(0));
    let counted = refusals.clone();
    let writer = faulty(&env, move |_, rows| {
        rows.iter().any(|r| r.event_name == "poisoned").then(|| {
            counted.fetch_add(1, Ordering::SeqCst);
            Fault::Before(WriteError::Refused(
                "bad response: Code: 117, e.displayText() = DB::Exception: Incorrect data (simulated)"
                    .into(),
            ))
        })
    });
    let consumer = spawn_consumer_with(&env, writer.clone()).await;
    let good = format!("account_id = '{account}' AND event_name = 'purchase'");
    assert_eq!(
        env.wait_for_stored(&good, 237, Duration::from_secs(40))
            .await,
        237,
        "every row around the refused ones is written, once"
    );
    assert_eq!(env.rolled_up_events(&good).await, 237);
    assert_eq!(env.stored_events(&account_filter(account)).await, 237);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while dead_letter_count(&env).await < 3 && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    consumer.stop().await.unwrap();
    assert_eq!(
        dead_letter_count(&env).await,
        3,
        "each refused row dead-lettered once"
    );
    assert!(refusals.load(Ordering::SeqCst) >= 3);
    for message in env.read_topic(&env.kafka.dead_letter_topic, 3).await {
        let reason = dlq_reason(&message);
        assert_eq!(reason.as_deref(), Some("clickhouse_refused"));
        let decoded = EventRecord::from_json(message.payload().unwrap()).unwrap();
        assert_eq!(decoded.event_name, "poisoned");
    }
}

/// Why the consumer dead-lettered `message` (its `dlq-reason` header).
fn dlq_reason(message: &OwnedMessage) -> Option<String> {
    message
        .headers()?
        .iter()
        .find(|h| h.key == "dlq-reason")
        .and_then(|h| h.value)
        .map(|v| String::from_utf8_lossy(v).into_owned())
}

async fn dead_letter_count(env: &TestEnv) -> i64 {
    let reader: StreamConsumer = env
        .kafka
        .client_config()
        .set("group.id", format!("count-{}", env.id))
        .create()
        .unwrap();
    let (low, high) = reader
        .fetch_watermarks(&env.kafka.dead_letter_topic, 0, Duration::from_secs(5))
        .unwrap();
    high - low
}

#[tokio::test]
async fn two_consumers_in_one_group_store_exactly_n() {
    let env = TestEnv::new().await;
    let account = Uuid::new_v4();
    let first = env.spawn_consumer().await;
    let second = env.spawn_consumer().await;
    let records: Vec<EventRecord> = (0..2000)
        .map(|i| record(account, &format!("link{}", i % 40), "purchase"))
        .collect();
    produce_all(&env, &records).await;
    assert_eq!(
        env.wait_for_stored(&account_filter(account), 2000, Duration::from_secs(60))
            .await,
        2000
    );
    assert_eq!(env.rolled_up_events(&account_filter(account)).await, 2000);
    first.stop().await.unwrap();
    second.stop().await.unwrap();
}

#[tokio::test]
async fn an_entity_event_redelivered_later_is_dropped_before_it_is_written() {
    let env = TestEnv::with_partitions(1).await;
    let account = Uuid::new_v4();
    let mut entity = record(account, "abcd1234", "purchase");
    entity.entity_id = Some("order-1".into());
    // Ingest claimed the tuple; the consumer will mark it stored.
    sqlx::query(
        "INSERT INTO entity_events (account_id, link_short_code, event_name, entity_id, event_id, event_time, state) \
         VALUES ($1, 'abcd1234', 'purchase', 'order-1', $2, now(), 'queued')",
    )
    .bind(account)
    .bind(entity.event_id)
    .execute(&env.pool)
    .await
    .unwrap();
    let consumer = env.spawn_consumer().await;
    produce_all(&env, &[entity.clone()]).await;
    let filter = format!("event_id = '{}'", entity.event_id);
    assert_eq!(
        env.wait_for_stored(&filter, 1, Duration::from_secs(20))
            .await,
        1
    );
    let state: String = sqlx::query_scalar("SELECT state FROM entity_events WHERE event_id = $1")
        .bind(entity.event_id)
        .fetch_one(&env.pool)
        .await
        .unwrap();
    assert_eq!(state, "stored");

    // The same event arrives again much later, followed by a sentinel on the same partition.
    let sentinel = record(account, "abcd1234", "sentinel");
    produce_all(&env, &[entity.clone()]).await;
    produce_all(&env, std::slice::from_ref(&sentinel)).await;
    assert_eq!(
        env.wait_for_stored(
            &format!("event_id = '{}'", sentinel.event_id),
            1,
            Duration::from_secs(20)
        )
        .await,
        1
    );
    assert_eq!(
        env.stored_events(&filter).await,
        1,
        "the repeat must not even be written"
    );
    consumer.stop().await.unwrap();
}

/// The real consumer binary, so that it can be killed with SIGKILL.
fn consumer_binary() -> std::path::PathBuf {
    linktrace_integration::service_binary("consumer")
}

fn start_consumer_process(env: &TestEnv, binary: &std::path::Path) -> Child {
    start_consumer_process_with(env, binary, &[])
}

fn start_consumer_process_with(
    env: &TestEnv,
    binary: &std::path::Path,
    extra: &[(&str, &str)],
) -> Child {
    let mut vars = env.service_env();
    for (name, value) in extra {
        vars.insert((*name).into(), (*value).into());
    }
    vars.insert("CONSUMER_BATCH_MAX_EVENTS".into(), "100".into());
    vars.insert("KAFKA_CONSUMER_INSTANCE_ID".into(), "consumer-0".into());
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(std::env::temp_dir().join(format!("lt-consumer-{}.log", env.id)))
        .unwrap();
    Command::new(binary)
        .envs(vars)
        .env("RUST_LOG", "info,rdkafka=debug")
        .stdout(log)
        .stderr(Stdio::null())
        .spawn()
        .expect("consumer starts")
}

#[tokio::test]
async fn sigkill_between_the_clickhouse_write_and_the_commit_stores_each_row_once() {
    let binary = consumer_binary();
    let env = TestEnv::new().await;
    let account = Uuid::new_v4();
    // Plain events (random ids, no entityId) and entity events alike.
    let records: Vec<EventRecord> = (0..1200)
        .map(|i| {
            let mut r = record(account, &format!("f{}", i % 11), "purchase");
            if i % 3 == 0 {
                r.entity_id = Some(format!("order-{i}"));
            }
            r
        })
        .collect();
    produce_all(&env, &records).await;
    let marker = std::env::temp_dir().join(format!("lt-hold-{}", env.id));
    let marker_path = marker.to_str().unwrap().to_owned();
    let mut process = start_consumer_process_with(
        &env,
        &binary,
        &[("CONSUMER_FAULT_HOLD_BEFORE_COMMIT", &marker_path)],
    );
    // The fault hook says when the batch is in ClickHouse and its offsets are not committed.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    while !marker.exists() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the consumer never wrote"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let written_before_kill = env.stored_events(&account_filter(account)).await;
    assert!(
        written_before_kill > 0,
        "a batch was written before the kill"
    );
    process.kill().expect("SIGKILL");
    process.wait().unwrap();
    std::fs::remove_file(&marker).unwrap();
    assert_eq!(
        committed_offsets(&env).await,
        0,
        "nothing was committed: the batch will be delivered again"
    );

    let mut restarted = start_consumer_process(&env, &binary);
    let stored = env
        .wait_for_stored(&account_filter(account), 1200, Duration::from_secs(60))
        .await;
    restarted.kill().unwrap();
    restarted.wait().unwrap();
    assert_eq!(
        stored, 1200,
        "plain count(), no FINAL: every event exactly once"
    );
    assert_eq!(
        env.rolled_up_events(&account_filter(account)).await,
        1200,
        "no row was written twice (the rollups never collapse copies)"
    );
    let distinct: u64 = env
        .clickhouse
        .client()
        .query("SELECT uniqExact(event_id) FROM events WHERE account_id = ?")
        .bind(account.to_string())
        .fetch_one()
        .await
        .unwrap();
    assert_eq!(distinct, 1200);
}

/// The offsets the test's consumer group has committed, summed over partitions.
async fn committed_offsets(env: &TestEnv) -> i64 {
    let reader: StreamConsumer = env
        .kafka
        .client_config()
        .set("group.id", format!("lt-test-{}-consumer", env.id))
        .create()
        .unwrap();
    let mut partitions = rdkafka::TopicPartitionList::new();
    for partition in 0..4 {
        partitions.add_partition(&env.kafka.events_topic, partition);
    }
    let committed = reader
        .committed_offsets(partitions, Duration::from_secs(10))
        .unwrap();
    committed
        .elements()
        .iter()
        .filter_map(|e| match e.offset() {
            rdkafka::Offset::Offset(o) => Some(o),
            _ => None,
        })
        .sum()
}

#[tokio::test]
async fn a_consumer_killed_with_sigkill_mid_stream_still_stores_exactly_n() {
    let binary = consumer_binary();
    let env = TestEnv::new().await;
    let account = Uuid::new_v4();
    let first: Vec<EventRecord> = (0..3000)
        .map(|i| record(account, &format!("k{}", i % 16), "purchase"))
        .collect();
    produce_all(&env, &first).await;
    let mut process = start_consumer_process(&env, &binary);
    // Kill it once it is part-way through.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    while env.stored_events(&account_filter(account)).await < 300 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "consumer made no progress"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    process.kill().expect("SIGKILL");
    process.wait().unwrap();
    let at_kill = env.stored_events(&account_filter(account)).await;
    assert!(
        at_kill < 3000,
        "killed too late to prove anything ({at_kill})"
    );

    let second: Vec<EventRecord> = (0..500)
        .map(|i| record(account, &format!("k{}", i % 16), "signup"))
        .collect();
    produce_all(&env, &second).await;
    let mut restarted = start_consumer_process(&env, &binary);
    let stored = env
        .wait_for_stored(&account_filter(account), 3500, Duration::from_secs(60))
        .await;
    restarted.kill().unwrap();
    restarted.wait().unwrap();
    assert_eq!(stored, 3500);
    assert_eq!(env.rolled_up_events(&account_filter(account)).await, 3500);
}

#[tokio::test]
async fn sigterm_flushes_the_batch_in_hand_commits_and_leaves() {
    let env = TestEnv::with_partitions(2).await;
    let account = Uuid::new_v4();
    // A batch window far longer than the test: only the shutdown can flush it.
    let mut config = env.consumer_config();
    config.batch_max_wait_ms = 30_000;
    config.batch_max_events = 100_000;
    let app = Application::build(config.clone()).await.unwrap();
    let consumer = Running::spawn(app.port(), |stop| app.run_until_stopped(stop));
    let records: Vec<EventRecord> = (0..50)
        .map(|i| record(account, &format!("t{}", i % 3), "purchase"))
        .collect();
    produce_all(&env, &records).await;
    tokio::time::sleep(Duration::from_secs(8)).await;
    assert_eq!(
        env.stored_events(&account_filter(account)).await,
        0,
        "still inside the batch window"
    );
    consumer.stop().await.unwrap();
    assert_eq!(
        env.stored_events(&account_filter(account)).await,
        50,
        "flushed on shutdown"
    );

    // The offsets were committed: the group's next member has nothing left to write.
    let app = Application::build(config).await.unwrap();
    let again = Running::spawn(app.port(), |stop| app.run_until_stopped(stop));
    let sentinel = record(account, "t0", "sentinel");
    produce_all(&env, std::slice::from_ref(&sentinel)).await;
    tokio::time::sleep(Duration::from_secs(12)).await;
    again.stop().await.unwrap();
    assert_eq!(
        env.stored_events(&account_filter(account)).await,
        51,
        "nothing was re-read"
    );
}

#[tokio::test]
async fn sigterm_during_a_clickhouse_outage_exits_without_committing() {
    let env = TestEnv::with_partitions(1).await;
    let account = Uuid::new_v4();
    let never = faulty(&env, |_, _| {
        Some(Fault::Before(outage("connection refused")))
    });
    let consumer = spawn_consumer_with(&env, never.clone()).await;
    let records: Vec<EventRecord> = (0..20)
        .map(|_| record(account, "down1234", "purchase"))
        .collect();
    produce_all(&env, &records).await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while never.attempts.load(Ordering::SeqCst) < 2 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the consumer never tried to write"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // It stops promptly although ClickHouse is still "down"…
    tokio::time::timeout(Duration::from_secs(10), consumer.stop())
        .await
        .expect("exits promptly")
        .unwrap();
    assert_eq!(env.stored_events(&account_filter(account)).await, 0);
    // …and committed nothing: the next member of the group writes all 20.
    let healthy = env.spawn_consumer().await;
    assert_eq!(
        env.wait_for_stored(&account_filter(account), 20, Duration::from_secs(30))
            .await,
        20
    );
    healthy.stop().await.unwrap();
}
