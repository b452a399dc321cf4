//! Hostile input: random bytes and random JSON against every ingest endpoint never get a
//! 5xx, and always get the documented envelope (seeded, so a failure can be replayed).

use linktrace_integration::TestEnv;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::{json, Value};

fn random_json(rng: &mut StdRng, depth: u32) -> Value {
    match rng.gen_range(0..if depth > 3 { 5 } else { 7 }) {
        0 => Value::Null,
        1 => json!(rng.gen::<bool>()),
        2 => json!(rng.gen::<i64>()),
        3 => json!(rng.gen::<f64>()),
        4 => json!(random_string(rng)),
        5 => Value::Array(
            (0..rng.gen_range(0..4))
                .map(|_| random_json(rng, depth + 1))
                .collect(),
        ),
        _ => {
            let keys = [
                "linkShortCode",
                "eventName",
                "entityId",
                "event_name",
                "user_id",
                "event_data",
                "events",
                "x",
            ];
            let mut object = serde_json::Map::new();
            for _ in 0..rng.gen_range(0..5) {
                object.insert(
                    keys[rng.gen_range(0..keys.len())].to_owned(),
                    random_json(rng, depth + 1),
                );
            }
            Value::Object(object)
        }
    }
}

fn random_string(rng: &mut StdRng) -> String {
    let pool = [
        "abcd1234", "purchase", "CLICK", "", "\u{0}", "é", "💥", "a_b", "1x", "ab cd", "\"", "\\",
        "%00",
    ];
    (0..rng.gen_range(0..6))
        .map(|_| pool[rng.gen_range(0..pool.len())])
        .collect::<String>()
        + &"z".repeat(if rng.gen_ratio(1, 10) { 300 } else { 0 })
}

#[tokio::test]
async fn random_bodies_never_get_a_5xx() {
    let env = TestEnv::new().await;
    let ingest = env.spawn_ingest().await;
    let account = env.create_account("scale").await;
    env.create_link(&account, "abcd1234").await;
    let seed: u64 = std::env::var("FUZZ_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0x11_7ace);
    let mut rng = StdRng::seed_from_u64(seed);
    for i in 0..300 {
        let path = [
            "/api/v1/events",
            "/api/v1/events/batch",
            "/api/v1/capture-event",
        ][i % 3];
        let body: Vec<u8> = if rng.gen_ratio(1, 3) {
            (0..rng.gen_range(0..200))
                .map(|_| rng.gen::<u8>())
                .collect()
        } else {
            let mut value = random_json(&mut rng, 0);
            if path.ends_with("batch") && rng.gen_ratio(1, 2) {
                value = json!({ "events": [value.clone(), value] });
            }
            serde_json::to_vec(&value).unwrap()
        };
        let response = env
            .http
            .post(ingest.url(path))
            .header("content-type", "application/json")
            .header("x-api-key", &account.live_key)
            .header("linkrunner-key", &account.live_key)
            .body(body.clone())
            .send()
            .await
            .unwrap();
        let status = response.status().as_u16();
        let answer: Value = response.json().await.unwrap_or(Value::Null);
        assert!(
            status < 500,
            "seed {seed}, case {i}: {status} for {:?}: {answer}",
            String::from_utf8_lossy(&body)
        );
        if status >= 400 {
            assert_eq!(answer["success"], false, "seed {seed}, case {i}: {answer}");
            assert!(
                answer["message"].is_string(),
                "seed {seed}, case {i}: {answer}"
            );
        }
    }
}

/// What schemathesis found: a repeated query parameter and a path segment that is not UTF-8
/// once decoded used to get axum's plain-text 400. Both now answer like any other bad input.
#[tokio::test]
async fn malformed_query_strings_and_paths_get_the_envelope() {
    let env = TestEnv::new().await;
    let api = env.spawn_api().await;
    let account = env.create_account("scale").await;
    env.create_link(&account, "abcd1234").await;
    let key = Some(account.live_key.as_str());

    for path in [
        "/api/v1/referral-links/metadata?shortCode=abcd1234&shortCode=abcd1234",
        "/api/v1/referral-links?limit=5&limit=6",
        "/api/v1/analytics/totals?to=null&to=null",
        "/api/v1/analytics/timeseries?interval=day&interval=hour",
        "/api/v1/analytics/top-links?limit=x",
    ] {
        let (status, body) = env.get(&api.url(path), key).await;
        assert_eq!(status, 400, "{path}: {body}");
        assert_eq!(body["success"], false, "{path}: {body}");
        assert_eq!(body["code"], "VALIDATION_ERROR", "{path}: {body}");
    }

    // The key is checked before the query: a bad query never tells a stranger anything.
    let (status, body) = env.anonymous(&api).analytics_totals("to=1&to=2").await;
    assert_eq!(status, 401, "{body}");
    assert_eq!(body["code"], "UNAUTHORIZED", "{body}");

    let not_found = [
        env.http
            .patch(api.url("/api/v1/referral-links/%FF"))
            .header("x-api-key", &account.live_key)
            .json(&json!({ "name": "x" })),
        env.http
            .put(api.url("/admin/v1/accounts/%FF/plan"))
            .bearer_auth(linktrace_integration::ADMIN_TOKEN)
            .json(&json!({ "plan": "free" })),
    ];
    for (request, code) in not_found.into_iter().zip(["LINK_NOT_FOUND", "NOT_FOUND"]) {
        let response = request.send().await.unwrap();
        assert_eq!(response.status().as_u16(), 404);
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["code"], code, "{body}");
    }

    let response = env.http.get(api.url("/l/%FF")).send().await.unwrap();
    assert_eq!(response.status().as_u16(), 404);
    assert!(response
        .headers()
        .get("content-type")
        .is_some_and(|value| value.to_str().unwrap().starts_with("text/html")));
}

