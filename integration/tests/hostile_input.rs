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
    let (status, body) = env
        .get(&api.url("/api/v1/analytics/totals?to=1&to=2"), None)
        .await;
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
