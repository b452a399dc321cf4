//! A link's routing against the real stack (spec, "Links at scale"): redirect rules by
//! country, device, OS and language, first match first, and `maxClicks` on its edge.

use std::time::{Duration, Instant};

use linktrace_integration::{Running, TestEnv};
use serde_json::json;

const IPHONE: &str = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.0 Mobile/15E148 Safari/604.1";
const IPAD: &str = "Mozilla/5.0 (iPad; CPU OS 16_0 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/16.0 Mobile/15E148 Safari/604.1";
const PIXEL: &str = "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Mobile Safari/537.36";
const FIREFOX: &str =
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:120.0) Gecko/20100101 Firefox/120.0";
/// In the test geo database: Germany and Japan; anything else has no country.
const GERMANY: &str = "198.51.100.7";
const JAPAN: &str = "203.0.113.9";
const ELSEWHERE: &str = "192.0.2.44";

/// Follows `/l/{code}` once as a person would (GET): the status and `Location`.
async fn follow(
    env: &TestEnv,
    api: &Running,
    code: &str,
    user_agent: &str,
    ip: &str,
    language: Option<&str>,
) -> (u16, String) {
    let mut request = env
        .http
        .get(api.url(&format!("/l/{code}")))
        .header("user-agent", user_agent)
        .header("x-forwarded-for", ip);
    if let Some(language) = language {
        request = request.header("accept-language", language);
    }
    let response = request.send().await.expect("the redirect answers");
    let location = response
        .headers()
        .get("location")
        .map(|l| l.to_str().unwrap().to_owned())
        .unwrap_or_default();
    (response.status().as_u16(), location)
}

