//! `POST /api/v1/events`, `/events/batch` and `/capture-event` against the real stack:
//! every row of the contract in ../shared/spec/API.md.

use std::sync::Arc;
use std::time::Duration;

use chrono::{TimeZone, Utc};
use linktrace_ingest::startup::{Application, Dependencies, POSTGRES_SETTINGS};
use linktrace_integration::{assert_envelope, event, ManualClock, TestAccount, TestEnv};
use linktrace_platform::health::Readiness;
use linktrace_platform::kafka::KafkaSink;
use serde_json::{json, Value};

async fn scale_setup() -> (TestEnv, linktrace_integration::Running, TestAccount) {
    let env = TestEnv::new().await;
    let ingest = env.spawn_ingest().await;
    let account = env.create_account("scale").await;
    env.create_link(&account, "abcd1234").await;
    (env, ingest, account)
}

#[tokio::test]
async fn accepts_an_event_with_202_and_stores_it_normalised() {
    let (env, ingest, account) = scale_setup().await;
    let consumer = env.spawn_consumer().await;
    let (status, body) = env
        .caller(&ingest, &account.live_key)
        .send_event(event("abcd1234", "Signup_Completed", None))
        .await;
    assert_eq!(
        (status, body),
        (202, json!({ "success": true, "queued": true }))
    );
    let filter = format!(
        "account_id = '{}' AND event_name = 'signup_completed' AND environment = 'production'",
        account.id
    );
    assert_eq!(
        env.wait_for_stored(&filter, 1, Duration::from_secs(20))
            .await,
        1
    );
    consumer.stop().await.unwrap();
}

#[tokio::test]
async fn authentication_errors_use_the_envelope() {
    let (env, ingest, _account) = scale_setup().await;
    let (status, body) = env
        .anonymous(&ingest)
        .send_event(event("abcd1234", "purchase", None))
        .await;
    assert_envelope(status, &body, 401, "UNAUTHORIZED");
    let (status, body) = env
        .caller(&ingest, "lt_live_0000000000000000000000000000000000000000")
        .send_event(event("abcd1234", "purchase", None))
        .await;
    assert_envelope(status, &body, 401, "UNAUTHORIZED");
    let (status, body) = env
        .caller(&ingest, "garbage")
        .send_event(event("abcd1234", "purchase", None))
        .await;
    assert_envelope(status, &body, 401, "UNAUTHORIZED");
}

#[tokio::test]
async fn free_plan_gets_plan_upgrade_required() {
    let (env, ingest, _) = scale_setup().await;
    let free = env.create_account("free").await;
    env.create_link(&free, "free1234").await;
    let (status, body) = env
        .caller(&ingest, &free.live_key)
        .send_event(event("free1234", "purchase", None))
        .await;
    assert_envelope(status, &body, 403, "PLAN_UPGRADE_REQUIRED");
}

#[tokio::test]
async fn unknown_and_foreign_links_are_the_same_404() {
    let (env, ingest, account) = scale_setup().await;
    let other = env.create_account("scale").await;
    env.create_link(&other, "theirs123").await;
    let (status, unknown) = env
        .caller(&ingest, &account.live_key)
        .send_event(event("nosuch123", "purchase", None))
        .await;
    assert_envelope(status, &unknown, 404, "LINK_NOT_FOUND");
    let (status, foreign) = env
        .caller(&ingest, &account.live_key)
        .send_event(event("theirs123", "purchase", None))
        .await;
    assert_envelope(status, &foreign, 404, "LINK_NOT_FOUND");
    assert_eq!(
        unknown, foreign,
        "a foreign link must not be distinguishable from an unknown one"
    );
}

#[tokio::test]
async fn every_field_rule_is_enforced_with_a_message_naming_the_field() {
    let (env, ingest, account) = scale_setup().await;
    let long_name = "a".repeat(129);
    let long_entity = "e".repeat(256);
    let cases: Vec<(Value, &str)> = vec![
        (json!({ "eventName": "purchase" }), "linkShortCode"),
        (
            json!({ "linkShortCode": "abc", "eventName": "purchase" }),
            "linkShortCode",
        ),
        (
            json!({ "linkShortCode": &"a".repeat(33), "eventName": "purchase" }),
            "linkShortCode",
        ),
        (
            json!({ "linkShortCode": "abcd-123", "eventName": "purchase" }),
            "linkShortCode",
        ),
        (
            json!({ "linkShortCode": 12345678, "eventName": "purchase" }),
            "linkShortCode",
        ),
        (json!({ "linkShortCode": "abcd1234" }), "eventName"),
        (
            json!({ "linkShortCode": "abcd1234", "eventName": "1purchase" }),
            "eventName",
        ),
        (
            json!({ "linkShortCode": "abcd1234", "eventName": "pur chase" }),
            "eventName",
        ),
        (
            json!({ "linkShortCode": "abcd1234", "eventName": long_name }),
            "eventName",
        ),
        (
            json!({ "linkShortCode": "abcd1234", "eventName": "purchase", "entityId": long_entity }),
            "entityId",
        ),
        (
            json!({ "linkShortCode": "abcd1234", "eventName": "purchase", "entityId": 7 }),
            "entityId",
        ),
        (
            json!({ "linkShortCode": "abcd1234", "eventName": "purchase", "entityId": "a\u{0}b" }),
            "entityId",
        ),
    ];
    for (body, field) in cases {
        let (status, answer) = env
            .caller(&ingest, &account.live_key)
            .send_event(body.clone())
            .await;
        assert_envelope(status, &answer, 400, "VALIDATION_ERROR");
        assert!(
            answer["message"].as_str().unwrap().contains(field),
            "{body} -> {answer}"
        );
    }
    for reserved in ["click", "install", "impression", "open", "CLICK", "Open"] {
        let (status, answer) = env
            .caller(&ingest, &account.live_key)
            .send_event(event("abcd1234", reserved, None))
            .await;
        assert_envelope(status, &answer, 400, "VALIDATION_ERROR");
    }
    // 128 characters and 255-character entity ids are fine.
    let (status, _) = env
        .caller(&ingest, &account.live_key)
        .send_event(event("abcd1234", &"a".repeat(128), Some(&"e".repeat(255))))
        .await;
    assert_eq!(status, 202);
}