/// Bad bytes in a link's URLs and data, and in a webhook's URL, are a 400 naming the field
/// — never a 503 (Postgres cannot store a NUL) nor a stored link whose redirect breaks (a raw
/// CR/LF cannot go in `Location`; a backslash means another host to a browser). Before the
/// fix a NUL answered 503 and logged an ERROR, and the others were stored raw.
#[tokio::test]
async fn bad_bytes_in_urls_and_link_data_are_a_400_naming_the_field() {
    let env = TestEnv::new().await;
    let api = env.spawn_api().await;
    let account = env.create_account("scale").await;
    let bad_urls = [
        "https://example.com/a\u{0}b",
        "https://example.com/a\r\nSet-Cookie: x=1",
        "https://example.com/a\nb",
        "https:/\\evil.example",
        "https://evil.example\\@a.example",
    ];
    for url in bad_urls {
        for field in ["destinationUrl", "iosUrl", "androidUrl"] {
            let mut body = json!({ "destinationUrl": "https://example.com/ok" });
            body[field] = json!(url);
            let (status, answer) = env.caller(&api, &account.live_key).create_link(body).await;
            assert_eq!(status, 400, "{field} {url:?}: {answer}");
            assert_eq!(answer["code"], "VALIDATION_ERROR", "{answer}");
            assert!(
                answer["message"].as_str().unwrap().contains(field),
                "{field}: {answer}"
            );
        }
        let (status, answer) = env
            .caller(&api, &account.live_key)
            .create_webhook(json!({ "url": url, "events": ["*"] }))
            .await;
        assert_eq!(status, 400, "webhook {url:?}: {answer}");
        assert!(
            answer["message"].as_str().unwrap().contains("url"),
            "{answer}"
        );
    }
    for data in [json!({ "k": "a\u{0}b" }), json!({ "a\u{0}": "v" })] {
        let (status, answer) = env
            .caller(&api, &account.live_key)
            .create_link(json!({ "destinationUrl": "https://example.com/ok", "data": data }))
            .await;
        assert_eq!(status, 400, "{answer}");
        assert!(
            answer["message"].as_str().unwrap().contains("data"),
            "{answer}"
        );
    }
    // Percent-encoded, the same characters are fine, and the redirect carries them.
    let (status, answer) = env
        .caller(&api, &account.live_key)
        .create_link(
            json!({ "destinationUrl": "https://example.com/a%0D%0Ab%5C", "shortCode": "enc12345" }),
        )
        .await;
    assert_eq!(status, 201, "{answer}");
    let response = env.http.get(api.url("/l/enc12345")).send().await.unwrap();
    assert_eq!(response.status(), 302);
    assert_eq!(
        response.headers()["location"],
        "https://example.com/a%0D%0Ab%5C"
    );
    api.stop().await.unwrap();
}

