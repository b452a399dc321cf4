//! Faults under load. Each test sends a known set of events while a real dependency is
//! stopped and restarted (with deploy/lib.sh, as deploy/up.sh starts them), then checks that
//! every event answered 202 is in ClickHouse exactly once, that every other answer was a
//! documented envelope, and that the services recovered by themselves.
//!
//! They stop shared infrastructure, so they are ignored in the parallel suite and run one
//! at a time by deploy/test.sh: `cargo test -p linktrace-integration --test chaos -- --ignored --test-threads=1`.

use std::time::Duration;

use linktrace_integration::{event, Running, TestAccount, TestEnv};
use serde_json::Value;

fn deploy(function: &str) {
    let repo = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap();
    let status = std::process::Command::new("bash")
        .arg("-c")
        .arg(format!("source deploy/lib.sh && {function}"))
        .current_dir(repo)
        .stdin(std::process::Stdio::null())
        .status()
        .expect("bash");
    assert!(status.success(), "{function} failed");
}

struct Outcome {
    accepted: Vec<String>,
    answers: Vec<(u16, Value)>,
}

/// Sends `count` entity events, one every `every`, while `fault` runs alongside.
async fn send_during(
    env: &TestEnv,
    ingest: &Running,
    account: &TestAccount,
    count: usize,
    every: Duration,
    fault: impl FnOnce() + Send + 'static,
) -> Outcome {
    let fault = tokio::task::spawn_blocking(fault);
    let mut accepted = Vec::new();
    let mut answers = Vec::new();
    for i in 0..count {
        let entity = format!("chaos-{i}");
        let (status, body) = env
            .post(
                &ingest.url("/api/v1/events"),
                Some(&account.live_key),
                event("chaos123", "purchase", Some(&entity)),
            )
            .await;
        if status == 202 {
            accepted.push(entity);
        }
        answers.push((status, body));
        tokio::time::sleep(every).await;
    }
    fault.await.unwrap();
    Outcome { accepted, answers }
}

async fn assert_exactly_once(env: &TestEnv, account: &TestAccount, outcome: &Outcome) {
    for (status, body) in &outcome.answers {
        match status {
            202 => {}
            503 => assert_eq!(
                (body["success"].clone(), body["code"].as_str()),
                (Value::Bool(false), Some("UNAVAILABLE")),
                "{body}"
            ),
            other => panic!("undocumented answer {other}: {body}"),
        }
    }
    assert!(!outcome.accepted.is_empty(), "nothing was accepted at all");
    let filter = format!("account_id = '{}' AND event_name = 'purchase'", account.id);
    let list = outcome
        .accepted
        .iter()
        .map(|e| format!("'{e}'"))
        .collect::<Vec<_>>()
        .join(",");
    let accepted_filter = format!("{filter} AND entity_id IN ({list})");
    let stored = env
        .wait_for_stored(
            &accepted_filter,
            outcome.accepted.len() as u64,
            Duration::from_secs(90),
        )
        .await;
    assert_eq!(
        stored,
        outcome.accepted.len() as u64,
        "every event answered 202 is stored"
    );
    // A 503 whose acknowledgement was lost may still have been stored; but nothing twice.
    let distinct: u64 = env
        .clickhouse
        .client()
        .query(&format!(
            "SELECT uniqExact(entity_id) FROM events WHERE {filter}"
        ))
        .fetch_one()
        .await
        .unwrap();
    assert_eq!(
        env.stored_events(&filter).await,
        distinct,
        "no entity stored twice"
    );
    assert_eq!(
        env.rolled_up_events(&filter).await,
        distinct,
        "the rollups count each stored event once"
    );
}

async fn setup() -> (TestEnv, Running, Running, TestAccount) {
    let env = TestEnv::new().await;
    let ingest = env.spawn_ingest().await;
    let consumer = env.spawn_consumer().await;
    let account = env.create_account("scale").await;
    env.create_link(&account, "chaos123").await;
    (env, ingest, consumer, account)
}