#[tokio::test]
async fn malformed_bodies_are_400_envelopes_never_500() {
    let (env, ingest, account) = scale_setup().await;
    let url = ingest.url("/api/v1/events");
    let send = |content_type: Option<&'static str>, body: Vec<u8>| {
        let mut request = env
            .http
            .post(&url)
            .header("x-api-key", &account.live_key)
            .body(body);
        if let Some(ct) = content_type {
            request = request.header("content-type", ct);
        }
        request.send()
    };
    let deep = format!("{}{}", "[".repeat(5000), "]".repeat(5000));
    let bodies: Vec<(Option<&'static str>, Vec<u8>, u16, &str)> = vec![
        (
            Some("application/json"),
            b"{not json".to_vec(),
            400,
            "VALIDATION_ERROR",
        ),
        (
            Some("application/json"),
            b"".to_vec(),
            400,
            "VALIDATION_ERROR",
        ),
        (
            Some("application/json"),
            b"[1,2]".to_vec(),
            400,
            "VALIDATION_ERROR",
        ),
        (
            Some("application/json"),
            b"\xff\xfe\x00".to_vec(),
            400,
            "VALIDATION_ERROR",
        ),
        (
            Some("application/json"),
            deep.into_bytes(),
            400,
            "VALIDATION_ERROR",
        ),
        (
            Some("text/plain"),
            br#"{"linkShortCode":"abcd1234","eventName":"x"}"#.to_vec(),
            400,
            "VALIDATION_ERROR",
        ),
        (
            None,
            br#"{"linkShortCode":"abcd1234","eventName":"x"}"#.to_vec(),
            400,
            "VALIDATION_ERROR",
        ),
        (
            Some("application/json"),
            vec![b' '; 70_000],
            413,
            "PAYLOAD_TOO_LARGE",
        ),
    ];
    for (content_type, body, expected, code) in bodies {
        let response = send(content_type, body).await.unwrap();
        let status = response.status().as_u16();
        let answer: Value = response.json().await.expect("a JSON envelope");
        assert_envelope(status, &answer, expected, code);
    }
    // A chunked body declares no length of its own: it is held to the limit all the same.
    let answer = chunked_post(&url, &account.live_key, &[b' '; 70_000]).await;
    assert!(
        answer.starts_with("HTTP/1.1 413") && answer.contains("PAYLOAD_TOO_LARGE"),
        "{answer}"
    );
    let event = br#"{"linkShortCode":"abcd1234","eventName":"x"}"#;
    let answer = chunked_post(&url, &account.live_key, event).await;
    assert!(!answer.starts_with("HTTP/1.1 413"), "{answer}");
    let (status, answer) = env.get(&ingest.url("/api/v1/nope"), None).await;
    assert_eq!((status, answer["success"].clone()), (404, json!(false)));
}

/// POSTs `body` as JSON in 1,000-byte chunks (`Transfer-Encoding: chunked`, no
/// `Content-Length`) over a connection of its own; the raw answer.
async fn chunked_post(url: &str, key: &str, body: &[u8]) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let url = reqwest::Url::parse(url).unwrap();
    let address = format!("{}:{}", url.host_str().unwrap(), url.port().unwrap());
    let mut stream = tokio::net::TcpStream::connect(address).await.unwrap();
    let mut request = format!(
        "POST {} HTTP/1.1\r\nhost: {}\r\nx-api-key: {key}\r\ncontent-type: application/json\r\n\
         transfer-encoding: chunked\r\nconnection: close\r\n\r\n",
        url.path(),
        url.host_str().unwrap()
    )
    .into_bytes();
    for chunk in body.chunks(1000) {
        request.extend_from_slice(format!("{:x}\r\n", chunk.len()).as_bytes());
        request.extend_from_slice(chunk);
        request.extend_from_slice(b"\r\n");
    }
    request.extend_from_slice(b"0\r\n\r\n");
    // The server may answer (and close) before it has read the whole body.
    let _ = stream.write_all(&request).await;
    let mut answer = Vec::new();
    let _ = stream.read_to_end(&mut answer).await;
    String::from_utf8_lossy(&answer).into_owned()
}

#[tokio::test]
async fn entity_events_are_deduplicated_and_stored_once() {
    let (env, ingest, account) = scale_setup().await;
    let consumer = env.spawn_consumer().await;
    let (status, first) = env
        .caller(&ingest, &account.live_key)
        .send_event(event("abcd1234", "purchase", Some("order-1")))
        .await;
    assert_eq!(
        (status, first),
        (202, json!({ "success": true, "queued": true }))
    );
    for _ in 0..3 {
        let (status, again) = env
            .caller(&ingest, &account.live_key)
            .send_event(event("abcd1234", "PURCHASE", Some("order-1")))
            .await;
        assert_eq!(
            (status, again),
            (200, json!({ "success": true, "deduplicated": true }))
        );
    }
    // Another entity, or the same entity under another event name, is new.
    let (status, _) = env
        .caller(&ingest, &account.live_key)
        .send_event(event("abcd1234", "purchase", Some("order-2")))
        .await;
    assert_eq!(status, 202);
    let (status, _) = env
        .caller(&ingest, &account.live_key)
        .send_event(event("abcd1234", "refund", Some("order-1")))
        .await;
    assert_eq!(status, 202);
    // An empty entityId is no entity: nothing to deduplicate on, every call is queued.
    for _ in 0..2 {
        let (status, body) = env
            .caller(&ingest, &account.live_key)
            .send_event(event("abcd1234", "signup", Some("")))
            .await;
        assert_eq!(
            (status, body),
            (202, json!({ "success": true, "queued": true }))
        );
    }
    let signups = format!(
        "account_id = '{}' AND event_name = 'signup' AND entity_id = ''",
        account.id
    );
    assert_eq!(
        env.wait_for_stored(&signups, 2, Duration::from_secs(20))
            .await,
        2
    );
    let filter = format!(
        "account_id = '{}' AND entity_id = 'order-1' AND event_name = 'purchase'",
        account.id
    );
    assert_eq!(
        env.wait_for_stored(&filter, 1, Duration::from_secs(20))
            .await,
        1
    );
    // After the consumer marked it stored, a later repeat is still deduplicated.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let (status, _) = env
        .caller(&ingest, &account.live_key)
        .send_event(event("abcd1234", "purchase", Some("order-1")))
        .await;
    assert_eq!(status, 200);
    assert_eq!(env.stored_events(&filter).await, 1);
    consumer.stop().await.unwrap();
}

#[tokio::test]
async fn identical_calls_at_once_accept_exactly_one() {
    let (env, ingest, account) = scale_setup().await;
    let live = env.caller(&ingest, &account.live_key);
    let calls = (0..12).map(|_| live.send_event(event("abcd1234", "purchase", Some("same"))));
    let answers = futures::future::join_all(calls).await;
    let queued = answers.iter().filter(|(s, _)| *s == 202).count();
    let deduplicated = answers
        .iter()
        .filter(|(s, b)| *s == 200 && b["deduplicated"] == true)
        .count();
    assert_eq!((queued, deduplicated), (1, 11), "{answers:?}");
}

