//! Webhooks against the real stack (ingest → Kafka → consumer → ClickHouse; the webhook
//! worker's own group → Postgres outbox → a real HTTP receiver on loopback): signed
//! deliveries of stored events only, environments apart, retries through an outage, a dead
//! endpoint beside a healthy one, the worker SIGKILLed mid-delivery, and the api's checks.

use std::collections::{HashMap, HashSet};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use hmac::{Hmac, Mac};
use linktrace_domain::{Environment, EventRecord, EventSource};
use linktrace_integration::receiver::{Received, WebhookReceiver};
use linktrace_integration::{event, Running, TestAccount, TestEnv};
use serde_json::{json, Value};
use sha2::Sha256;
use uuid::Uuid;

/// Ingest, consumer and api running; an account with a link.
struct Stack {
    env: TestEnv,
    ingest: Running,
    api: Running,
    consumer: Running,
    account: TestAccount,
}

impl Stack {
    async fn start() -> Self {
        let env = TestEnv::new().await;
        let ingest = env.spawn_ingest().await;
        let api = env.spawn_api().await;
        let consumer = env.spawn_consumer().await;
        let account = env.create_account("scale").await;
        env.create_link(&account, "hook1234").await;
        Self {
            env,
            ingest,
            api,
            consumer,
            account,
        }
    }

    /// Creates a webhook through the api; returns (id, secret).
    async fn webhook(&self, key: &str, url: &str, events: Value) -> (String, String) {
        let (status, body) = self
            .env
            .caller(&self.api, key)
            .create_webhook(json!({ "url": url, "events": events }))
            .await;
        assert_eq!(status, 201, "{body}");
        (
            body["id"].as_str().unwrap().to_owned(),
            body["secret"].as_str().unwrap().to_owned(),
        )
    }

    /// Sends `name` with `entityId` = `entity` through ingest (202).
    async fn send(&self, key: &str, name: &str, entity: &str) {
        let (status, body) = self
            .env
            .caller(&self.ingest, key)
            .send_event(event("hook1234", name, Some(entity)))
            .await;
        assert_eq!(status, 202, "{body}");
    }

    async fn deliveries(&self, key: &str, webhook: &str) -> Vec<Value> {
        let (status, body) = self
            .env
            .caller(&self.api, key)
            .webhook_deliveries(webhook, "limit=200")
            .await;
        assert_eq!(status, 200, "{body}");
        body["deliveries"].as_array().unwrap().clone()
    }

