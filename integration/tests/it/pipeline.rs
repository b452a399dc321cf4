//! The whole chain, end to end: an account made through the admin endpoint, a link made
//! through the api, an event through ingest → Kafka → consumer → ClickHouse, read back.

use std::time::Duration;

use linktrace_domain::SCHEMA_VERSION;
use linktrace_integration::{event, TestEnv, ADMIN_TOKEN};
use rdkafka::Message;
use serde_json::json;

#[tokio::test]
async fn one_event_travels_from_ingest_to_clickhouse() {
    let env = TestEnv::new().await;
    let api = env.spawn_api().await;
    let ingest = env.spawn_ingest().await;
    let consumer = env.spawn_consumer().await;

    let created = env
        .http
        .post(api.url("/admin/v1/accounts"))
        .bearer_auth(ADMIN_TOKEN)
        .json(&json!({ "name": "Acme", "plan": "scale" }))
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), 201);
    let account: serde_json::Value = created.json().await.unwrap();
    let key = account["apiKey"].as_str().unwrap().to_owned();
    assert!(key.starts_with("lt_live_"));
    assert!(account["testApiKey"]
        .as_str()
        .unwrap()
        .starts_with("lt_test_"));

    let (status, link) = env
        .caller(&api, &key)
        .create_link(json!({ "destinationUrl": "https://example.com" }))
        .await;
    assert_eq!(status, 201, "{link}");
    let code = link["link"]["shortCode"].as_str().unwrap().to_owned();

    let (status, body) = env
        .caller(&ingest, &key)
        .send_event(event(&code, "Purchase", None))
        .await;
    assert_eq!(status, 202);
    assert_eq!(body, json!({ "success": true, "queued": true }));

    let filter =
        format!("link_short_code = '{code}' AND event_name = 'purchase' AND source = 'api'");
    assert_eq!(
        env.wait_for_stored(&filter, 1, Duration::from_secs(20))
            .await,
        1
    );

    let (status, metadata) = env.caller(&api, &key).link_metadata(&code).await;
    assert_eq!(status, 200);
    assert_eq!(metadata["totals"]["byEvent"]["purchase"], 1);

    for service in [ingest, consumer, api] {
        service.stop().await.expect("graceful stop");
    }
}

#[tokio::test]
async fn every_service_reports_health_readiness_and_metrics() {
    let env = TestEnv::new().await;
    let services = [
        env.spawn_api().await,
        env.spawn_ingest().await,
        env.spawn_consumer().await,
    ];
    for service in &services {
        let (status, body) = env.get(&service.url("/healthz"), None).await;
        assert_eq!((status, body["status"].as_str()), (200, Some("ok")));
        let (status, body) = env.get(&service.url("/readyz"), None).await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["checks"]["postgres"], "ok");
        assert_eq!(body["checks"]["kafka"], "ok");
        let metrics = env
            .http
            .get(service.url("/metrics"))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        assert!(metrics.contains("http_requests_total"), "{metrics}");
        assert!(metrics.contains(r#"route="/healthz""#), "{metrics}");
    }

    // Requests are labelled by their route's template, documented or not, never by the path.
    let (api, ingest) = (&services[0], &services[1]);
    env.get(&api.url("/dashboard"), None).await;
    env.get(&api.url("/nosuchcode"), None).await;
    env.get(&api.url("/l/nosuchcode"), None).await;
    env.get(&api.url("/api/v1/referral-links/nosuchcode"), None)
        .await;
    env.get(&api.url("/no/such/path"), None).await;
    env.anonymous(ingest)
        .send_event(serde_json::json!({}))
        .await;
    let text = |url: String| {
        let http = env.http.clone();
        async move { http.get(url).send().await.unwrap().text().await.unwrap() }
    };
    let api_metrics = text(api.url("/metrics")).await;
    for route in [
        "/dashboard",
        "/{short_code}",
        "/l/{shortCode}",
        "/api/v1/referral-links/{shortCode}",
        "unmatched",
    ] {
        assert!(
            api_metrics.contains(&format!("route=\"{route}\"")),
            "{route}: {api_metrics}"
        );
    }
    assert!(!api_metrics.contains("nosuchcode"), "{api_metrics}");
    let ingest_metrics = text(ingest.url("/metrics")).await;
    assert!(
        ingest_metrics.contains(r#"route="/api/v1/events",status="401""#),
        "{ingest_metrics}"
    );
}

#[tokio::test]
async fn a_rolling_upgrade_writes_layout_1_until_every_reader_takes_layout_2() {
    // Mid-upgrade: one ingest still told to write layout 1 (what older readers need), one
    // writing this build's layout; both reach the topic and are stored alike.
    let env = TestEnv::new().await;
    let account = env.create_account("scale").await;
    env.create_link(&account, "upgrade1").await;
    let older = env
        .spawn_ingest_with(&[("KAFKA_RECORD_SCHEMA_VERSION", "1")])
        .await;
    let current = env.spawn_ingest().await;
    for (ingest, name) in [(&older, "layout_1"), (&current, "layout_2")] {
        let (status, body) = env
            .caller(ingest, &account.live_key)
            .send_event(event("upgrade1", name, None))
            .await;
        assert_eq!(status, 202, "{body}");
    }

    let mut written = Vec::new();
    for message in env.read_topic(&env.kafka.events_topic, 2).await {
        let raw: serde_json::Value = serde_json::from_slice(message.payload().unwrap()).unwrap();
        written.push((
            raw["eventName"].as_str().unwrap().to_owned(),
            raw["v"].as_u64().unwrap(),
            raw.get("eventTime").is_some(),
        ));
    }
    written.sort();
    assert_eq!(
        written,
        vec![
            ("layout_1".to_owned(), 1, true),
            ("layout_2".to_owned(), SCHEMA_VERSION as u64, false),
        ]
    );

    let consumer = env.spawn_consumer().await;
    let filter = format!("account_id = '{}' AND event_time = received_at", account.id);
    assert_eq!(
        env.wait_for_stored(&filter, 2, Duration::from_secs(30))
            .await,
        2
    );
    consumer.stop().await.unwrap();
}