#[tokio::test]
async fn quota_counts_production_events_exactly_and_answers_429_with_resets_on() {
    let env = TestEnv::new().await;
    env.create_plan("tiny", 5, true).await;
    let clock = ManualClock::new(Utc.with_ymd_and_hms(2026, 11, 23, 12, 0, 0).unwrap());
    let ingest = spawn_ingest_with_clock(&env, clock.clone()).await;
    let account = env.create_account("tiny").await;
    env.create_link(&account, "abcd1234").await;

    // A deduplicated call does not consume quota.
    assert_eq!(
        env.caller(&ingest, &account.live_key)
            .send_event(event("abcd1234", "purchase", Some("o1")))
            .await
            .0,
        202
    );
    assert_eq!(
        env.caller(&ingest, &account.live_key)
            .send_event(event("abcd1234", "purchase", Some("o1")))
            .await
            .0,
        200
    );
    for _ in 0..4 {
        assert_eq!(
            env.caller(&ingest, &account.live_key)
                .send_event(event("abcd1234", "purchase", None))
                .await
                .0,
            202
        );
    }
    let (status, body) = env
        .caller(&ingest, &account.live_key)
        .send_event(event("abcd1234", "purchase", None))
        .await;
    assert_envelope(status, &body, 429, "QUOTA_EXCEEDED");
    assert_eq!(body["resetsOn"], "2026-12-01T00:00:00.000Z");
    // A repeat of a recorded tuple is still answered as deduplicated when over quota.
    assert_eq!(
        env.caller(&ingest, &account.live_key)
            .send_event(event("abcd1234", "purchase", Some("o1")))
            .await
            .0,
        200
    );

    // Test-key events are neither counted nor blocked.
    for _ in 0..3 {
        assert_eq!(
            env.caller(&ingest, &account.test_key)
                .send_event(event("abcd1234", "purchase", None))
                .await
                .0,
            202
        );
    }

    // The next month has a fresh quota.
    clock.set(Utc.with_ymd_and_hms(2026, 12, 1, 0, 0, 0).unwrap());
    assert_eq!(
        env.caller(&ingest, &account.live_key)
            .send_event(event("abcd1234", "purchase", None))
            .await
            .0,
        202
    );
    ingest.stop().await.unwrap();

    let leased: Vec<(chrono::NaiveDate, i64)> = sqlx::query_as(
        "SELECT month, leased FROM quota_usage WHERE account_id = $1 ORDER BY month",
    )
    .bind(account.id)
    .fetch_all(&env.pool)
    .await
    .unwrap();
    let months: Vec<(String, i64)> = leased
        .into_iter()
        .map(|(m, n)| (m.to_string(), n))
        .collect();
    assert_eq!(
        months,
        vec![("2026-11-01".to_owned(), 5), ("2026-12-01".to_owned(), 1)]
    );
}

#[tokio::test]
async fn two_ingest_instances_share_one_quota_exactly() {
    let env = TestEnv::new().await;
    env.create_plan("shared", 50, true).await;
    let account = env.create_account("shared").await;
    env.create_link(&account, "abcd1234").await;
    let a = env.spawn_ingest().await;
    let b = env.spawn_ingest().await;
    let send_round = |n: usize| {
        let urls: Vec<String> = (0..n)
            .map(|i| {
                if i % 2 == 0 {
                    a.url("/api/v1/events")
                } else {
                    b.url("/api/v1/events")
                }
            })
            .collect();
        let env = &env;
        let key = account.live_key.clone();
        async move {
            let answers = futures::future::join_all(
                urls.iter()
                    .map(|url| env.post(url, Some(&key), event("abcd1234", "purchase", None))),
            )
            .await;
            assert!(
                answers.iter().all(|(s, _)| *s == 202 || *s == 429),
                "{answers:?}"
            );
            answers.iter().filter(|(s, _)| *s == 202).count()
        }
    };
    let mut accepted = send_round(80).await;
    assert!(accepted <= 50, "accepted {accepted} over a quota of 50");
    // Once traffic stops, leases go back; what one instance held is then usable by all.
    tokio::time::sleep(Duration::from_millis(1200)).await;
    accepted += send_round(30).await;
    assert_eq!(accepted, 50, "the quota must be usable to the last event");
    a.stop().await.unwrap();
    b.stop().await.unwrap();
    let leased: i64 = sqlx::query_scalar("SELECT leased FROM quota_usage WHERE account_id = $1")
        .bind(account.id)
        .fetch_one(&env.pool)
        .await
        .unwrap();
    assert_eq!(leased, 50);
}

#[tokio::test]
async fn ingests_postgres_sessions_plan_every_run_of_a_statement() {
    // The entity claims are prepared statements; each run must still get a plan for its
    // own parameters (see `claims`), so every session ingest opens starts with that.
    let env = TestEnv::new().await;
    let deps = Dependencies::connect(&env.ingest_config()).await.unwrap();
    for _ in 0..3 {
        let mode: String = sqlx::query_scalar("SHOW plan_cache_mode")
            .fetch_one(&deps.pool)
            .await
            .unwrap();
        assert_eq!(mode, "force_custom_plan");
    }
    let other = linktrace_platform::postgres::connect(&env.ingest_config().postgres)
        .await
        .unwrap();
    let mode: String = sqlx::query_scalar("SHOW plan_cache_mode")
        .fetch_one(&other)
        .await
        .unwrap();
    assert_eq!(mode, "auto", "other services keep Postgres's default");
}

async fn spawn_ingest_with_clock(
    env: &TestEnv,
    clock: ManualClock,
) -> linktrace_integration::Running {
    let config = env.ingest_config();
    let pool = linktrace_platform::postgres::connect_with(&config.postgres, POSTGRES_SETTINGS)
        .await
        .unwrap();
    let sink = Arc::new(KafkaSink::new(&config.kafka).unwrap());
    let deps = Dependencies {
        pool,
        sink,
        clock: Arc::new(clock),
        readiness: Readiness::new(),
    };
    let app = Application::build_with(&config, deps).await.unwrap();
    running(app)
}

fn running(app: Application) -> linktrace_integration::Running {
    linktrace_integration::Running::spawn(app.port(), |stop| app.run_until_stopped(stop))
}

#[tokio::test]
async fn broker_down_means_503_and_no_event_is_claimed() {
    let env = TestEnv::new().await;
    let account = env.create_account("scale").await;
    env.create_link(&account, "abcd1234").await;
    // An ingest whose broker does not answer (nothing listens on port 1).
    let mut config = env.ingest_config();
    config.kafka.brokers = "127.0.0.1:1".into();
    config.kafka.producer_message_timeout_ms = 1500;
    let pool = linktrace_platform::postgres::connect(&config.postgres)
        .await
        .unwrap();
    let sink = Arc::new(KafkaSink::new(&config.kafka).unwrap());
    let deps = Dependencies {
        pool,
        sink,
        clock: Arc::new(linktrace_platform::clock::SystemClock),
        readiness: Readiness::new(),
    };
    let broken = running(Application::build_with(&config, deps).await.unwrap());

    let (status, body) = env
        .caller(&broken, &account.live_key)
        .send_event(event("abcd1234", "purchase", Some("o-9")))
        .await;
    assert_envelope(status, &body, 503, "UNAVAILABLE");

    // The retry, on a healthy instance, is accepted — not wrongly "deduplicated".
    let healthy = env.spawn_ingest().await;
    let (status, body) = env
        .caller(&healthy, &account.live_key)
        .send_event(event("abcd1234", "purchase", Some("o-9")))
        .await;
    assert_eq!(
        (status, body),
        (202, json!({ "success": true, "queued": true }))
    );
    // And the failed attempt gave its quota back.
    broken.stop().await.unwrap();
    healthy.stop().await.unwrap();
    let leased: i64 = sqlx::query_scalar(
        "SELECT COALESCE(SUM(leased), 0)::bigint FROM quota_usage WHERE account_id = $1",
    )
    .bind(account.id)
    .fetch_one(&env.pool)
    .await
    .unwrap();
    assert_eq!(leased, 1);
}

