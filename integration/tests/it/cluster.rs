//! Cluster mode against a real ClickHouse cluster: ZooKeeper and four 18.16 servers, two
//! shards of two replicas (`deploy/clickhouse-cluster.sh`, started here on ports of its own).
//! The same migrations make `Replicated*` shards under `Distributed` tables of today's names;
//! the consumer's writer lands each run on its partition's shard, on two replicas, and a
//! block sent again is stored once.

use std::process::Command;
use std::time::Duration;

use chrono::Utc;
use linktrace_consumer::row::{EventRow, StreamPosition};
use linktrace_consumer::writer::{ClickHouseWriter, EventWriter};
use linktrace_domain::{Environment, EventRecord, EventSource};
use linktrace_integration::TestEnv;
use linktrace_platform::clickhouse::ClickHouseConfig;
use uuid::Uuid;

const HTTP_BASE: u16 = 28123;
/// The test cluster's data and pid files (`deploy/test.sh` stops it there after the tests).
const TEST_CLUSTER_STATE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../.linktrace/test-cluster");

/// One test at a time on the shared test cluster (one of them kills a node).
static ONE_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// Runs `deploy/clickhouse-cluster.sh` on the test cluster's ports.
fn cluster_script(args: &[&str]) {
    let script = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../deploy/clickhouse-cluster.sh"
    );
    let status = Command::new("bash")
        .arg(script)
        .args(args)
        .envs(cluster_ports())
        .status()
        .expect("the cluster script runs");
    assert!(
        status.success(),
        "deploy/clickhouse-cluster.sh {args:?} failed"
    );
}

/// Starts the test cluster (idempotent: a second call finds it up). The first call in a
/// test run starts it afresh: nothing an earlier run left (its data, ZooKeeper's, pid files
/// of processes a reboot ended) shapes this one.
fn cluster_up() {
    static FRESH: std::sync::Once = std::sync::Once::new();
    FRESH.call_once(|| cluster_script(&["reset"]));
    cluster_script(&["up"]);
}