#[tokio::test]
async fn each_rule_dimension_routes_its_clicks_and_the_first_match_wins() {
    let env = TestEnv::new().await;
    let api = env.spawn_api().await;
    let account = env.create_account("scale").await;
    let (status, body) = env
        .caller(&api, &account.live_key)
        .create_link(json!({
            "shortCode": "routed01",
            "destinationUrl": "https://acme.example/",
            "iosUrl": "https://apps.apple.com/app/id42",
            "rules": [
                {"country": "jp", "device": "tablet", "url": "https://acme.example/jp-tablet"},
                {"country": "JP", "url": "https://acme.example/jp"},
                {"device": "tablet", "url": "https://acme.example/tablet"},
                {"os": "Android", "url": "https://acme.example/android"},
                {"language": "de", "url": "https://acme.example/de"}
            ]
        }))
        .await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(
        body["link"]["rules"][0]["country"], "JP",
        "stored normalised: {body}"
    );
    assert_eq!(body["link"]["rules"].as_array().unwrap().len(), 5);

    let cases = [
        // Both fields of the first rule match; the second would too: the first wins.
        (IPAD, JAPAN, None, "https://acme.example/jp-tablet"),
        // Country alone.
        (FIREFOX, JAPAN, None, "https://acme.example/jp"),
        // Device alone (an iPad elsewhere), before the iOS platform URL.
        (IPAD, GERMANY, None, "https://acme.example/tablet"),
        // OS alone.
        (PIXEL, ELSEWHERE, None, "https://acme.example/android"),
        // Language, any accepted one with a weight above 0.
        (
            FIREFOX,
            ELSEWHERE,
            Some("en-US,en;q=0.8,de-AT;q=0.3"),
            "https://acme.example/de",
        ),
        // On its edge: German refused (q=0) matches nothing.
        (
            FIREFOX,
            ELSEWHERE,
            Some("en-US,de;q=0"),
            "https://acme.example/",
        ),
        // No rule: the platform URL, then the destination.
        (
            IPHONE,
            GERMANY,
            Some("fr"),
            "https://apps.apple.com/app/id42",
        ),
        (FIREFOX, GERMANY, None, "https://acme.example/"),
    ];
    for (agent, ip, language, expected) in cases {
        let (status, location) = follow(&env, &api, "routed01", agent, ip, language).await;
        assert_eq!(status, 302);
        assert_eq!(location, expected, "{agent} from {ip}, {language:?}");
    }

    // A change of rules applies at once (the change notification drops the cached link).
    let (status, body) = env
        .caller(&api, &account.live_key)
        .update_link(
            "routed01",
            json!({"rules": [{"country": "DE", "url": "https://acme.example/de-only"}]}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let (_, location) = follow(&env, &api, "routed01", FIREFOX, GERMANY, None).await;
    assert_eq!(location, "https://acme.example/de-only");
    let (_, location) = follow(&env, &api, "routed01", FIREFOX, JAPAN, None).await;
    assert_eq!(location, "https://acme.example/");

    // Bad rules are refused naming the field, and change nothing.
    for (rules, field) in [
        (json!([{"url": "https://acme.example/x"}]), "rules"),
        (
            json!([{"country": "Germany", "url": "https://acme.example/x"}]),
            "rules",
        ),
        (
            json!([{"device": "phone", "url": "https://acme.example/x"}]),
            "rules",
        ),
        (
            json!([{"country": "DE", "url": "ftp://acme.example/x"}]),
            "rules",
        ),
    ] {
        let (status, body) = env
            .caller(&api, &account.live_key)
            .update_link("routed01", json!({"rules": rules}))
            .await;
        assert_eq!(status, 400, "{body}");
        assert_eq!(body["code"], "VALIDATION_ERROR", "{body}");
        assert!(body["message"].as_str().unwrap().contains(field), "{body}");
    }
    let (_, location) = follow(&env, &api, "routed01", FIREFOX, GERMANY, None).await;
    assert_eq!(location, "https://acme.example/de-only");
}

/// HEADs `/l/{code}` (a bot: never counted) until it answers `status`.
async fn wait_for_status(env: &TestEnv, api: &Running, code: &str, status: u16) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let answer = env
            .http
            .head(api.url(&format!("/l/{code}")))
            .send()
            .await
            .unwrap()
            .status()
            .as_u16();
        if answer == status {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "/l/{code} still answers {answer}, not {status}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The counted clicks Postgres holds for a capped link, once they reach `expected`.
async fn wait_for_counted(env: &TestEnv, code: &str, expected: i64) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let counted: Option<i64> =
            sqlx::query_scalar("SELECT counted FROM link_click_counts WHERE short_code = $1")
                .bind(code)
                .fetch_optional(&env.pool)
                .await
                .unwrap();
        if counted.unwrap_or(0) >= expected {
            assert_eq!(counted, Some(expected), "no click counted twice");
            return;
        }
        assert!(
            Instant::now() < deadline,
            "counted {counted:?}, waiting for {expected}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn max_clicks_closes_the_link_on_its_edge_and_counts_people_only() {
    let env = TestEnv::new().await;
    let api = env.spawn_api().await;
    // A second instance: the cap reaches its cache too.
    let other = env.spawn_api().await;
    let account = env.create_account("scale").await;
    let (status, body) = env.caller(&api, &account.live_key)
        .create_link(json!({"shortCode": "capped01", "destinationUrl": "https://acme.example/", "maxClicks": 2}))
        .await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(body["link"]["maxClicks"], 2, "{body}");
    assert_eq!(body["link"]["exhausted"], false, "{body}");

    // One person's first click counts; the same visitor again within the hour is a repeat,
    // a bot (HEAD) is not a person: neither counts.
    assert_eq!(
        follow(&env, &api, "capped01", FIREFOX, GERMANY, None)
            .await
            .0,
        302
    );
    wait_for_counted(&env, "capped01", 1).await;
    assert_eq!(
        follow(&env, &api, "capped01", FIREFOX, GERMANY, None)
            .await
            .0,
        302
    );
    for _ in 0..3 {
        wait_for_status(&env, &other, "capped01", 302).await;
    }
    // One under the cap, and settled: the link still answers.
    tokio::time::sleep(Duration::from_millis(300)).await;
    wait_for_counted(&env, "capped01", 1).await;
    assert_eq!(
        follow(&env, &other, "capped01", IPHONE, JAPAN, None)
            .await
            .0,
        302
    );
    wait_for_counted(&env, "capped01", 2).await;
    // The cap is reached: both instances answer as for an expired link.
    wait_for_status(&env, &api, "capped01", 404).await;
    wait_for_status(&env, &other, "capped01", 404).await;
    assert_eq!(
        follow(&env, &api, "capped01", PIXEL, ELSEWHERE, None)
            .await
            .0,
        404
    );
    let (_, link) = env
        .caller(&api, &account.live_key)
        .link_metadata("capped01")
        .await;
    assert_eq!(link["link"]["exhausted"], true, "{link}");

    // A higher cap opens it again, for exactly the clicks left.
    let (status, body) = env
        .caller(&api, &account.live_key)
        .update_link("capped01", json!({"maxClicks": 3}))
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["link"]["exhausted"], false, "{body}");
    wait_for_status(&env, &other, "capped01", 302).await;
    assert_eq!(
        follow(&env, &other, "capped01", PIXEL, ELSEWHERE, None)
            .await
            .0,
        302
    );
    wait_for_counted(&env, "capped01", 3).await;
    wait_for_status(&env, &api, "capped01", 404).await;
    // No cap: open for good.
    let (status, _) = env
        .caller(&api, &account.live_key)
        .update_link("capped01", json!({"maxClicks": null}))
        .await;
    assert_eq!(status, 200);
    wait_for_status(&env, &api, "capped01", 302).await;

    for bad in [json!(0), json!(-1), json!(1.5), json!("10")] {
        let (status, body) = env
            .caller(&api, &account.live_key)
            .update_link("capped01", json!({"maxClicks": bad}))
            .await;
        assert_eq!(status, 400, "{body}");
        assert!(
            body["message"].as_str().unwrap().contains("maxClicks"),
            "{body}"
        );
    }
}