#[tokio::test]
async fn batch_answers_each_event_in_order() {
    let (env, ingest, account) = scale_setup().await;
    let body = json!({ "events": [
        event("abcd1234", "purchase", Some("b-1")),
        event("abcd1234", "purchase", Some("b-1")),
        event("abcd1234", "click", None),
        event("nosuch12", "purchase", None),
        "not an object",
        event("abcd1234", "signup", None),
    ]});
    let (status, answer) = env
        .caller(&ingest, &account.live_key)
        .send_events(body)
        .await;
    assert_eq!(status, 200, "{answer}");
    let results = answer["results"].as_array().unwrap();
    let statuses: Vec<u64> = results
        .iter()
        .map(|r| r["status"].as_u64().unwrap())
        .collect();
    // The two copies of b-1 race inside one batch: exactly one is queued.
    assert_eq!(statuses[0] + statuses[1], 202 + 200, "{answer}");
    assert_eq!(&statuses[2..], &[400, 404, 400, 202], "{answer}");
    assert_eq!(results[3]["error"]["code"], "LINK_NOT_FOUND");
    assert_eq!(answer["queued"], 2);

    let too_many: Vec<Value> = (0..1001)
        .map(|_| {
            let mut padded = event("abcd1234", "purchase", None);
            padded["properties"] = json!({ "note": "x".repeat(100) });
            padded
        })
        .collect();
    // Larger than a single event may be (64 KiB), within the batch route's own limit: read,
    // then refused for its count.
    assert!(json!({ "events": too_many }).to_string().len() > 64 * 1024);
    let (status, answer) = env
        .caller(&ingest, &account.live_key)
        .send_events(json!({ "events": too_many }))
        .await;
    assert_envelope(status, &answer, 400, "VALIDATION_ERROR");
}

#[tokio::test]
async fn capture_event_is_linkrunner_compatible_and_attributed() {
    let (env, ingest, account) = scale_setup().await;
    let consumer = env.spawn_consumer().await;
    sqlx::query("INSERT INTO attributions (account_id, user_id, short_code, match_type) VALUES ($1, 'user-7', 'abcd1234', 'short_code')")
        .bind(account.id)
        .execute(&env.pool)
        .await
        .unwrap();
    let url = ingest.url("/api/v1/capture-event");
    let capture = |key: &str, body: Value| {
        env.http
            .post(&url)
            .header("linkrunner-key", key.to_owned())
            .json(&body)
            .send()
    };
    let response = capture(&account.live_key, json!({ "event_name": "purchase", "user_id": "user-7", "event_data": { "amount": 9.5, "currency": "EUR" } })).await.unwrap();
    assert_eq!(response.status(), 201);
    assert_eq!(
        response.json::<Value>().await.unwrap(),
        json!({ "msg": "Event capture request received!", "status": 200, "data": null })
    );
    let response = capture(
        &account.live_key,
        json!({ "event_name": "purchase", "user_id": "stranger" }),
    )
    .await
    .unwrap();
    assert_eq!(response.status(), 201);

    let response = capture(&account.live_key, json!({ "event_name": "purchase" }))
        .await
        .unwrap();
    assert_eq!(response.status(), 400);
    let response = capture(
        "lt_live_0000000000000000000000000000000000000000",
        json!({ "event_name": "purchase", "user_id": "u" }),
    )
    .await
    .unwrap();
    assert_eq!(response.status(), 401);

    let attributed = format!("account_id = '{}' AND user_id = 'user-7' AND link_short_code = 'abcd1234' AND source = 'capture' AND properties LIKE '%\"currency\":\"EUR\"%'", account.id);
    assert_eq!(
        env.wait_for_stored(&attributed, 1, Duration::from_secs(20))
            .await,
        1
    );
    let organic = format!(
        "account_id = '{}' AND user_id = 'stranger' AND link_short_code = ''",
        account.id
    );
    assert_eq!(
        env.wait_for_stored(&organic, 1, Duration::from_secs(20))
            .await,
        1
    );
    consumer.stop().await.unwrap();
}

#[tokio::test]
async fn each_key_is_rate_limited_with_retry_after() {
    let env = TestEnv::new().await;
    let mut config = env.ingest_config();
    config.rate_limit_per_sec = 1;
    config.rate_limit_burst = 4;
    let ingest = running(Application::build(config).await.unwrap());
    let busy = env.create_account("scale").await;
    let quiet = env.create_account("scale").await;
    env.create_link(&busy, "busy1234").await;
    env.create_link(&quiet, "quiet123").await;
    let url = ingest.url("/api/v1/events");
    let mut limited = 0;
    let started = std::time::Instant::now();
    for _ in 0..10 {
        let response = env
            .http
            .post(&url)
            .header("x-api-key", &busy.live_key)
            .json(&event("busy1234", "purchase", None))
            .send()
            .await
            .unwrap();
        if response.status() == 429 {
            limited += 1;
            let retry_after: u64 = response.headers()["retry-after"]
                .to_str()
                .unwrap()
                .parse()
                .unwrap();
            assert_eq!(retry_after, 1);
            let body: Value = response.json().await.unwrap();
            assert_envelope(429, &body, 429, "RATE_LIMITED");
        }
    }
    // A burst of 4, then one more per second that passed.
    let accepted = 10 - limited;
    let refilled = started.elapsed().as_secs_f64().ceil() as usize;
    assert!(
        (4..=4 + refilled).contains(&accepted),
        "accepted {accepted}, limited {limited}"
    );
    // Another key is not affected, and the busy key recovers.
    assert_eq!(
        env.caller(&ingest, &quiet.live_key)
            .send_event(event("quiet123", "purchase", None))
            .await
            .0,
        202
    );
    tokio::time::sleep(Duration::from_millis(1100)).await;
    assert_eq!(
        env.caller(&ingest, &busy.live_key)
            .send_event(event("busy1234", "purchase", None))
            .await
            .0,
        202
    );
}