/// Sends `block` until it is accepted, as the consumer retries a write, for at most
/// `within`.
async fn write_until_accepted(
    writer: &ClickHouseWriter,
    block: &[EventRow],
    tag: &str,
    within: Duration,
) {
    let deadline = std::time::Instant::now() + within;
    loop {
        match writer.write(block, tag).await {
            Ok(()) => return,
            Err(error) => {
                assert!(
                    std::time::Instant::now() < deadline,
                    "never written: {error}"
                );
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
        }
    }
}

/// Whether node `n` of the test cluster answers.
fn node_answers(n: u16) -> bool {
    std::net::TcpStream::connect(("127.0.0.1", HTTP_BASE + n - 1)).is_ok()
}

fn cluster_ports() -> [(&'static str, String); 5] {
    [
        ("CLICKHOUSE_CLUSTER_HTTP_BASE", HTTP_BASE.to_string()),
        ("CLICKHOUSE_CLUSTER_TCP_BASE", "29000".into()),
        ("CLICKHOUSE_CLUSTER_INTERSERVER_BASE", "29009".into()),
        ("ZOOKEEPER_PORT", "22181".into()),
        ("CLICKHOUSE_CLUSTER_STATE", TEST_CLUSTER_STATE.into()),
    ]
}

/// Our database on the cluster, reached through node `n` (1-4).
fn node(database: &str, n: u16) -> ClickHouseConfig {
    ClickHouseConfig {
        url: format!("http://127.0.0.1:{}", HTTP_BASE + n - 1),
        database: database.to_owned(),
        user: "default".into(),
        password: linktrace_platform::secret::Secret::new(""),
        cluster: "linktrace".into(),
        // The consumer's writes go straight to each run's shard, as `deploy/up.sh --cluster`
        // configures it (a writer made with `writer_client()` alone writes through the
        // Distributed table).
        shards: format!(
            "http://127.0.0.1:{},http://127.0.0.1:{};http://127.0.0.1:{},http://127.0.0.1:{}",
            HTTP_BASE,
            HTTP_BASE + 1,
            HTTP_BASE + 2,
            HTTP_BASE + 3
        ),
    }
}

fn rows(account: Uuid, partition: i32, offsets: std::ops::Range<i64>) -> Vec<EventRow> {
    offsets
        .map(|offset| {
            let mut record = EventRecord::new(
                Uuid::new_v4(),
                account,
                Environment::Live,
                "purchase",
                EventSource::Api,
                Utc::now(),
            );
            record.link_short_code = Some(format!("shard{partition}"));
            EventRow::new(&record, "events", StreamPosition { partition, offset })
        })
        .collect()
}

async fn scalar(config: &ClickHouseConfig, sql: &str) -> u64 {
    config
        .client()
        .query(sql)
        .fetch_one::<u64>()
        .await
        .unwrap_or_else(|e| panic!("{sql} on {}: {e}", config.url))
}

/// A test slice whose ClickHouse is a fresh database `<slice's>_<name>` on the test cluster,
/// reached through node 1 (the consumer writing straight to the shards), its schema applied.
async fn env_on_the_cluster(partitions: i32, name: &str) -> (TestEnv, String) {
    let mut env = TestEnv::with_partitions(partitions).await;
    let database = format!("{}_{name}", env.clickhouse.database);
    env.clickhouse = node(&database, 1);
    env.clickhouse.drop_database().await.unwrap();
    if let Err(error) = env.clickhouse.ensure_schema(&env.pool).await {
        // 18.16's DDL worker ends on a race between replicas (clickhouse-cluster.sh,
        // `restart_nodes_without_ddl_worker`): the script restarts such a node, and the
        // migrations, which resume where they stopped, run again once.
        assert!(error.to_string().contains("Code: 159"), "{error:#}");
        cluster_up();
        env.clickhouse.ensure_schema(&env.pool).await.unwrap();
    }
    (env, database)
}

/// Through every node: a plain `count()` of the rows matching `filter` is `expected`, each
/// event is there once, and the three counting rollups sum to the same.
async fn every_node_holds_once(database: &str, filter: &str, expected: u64) {
    for n in 1..=4 {
        let config = node(database, n);
        assert_eq!(
            scalar(
                &config,
                &format!("SELECT count() FROM events WHERE {filter}")
            )
            .await,
            expected,
            "a plain count() through node {n}"
        );
        assert_eq!(
            scalar(
                &config,
                &format!("SELECT uniqExact(event_id) FROM events WHERE {filter}")
            )
            .await,
            expected,
            "each event once, through node {n}"
        );
        for rollup in [
            "event_counts_hourly",
            "event_counts_daily",
            "event_totals_hourly",
        ] {
            assert_eq!(
                scalar(
                    &config,
                    &format!("SELECT toUInt64(sum(events)) FROM {rollup} WHERE {filter}")
                )
                .await,
                expected,
                "{rollup} through node {n}"
            );
        }
    }
}

#[tokio::test]
async fn one_schema_on_a_cluster_stores_each_run_once_on_its_shard() {
    let _turn = ONE_AT_A_TIME.lock().await;
    cluster_up();
    let env = TestEnv::with_partitions(1).await;
    let database = format!("{}_cluster", env.clickhouse.database);
    let first = node(&database, 1);
    first.drop_database().await.unwrap();
    // Every migration, in its cluster form, from whichever node a service was given.
    assert!(first.ensure_schema(&env.pool).await.unwrap() >= 8);
    assert_eq!(
        node(&database, 3).ensure_schema(&env.pool).await.unwrap(),
        0,
        "recorded once for all nodes"
    );
    for n in 1..=4 {
        let engine: String = node(&database, n)
            .client()
            .query("SELECT engine FROM system.tables WHERE database = currentDatabase() AND name = 'events_local'")
            .fetch_one()
            .await
            .unwrap();
        assert_eq!(engine, "ReplicatedReplacingMergeTree", "node {n}");
    }

    // The consumer's writer through node 1: partitions 0 and 2 belong to shard 1, 1 and 3
    // to shard 2.
    let writer = ClickHouseWriter::new(first.writer_client(), Duration::from_secs(30));
    let account = Uuid::new_v4();
    let mut sent = 0;
    let mut runs = Vec::new();
    for partition in 0..4 {
        let run = rows(account, partition, 0..(50 + partition as i64 * 10));
        writer
            .write(&run, &format!("cluster-test-{partition}"))
            .await
            .unwrap();
        sent += run.len() as u64;
        runs.push(run);
    }
    // A block sent again, after the first answer was lost say, is the same block: its
    // shard's replicas store it once (written_at no longer differs between the two).
    tokio::time::sleep(Duration::from_millis(1100)).await;
    writer.write(&runs[1], "cluster-test-again").await.unwrap();

    let filter = format!("account_id = '{account}'");
    every_node_holds_once(&database, &filter, sent).await;
    // Each run is on its partition's shard, whole, on both replicas (the insert waited for
    // a quorum of two).
    let shard_1 = (50 + 70) as u64;
    let shard_2 = (60 + 80) as u64;
    for (n, expected) in [(1, shard_1), (2, shard_1), (3, shard_2), (4, shard_2)] {
        assert_eq!(
            scalar(
                &node(&database, n),
                &format!("SELECT count() FROM events_local WHERE {filter}")
            )
            .await,
            expected,
            "node {n}'s replica of its shard"
        );
    }
    // What is stored, read consistently through the cluster.
    assert_eq!(
        writer.stored_through("events", 3, 0, 1000).await.unwrap(),
        Some(79)
    );
    assert_eq!(
        writer.stored_through("events", 5, 0, 1000).await.unwrap(),
        None
    );
    first.drop_database().await.unwrap();
}

/// A replica of a shard is SIGKILLed: a write to that shard is refused (it cannot reach a
/// quorum of two), not acknowledged and lost with the replica, while the other shard goes on:
/// the consumer writes each run straight to its shard's local table (`CLICKHOUSE_SHARDS`).
/// The consumer sends the same block again once the replica is back: the part the
/// surviving replica may have kept is recognised, and the run is stored once, on both
/// replicas.
///
/// Found here: through the Distributed table (without `CLICKHOUSE_SHARDS`) 18.16 sends a
/// synchronous INSERT's block to every shard, an empty one to shards without rows, and checks
/// the quorum for each, so while one replica is down every write is refused, the other
/// shard's too (asserted below as well).
#[tokio::test]
async fn a_killed_replica_refuses_writes_to_its_shard_and_the_same_block_later_is_stored_once() {
    let _turn = ONE_AT_A_TIME.lock().await;
    cluster_up();
    let (env, database) = env_on_the_cluster(1, "replica_loss").await;
    let first = env.clickhouse.clone();
    let through_distributed = ClickHouseWriter::new(first.writer_client(), Duration::from_secs(30));
    let writer = ClickHouseWriter::new(first.writer_client(), Duration::from_secs(30))
        .with_shards(first.shard_writer_clients());
    let account = Uuid::new_v4();
    let filter = format!("account_id = '{account}'");

    cluster_script(&["kill", "2"]);
    // Partition 0 lives on shard 1, whose second replica is gone.
    let run = rows(account, 0, 0..40);
    assert!(
        writer.write(&run, "replica-loss-0").await.is_err(),
        "a write without its quorum is refused"
    );
    // Through the Distributed table a write for shard 2 is refused too (see above)...
    let other = rows(account, 1, 0..25);
    assert!(through_distributed
        .write(&other, "replica-loss-1-distributed")
        .await
        .is_err());
    // ...straight to its shard it is stored.
    writer
        .write(&other, "replica-loss-1")
        .await
        .expect("the other shard goes on");
    assert_eq!(
        scalar(
            &node(&database, 3),
            &format!("SELECT count() FROM events WHERE {filter} AND kafka_partition = 1")
        )
        .await,
        25,
        "read through the Distributed table while a replica of shard 1 is down"
    );

    cluster_up();
    // The consumer's retries: the same rows, the same blocks.
    write_until_accepted(
        &writer,
        &run,
        "replica-loss-0-again",
        Duration::from_secs(60),
    )
    .await;
    write_until_accepted(
        &writer,
        &other,
        "replica-loss-1-again",
        Duration::from_secs(60),
    )
    .await;
    every_node_holds_once(&database, &filter, 65).await;
    // Both replicas of shard 1 hold the run once (the restarted one fetched it).
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        let on_2 = scalar(
            &node(&database, 2),
            &format!("SELECT count() FROM events_local WHERE {filter}"),
        )
        .await;
        if on_2 == 40 {
            break;
        }
        assert!(on_2 < 40, "the restarted replica holds {on_2}");
        assert!(
            std::time::Instant::now() < deadline,
            "the restarted replica never caught up"
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    assert_eq!(
        scalar(
            &node(&database, 1),
            &format!("SELECT count() FROM events_local WHERE {filter}")
        )
        .await,
        40
    );
    first.drop_database().await.unwrap();
}

/// ZooKeeper stops for 20 seconds: replicated writes are refused meanwhile (never
/// acknowledged and lost), reads go on, and once it is back the same blocks are stored
/// once.
#[tokio::test]
async fn writes_wait_out_a_zookeeper_outage_and_are_stored_once() {
    let _turn = ONE_AT_A_TIME.lock().await;
    cluster_up();
    let (env, database) = env_on_the_cluster(1, "zk_outage").await;
    let first = env.clickhouse.clone();
    let writer = ClickHouseWriter::new(first.writer_client(), Duration::from_secs(30));
    let account = Uuid::new_v4();
    let filter = format!("account_id = '{account}'");
    writer
        .write(&rows(account, 0, 0..30), "zk-before")
        .await
        .unwrap();

    cluster_script(&["stop-zookeeper"]);
    let during = rows(account, 1, 0..20);
    let outage = std::time::Instant::now();
    assert!(
        writer.write(&during, "zk-during").await.is_err(),
        "a write without ZooKeeper is refused"
    );
    assert_eq!(
        scalar(
            &node(&database, 3),
            &format!("SELECT count() FROM events WHERE {filter}")
        )
        .await,
        30,
        "reads go on"
    );
    tokio::time::sleep(Duration::from_secs(20).saturating_sub(outage.elapsed())).await;
    cluster_up();
    write_until_accepted(&writer, &during, "zk-after", Duration::from_secs(90)).await;
    every_node_holds_once(&database, &filter, 50).await;
    first.drop_database().await.unwrap();
}

/// The consumer binary as a process of its own (SIGKILL-able), in cluster mode through
/// `env`'s ClickHouse, a dynamic member of its group as in `deploy/up.sh --cluster`.
fn start_consumer(env: &TestEnv, instance: &str) -> std::process::Child {
    start_consumer_with(env, instance, &[])
}

/// [`start_consumer`] with some settings of its own.
fn start_consumer_with(
    env: &TestEnv,
    instance: &str,
    settings: &[(&str, &str)],
) -> std::process::Child {
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(std::env::temp_dir().join(format!("lt-consumer-{}-{instance}.log", env.id)))
        .unwrap();
    let mut vars = env.service_env_with(&[
        ("CONSUMER_BATCH_MAX_EVENTS", "100"),
        ("KAFKA_CONSUMER_INSTANCE_ID", ""),
    ]);
    vars.extend(
        settings
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned())),
    );
    Command::new(linktrace_integration::service_binary("consumer"))
        .envs(vars)
        .env("RUST_LOG", "info")
        .stdout(log)
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("consumer starts")
}

/// Sends `n` events with entities `load-0…` through ingest, 16 at a time; the entities of
/// those accepted (202). Anything else (a 503 while the broker is busy, say) was not
/// accepted and is not expected anywhere.
async fn send_load(
    http: reqwest::Client,
    url: String,
    key: String,
    n: usize,
) -> std::collections::BTreeSet<String> {
    use futures::StreamExt;
    futures::stream::iter(0..n)
        .map(|i| {
            let (http, url, key) = (http.clone(), url.clone(), key.clone());
            async move {
                let entity = format!("load-{i}");
                let answer = http
                    .post(&url)
                    .header("x-api-key", key)
                    .json(&linktrace_integration::event(
                        "e2e12345",
                        "purchase",
                        Some(&entity),
                    ))
                    .send()
                    .await;
                matches!(answer, Ok(a) if a.status() == 202).then_some(entity)
            }
        })
        .buffer_unordered(16)
        .filter_map(|accepted| async move { accepted })
        .collect()
        .await
}

async fn entities(config: &ClickHouseConfig, sql: &str) -> std::collections::BTreeSet<String> {
    config
        .client()
        .query(sql)
        .fetch_all::<String>()
        .await
        .unwrap_or_else(|e| panic!("{sql} on {}: {e}", config.url))
        .into_iter()
        .collect()
}

/// The whole pipeline on the cluster, under load: ingest → broker → two consumer processes
/// → the cluster, and the webhook worker. Mid-stream a replica and a consumer are
/// SIGKILLed; the cluster script is run again and the consumer restarted, and while its
/// partitions move back another replica fetches nothing (`SYSTEM STOP FETCHES`). Afterwards,
/// through every node: a plain `count()` equals the events accepted, no event is stored
/// twice, every rollup's sum equals `count()`, and the webhook fired for exactly the stored
/// events.
#[tokio::test]
async fn under_load_killed_replica_and_consumer_and_a_replica_not_fetching_lose_and_double_nothing()
{
    let _turn = ONE_AT_A_TIME.lock().await;
    cluster_up();
    let (env, database) = env_on_the_cluster(4, "e2e").await;
    let account = env.create_account("scale").await;
    env.create_link(&account, "e2e12345").await;
    let ingest = env.spawn_ingest().await;
    let api = env.spawn_api().await;
    let worker = env.spawn_webhooks_with(&[]).await;
    let receiver = linktrace_integration::receiver::WebhookReceiver::start().await;
    let (status, body) = env
        .caller(&api, &account.live_key)
        .create_webhook(serde_json::json!({ "url": receiver.url(), "events": ["*"] }))
        .await;
    assert_eq!(status, 201, "{body}");
    let mut consumer_a = start_consumer(&env, "consumer-a");
    let mut consumer_b = start_consumer(&env, "consumer-b");

    let load = tokio::spawn(send_load(
        env.http.clone(),
        ingest.url("/api/v1/events"),
        account.live_key.clone(),
        2000,
    ));
    let filter = format!("account_id = '{}'", account.id);
    let deadline = std::time::Instant::now() + Duration::from_secs(120);
    while env.stored_events(&filter).await < 300 {
        assert!(std::time::Instant::now() < deadline, "nothing stored");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    consumer_a.kill().expect("SIGKILL the consumer");
    consumer_a.wait().unwrap();
    cluster_script(&["kill", "2"]);
    tokio::time::sleep(Duration::from_secs(3)).await;
    // The partitions move (once the broker drops the dead member, the group is
    // shared again with the restarted consumer) while replica 4 fetches nothing.
    let fourth = node(&database, 4);
    fourth
        .client()
        .query("SYSTEM STOP FETCHES")
        .execute()
        .await
        .unwrap();
    cluster_up();
    let mut consumer_a = start_consumer(&env, "consumer-a");
    tokio::time::sleep(Duration::from_secs(50)).await;
    fourth
        .client()
        .query("SYSTEM START FETCHES")
        .execute()
        .await
        .unwrap();

    let accepted = load.await.unwrap();
    assert!(
        accepted.len() >= 1900,
        "only {} of 2000 accepted",
        accepted.len()
    );
    let expected = accepted.len() as u64;
    let stored = env
        .wait_for_stored(&filter, expected, Duration::from_secs(180))
        .await;
    assert_eq!(
        stored, expected,
        "a plain count() equals the events accepted"
    );

    every_node_holds_once(&database, &filter, expected).await;
    for n in 1..=4 {
        assert_eq!(
            entities(
                &node(&database, n),
                &format!("SELECT entity_id FROM events WHERE {filter}")
            )
            .await,
            accepted,
            "the accepted events, each once, through node {n}"
        );
    }
    // Each shard's two replicas hold the same rows (the one that fetched nothing caught up).
    for (a, b) in [(1, 2), (3, 4)] {
        assert_eq!(
            scalar(
                &node(&database, a),
                &format!("SELECT count() FROM events_local WHERE {filter}")
            )
            .await,
            scalar(
                &node(&database, b),
                &format!("SELECT count() FROM events_local WHERE {filter}")
            )
            .await,
            "replicas {a} and {b}"
        );
    }
    // The webhook fired for exactly the stored events (at least once each; a repeat carries
    // the same event id, which receivers deduplicate by).
    let delivered_entities = |received: &[linktrace_integration::receiver::Received]| {
        received
            .iter()
            .map(|d| {
                d.json()["data"]["entityId"]
                    .as_str()
                    .unwrap_or_default()
                    .to_owned()
            })
            .collect::<std::collections::BTreeSet<_>>()
    };
    receiver
        .wait_until(Duration::from_secs(120), |r| {
            delivered_entities(r).len() >= accepted.len()
        })
        .await;
    // Anything else would have arrived by now too.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let delivered = delivered_entities(&receiver.received());
    assert_eq!(
        delivered, accepted,
        "webhooks fire for exactly the stored events"
    );

    for consumer in [&mut consumer_a, &mut consumer_b] {
        consumer.kill().unwrap();
        consumer.wait().unwrap();
    }
    worker.stop().await.unwrap();
    api.stop().await.unwrap();
    ingest.stop().await.unwrap();
    env.clickhouse.drop_database().await.unwrap();
}

/// A consumer SIGKILLed between its write to the cluster and its offset commit: the batch is
/// delivered again to the next consumer, which resolves the open write from the stream
/// ledger (asking the cluster, through its quorum, how far it got) and writes nothing twice:
/// through every node `count()`, the ids and the rollups agree with what was sent.
#[tokio::test]
async fn a_consumer_sigkilled_between_the_write_and_the_commit_stores_each_row_once_on_the_cluster()
{
    let _turn = ONE_AT_A_TIME.lock().await;
    cluster_up();
    let (env, database) = env_on_the_cluster(2, "commit_kill").await;
    let account = Uuid::new_v4();
    // Plain events and entity events alike, on both partitions (so both shards).
    let records: Vec<EventRecord> = (0..1200)
        .map(|i| {
            let mut record = EventRecord::new(
                Uuid::new_v4(),
                account,
                Environment::Live,
                "purchase",
                EventSource::Api,
                Utc::now(),
            );
            record.link_short_code = Some(format!("kill{}", i % 11));
            if i % 3 == 0 {
                record.entity_id = Some(format!("order-{i}"));
            }
            record
        })
        .collect();
    env.produce_all(&records).await;
    let filter = format!("account_id = '{account}'");

    let marker = std::env::temp_dir().join(format!("lt-hold-cluster-{}", env.id));
    // One consumer, restarted under the same member id (as a single consumer is): its
    // partitions come back to it at once. (As a dynamic member, the restarted one waited
    // with the dead one in the group, more than 150 s once under deploy/test.sh.)
    let member = ("KAFKA_CONSUMER_INSTANCE_ID", "consumer-0");
    let mut held = start_consumer_with(
        &env,
        "held",
        &[
            (
                "CONSUMER_FAULT_HOLD_BEFORE_COMMIT",
                marker.to_str().unwrap(),
            ),
            member,
        ],
    );
    let deadline = std::time::Instant::now() + Duration::from_secs(90);
    while !marker.exists() {
        assert!(
            std::time::Instant::now() < deadline,
            "the consumer never wrote"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(
        env.stored_events(&filter).await > 0,
        "a batch was written before the kill"
    );
    held.kill().expect("SIGKILL");
    held.wait().unwrap();
    std::fs::remove_file(&marker).unwrap();

    let mut restarted = start_consumer_with(&env, "restarted", &[member]);
    let stored = env
        .wait_for_stored(&filter, 1200, Duration::from_secs(150))
        .await;
    restarted.kill().unwrap();
    restarted.wait().unwrap();
    assert_eq!(stored, 1200, "a plain count() equals what was sent");
    every_node_holds_once(&database, &filter, 1200).await;
    env.clickhouse.drop_database().await.unwrap();
}

/// `deploy/test.sh` stops the test cluster naming its folder `<repo>/.linktrace/test-cluster`,
/// the tests `<repo>/integration/../.linktrace/test-cluster`. The script recognises its
/// processes by that path on their command line: spelled either way, it is the same
/// cluster. (It was not: `down` left the nodes running and forgot their pid files, and the
/// next run's `reset` deleted their data under them.)
#[tokio::test]
async fn the_cluster_script_knows_its_nodes_however_their_folder_is_spelled() {
    let _turn = ONE_AT_A_TIME.lock().await;
    cluster_up();
    let zookeeper = || std::net::TcpStream::connect(("127.0.0.1", 22181)).is_ok();
    assert!(zookeeper());
    // ZooKeeper, not the ClickHouse nodes: restarted nodes replay the whole distributed DDL
    // queue, and the next test's `ON CLUSTER` migration once waited out its 180 s for it.
    let script = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../deploy/clickhouse-cluster.sh"
    );
    let other_spelling = TEST_CLUSTER_STATE.replace("/integration/../", "/integration/./../");
    let status = Command::new("bash")
        .arg(script)
        .arg("stop-zookeeper")
        .envs(cluster_ports())
        .env("CLICKHOUSE_CLUSTER_STATE", other_spelling)
        .status()
        .expect("the cluster script runs");
    assert!(status.success());
    assert!(!zookeeper(), "ZooKeeper was stopped");
    cluster_up();
    assert!(zookeeper() && (1..=4).all(node_answers));
}

/// ZooKeeper restarted: each node's session with it is gone, and its next `ON CLUSTER`
/// statement was refused (`Session expired`) though the server opens a new session for the
/// one after. A service starting then failed its migrations; CI met it in the test after a
/// ZooKeeper restart. The migration runner sends such a statement again.
#[tokio::test]
async fn migrations_right_after_a_zookeeper_restart_are_applied() {
    let _turn = ONE_AT_A_TIME.lock().await;
    cluster_up();
    cluster_script(&["stop-zookeeper"]);
    cluster_up();
    let pool = linktrace_integration::test_postgres().await;
    let database = format!(
        "lt_test_after_zookeeper_{}",
        &Uuid::new_v4().simple().to_string()[..8]
    );
    let config = node(&database, 1);
    config.ensure_schema(&pool).await.unwrap();
    for n in 1..=4 {
        assert_eq!(
            scalar(
                &node(&database, n),
                "SELECT count() FROM system.tables WHERE database = currentDatabase() AND name = 'events_local'"
            )
            .await,
            1,
            "node {n} holds the schema"
        );
    }
    config.drop_database().await.unwrap();
}

/// A write reaches one shard's `events_local` and none of two of its views (detached on the
/// replica it lands on): that shard's rollups are short on both replicas. The reconciler
/// compares each shard on its own local tables and repairs the short one through a quorum
/// insert, so that through every node `count()` and the rollups agree again, and the other
/// shard is left as it was.
#[tokio::test]
async fn a_shard_whose_rollups_missed_a_write_is_repaired_on_both_its_replicas() {
    use linktrace_consumer::reconcile::{Reconciler, RollupChecks};

    let _turn = ONE_AT_A_TIME.lock().await;
    cluster_up();
    let (env, database) = env_on_the_cluster(1, "reconcile").await;
    let first = node(&database, 1);
    let writer = ClickHouseWriter::new(first.writer_client(), Duration::from_secs(30))
        .with_shards(first.shard_writer_clients());
    let account = Uuid::new_v4();
    let filter = format!("account_id = '{account}'");
    // Partition 0 is shard 1's, partition 1 shard 2's (node 3 takes its writes first).
    writer
        .write(&rows(account, 0, 0..40), "reconcile-0")
        .await
        .unwrap();
    writer
        .write(&rows(account, 1, 0..30), "reconcile-1")
        .await
        .unwrap();
    let third = node(&database, 3).client();
    let views = ["event_counts_daily_mv", "event_breakdowns_15m_mv"];
    for view in views {
        third
            .query(&format!("DETACH TABLE {view}"))
            .execute()
            .await
            .unwrap();
    }
    writer
        .write(&rows(account, 1, 30..55), "reconcile-1-missed")
        .await
        .unwrap();
    for view in views {
        third
            .query(&format!("ATTACH TABLE {view}"))
            .execute()
            .await
            .unwrap();
    }
    let sent = 40 + 55;
    for n in [3, 4] {
        assert_eq!(
            scalar(
                &node(&database, n),
                &format!(
                    "SELECT toUInt64(sum(events)) FROM event_counts_daily_local WHERE {filter}"
                )
            )
            .await,
            30,
            "shard 2's daily rollup missed the write, on node {n}"
        );
    }

    let reconciler = Reconciler {
        checks: RollupChecks::new(env.pool.clone()),
        shards: first
            .shard_writer_clients()
            .into_iter()
            .map(|replicas| replicas.into_iter().next().unwrap())
            .collect(),
        database: database.clone(),
        settle: Duration::from_secs(1),
    };
    let today = Utc::now().date_naive();
    reconciler.checks.mark(&[today]).await.unwrap();
    assert!(
        reconciler.pass().await.unwrap().is_empty(),
        "repaired, still marked"
    );
    assert_eq!(
        reconciler.pass().await.unwrap(),
        vec![today],
        "in agreement"
    );
    every_node_holds_once(&database, &filter, sent).await;
    for n in 1..=4 {
        assert_eq!(
            scalar(
                &node(&database, n),
                &format!("SELECT toUInt64(sum(events)) FROM event_breakdowns_15m WHERE {filter}")
            )
            .await,
            sent,
            "the breakdowns through node {n}"
        );
    }
    first.drop_database().await.unwrap();
}

/// 18.16's DDL worker ends for good on a ZooKeeper error it does not expect (two replicas of
/// a shard racing for an `ON CLUSTER` task's shard node: `Node exists`, seen in a full test
/// run), and the node then runs no `ON CLUSTER` statement again. `clickhouse-cluster.sh up`
/// restarts a node whose log says so, once: its log is moved aside, and a second `up` leaves
/// it alone. Schema statements through the cluster work afterwards.
#[tokio::test]
async fn up_restarts_a_node_whose_ddl_worker_ended() {
    let _turn = ONE_AT_A_TIME.lock().await;
    cluster_up();
    let pid_file = format!("{TEST_CLUSTER_STATE}/run/clickhouse-2.pid");
    let pid = || {
        std::fs::read_to_string(&pid_file)
            .unwrap()
            .trim()
            .to_owned()
    };
    let log = format!("{TEST_CLUSTER_STATE}/clickhouse-2/log/clickhouse-server.err.log");
    let before = pid();
    let mut file = std::fs::OpenOptions::new()
        .append(true)
        .open(&log)
        .expect("node 2's error log");
    std::io::Write::write_all(
        &mut file,
        b"2026.12.04 21:27:57.478068 [ 3 ] {} <Error> DDLWorker: Unexpected ZooKeeper error: \
          Code: 999, e.displayText() = Coordination::Exception: Node exists, path: \
          /clickhouse/task_queue/ddl/query-0000000099/shards/127.0.0.1:29000,1. Terminating.\n",
    )
    .unwrap();
    drop(file);

    cluster_up();
    let restarted = pid();
    assert_ne!(restarted, before, "node 2 was restarted");
    let text = std::fs::read_to_string(&log).unwrap_or_default();
    assert!(!text.contains("DDLWorker: Unexpected ZooKeeper error"));
    cluster_up();
    assert_eq!(pid(), restarted, "a second up leaves it alone");

    let (env, _database) = env_on_the_cluster(1, "ddl_worker").await;
    env.clickhouse.drop_database().await.unwrap();
}
