//! The consumer against real Kafka, ClickHouse and Postgres: at-least-once delivery in,
//! exactly-once storage out, under duplicates, poison, outages, rebalances and SIGKILL.

use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use chrono::Utc;
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
        claimed: false,
        source: EventSource::Api,
        client: None,
        event_time: None,
        request_id: None,
        received_at: Utc::now(),
    }
}

async fn produce_all(env: &TestEnv, records: &[EventRecord]) {
    env.produce_all(records).await;
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
        inner: ClickHouseWriter::new(env.clickhouse.client(), Duration::from_secs(30)),
        fault,
        attempts: AtomicUsize::new(0),
    })
}

#[async_trait]
impl<F> EventWriter for Faulty<F>
where
    F: Fn(usize, &[EventRow]) -> Option<Fault> + Send + Sync + 'static,
{
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
        let attempt = self.attempts.fetch_add(1, Ordering::SeqCst);
        match (self.fault)(attempt, rows) {
            None => self.inner.write(rows, tag).await,
            Some(Fault::Before(error)) => Err(error),
            Some(Fault::After(error)) => {
                self.inner.write(rows, tag).await?;
                Err(error)
            }
        }
    }

    async fn in_flight(&self, tag: &str) -> Result<bool, WriteError> {
        self.inner.in_flight(tag).await
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
    // Ingest claimed the tuple; the consumer will mark it stored. The event's id is not its
    // tuple's key, as for a claim made before the environment was part of the key: the
    // claim is found by the key all the same.
    assert_ne!(entity.event_id, entity.claim_key());
    sqlx::query(
        "INSERT INTO entity_claims (event_id, account_id, event_time, state, stored_event_id) \
         VALUES ($1, $2, now(), 'queued', $3)",
    )
    .bind(entity.claim_key())
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
    let state: String = sqlx::query_scalar("SELECT state FROM entity_claims WHERE event_id = $1")
        .bind(entity.claim_key())
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

/// Runs the consumer binary until its fault hook says a batch is in ClickHouse and its
/// offsets are not committed, then SIGKILLs it: the batch will be delivered again.
async fn kill_between_the_write_and_the_commit(
    env: &TestEnv,
    binary: &std::path::Path,
    account: Uuid,
) {
    let marker = std::env::temp_dir().join(format!("lt-hold-{}", env.id));
    let marker_path = marker.to_str().unwrap().to_owned();
    let mut process = start_consumer_process_with(
        env,
        binary,
        &[("CONSUMER_FAULT_HOLD_BEFORE_COMMIT", &marker_path)],
    );
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
        committed_offsets(env).await,
        0,
        "nothing was committed: the batch will be delivered again"
    );
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
    kill_between_the_write_and_the_commit(&env, &binary, account).await;

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

/// A writer that answers like a ClickHouse replica that has fetched nothing yet: every
/// question about what is stored gets "nothing". Writes go to the real server.
struct LaggingReplica {
    inner: ClickHouseWriter,
}

#[async_trait]
impl EventWriter for LaggingReplica {
    async fn stored_through(
        &self,
        _topic: &str,
        _partition: i32,
        _from: i64,
        _to: i64,
    ) -> Result<Option<i64>, WriteError> {
        Ok(None)
    }

    async fn write(&self, rows: &[EventRow], tag: &str) -> Result<(), WriteError> {
        self.inner.write(rows, tag).await
    }

    async fn in_flight(&self, tag: &str) -> Result<bool, WriteError> {
        self.inner.in_flight(tag).await
    }
}

/// The consumer resumes from the stream ledger in Postgres, never from ClickHouse's view
/// of what it holds: a consumer killed between its write and its offset commit is followed
/// by one that reads ClickHouse through a replica that lags (sees nothing), and still
/// nothing is written twice. Before the ledger, the follower took its high-water mark from
/// that replica and wrote the redelivered batch again.
#[tokio::test]
async fn a_lagging_replica_cannot_make_a_redelivered_batch_be_written_again() {
    let binary = consumer_binary();
    let env = TestEnv::with_partitions(2).await;
    let account = Uuid::new_v4();
    let records: Vec<EventRecord> = (0..400)
        .map(|i| record(account, &format!("lag{}", i % 13), "purchase"))
        .collect();
    produce_all(&env, &records).await;
    kill_between_the_write_and_the_commit(&env, &binary, account).await;

    let lagging = Arc::new(LaggingReplica {
        inner: ClickHouseWriter::new(env.clickhouse.client(), Duration::from_secs(30)),
    });
    let follower = spawn_consumer_with(&env, lagging).await;
    assert_eq!(
        env.wait_for_stored(&account_filter(account), 400, Duration::from_secs(60))
            .await,
        400
    );
    // Give a double write time to show.
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(env.stored_events(&account_filter(account)).await, 400);
    assert_eq!(env.rolled_up_events(&account_filter(account)).await, 400);
    follower.stop().await.unwrap();
}

/// A producer retry's copy lands at a later offset after its partition moved to another
/// consumer, which never saw the original. The new owner starts its window of recent ids
/// from the messages before its first one, so it drops the copy. Before, each consumer's
/// window started empty and the copy was stored a second time.
#[tokio::test]
async fn a_copy_whose_original_another_consumer_stored_is_dropped() {
    let env = TestEnv::with_partitions(1).await;
    let account = Uuid::new_v4();
    let originals: Vec<EventRecord> = (0..50)
        .map(|i| record(account, &format!("hand{}", i % 3), "purchase"))
        .collect();
    produce_all(&env, &originals).await;
    let first = env.spawn_consumer().await;
    assert_eq!(
        env.wait_for_stored(&account_filter(account), 50, Duration::from_secs(30))
            .await,
        50
    );
    first.stop().await.unwrap();

    // The copies (a retry the broker had in fact taken) and one new event, which shows
    // when the new owner has read past the copies.
    produce_all(&env, &originals[40..]).await;
    let sentinel = record(account, "hand0", "sentinel");
    produce_all(&env, std::slice::from_ref(&sentinel)).await;
    let second = env.spawn_consumer().await;
    assert_eq!(
        env.wait_for_stored(
            &format!("event_id = '{}'", sentinel.event_id),
            1,
            Duration::from_secs(30)
        )
        .await,
        1
    );
    assert_eq!(
        env.stored_events(&account_filter(account)).await,
        51,
        "the ten copies were not stored"
    );
    second.stop().await.unwrap();
}

/// Two consumers that both believe they own a partition (an old owner evicted while it
/// still holds a batch, say) cannot both write it: taking the partition bumps its epoch in
/// the stream ledger, and a write is begun only under the current epoch. A write the old
/// owner had already begun is waited for, and the new owner writes only what lies above it.
#[tokio::test]
async fn two_consumers_believing_they_own_one_partition_cannot_both_write_it() {
    use linktrace_platform::stream_ledger::{LedgerError, StreamLedger};

    let env = TestEnv::with_partitions(1).await;
    let ledger = StreamLedger::new(env.pool.clone(), &env.kafka.events_topic);
    let writer = ClickHouseWriter::new(env.clickhouse.client(), Duration::from_secs(30));
    let account = Uuid::new_v4();
    let rows_at = |offsets: std::ops::Range<i64>| -> Vec<EventRow> {
        offsets
            .map(|offset| {
                EventRow::new(
                    &record(account, "fence123", "purchase"),
                    &env.kafka.events_topic,
                    linktrace_consumer::row::StreamPosition {
                        partition: 0,
                        offset,
                    },
                )
            })
            .collect()
    };
    let rows = rows_at(0..10);
    let deadline = Duration::from_secs(60);

    // The old owner takes the partition and begins writing offsets 0..=4.
    let old = ledger.acquire(0, "old", -1).await.unwrap();
    ledger.begin(&old, 0, 4, deadline).await.unwrap();
    // The new owner takes it over meanwhile: the old lease is fenced from now on.
    let new = ledger.acquire(0, "new", -1).await.unwrap();
    assert!(new.epoch > old.epoch);
    let open = new
        .intent
        .clone()
        .expect("it sees the old owner's open write");
    assert_eq!(
        (open.epoch, open.from, open.to, open.expired),
        (old.epoch, 0, 4, false)
    );
    // It cannot begin while that write may still land…
    assert!(matches!(
        ledger.begin(&new, 5, 9, deadline).await,
        Err(LedgerError::Fenced(0))
    ));
    // …the old owner's write lands and is settled (a fact, accepted after the fence)…
    writer.write(&rows[..5], "fence-old").await.unwrap();
    ledger.settle(0, old.epoch, 4, &[]).await.unwrap();
    // …but the old owner can begin nothing more.
    assert!(matches!(
        ledger.begin(&old, 5, 9, deadline).await,
        Err(LedgerError::Fenced(0))
    ));
    assert!(matches!(
        ledger.refresh(&old).await,
        Err(LedgerError::Fenced(0))
    ));
    // The new owner resumes above what was settled.
    let new = ledger.refresh(&new).await.unwrap();
    assert_eq!((new.settled_through, new.intent.clone()), (4, None));
    ledger.begin(&new, 5, 9, deadline).await.unwrap();
    writer.write(&rows[5..], "fence-new").await.unwrap();
    ledger.settle(0, new.epoch, 9, &[]).await.unwrap();
    assert_eq!(env.stored_events(&account_filter(account)).await, 10);

    // An open write whose writer died is resolved by the next owner once its deadline has
    // passed, from what storage holds: here offsets 10..=12 landed, 13..=14 did not.
    let dying = ledger.acquire(0, "dying", -1).await.unwrap();
    ledger.begin(&dying, 10, 14, Duration::ZERO).await.unwrap();
    let more = rows_at(10..13);
    writer.write(&more, "fence-dying").await.unwrap();
    let next = ledger.acquire(0, "next", -1).await.unwrap();
    let open = next.intent.clone().unwrap();
    assert!(open.expired);
    let stored = writer
        .stored_through(&env.kafka.events_topic, 0, open.from, open.to)
        .await
        .unwrap();
    assert_eq!(stored, Some(12));
    ledger.resolve(&next, &open, stored).await.unwrap();
    assert_eq!(ledger.refresh(&next).await.unwrap().settled_through, 12);
    // The dead writer's late settle is refused: its write was resolved without it.
    assert!(matches!(
        ledger.settle(0, dying.epoch, 14, &[]).await,
        Err(LedgerError::Fenced(0))
    ));
}

/// A consumer SIGKILLed in the middle of an INSERT leaves its write open in the stream
/// ledger, with a deadline a minute away. The partition's next owner asks the server
/// whether that INSERT still runs; it does not, so the write is resolved at once instead of
/// the partition standing still until the deadline (which is what happened before).
#[tokio::test]
async fn a_write_left_open_by_a_dead_consumer_is_resolved_without_waiting_for_its_deadline() {
    use linktrace_platform::stream_ledger::StreamLedger;

    let env = TestEnv::with_partitions(1).await;
    let ledger = StreamLedger::new(env.pool.clone(), &env.kafka.events_topic);
    let dead = ledger.acquire(0, "dead", -1).await.unwrap();
    ledger
        .begin(&dead, 0, 9, Duration::from_secs(60))
        .await
        .unwrap();
    let account = Uuid::new_v4();
    let records: Vec<EventRecord> = (0..10)
        .map(|_| record(account, "open1234", "purchase"))
        .collect();
    produce_all(&env, &records).await;
    let consumer = env.spawn_consumer().await;
    assert_eq!(
        env.wait_for_stored(&account_filter(account), 10, Duration::from_secs(20))
            .await,
        10,
        "stored well before the dead writer's deadline"
    );
    consumer.stop().await.unwrap();
}

/// The ledger's skipped offsets are kept for a week and then forgotten (the consumer sweeps
/// them every ten minutes), so the table does not grow for ever.
#[tokio::test]
async fn skipped_offsets_are_forgotten_after_they_are_kept() {
    use linktrace_platform::stream_ledger::{SkipReason, StreamLedger};

    let env = TestEnv::with_partitions(1).await;
    let ledger = StreamLedger::new(env.pool.clone(), &env.kafka.events_topic);
    let lease = ledger.acquire(0, "sweeper", -1).await.unwrap();
    ledger
        .settle(
            0,
            lease.epoch,
            3,
            &[(1, SkipReason::Copy), (2, SkipReason::DeadLettered)],
        )
        .await
        .unwrap();
    sqlx::query("UPDATE stream_skips SET skipped_at = now() - interval '8 days' WHERE topic = $1 AND kafka_offset = 1")
        .bind(&env.kafka.events_topic)
        .execute(&env.pool)
        .await
        .unwrap();
    assert_eq!(
        ledger.skipped(&[(0, 1), (0, 2), (0, 3)]).await.unwrap(),
        std::collections::HashSet::from([(0, 1), (0, 2)])
    );
    assert!(
        ledger
            .forget_skips_older_than(linktrace_consumer::startup::SKIPS_KEPT)
            .await
            .unwrap()
            >= 1
    );
    assert_eq!(
        ledger.skipped(&[(0, 1), (0, 2), (0, 3)]).await.unwrap(),
        std::collections::HashSet::from([(0, 2)])
    );
}