#[tokio::test]
async fn concurrent_claims_of_one_tuple_never_error_and_exactly_one_wins() {
    use linktrace_ingest::claims::{ClaimKey, ClaimOutcome, EntityClaims};
    let env = TestEnv::new().await;
    let claims = Arc::new(EntityClaims::new(env.pool.clone(), Duration::from_secs(10)));
    let account = uuid::Uuid::new_v4();
    for round in 0..40 {
        let key = ClaimKey {
            event_id: linktrace_domain::entity_claim_key(
                account,
                linktrace_domain::Environment::Live,
                "abcd1234",
                "purchase",
                &format!("race-{round}"),
            ),
            account_id: account,
        };
        let attempts = (0..16).map(|_| {
            let claims = claims.clone();
            tokio::spawn(async move {
                let outcome = claims.claim(key, Utc::now()).await;
                if matches!(outcome, Ok(ClaimOutcome::Claimed { .. })) {
                    claims.mark_queued(key).await.unwrap();
                }
                outcome
            })
        });
        let outcomes: Vec<_> = futures::future::join_all(attempts)
            .await
            .into_iter()
            .map(|r| r.unwrap())
            .collect();
        let claimed = outcomes
            .iter()
            .filter(|o| matches!(o, Ok(ClaimOutcome::Claimed { .. })))
            .count();
        let errors: Vec<_> = outcomes.iter().filter_map(|o| o.as_ref().err()).collect();
        assert!(errors.is_empty(), "round {round}: {errors:?}");
        assert_eq!(claimed, 1, "round {round}");
    }
}

#[tokio::test]
async fn concurrent_claims_are_group_committed_and_each_answered_right() {
    use linktrace_ingest::claims::{ClaimKey, ClaimOutcome, EntityClaims};
    let env = TestEnv::new().await;
    let claims = Arc::new(EntityClaims::new(env.pool.clone(), Duration::from_secs(10)));
    let account = uuid::Uuid::new_v4();
    let key = |i: usize| ClaimKey {
        event_id: linktrace_domain::entity_claim_key(
            account,
            linktrace_domain::Environment::Live,
            "abcd1234",
            "purchase",
            &format!("order-{i}"),
        ),
        account_id: account,
    };
    // 300 distinct tuples, each asked for twice at once: 600 concurrent claims.
    let attempts = (0..600).map(|n| {
        let (claims, key) = (claims.clone(), key(n % 300));
        tokio::spawn(async move {
            let outcome = claims.claim(key, Utc::now()).await.unwrap();
            if matches!(outcome, ClaimOutcome::Claimed { .. }) {
                claims.mark_queued(key).await.unwrap();
            }
            (format!("order-{}", n % 300), outcome)
        })
    });
    let outcomes: Vec<_> = futures::future::join_all(attempts)
        .await
        .into_iter()
        .map(|r| r.unwrap())
        .collect();
    let mut claimed = std::collections::HashMap::new();
    for (entity, outcome) in &outcomes {
        match outcome {
            ClaimOutcome::Claimed { .. } => *claimed.entry(entity.clone()).or_insert(0) += 1,
            ClaimOutcome::Duplicate => {}
            ClaimOutcome::StillInFlight => panic!("{entity}: still in flight"),
        }
    }
    assert_eq!(claimed.len(), 300, "every tuple claimed");
    assert!(claimed.values().all(|&n| n == 1), "each exactly once");
    let queued: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM entity_claims WHERE account_id = $1 AND state = 'queued'",
    )
    .bind(account)
    .fetch_one(&env.pool)
    .await
    .unwrap();
    assert_eq!(queued, 300);
    // Far fewer statements than claims: concurrent claims share a round trip.
    let statements = claims.claim_statements();
    assert!(
        statements < 300,
        "{statements} claim statements for 600 claims"
    );
}

/// Test traffic never deduplicates or blocks live traffic (spec, "Keys, limits and
/// abuse"): an entityId sent with the test key, then with the live key, is stored in both
/// environments; a userId attributed with the test key is attributed afresh with the live
/// key, and capture-event follows each environment's own attribution. Before the fix the
/// live event answered `200 deduplicated` and was never stored, and the live attribution
/// answered `created: false`, organic.
#[tokio::test]
async fn test_and_live_never_deduplicate_or_block_each_other() {
    let (env, ingest, account) = scale_setup().await;
    let api = env.spawn_api().await;
    let consumer = env.spawn_consumer().await;
    let order = event("abcd1234", "purchase", Some("order-77"));
    let (status, body) = env
        .caller(&ingest, &account.test_key)
        .send_event(order.clone())
        .await;
    assert_eq!(status, 202, "{body}");
    let (status, body) = env
        .caller(&ingest, &account.live_key)
        .send_event(order.clone())
        .await;
    assert_eq!(
        (status, body),
        (202, json!({ "success": true, "queued": true }))
    );
    // Each environment still deduplicates itself.
    for key in [&account.test_key, &account.live_key] {
        let (status, body) = env.caller(&ingest, key).send_event(order.clone()).await;
        assert_eq!(
            (status, body),
            (200, json!({ "success": true, "deduplicated": true }))
        );
    }
    let stored = |environment: &str| {
        format!(
            "account_id = '{}' AND entity_id = 'order-77' AND environment = '{environment}'",
            account.id
        )
    };
    for environment in ["test", "production"] {
        assert_eq!(
            env.wait_for_stored(&stored(environment), 1, Duration::from_secs(20))
                .await,
            1,
            "{environment}"
        );
    }

    // Attribution: the test key's user is not the live key's user.
    let (status, test_answer) = env
        .caller(&api, &account.test_key)
        .attribute(json!({ "userId": "user-1" }))
        .await;
    assert_eq!(
        (status, &test_answer["created"]),
        (201, &json!(true)),
        "{test_answer}"
    );
    assert_eq!(test_answer["attribution"]["matchType"], "organic");
    let (status, live_answer) = env
        .caller(&api, &account.live_key)
        .attribute(json!({ "userId": "user-1", "shortCode": "abcd1234" }))
        .await;
    assert_eq!(
        (status, &live_answer["created"]),
        (201, &json!(true)),
        "{live_answer}"
    );
    assert_eq!(live_answer["attribution"]["matchType"], "short_code");
    // A repeat in each environment returns that environment's own first answer.
    let (status, again) = env
        .caller(&api, &account.test_key)
        .attribute(json!({ "userId": "user-1", "shortCode": "abcd1234" }))
        .await;
    assert_eq!(
        (status, &again["attribution"]["matchType"]),
        (200, &json!("organic")),
        "{again}"
    );

    // capture-event attributes through the sending environment's install.
    for key in [&account.test_key, &account.live_key] {
        let response = env
            .http
            .post(ingest.url("/api/v1/capture-event"))
            .header("linkrunner-key", key.as_str())
            .json(&json!({ "event_name": "renewal", "user_id": "user-1" }))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 201);
    }
    let renewal = |environment: &str, link: &str| {
        format!(
            "account_id = '{}' AND event_name = 'renewal' AND environment = '{environment}' AND link_short_code = '{link}'",
            account.id
        )
    };
    assert_eq!(
        env.wait_for_stored(
            &renewal("production", "abcd1234"),
            1,
            Duration::from_secs(20)
        )
        .await,
        1
    );
    assert_eq!(
        env.wait_for_stored(&renewal("test", ""), 1, Duration::from_secs(20))
            .await,
        1
    );
    // Two install events, one per environment, with ids of their own (never collapsed).
    assert_eq!(
        env.wait_for_stored(
            &format!(
                "account_id = '{}' AND event_name = 'install' AND user_id = 'user-1'",
                account.id
            ),
            2,
            Duration::from_secs(20)
        )
        .await,
        2
    );
    consumer.stop().await.unwrap();
}

