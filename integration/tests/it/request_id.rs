//! A request id follows each request: taken from `X-Request-Id` or generated, returned on
//! the answer, and written into the record of the event the request produced.

use linktrace_integration::{event, TestEnv};
use rdkafka::Message;

async fn post_with_id(
    env: &TestEnv,
    url: &str,
    key: &str,
    id: Option<&str>,
    body: serde_json::Value,
) -> (u16, String) {
    let mut request = env.http.post(url).header("x-api-key", key).json(&body);
    if let Some(id) = id {
        request = request.header("x-request-id", id);
    }
    let response = request.send().await.unwrap();
    let returned = response
        .headers()
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    (response.status().as_u16(), returned)
}

#[tokio::test]
async fn the_request_id_is_kept_or_made_returned_and_put_on_the_event_message() {
    let env = TestEnv::with_partitions(1).await;
    let ingest = env.spawn_ingest().await;
    let api = env.spawn_api().await;
    let account = env.create_account("scale").await;
    env.create_link(&account, "reqid123").await;

    let (status, returned) = post_with_id(
        &env,
        &ingest.url("/api/v1/events"),
        &account.live_key,
        Some("gateway-req-42"),
        event("reqid123", "purchase", None),
    )
    .await;
    assert_eq!((status, returned.as_str()), (202, "gateway-req-42"));

    let (status, generated) = post_with_id(
        &env,
        &ingest.url("/api/v1/events"),
        &account.live_key,
        None,
        event("reqid123", "signup", None),
    )
    .await;
    assert_eq!(status, 202);
    assert!(
        uuid::Uuid::parse_str(&generated).is_ok(),
        "a generated id: {generated:?}"
    );
    let answered = env
        .http
        .get(api.url("/healthz"))
        .header("x-request-id", "api-req-7")
        .send()
        .await
        .unwrap();
    assert_eq!(answered.headers()["x-request-id"], "api-req-7");

    let mut seen = Vec::new();
    for message in env.read_topic(&env.kafka.events_topic, 2).await {
        let payload = message.payload().unwrap();
        // This build's layout: a plain event happened when it was received, so its
        // `eventTime` is not written.
        let raw: serde_json::Value = serde_json::from_slice(payload).unwrap();
        assert_eq!(raw["v"], linktrace_domain::SCHEMA_VERSION);
        assert_eq!(raw.get("eventTime"), None, "{raw}");
        let record = linktrace_domain::EventRecord::from_json(payload).unwrap();
        seen.push((record.event_name, record.request_id));
    }
    seen.sort();
    assert_eq!(
        seen,
        vec![
            ("purchase".to_owned(), Some("gateway-req-42".to_owned())),
            ("signup".to_owned(), Some(generated)),
        ]
    );
}