    /// The webhook's attempts once `done` holds for them (fails after `within`).
    async fn deliveries_once(
        &self,
        key: &str,
        webhook: &str,
        within: Duration,
        done: impl Fn(&[Value]) -> bool,
    ) -> Vec<Value> {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            let attempts = self.deliveries(key, webhook).await;
            if done(&attempts) {
                return attempts;
            }
            assert!(tokio::time::Instant::now() < deadline, "{attempts:?}");
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    async fn stop(self) {
        self.ingest.stop().await.unwrap();
        self.api.stop().await.unwrap();
        self.consumer.stop().await.unwrap();
    }
}

/// Checks `LinkTrace-Signature` as a customer would: HMAC-SHA256 over "<t>.<raw body>".
fn signature_is_valid(received: &Received, secret: &str) -> bool {
    let header = received.header("linktrace-signature");
    let mut t = None;
    let mut v1 = None;
    for part in header.split(',') {
        match part.split_once('=') {
            Some(("t", value)) => t = Some(value.to_owned()),
            Some(("v1", value)) => v1 = Some(value.to_owned()),
            _ => {}
        }
    }
    let (Some(t), Some(v1)) = (t, v1) else {
        return false;
    };
    let fresh = t
        .parse::<i64>()
        .is_ok_and(|t| (chrono::Utc::now().timestamp() - t).abs() < 300);
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(format!("{t}.").as_bytes());
    mac.update(&received.body);
    fresh && hex::decode(v1).is_ok_and(|v1| mac.verify_slice(&v1).is_ok())
}

fn entity_of(received: &Received) -> String {
    received.json()["data"]["entityId"]
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

#[tokio::test]
async fn stored_events_are_delivered_signed_to_their_environments_webhooks() {
    let stack = Stack::start().await;
    let worker = stack.env.spawn_webhooks_with(&[]).await;
    let live_receiver = WebhookReceiver::start().await;
    let test_receiver = WebhookReceiver::start().await;
    let live = stack.account.live_key.as_str();
    let test = stack.account.test_key.as_str();
    let (live_hook, live_secret) = stack
        .webhook(live, &live_receiver.url(), json!(["purchase", "install"]))
        .await;
    let (_, test_secret) = stack
        .webhook(test, &test_receiver.url(), json!(["*"]))
        .await;
    // Subscriptions are read at most a second old.
    tokio::time::sleep(Duration::from_millis(1200)).await;

    stack.send(live, "purchase", "order-live-1").await;
    stack.send(live, "signup", "signup-live-1").await; // not subscribed
    stack.send(test, "purchase", "order-test-1").await;
    stack.send(test, "signup", "signup-test-1").await;

    let got = live_receiver
        .wait_until(Duration::from_secs(20), |r| !r.is_empty())
        .await;
    let got_test = test_receiver
        .wait_until(Duration::from_secs(20), |r| r.len() >= 2)
        .await;
    // Anything else would have arrived by now too.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let got = [got, live_receiver.received()].concat();
    let live_entities: HashSet<String> = got.iter().map(entity_of).collect();
    assert_eq!(live_entities, HashSet::from(["order-live-1".to_owned()]));
    let test_entities: HashSet<String> = test_receiver.received().iter().map(entity_of).collect();
    assert_eq!(
        test_entities,
        HashSet::from(["order-test-1".to_owned(), "signup-test-1".to_owned()]),
        "a test key's webhook gets the test events, all of them with \"*\""
    );
    assert!(got_test.iter().all(|r| signature_is_valid(r, &test_secret)));

    let delivery = &got[0];
    assert!(
        signature_is_valid(delivery, &live_secret),
        "{:?}",
        delivery.headers
    );
    assert!(
        !signature_is_valid(delivery, &test_secret),
        "another secret does not verify"
    );
    assert_eq!(delivery.header("content-type"), "application/json");
    let body = delivery.json();
    assert_eq!(body["id"], delivery.header("linktrace-event-id"));
    assert_eq!(body["type"], "purchase");
    assert_eq!(body["data"]["event"], "purchase");
    assert_eq!(body["data"]["environment"], "live");
    assert_eq!(body["data"]["shortCode"], "hook1234");
    assert!(body["createdAt"]
        .as_str()
        .is_some_and(|at| chrono::DateTime::parse_from_rfc3339(at).is_ok()));
    // The event id is the stored one.
    let stored = stack
        .env
        .stored_events(&format!(
            "event_id = '{}' AND entity_id = 'order-live-1'",
            body["id"].as_str().unwrap()
        ))
        .await;
    assert_eq!(stored, 1);

    let attempts = stack.deliveries(live, &live_hook).await;
    assert_eq!(attempts.len(), 1, "{attempts:?}");
    assert_eq!(attempts[0]["status"], "delivered");
    assert_eq!(attempts[0]["responseCode"], 200);
    assert_eq!(attempts[0]["type"], "purchase");
    assert_eq!(attempts[0]["eventId"], body["id"]);
    assert_eq!(attempts[0]["attempt"], 1);
    // Another environment's key does not see this webhook.
    let (status, _) = stack
        .env
        .caller(&stack.api, test)
        .webhook_deliveries(&live_hook, "")
        .await;
    assert_eq!(status, 404);

    worker.stop().await.unwrap();
    stack.stop().await;
}

#[tokio::test]
async fn a_copy_of_an_event_on_the_stream_is_delivered_once() {
    let stack = Stack::start().await;
    let worker = stack.env.spawn_webhooks_with(&[]).await;
    let receiver = WebhookReceiver::start().await;
    let (_, _) = stack
        .webhook(
            &stack.account.live_key,
            &receiver.url(),
            json!(["purchase"]),
        )
        .await;
    tokio::time::sleep(Duration::from_millis(1200)).await;
    // The same event twice at two offsets (a producer retry without idempotence), and the
    // same order sent twice through ingest (entity dedup).
    let mut record = EventRecord::new(
        Uuid::new_v4(),
        stack.account.id,
        Environment::Live,
        "purchase",
        EventSource::Api,
        chrono::Utc::now(),
    );
    record.link_short_code = Some("hook1234".into());
    record.entity_id = Some("copied".into());
    stack.env.produce(&record).await;
    stack.env.produce(&record).await;
    stack
        .send(&stack.account.live_key, "purchase", "twice")
        .await;
    let (status, body) = stack
        .env
        .caller(&stack.ingest, &stack.account.live_key)
        .send_event(event("hook1234", "purchase", Some("twice")))
        .await;
    assert_eq!(
        (status, &body["deduplicated"]),
        (200, &json!(true)),
        "{body}"
    );
    receiver
        .wait_until(Duration::from_secs(20), |r| r.len() >= 2)
        .await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let entities: Vec<String> = receiver.received().iter().map(entity_of).collect();
    let mut sorted = entities.clone();
    sorted.sort();
    assert_eq!(sorted, ["copied", "twice"], "{entities:?}");
    worker.stop().await.unwrap();
    stack.stop().await;
}

#[tokio::test]
async fn retries_go_on_through_a_receiver_outage_with_the_same_event_id() {
    let stack = Stack::start().await;
    let worker = stack.env.spawn_webhooks_with(&[]).await;
    let receiver = WebhookReceiver::start().await;
    receiver.answer(503);
    let key = stack.account.live_key.as_str();
    let (hook, secret) = stack.webhook(key, &receiver.url(), json!(["*"])).await;
    tokio::time::sleep(Duration::from_millis(1200)).await;
    for i in 0..5 {
        stack.send(key, "purchase", &format!("outage-{i}")).await;
    }
    // Every event is tried, and tried again, while the receiver is down.
    receiver
        .wait_until(Duration::from_secs(20), |r| {
            let ids: HashMap<String, usize> = r.iter().fold(HashMap::new(), |mut m, r| {
                *m.entry(r.header("linktrace-event-id").to_owned())
                    .or_default() += 1;
                m
            });
            ids.len() == 5 && ids.values().all(|n| *n >= 2)
        })
        .await;
    receiver.answer(200);
    let received = receiver
        .wait_until(Duration::from_secs(20), |r| {
            r.iter().filter(|r| r.answered == 200).count() >= 5
        })
        .await;
    let delivered: HashSet<String> = received
        .iter()
        .filter(|r| r.answered == 200)
        .map(entity_of)
        .collect();
    assert_eq!(delivered.len(), 5, "every event arrives after the outage");
    // Every attempt at an event carries its id and the same body, each signed afresh.
    let mut bodies: HashMap<String, HashSet<Vec<u8>>> = HashMap::new();
    for r in &received {
        assert!(signature_is_valid(r, &secret));
        assert_eq!(r.json()["id"], r.header("linktrace-event-id"));
        bodies
            .entry(r.header("linktrace-event-id").to_owned())
            .or_default()
            .insert(r.body.to_vec());
    }
    assert!(bodies.values().all(|b| b.len() == 1), "one body per event");
    // The worker records an attempt's outcome once the receiver has answered it: the last
    // one can land a moment after the receiver saw it.
    let mut attempts = stack.deliveries(key, &hook).await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while attempts
        .iter()
        .filter(|a| a["status"] == "delivered")
        .count()
        < 5
        && tokio::time::Instant::now() < deadline
    {
        tokio::time::sleep(Duration::from_millis(100)).await;
        attempts = stack.deliveries(key, &hook).await;
    }
    let outcomes: Vec<(&str, Option<i64>)> = attempts
        .iter()
        .map(|a| (a["status"].as_str().unwrap(), a["responseCode"].as_i64()))
        .collect();
    assert!(outcomes.contains(&("retrying", Some(503))), "{outcomes:?}");
    assert_eq!(
        outcomes.iter().filter(|o| o.0 == "delivered").count(),
        5,
        "{outcomes:?}"
    );
    worker.stop().await.unwrap();
    stack.stop().await;
}

#[tokio::test]
async fn a_delivery_is_given_up_after_the_retry_window_and_shown_failed() {
    let stack = Stack::start().await;
    let worker = stack
        .env
        .spawn_webhooks_with(&[("WEBHOOK_RETRY_FOR_SECS", "2")])
        .await;
    let receiver = WebhookReceiver::start().await;
    receiver.answer(500);
    let key = stack.account.live_key.as_str();
    let (hook, _) = stack
        .webhook(key, &receiver.url(), json!(["purchase"]))
        .await;
    tokio::time::sleep(Duration::from_millis(1200)).await;
    stack.send(key, "purchase", "doomed").await;
    let attempts = stack
        .deliveries_once(key, &hook, Duration::from_secs(30), |a| {
            a.first().is_some_and(|a| a["status"] == "failed")
        })
        .await;
    assert!(
        attempts.len() >= 2,
        "retried before giving up: {attempts:?}"
    );
    assert!(attempts[1..].iter().all(|a| a["status"] == "retrying"));
    let tried = receiver.received().len();
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(
        receiver.received().len(),
        tried,
        "no attempt after giving up"
    );
    worker.stop().await.unwrap();
    stack.stop().await;
}

#[tokio::test]
async fn a_dead_endpoint_does_not_hold_up_a_healthy_one() {
    let stack = Stack::start().await;
    let worker = stack
        .env
        .spawn_webhooks_with(&[
            ("WEBHOOK_TIMEOUT_MS", "4000"),
            ("WEBHOOK_CONCURRENCY_PER_ENDPOINT", "4"),
        ])
        .await;
    let dead = WebhookReceiver::start().await;
    dead.hang(true);
    let healthy = WebhookReceiver::start().await;
    let other = stack.env.create_account("scale").await;
    stack.env.create_link(&other, "other123").await;
    let (dead_hook, _) = stack
        .webhook(&stack.account.live_key, &dead.url(), json!(["*"]))
        .await;
    stack
        .webhook(&other.live_key, &healthy.url(), json!(["*"]))
        .await;
    tokio::time::sleep(Duration::from_millis(1200)).await;
    // The dead endpoint's backlog first, then the healthy account's events.
    for i in 0..40 {
        stack
            .send(&stack.account.live_key, "purchase", &format!("dead-{i}"))
            .await;
    }
    dead.wait_until(Duration::from_secs(20), |r| r.len() >= 4)
        .await;
    let sent = std::time::Instant::now();
    for i in 0..20 {
        let (status, _) = stack
            .env
            .caller(&stack.ingest, &other.live_key)
            .send_event(event("other123", "purchase", Some(&format!("healthy-{i}"))))
            .await;
        assert_eq!(status, 202);
    }
    let received = healthy
        .wait_until(Duration::from_secs(20), |r| r.len() >= 20)
        .await;
    let took = received.iter().map(|r| r.at - sent).max().unwrap();
    assert_eq!(received.len(), 20);
    assert!(
        took < Duration::from_secs(3),
        "the healthy endpoint waited {took:?} (the dead one's timeout is 4 s)"
    );
    // The dead endpoint holds at most its own slots.
    assert!(dead.received().len() <= 4, "{}", dead.received().len());
    let attempts = stack
        .deliveries_once(
            &stack.account.live_key,
            &dead_hook,
            Duration::from_secs(15),
            |a| a.iter().any(|a| a["status"] == "retrying"),
        )
        .await;
    let timed_out = attempts.iter().find(|a| a["status"] == "retrying").unwrap();
    assert_eq!(timed_out["error"], "timed out");
    assert!(timed_out["responseCode"].is_null());
    worker.stop().await.unwrap();
    stack.stop().await;
}

fn start_worker_process(env: &TestEnv, binary: &std::path::Path) -> Child {
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(std::env::temp_dir().join(format!("lt-webhooks-{}.log", env.id)))
        .unwrap();
    Command::new(binary)
        .envs(env.service_env())
        .env("WEBHOOK_TIMEOUT_MS", "1000")
        .env("WEBHOOKS_CONSUMER_INSTANCE_ID", "webhooks-0")
        .env("RUST_LOG", "info")
        .stdout(log)
        .stderr(Stdio::null())
        .spawn()
        .expect("webhook worker starts")
}

#[tokio::test]
async fn a_sigkilled_worker_misses_nothing_and_repeats_keep_their_event_id() {
    let binary = linktrace_integration::service_binary("webhooks");
    let stack = Stack::start().await;
    let receiver = WebhookReceiver::start().await;
    // Slow answers: the kill lands with deliveries in flight and rows claimed.
    receiver.delay(Duration::from_millis(300));
    let key = stack.account.live_key.as_str();
    let (_, secret) = stack
        .webhook(key, &receiver.url(), json!(["purchase"]))
        .await;
    let mut worker = start_worker_process(&stack.env, &binary);
    tokio::time::sleep(Duration::from_millis(1500)).await;
    for i in 0..120 {
        stack.send(key, "purchase", &format!("kill-{i}")).await;
    }
    receiver
        .wait_until(Duration::from_secs(30), |r| r.len() >= 20)
        .await;
    worker.kill().expect("SIGKILL");
    worker.wait().unwrap();
    let before_restart = receiver.received().len();
    assert!(
        before_restart < 120,
        "the kill came mid-way ({before_restart})"
    );
    let mut worker = start_worker_process(&stack.env, &binary);
    let received = receiver
        .wait_until(Duration::from_secs(60), |r| {
            r.iter()
                .filter(|r| r.answered == 200)
                .map(entity_of)
                .collect::<HashSet<_>>()
                .len()
                >= 120
        })
        .await;
    worker.kill().unwrap();
    worker.wait().unwrap();
    let mut by_entity: HashMap<String, HashSet<String>> = HashMap::new();
    for r in &received {
        assert!(signature_is_valid(r, &secret));
        by_entity
            .entry(entity_of(r))
            .or_default()
            .insert(r.header("linktrace-event-id").to_owned());
    }
    assert_eq!(by_entity.len(), 120, "no event is missed");
    assert!(
        by_entity.values().all(|ids| ids.len() == 1),
        "every copy of an event carries its one event id"
    );
    // The kill interrupted answers in flight: those were sent again.
    assert!(received.len() > 120, "{} requests", received.len());
    stack.stop().await;
}

#[tokio::test]
async fn the_worker_refuses_private_addresses_unless_allowed() {
    let stack = Stack::start().await;
    let receiver = WebhookReceiver::start().await;
    let key = stack.account.live_key.as_str();
    // Created where private addresses are allowed (this api), delivered by a worker where
    // they are not: by address, by a name that resolves to loopback, and by a name that
    // does not resolve at all.
    let (by_address, _) = stack.webhook(key, &receiver.url(), json!(["*"])).await;
    let (by_name, _) = stack
        .webhook(
            key,
            &format!("http://localhost:{}/hook", receiver.port),
            json!(["*"]),
        )
        .await;
    let (unknown_name, _) = stack
        .webhook(
            key,
            &format!("http://no-such-host.invalid:{}/hook", receiver.port),
            json!(["*"]),
        )
        .await;
    let worker = stack
        .env
        .spawn_webhooks_with(&[("WEBHOOKS_ALLOW_PRIVATE_URLS", "false")])
        .await;
    tokio::time::sleep(Duration::from_millis(1200)).await;
    stack.send(key, "purchase", "private").await;
    let mut errors = Vec::new();
    for hook in [&by_address, &by_name, &unknown_name] {
        let attempts = stack
            .deliveries_once(key, hook, Duration::from_secs(20), |a| !a.is_empty())
            .await;
        assert_eq!(attempts[0]["status"], "retrying");
        let error = attempts[0]["error"].as_str().unwrap().to_owned();
        // What follows the URL the tenant wrote.
        errors.push(
            error
                .rsplit_once("): ")
                .map_or(error.clone(), |(_, rest)| rest.to_owned()),
        );
    }
    // A loopback address or `localhost` is refused from the URL alone; a name is judged
    // where it is resolved, and one that does not resolve reads as one that resolves only
    // to refused addresses (the resolver's own test holds the two equal), so a tenant
    // cannot probe which internal names exist.
    assert!(errors[0].contains("not allowed"), "{errors:?}");
    assert!(errors[1].contains("not allowed"), "{errors:?}");
    assert!(errors[2].contains("no public address"), "{errors:?}");
    assert!(
        receiver.received().is_empty(),
        "nothing reached the receiver"
    );
    worker.stop().await.unwrap();
    stack.stop().await;
}

#[tokio::test]
async fn the_api_checks_and_manages_webhooks() {
    let env = TestEnv::new().await;
    let api = env
        .spawn_api_with(&[("WEBHOOKS_ALLOW_PRIVATE_URLS", "false")])
        .await;
    let account = env.create_account("scale").await;
    let live = env.caller(&api, &account.live_key);
    for (body, names) in [
        (
            json!({ "url": "ftp://hooks.example.com", "events": ["*"] }),
            "url",
        ),
        (
            json!({ "url": "hooks.example.com", "events": ["*"] }),
            "url",
        ),
        (
            json!({ "url": "https://hooks.example.com", "events": [] }),
            "events",
        ),
        (
            json!({ "url": "https://hooks.example.com", "events": ["Purchase!"] }),
            "events",
        ),
        (json!({ "url": "https://hooks.example.com" }), "events"),
        (
            json!({ "url": "https://hooks.example.com", "events": ["*"], "x": 1 }),
            "x",
        ),
        (
            json!({ "url": "http://127.0.0.1:9000/hook", "events": ["*"] }),
            "url",
        ),
        (
            json!({ "url": "http://localhost/hook", "events": ["*"] }),
            "url",
        ),
        (
            json!({ "url": "http://169.254.169.254/latest", "events": ["*"] }),
            "url",
        ),
        (
            json!({ "url": "http://[::1]/hook", "events": ["*"] }),
            "url",
        ),
        (
            json!({ "url": "http://10.0.0.8/hook", "events": ["*"] }),
            "url",
        ),
    ] {
        let (status, answer) = live.create_webhook(body.clone()).await;
        assert_eq!(status, 400, "{body} → {answer}");
        assert_eq!(answer["code"], "VALIDATION_ERROR", "{answer}");
        assert!(
            answer["message"].as_str().unwrap().contains(names),
            "{body} → {answer}"
        );
    }
    let (status, _) = env
        .anonymous(&api)
        .create_webhook(json!({ "url": "https://h.example.com", "events": ["*"] }))
        .await;
    assert_eq!(status, 401);

    let (status, created) = live
        .create_webhook(json!({ "url": "https://hooks.example.com/lt", "events": ["install", "purchase", "install"] }))
        .await;
    assert_eq!(status, 201, "{created}");
    assert!(created["secret"].as_str().unwrap().starts_with("whsec_"));
    assert_eq!(created["events"], json!(["install", "purchase"]));
    assert_eq!(created["environment"], "live");
    let id = created["id"].as_str().unwrap().to_owned();

    let (status, listed) = live.webhooks().await;
    assert_eq!(status, 200);
    assert_eq!(listed["webhooks"].as_array().unwrap().len(), 1);
    assert_eq!(listed["webhooks"][0]["id"], json!(id));
    assert!(
        listed["webhooks"][0].get("secret").is_none(),
        "shown once only"
    );
    let (_, other_env) = live.with_key(&account.test_key).webhooks().await;
    assert_eq!(other_env["webhooks"], json!([]));

    // At most 20 per environment.
    for i in 1..20 {
        let (status, _) = live
            .create_webhook(json!({ "url": format!("https://h{i}.example.com"), "events": ["*"] }))
            .await;
        assert_eq!(status, 201);
    }
    let (status, answer) = live
        .create_webhook(json!({ "url": "https://h21.example.com", "events": ["*"] }))
        .await;
    assert_eq!(status, 400, "{answer}");

    // Another account sees and deletes nothing of it.
    let stranger = env.create_account("scale").await;
    let theirs = live.with_key(&stranger.live_key);
    assert_eq!(theirs.delete_webhook(&id).await.0, 404);
    assert_eq!(theirs.webhook_deliveries(&id, "").await.0, 404);
    let (status, answer) = live.webhook_deliveries(&id, "").await;
    assert_eq!((status, &answer["deliveries"]), (200, &json!([])));
    assert_eq!(live.webhook_deliveries("not-a-uuid", "").await.0, 404);
    assert_eq!(live.delete_webhook(&id).await.0, 200);
    assert_eq!(live.delete_webhook(&id).await.0, 404);
    api.stop().await.unwrap();
}

/// Storage settles an event from the stream ledger the consumer keeps in Postgres, never
/// from what ClickHouse shows (a lagging replica would make a stored event look unstored):
/// an offset is settled once its partition is settled through it, and it was stored unless
/// the ledger lists it as skipped — a copy, or a message dead-lettered (also at the end of
/// a partition, where no stored row follows it).
#[tokio::test]
async fn storage_settles_from_the_stream_ledger() {
    use linktrace_platform::stream_ledger::StreamLedger;
    use linktrace_webhooks::settlement::{Position, Settlement};

    let env = TestEnv::with_partitions(1).await;
    let settlement = Settlement::new(StreamLedger::new(env.pool.clone(), &env.kafka.events_topic));
    assert_eq!(
        settlement
            .unsettled(&HashMap::from([(0, 0)]))
            .await
            .unwrap(),
        [0]
    );

    let mut first = EventRecord::new(
        Uuid::new_v4(),
        Uuid::new_v4(),
        Environment::Live,
        "purchase",
        EventSource::Api,
        chrono::Utc::now(),
    );
    first.link_short_code = Some("settle12".into());
    let mut second = first.clone();
    second.event_id = Uuid::new_v4();
    // Offsets 0 and 1 are events, 2 a producer retry's copy of the first, 3 poison.
    env.produce(&first).await;
    env.produce(&second).await;
    env.produce(&first).await;
    env.producer()
        .send(
            rdkafka::producer::FutureRecord::to(&env.kafka.events_topic)
                .key("settle12")
                .payload("not an event"),
            Duration::from_secs(10),
        )
        .await
        .map_err(|(e, _)| e)
        .unwrap();
    let consumer = env.spawn_consumer().await;
    let through_poison = HashMap::from([(0, 3)]);
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while !settlement
        .unsettled(&through_poison)
        .await
        .unwrap()
        .is_empty()
    {
        assert!(
            std::time::Instant::now() < deadline,
            "storage never settled offset 3"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(
        settlement
            .unsettled(&HashMap::from([(0, 4)]))
            .await
            .unwrap(),
        [0],
        "offset 4 does not exist yet"
    );
    let at = |offset| Position {
        partition: 0,
        offset,
    };
    let asked = [
        (first.event_id, at(0)),
        (second.event_id, at(1)),
        (first.event_id, at(2)),
        (Uuid::nil(), at(3)),
    ];
    let stored = settlement.stored_at_position(&asked).await.unwrap();
    assert_eq!(
        stored,
        HashSet::from([(first.event_id, at(0)), (second.event_id, at(1))])
    );
    assert_eq!(
        env.stored_events(&format!("account_id = '{}'", first.account_id))
            .await,
        2
    );
    consumer.stop().await.unwrap();
}

/// Every event accepted after `POST /api/v1/webhooks` answered 201 is delivered, even
/// when it is sent at once. Before the fix the worker matched events against a list of
/// webhooks up to a second old, and dropped those it did not know a webhook for yet: each
/// round below (a webhook created, an event sent straight after, while the worker's list
/// had just been read) lost its event.
#[tokio::test]
async fn an_event_sent_right_after_a_webhook_is_created_is_delivered() {
    let stack = Stack::start().await;
    let worker = stack.env.spawn_webhooks_with(&[]).await;
    let live = stack.account.live_key.as_str();
    let mut receivers = Vec::new();
    for round in 0..4 {
        // Keep the worker's list fresh: an event a moment before the webhook exists.
        stack.send(live, "signup", &format!("warm-{round}")).await;
        tokio::time::sleep(Duration::from_millis(300)).await;
        // Each round's webhook wants its own event name, so it gets that round's event only.
        let receiver = WebhookReceiver::start().await;
        let name = format!("purchase_{round}");
        stack.webhook(live, &receiver.url(), json!([name])).await;
        stack.send(live, &name, &format!("order-{round}")).await;
        receivers.push(receiver);
    }
    for (round, receiver) in receivers.iter().enumerate() {
        let got = receiver
            .wait_until(Duration::from_secs(20), |r| !r.is_empty())
            .await;
        assert_eq!(
            got.iter().map(entity_of).collect::<Vec<_>>(),
            [format!("order-{round}")],
            "round {round}"
        );
    }
    worker.stop().await.unwrap();
    stack.stop().await;
}

/// One receiver's huge answer costs the worker only a bounded read: a 150 MB body to a
/// 200 is read no further than the bound (the receiver counts what it was asked for), and
/// the delivery is recorded. Before the fix the answer was read whole (the worker grew from
/// 55 MB to 383 MB).
#[tokio::test]
async fn a_huge_answer_is_read_only_so_far() {
    use futures::StreamExt;
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::sync::Arc;
    let stack = Stack::start().await;
    let key = stack.account.live_key.as_str();
    let pulled = Arc::new(AtomicU64::new(0));
    const ANSWER: u64 = 150 * 1024 * 1024;
    let app = {
        let pulled = pulled.clone();
        axum::Router::new().route(
            "/huge",
            axum::routing::post(move || {
                let pulled = pulled.clone();
                async move {
                    let chunk = axum::body::Bytes::from(vec![b'x'; 64 * 1024]);
                    let chunks = futures::stream::iter(0..ANSWER / (64 * 1024)).map(move |_| {
                        pulled.fetch_add(64 * 1024, Ordering::SeqCst);
                        Ok::<_, std::convert::Infallible>(chunk.clone())
                    });
                    axum::body::Body::from_stream(chunks)
                }
            }),
        )
    };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move { axum::serve(listener, app).await });
    let (hook, _) = stack
        .webhook(
            key,
            &format!("http://127.0.0.1:{port}/huge"),
            json!(["purchase"]),
        )
        .await;
    let worker = stack.env.spawn_webhooks_with(&[]).await;
    tokio::time::sleep(Duration::from_millis(1200)).await;
    stack.send(key, "purchase", "huge-1").await;
    let attempts = stack
        .deliveries_once(key, &hook, Duration::from_secs(20), |a| !a.is_empty())
        .await;
    assert_eq!(attempts[0]["status"], "delivered", "{attempts:?}");
    tokio::time::sleep(Duration::from_millis(500)).await;
    let read = pulled.load(Ordering::SeqCst);
    assert!(
        read < 16 * 1024 * 1024,
        "the receiver was asked for {read} of {ANSWER} bytes"
    );
    worker.stop().await.unwrap();
    stack.stop().await;
}

/// The worker bounds its attempts in flight as a whole (`WEBHOOK_MAX_IN_FLIGHT`), not only
/// per endpoint: three endpoints that hang, with 16 slots each, hold at most the worker's
/// 4 between them. Before the fix they held 3 × 16 (any number of tenants × 16 × 20).
#[tokio::test]
async fn attempts_in_flight_are_bounded_for_the_whole_worker() {
    let stack = Stack::start().await;
    let key = stack.account.live_key.as_str();
    let mut receivers = Vec::new();
    for _ in 0..3 {
        let receiver = WebhookReceiver::start().await;
        receiver.hang(true);
        stack
            .webhook(key, &receiver.url(), json!(["purchase"]))
            .await;
        receivers.push(receiver);
    }
    let worker = stack
        .env
        .spawn_webhooks_with(&[
            ("WEBHOOK_MAX_IN_FLIGHT", "4"),
            ("WEBHOOK_TIMEOUT_MS", "8000"),
        ])
        .await;
    tokio::time::sleep(Duration::from_millis(1200)).await;
    for n in 0..10 {
        stack.send(key, "purchase", &format!("order-{n}")).await;
    }
    let started = || receivers.iter().map(|r| r.received().len()).sum::<usize>();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(6);
    while started() < 4 && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // Room for more to start, if anything let them.
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(started(), 4, "attempts in flight at once");
    worker.stop().await.unwrap();
    stack.stop().await;
}

/// A webhook of `account` straight in Postgres (the outbox's own tests need no api).
async fn webhook_row(env: &TestEnv, account: &TestAccount) -> Uuid {
    let id = Uuid::new_v4();
    sqlx::query(
        "INSERT INTO webhooks (id, account_id, environment, url, events, secret) \
         VALUES ($1, $2, 'live', 'http://127.0.0.1:9/', ARRAY['purchase'], 'whsec_test')",
    )
    .bind(id)
    .bind(account.id)
    .execute(&env.pool)
    .await
    .unwrap();
    id
}

async fn table_exists(env: &TestEnv, name: &str) -> bool {
    sqlx::query_scalar::<_, bool>("SELECT to_regclass($1) IS NOT NULL")
        .bind(name)
        .fetch_one(&env.pool)
        .await
        .unwrap()
}

#[tokio::test]
async fn outbox_retention_drops_whole_finished_days_and_keeps_a_day_still_pending() {
    use chrono::{Days, Utc};
    use linktrace_webhooks::outbox::{NewDelivery, Outbox, Outcome};

    let env = TestEnv::new().await;
    let account = env.create_account("scale").await;
    let webhook = webhook_row(&env, &account).await;
    let outbox = Outbox::new(env.pool.clone());
    let today = Utc::now().date_naive();
    let at = |days_ago: u64, hour: u32| {
        (today - Days::new(days_ago))
            .and_hms_opt(hour, 0, 0)
            .unwrap()
            .and_utc()
    };
    let delivery = |received_at| NewDelivery {
        webhook_id: webhook,
        event_id: Uuid::new_v4(),
        event_name: "purchase".into(),
        body: "{}".into(),
        received_at,
    };
    // A delivery of a day nobody made yet waits in the default partition; making the day
    // moves it into the day's own.
    let early = delivery(at(20, 3));
    assert_eq!(
        outbox.enqueue(std::slice::from_ref(&early)).await.unwrap(),
        1
    );
    outbox
        .prepare_days(today - Days::new(20), today + Days::new(1))
        .await
        .unwrap();
    let day = |days_ago: u64| {
        format!(
            "webhook_deliveries_p{}",
            (today - Days::new(days_ago)).format("%Y%m%d")
        )
    };
    let in_day: i64 = sqlx::query_scalar(&format!("SELECT count(*) FROM {}", day(20)))
        .fetch_one(&env.pool)
        .await
        .unwrap();
    assert_eq!(in_day, 1, "moved out of the default partition");

    // Day 5: two deliveries that finish. Day 4: one still pending. Today: one finished.
    let finished = vec![delivery(at(5, 1)), delivery(at(5, 23)), delivery(at(0, 0))];
    let pending = delivery(at(4, 12));
    outbox.enqueue(&finished).await.unwrap();
    outbox
        .enqueue(std::slice::from_ref(&pending))
        .await
        .unwrap();
    // A copy of an event redelivered by the stream meets its original in its day.
    assert_eq!(outbox.enqueue(&finished[..1]).await.unwrap(), 0);
    let claimed = outbox
        .claim(&[(webhook, 10)], Duration::from_secs(60))
        .await
        .unwrap();
    assert_eq!(claimed.len(), 5);
    for one in &claimed {
        let outcome = if one.event_id == pending.event_id {
            Outcome::RetryAt(Utc::now() + chrono::Duration::hours(1))
        } else {
            Outcome::Delivered
        };
        outbox
            .record(one, outcome, Some(200), None, Duration::from_millis(3))
            .await
            .unwrap();
    }
    // An attempt of six days ago, in its own day.
    sqlx::query(
        "INSERT INTO webhook_attempts (webhook_id, event_id, event_name, attempt, outcome, duration_ms, attempted_at) \
         VALUES ($1, $2, 'purchase', 1, 'delivered', 5, $3)",
    )
    .bind(webhook)
    .bind(Uuid::new_v4())
    .bind(at(6, 8))
    .execute(&env.pool)
    .await
    .unwrap();
    let attempts_day = format!(
        "webhook_attempts_p{}",
        (today - Days::new(6)).format("%Y%m%d")
    );
    assert!(table_exists(&env, &attempts_day).await);

    // Kept thirty days: nothing is old enough yet.
    outbox
        .purge(Duration::from_secs(30 * 86_400))
        .await
        .unwrap();
    assert!(table_exists(&env, &day(5)).await);
    assert!(table_exists(&env, &attempts_day).await);
    tokio::time::sleep(Duration::from_millis(1_100)).await;
    // Kept a second: the finished days go whole; the pending one and today stay.
    let removed = outbox.purge(Duration::from_secs(1)).await.unwrap();
    assert!(!table_exists(&env, &day(5)).await, "finished day dropped");
    assert!(!table_exists(&env, &day(20)).await, "finished day dropped");
    assert!(
        table_exists(&env, &day(4)).await,
        "a pending delivery keeps its day"
    );
    assert!(table_exists(&env, &day(0)).await, "today is not over");
    assert!(
        !table_exists(&env, &attempts_day).await,
        "old attempts' day dropped"
    );
    assert!(removed >= 4, "{removed} rows removed");
    let left: Vec<Uuid> = sqlx::query_scalar("SELECT event_id FROM webhook_deliveries ORDER BY 1")
        .fetch_all(&env.pool)
        .await
        .unwrap();
    let mut expected = vec![pending.event_id, finished[2].event_id];
    expected.sort();
    assert_eq!(left, expected);
}