/// A POST with an `Idempotency-Key`.
async fn post_idempotent(
    env: &TestEnv,
    url: &str,
    header: (&str, &str),
    idempotency_key: &str,
    body: &Value,
) -> (u16, Option<String>, Value) {
    let response = env
        .http
        .post(url)
        .header(header.0, header.1)
        .header("idempotency-key", idempotency_key)
        .json(body)
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    let replayed = response
        .headers()
        .get("idempotent-replayed")
        .map(|v| v.to_str().unwrap().to_owned());
    (
        status,
        replayed,
        response.json().await.unwrap_or(Value::Null),
    )
}

/// `Idempotency-Key` (spec, "Idempotent requests"): a repeat of an answered request, on any
/// ingest instance, gets the first answer with `Idempotent-Replayed: true` and is not
/// processed again; another body under the same key is 422 `IDEMPOTENCY_KEY_REUSED`; keys
/// are per environment; a malformed key is a 400. Before the fix every repeat of a plain
/// event was stored again.
#[tokio::test]
async fn idempotent_requests_are_answered_once_across_instances() {
    let (env, first, account) = scale_setup().await;
    let second = env.spawn_ingest().await;
    let consumer = env.spawn_consumer().await;
    let live = ("x-api-key", account.live_key.as_str());
    let plain = event("abcd1234", "signup", None);

    let (status, replayed, answer) =
        post_idempotent(&env, &first.url("/api/v1/events"), live, "retry-1", &plain).await;
    assert_eq!(
        (status, replayed, &answer),
        (202, None, &json!({ "success": true, "queued": true }))
    );
    for ingest in [&first, &second, &second] {
        let (status, replayed, again) =
            post_idempotent(&env, &ingest.url("/api/v1/events"), live, "retry-1", &plain).await;
        assert_eq!(
            (status, replayed.as_deref(), &again),
            (202, Some("true"), &answer)
        );
    }
    // The same key with another body.
    let (status, _, refused) = post_idempotent(
        &env,
        &second.url("/api/v1/events"),
        live,
        "retry-1",
        &event("abcd1234", "purchase", None),
    )
    .await;
    assert_envelope(status, &refused, 422, "IDEMPOTENCY_KEY_REUSED");
    // The test key's "retry-1" is another key.
    let (status, replayed, _) = post_idempotent(
        &env,
        &second.url("/api/v1/events"),
        ("x-api-key", &account.test_key),
        "retry-1",
        &plain,
    )
    .await;
    assert_eq!((status, replayed), (202, None));
    // A 4xx is an answer too: replayed, not processed again.
    let unknown_link = event("nosuch99", "signup", None);
    for (n, ingest) in [&first, &second].into_iter().enumerate() {
        let (status, replayed, body) = post_idempotent(
            &env,
            &ingest.url("/api/v1/events"),
            live,
            "retry-404",
            &unknown_link,
        )
        .await;
        assert_envelope(status, &body, 404, "LINK_NOT_FOUND");
        assert_eq!(replayed.is_some(), n == 1);
    }
    // The batch and capture-event take keys too.
    let batch = json!({ "events": [plain.clone(), event("abcd1234", "signup", None), "bad"] });
    let (status, _, batch_answer) = post_idempotent(
        &env,
        &first.url("/api/v1/events/batch"),
        live,
        "batch-1",
        &batch,
    )
    .await;
    assert_eq!(status, 200, "{batch_answer}");
    assert_eq!(batch_answer["queued"], 2);
    let (status, replayed, again) = post_idempotent(
        &env,
        &second.url("/api/v1/events/batch"),
        live,
        "batch-1",
        &batch,
    )
    .await;
    assert_eq!(
        (status, replayed.as_deref(), &again),
        (200, Some("true"), &batch_answer)
    );
    let capture = json!({ "event_name": "renewal", "user_id": "user-9" });
    for ingest in [&first, &second] {
        let (status, _, body) = post_idempotent(
            &env,
            &ingest.url("/api/v1/capture-event"),
            ("linkrunner-key", &account.live_key),
            "capture-1",
            &capture,
        )
        .await;
        assert_eq!(
            (status, body),
            (
                201,
                json!({ "msg": "Event capture request received!", "status": 200, "data": null })
            )
        );
    }
    // Malformed keys.
    for bad in ["", &"k".repeat(256)] {
        let (status, _, body) =
            post_idempotent(&env, &first.url("/api/v1/events"), live, bad, &plain).await;
        assert_envelope(status, &body, 400, "VALIDATION_ERROR");
        assert!(
            body["message"]
                .as_str()
                .unwrap()
                .contains("Idempotency-Key"),
            "{body}"
        );
    }

    let stored = |filter: &str| format!("account_id = '{}' AND {filter}", account.id);
    // signup: the single one (live), two of the batch (live), the test one.
    assert_eq!(
        env.wait_for_stored(&stored("event_name = 'signup'"), 4, Duration::from_secs(20))
            .await,
        4
    );
    assert_eq!(
        env.wait_for_stored(
            &stored("event_name = 'renewal'"),
            1,
            Duration::from_secs(20)
        )
        .await,
        1
    );
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(env.stored_events(&stored("event_name = 'signup'")).await, 4);
    assert_eq!(
        env.stored_events(&stored("event_name = 'purchase'")).await,
        0
    );
    // Quota: each event accepted once.
    first.stop().await.unwrap();
    second.stop().await.unwrap();
    let leased: i64 = sqlx::query_scalar(
        "SELECT COALESCE(SUM(leased), 0)::bigint FROM quota_usage WHERE account_id = $1",
    )
    .bind(account.id)
    .fetch_one(&env.pool)
    .await
    .unwrap();
    assert_eq!(leased, 4, "three live signups and one renewal");
    consumer.stop().await.unwrap();
}

/// A sink whose first `failures` sends reach the broker but are answered as failures (a
/// produce acknowledged after the client's deadline): the request answers 503 although
/// its event is on the stream.
struct AcknowledgedTooLate {
    inner: KafkaSink,
    failures: std::sync::atomic::AtomicUsize,
}