/// A body over the gateway's limit gets the JSON envelope, not nginx's HTML 413 page; a
/// service that is down gets a 503 envelope.
#[tokio::test]
async fn the_gateways_own_errors_are_envelopes() {
    let env = TestEnv::new().await;
    let ingest = env.spawn_ingest().await;
    let api = env.spawn_api().await;
    let gateway = linktrace_integration::Gateway::start(ingest.port, api.port, "off").await;
    let account = env.create_account("scale").await;
    let big = vec![b'x'; 3 * 1024 * 1024];
    for path in ["/api/v1/events", "/api/v1/referral-links"] {
        let response = env
            .http
            .post(gateway.url(path))
            .header("x-api-key", &account.live_key)
            .header("content-type", "application/json")
            .body(big.clone())
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 413, "{path}");
        assert_eq!(response.headers()["content-type"], "application/json");
        let body: Value = response.json().await.unwrap();
        assert_eq!(
            body,
            json!({ "success": false, "message": "request body is too large", "code": "PAYLOAD_TOO_LARGE" })
        );
    }
    // The services' operational endpoints are not public through the gateway.
    for path in ["/metrics", "/readyz"] {
        let response = env.http.get(gateway.url(path)).send().await.unwrap();
        assert_eq!(response.status(), 404, "{path}");
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["code"], "NOT_FOUND", "{path}");
    }
    assert_eq!(
        env.http
            .get(gateway.url("/healthz"))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    ingest.stop().await.unwrap();
    let response = env
        .http
        .post(gateway.url("/api/v1/events"))
        .header("x-api-key", &account.live_key)
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 503);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["code"], "UNAVAILABLE");
    api.stop().await.unwrap();
}

/// A request refused before its body is read (here an `Idempotency-Key` that is too long, on
/// a large batch) still gets its 400 through the gateway. Before, ingest answered and closed
/// the connection while nginx was still sending the body; nginx failed with "broken pipe" and
/// answered 503 (schemathesis found it, on two runs in a row).
#[tokio::test]
async fn a_request_refused_before_its_body_is_read_gets_its_answer_through_the_gateway() {
    let env = TestEnv::new().await;
    let ingest = env.spawn_ingest().await;
    let api = env.spawn_api().await;
    let gateway = linktrace_integration::Gateway::start(ingest.port, api.port, "off").await;
    let account = env.create_account("scale").await;
    let item = r#"{"eventName":"signup","linkShortCode":"nolink00"}"#;
    let body = format!(
        "{{\"events\":[{}]}}{}",
        vec![item; 1000].join(","),
        " ".repeat(900_000)
    );
    let too_long = "k".repeat(300);
    let mut statuses = std::collections::BTreeMap::new();
    for _ in 0..20 {
        let response = env
            .http
            .post(gateway.url("/api/v1/events/batch"))
            .header("x-api-key", &account.test_key)
            .header("content-type", "application/json")
            .header("idempotency-key", &too_long)
            .body(body.clone())
            .send()
            .await
            .unwrap();
        *statuses.entry(response.status().as_u16()).or_insert(0) += 1;
    }
    assert_eq!(statuses, std::collections::BTreeMap::from([(400, 20)]));
    ingest.stop().await.unwrap();
    api.stop().await.unwrap();
}