/// Stops the broker with `stop` (a deploy/lib.sh command), keeps it down for longer than
/// ingest's 5 s produce deadline, and starts it again, under a steady stream of events.
async fn broker_outage(stop: &'static str) {
    let (env, ingest, consumer, account) = setup().await;
    let outcome = send_during(
        &env,
        &ingest,
        &account,
        120,
        Duration::from_millis(100),
        move || {
            std::thread::sleep(Duration::from_secs(3));
            deploy(stop);
            deploy("! kafka_up"); // really down: started by this checkout's deploy/up.sh
            std::thread::sleep(Duration::from_secs(6));
            deploy("start_broker");
        },
    )
    .await;
    assert!(
        outcome.answers.iter().any(|(s, _)| *s == 503),
        "the outage was noticed"
    );
    assert!(
        outcome
            .answers
            .iter()
            .rev()
            .take(10)
            .all(|(s, _)| *s == 202),
        "ingest recovered by itself: {:?}",
        outcome.answers.iter().map(|(s, _)| s).collect::<Vec<_>>()
    );
    assert_exactly_once(&env, &account, &outcome).await;
    consumer
        .stop()
        .await
        .expect("the consumer shuts down cleanly after the outage");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "stops the shared broker; run by deploy/test.sh on its own"]
async fn broker_stopped_and_restarted_under_load() {
    broker_outage("stop_pid tansu").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "kills the shared broker; run by deploy/test.sh on its own"]
async fn broker_killed_and_restarted_under_load() {
    broker_outage("kill -KILL \"$(cat \"$RUN/tansu.pid\")\" && sleep 0.5").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "stops the shared ClickHouse; run by deploy/test.sh on its own"]
async fn clickhouse_stopped_and_restarted_under_load() {
    let (env, ingest, consumer, account) = setup().await;
    let outcome = send_during(
        &env,
        &ingest,
        &account,
        100,
        Duration::from_millis(80),
        || {
            std::thread::sleep(Duration::from_secs(2));
            deploy("stop_pid clickhouse");
            deploy("! clickhouse_up"); // really down: started by this checkout's deploy/up.sh
            std::thread::sleep(Duration::from_secs(5));
            deploy("start_clickhouse");
        },
    )
    .await;
    assert!(
        outcome.answers.iter().all(|(s, _)| *s == 202),
        "ingest does not need ClickHouse"
    );
    assert_exactly_once(&env, &account, &outcome).await;
    consumer.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "restarts the shared Postgres; run by deploy/test.sh on its own"]
async fn postgres_restarted_under_ingest() {
    let (env, ingest, consumer, account) = setup().await;
    let started = || async {
        sqlx::query_scalar::<_, chrono::DateTime<chrono::Utc>>("SELECT pg_postmaster_start_time()")
            .fetch_one(&env.pool)
            .await
            .unwrap()
    };
    let before = started().await;
    let outcome = send_during(
        &env,
        &ingest,
        &account,
        100,
        Duration::from_millis(80),
        || {
            std::thread::sleep(Duration::from_secs(2));
            let cluster = std::fs::read_dir("/etc/postgresql")
                .unwrap()
                .next()
                .unwrap()
                .unwrap()
                .file_name();
            let status = std::process::Command::new("pg_ctlcluster")
                .args([
                    "--skip-systemctl-redirect",
                    cluster.to_str().unwrap(),
                    "main",
                    "restart",
                    "-m",
                    "fast",
                ])
                .status()
                .unwrap();
            assert!(status.success());
        },
    )
    .await;
    assert!(
        outcome
            .answers
            .iter()
            .rev()
            .take(10)
            .all(|(s, _)| *s == 202),
        "ingest recovered by itself"
    );
    assert_ne!(started().await, before, "Postgres really restarted");
    assert_exactly_once(&env, &account, &outcome).await;
    consumer.stop().await.unwrap();
}