#[async_trait::async_trait]
impl linktrace_platform::kafka::EventSink for AcknowledgedTooLate {
    async fn send(
        &self,
        record: &linktrace_domain::EventRecord,
    ) -> Result<(), linktrace_platform::kafka::SinkError> {
        self.inner.send(record).await?;
        let left = self.failures.load(std::sync::atomic::Ordering::SeqCst);
        if left > 0 {
            self.failures
                .store(left - 1, std::sync::atomic::Ordering::SeqCst);
            return Err(linktrace_platform::kafka::SinkError::Unavailable(
                "acknowledged after the deadline".into(),
            ));
        }
        Ok(())
    }
}

/// A retry of a request answered 503 whose event did reach the stream is processed again,
/// and its event is stored once (spec: "what it carries is stored once even when the first
/// attempt did reach the stream"). Before the fix the retry was a second event.
#[tokio::test]
async fn a_retry_after_a_503_whose_event_reached_the_stream_is_stored_once() {
    let env = TestEnv::new().await;
    let account = env.create_account("scale").await;
    env.create_link(&account, "abcd1234").await;
    let consumer = env.spawn_consumer().await;
    let config = env.ingest_config();
    let pool = linktrace_platform::postgres::connect_with(&config.postgres, POSTGRES_SETTINGS)
        .await
        .unwrap();
    let sink = Arc::new(AcknowledgedTooLate {
        inner: KafkaSink::new(&config.kafka).unwrap(),
        failures: 2.into(),
    });
    let deps = Dependencies {
        pool,
        sink,
        clock: Arc::new(linktrace_platform::clock::SystemClock),
        readiness: Readiness::new(),
    };
    let ingest = running(Application::build_with(&config, deps).await.unwrap());
    let live = ("x-api-key", account.live_key.as_str());
    let plain = event("abcd1234", "signup", None);
    let url = ingest.url("/api/v1/events");
    let (status, _, body) = post_idempotent(&env, &url, live, "flaky-1", &plain).await;
    assert_envelope(status, &body, 503, "UNAVAILABLE");
    let (status, _, body) = post_idempotent(&env, &url, live, "flaky-1", &plain).await;
    assert_envelope(status, &body, 503, "UNAVAILABLE");
    let (status, replayed, body) = post_idempotent(&env, &url, live, "flaky-1", &plain).await;
    assert_eq!(
        (status, replayed, body),
        (202, None, json!({ "success": true, "queued": true }))
    );
    let (status, replayed, _) = post_idempotent(&env, &url, live, "flaky-1", &plain).await;
    assert_eq!((status, replayed.as_deref()), (202, Some("true")));

    let signups = format!("account_id = '{}' AND event_name = 'signup'", account.id);
    assert_eq!(
        env.wait_for_stored(&signups, 1, Duration::from_secs(20))
            .await,
        1
    );
    // Three copies went to the stream; give the later ones time to arrive.
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(env.stored_events(&signups).await, 1, "stored once");
    assert_eq!(env.rolled_up_events(&signups).await, 1, "counted once");
    consumer.stop().await.unwrap();
    ingest.stop().await.unwrap();
}

/// Polls `check` until it holds, for at most `within`; true if it did.
async fn eventually<F, Fut>(within: Duration, mut check: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + within;
    loop {
        if check().await {
            return true;
        }
        if tokio::time::Instant::now() > deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Changes made through the api reach every ingest instance at once (Postgres
/// LISTEN/NOTIFY), whatever its cache TTLs: a short code deleted by one account and
/// created by another takes the new owner's events, and a revoked key stops working.
/// Before the fix both instances kept the old answers for the whole TTL (here ten
/// minutes; ~60 s and ~31 s by default).
#[tokio::test]
async fn changes_made_through_the_api_reach_every_ingest_at_once() {
    let env = TestEnv::new().await;
    let long_ttls = [
        ("LINK_CACHE_TTL_SECS", "600"),
        ("AUTH_CACHE_TTL_SECS", "600"),
        ("NEGATIVE_CACHE_TTL_SECS", "600"),
    ];
    let ingests = [
        env.spawn_ingest_with(&long_ttls).await,
        env.spawn_ingest_with(&long_ttls).await,
    ];
    let api = env.spawn_api().await;
    let old_owner = env.create_account("scale").await;
    let new_owner = env.create_account("scale").await;
    let link = json!({ "destinationUrl": "https://example.com/a", "shortCode": "swap1234" });
    let (status, body) = env
        .caller(&api, &old_owner.live_key)
        .create_link(link.clone())
        .await;
    assert_eq!(status, 201, "{body}");
    let send = |ingest: &linktrace_integration::Running, key: &str| {
        let (env, url, key) = (&env, ingest.url("/api/v1/events"), key.to_owned());
        async move {
            env.post(&url, Some(&key), event("swap1234", "signup", None))
                .await
                .0
        }
    };
    // Both instances cache the owner, and the other account's miss.
    for ingest in &ingests {
        assert_eq!(send(ingest, &old_owner.live_key).await, 202);
        assert_eq!(send(ingest, &new_owner.live_key).await, 404);
    }
    let (status, body) = env
        .caller(&api, &old_owner.live_key)
        .delete_link("swap1234")
        .await;
    assert_eq!(status, 200, "{body}");
    let (status, body) = env
        .caller(&api, &new_owner.live_key)
        .create_link(link)
        .await;
    assert_eq!(status, 201, "{body}");
    for (n, ingest) in ingests.iter().enumerate() {
        assert!(
            eventually(Duration::from_secs(3), || async {
                send(ingest, &new_owner.live_key).await == 202
            })
            .await,
            "instance {n}: the new owner's events are taken"
        );
        assert_eq!(send(ingest, &old_owner.live_key).await, 404, "instance {n}");
    }

    // A revoked key stops working on every instance.
    let response = env
        .http
        .post(api.url(&format!("/admin/v1/accounts/{}/keys/revoke", new_owner.id)))
        .bearer_auth(linktrace_integration::ADMIN_TOKEN)
        .json(&json!({ "environment": "live" }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    for (n, ingest) in ingests.iter().enumerate() {
        assert!(
            eventually(Duration::from_secs(3), || async {
                send(ingest, &new_owner.live_key).await == 401
            })
            .await,
            "instance {n}: the revoked key is refused"
        );
    }
    api.stop().await.unwrap();
}

/// The rate counts events, not requests: a batch of N takes N units of its key's bucket
/// (before the fix a 1,000-event batch counted as one request). Test keys have a bucket of
/// their own, their only bound since no quota counts them (before the fix: none at all).
#[tokio::test]
async fn batches_count_their_events_and_test_keys_have_a_bound_of_their_own() {
    let env = TestEnv::new().await;
    let mut config = env.ingest_config();
    config.rate_limit_per_sec = 1;
    config.rate_limit_burst = 10;
    config.test_rate_limit_per_sec = 3;
    let ingest = running(Application::build(config).await.unwrap());
    let account = env.create_account("scale").await;
    env.create_link(&account, "rate1234").await;
    let batch = |n: usize| json!({ "events": vec![event("rate1234", "signup", None); n] });
    let (status, body) = env
        .caller(&ingest, &account.live_key)
        .send_events(batch(8))
        .await;
    assert_eq!((status, &body["queued"]), (200, &json!(8)), "{body}");
    // 8 of 10 taken: 5 more do not fit.
    let (status, body) = env
        .caller(&ingest, &account.live_key)
        .send_events(batch(5))
        .await;
    assert_envelope(status, &body, 429, "RATE_LIMITED");
    // Test key: a bucket of 6 (3/s, two seconds' worth), apart from the live key's.
    let mut accepted = 0;
    for _ in 0..8 {
        let (status, _) = env
            .caller(&ingest, &account.test_key)
            .send_event(event("rate1234", "signup", None))
            .await;
        if status == 202 {
            accepted += 1;
        } else {
            assert_eq!(status, 429);
        }
    }
    assert!((6..=7).contains(&accepted), "test key accepted {accepted}");
    // A batch larger than the whole bucket is refused, never let through.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let (status, body) = env
        .caller(&ingest, &account.test_key)
        .send_events(batch(50))
        .await;
    assert_envelope(status, &body, 429, "RATE_LIMITED");
    ingest.stop().await.unwrap();
}

/// Failed key authentication on ingest is throttled per client address, as on the api:
/// after the limit, that address gets 429 `RATE_LIMITED` with `Retry-After`, even with a
/// right key; another address is not held back. Before, wrong keys ran unthrottled.
#[tokio::test]
async fn failed_authentication_is_throttled_per_address() {
    let env = TestEnv::new().await;
    let ingest = env
        .spawn_ingest_with(&[("AUTH_FAILURES_PER_MINUTE", "3")])
        .await;
    let account = env.create_account("scale").await;
    env.create_link(&account, "abcd1234").await;
    let send = |key: &str, ip: &'static str| {
        env.http
            .post(ingest.url("/api/v1/events"))
            .header("x-api-key", key.to_owned())
            .header("x-forwarded-for", ip)
            .json(&event("abcd1234", "signup", None))
            .send()
    };
    for _ in 0..3 {
        assert_eq!(
            send("lt_live_wrong", "198.51.100.9")
                .await
                .unwrap()
                .status(),
            401
        );
    }
    let response = send(&account.live_key, "198.51.100.9").await.unwrap();
    assert_eq!(response.status(), 429);
    assert!(response.headers().contains_key("retry-after"));
    let body: Value = response.json().await.unwrap();
    assert_envelope(429, &body, 429, "RATE_LIMITED");
    assert_eq!(
        send(&account.live_key, "198.51.100.10")
            .await
            .unwrap()
            .status(),
        202
    );
    ingest.stop().await.unwrap();
}

/// Spec, "Links at scale": an event may say when it happened (`timestamp`, at most 30 days
/// back and 5 minutes ahead, else a 400 naming `timestamp`), on its own or in a batch. It is
/// the event's time for every read (it lands in its own day's bucket), and a retry of an
/// entity event keeps the first time; the quota month is the month of receipt.
#[tokio::test]
async fn backfilled_events_land_in_their_own_time_buckets() {
    let (env, ingest, account) = scale_setup().await;
    let consumer = env.spawn_consumer().await;
    let api = env.spawn_api().await;
    let now = Utc::now();
    let day = |days_ago: i64| (now - chrono::Duration::days(days_ago)).date_naive();
    let at = |days_ago: i64| {
        day(days_ago)
            .and_hms_opt(12, 0, 0)
            .unwrap()
            .and_utc()
            .to_rfc3339()
    };
    let with_time = |entity: Option<&str>, timestamp: Value| {
        let mut body = event("abcd1234", "backfill", entity);
        body["timestamp"] = timestamp;
        body
    };
    for (body, expected) in [
        (with_time(Some("ten"), json!(at(10))), 202),
        // A retry of the same entity with another time: deduplicated, the first time stays.
        (with_time(Some("ten"), json!(at(3))), 200),
        (with_time(None, json!(at(3))), 202),
        (
            with_time(
                None,
                json!((now + chrono::Duration::minutes(4)).to_rfc3339()),
            ),
            202,
        ),
    ] {
        let (status, answer) = env
            .caller(&ingest, &account.live_key)
            .send_event(body)
            .await;
        assert_eq!(status, expected, "{answer}");
    }
    for bad in [
        json!(at(31)),
        json!((now + chrono::Duration::minutes(6)).to_rfc3339()),
        json!("yesterday"),
        json!(1_700_000_000),
    ] {
        let (status, answer) = env
            .caller(&ingest, &account.live_key)
            .send_event(with_time(None, bad.clone()))
            .await;
        assert_envelope(status, &answer, 400, "VALIDATION_ERROR");
        assert!(
            answer["message"].as_str().unwrap().contains("timestamp"),
            "{bad}: {answer}"
        );
    }
    let (status, batch) = env
        .caller(&ingest, &account.live_key)
        .send_events(
            json!({ "events": [with_time(None, json!(at(10))), with_time(None, json!(at(40)))] }),
        )
        .await;
    assert_eq!(status, 200, "{batch}");
    let statuses: Vec<u64> = batch["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["status"].as_u64().unwrap())
        .collect();
    assert_eq!(statuses, vec![202, 400], "{batch}");

    let stored = format!("account_id = '{}' AND event_name = 'backfill'", account.id);
    assert_eq!(
        env.wait_for_stored(&stored, 4, Duration::from_secs(20))
            .await,
        4
    );
    // Every event was received just now (`received_at`, and the quota month), whatever it says.
    assert_eq!(
        env.stored_events(&format!("{stored} AND received_at >= now() - 3600"))
            .await,
        4
    );
    let from = day(12).and_hms_opt(0, 0, 0).unwrap().and_utc().to_rfc3339();
    let to = (now + chrono::Duration::hours(1)).to_rfc3339();
    let response = env
        .http
        .get(api.url("/api/v1/analytics"))
        .query(&[
            ("event", "backfill"),
            ("groupBy", "timeseries"),
            ("interval", "day"),
            ("from", from.as_str()),
            ("to", to.as_str()),
        ])
        .header("x-api-key", &account.live_key)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let series: Value = response.json().await.unwrap();
    let counts: std::collections::BTreeMap<String, u64> = series["data"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p["count"].as_u64().unwrap() > 0)
        .map(|p| {
            (
                p["time"].as_str().unwrap()[..10].to_owned(),
                p["count"].as_u64().unwrap(),
            )
        })
        .collect();
    let mut expected = std::collections::BTreeMap::new();
    expected.insert(day(10).to_string(), 2);
    expected.insert(day(3).to_string(), 1);
    *expected
        .entry(
            (now + chrono::Duration::minutes(4))
                .date_naive()
                .to_string(),
        )
        .or_insert(0) += 1;
    assert_eq!(counts, expected, "{series}");
    consumer.stop().await.unwrap();
    api.stop().await.unwrap();
    ingest.stop().await.unwrap();
}
