//! The api service against the real stack: admin, referral links, redirect, attributions
//! and analytics, each with its error rows and cross-account isolation.

use std::time::Duration;

use chrono::Datelike;
use linktrace_integration::{assert_envelope, event, Running, TestAccount, TestEnv, ADMIN_TOKEN};
use serde_json::{json, Value};

const IPHONE: &str = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15";
const ANDROID: &str = "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36";
const DESKTOP: &str = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36";

async fn admin(
    env: &TestEnv,
    api: &Running,
    method: reqwest::Method,
    path: &str,
    token: Option<&str>,
    body: Value,
) -> (u16, Value) {
    let caller = match token {
        Some(token) => env.admin(api, token),
        None => env.anonymous(api),
    };
    caller.call(method, path, Some(body)).await
}

#[tokio::test]
async fn admin_creates_accounts_changes_plans_and_rotates_keys() {
    let env = TestEnv::new().await;
    let api = env.spawn_api().await;
    let ingest = env.spawn_ingest().await;
    let post = reqwest::Method::POST;

    let (status, body) = admin(
        &env,
        &api,
        post.clone(),
        "/admin/v1/accounts",
        None,
        json!({ "name": "A", "plan": "free" }),
    )
    .await;
    assert_envelope(status, &body, 401, "UNAUTHORIZED");
    let (status, body) = admin(
        &env,
        &api,
        post.clone(),
        "/admin/v1/accounts",
        Some("wrong"),
        json!({ "name": "A", "plan": "free" }),
    )
    .await;
    assert_envelope(status, &body, 401, "UNAUTHORIZED");
    let (status, body) = admin(
        &env,
        &api,
        post.clone(),
        "/admin/v1/accounts",
        Some(ADMIN_TOKEN),
        json!({ "name": "A", "plan": "gold" }),
    )
    .await;
    assert_envelope(status, &body, 400, "VALIDATION_ERROR");
    let (status, body) = admin(
        &env,
        &api,
        post.clone(),
        "/admin/v1/accounts",
        Some(ADMIN_TOKEN),
        json!({ "plan": "free" }),
    )
    .await;
    assert_envelope(status, &body, 400, "VALIDATION_ERROR");
    for name in ["   ".to_owned(), "n".repeat(201)] {
        let (status, body) = admin(
            &env,
            &api,
            post.clone(),
            "/admin/v1/accounts",
            Some(ADMIN_TOKEN),
            json!({ "name": name, "plan": "free" }),
        )
        .await;
        assert_envelope(status, &body, 400, "VALIDATION_ERROR");
        assert_eq!(body["message"], "name must be 1-200 characters");
    }

    let (status, created) = admin(
        &env,
        &api,
        post.clone(),
        "/admin/v1/accounts",
        Some(ADMIN_TOKEN),
        json!({ "name": "A", "plan": "free" }),
    )
    .await;
    assert_eq!(status, 201, "{created}");
    let id = created["accountId"].as_str().unwrap().to_owned();
    let key = created["apiKey"].as_str().unwrap().to_owned();
    // Keys are stored hashed, never in clear.
    let stored: i64 =
        sqlx::query_scalar("SELECT count(*) FROM api_keys WHERE key_hash = $1 OR key_hash = $2")
            .bind(&key)
            .bind(created["testApiKey"].as_str().unwrap())
            .fetch_one(&env.pool)
            .await
            .unwrap();
    assert_eq!(stored, 0);

    let (status, link) = env
        .caller(&api, &key)
        .create_link(json!({ "destinationUrl": "https://a.example" }))
        .await;
    assert_eq!(status, 201);
    let code = link["link"]["shortCode"].as_str().unwrap().to_owned();
    let (status, body) = env
        .caller(&ingest, &key)
        .send_event(event(&code, "purchase", None))
        .await;
    assert_envelope(status, &body, 403, "PLAN_UPGRADE_REQUIRED");

    let (status, body) = admin(
        &env,
        &api,
        reqwest::Method::PUT,
        &format!("/admin/v1/accounts/{id}/plan"),
        Some(ADMIN_TOKEN),
        json!({ "plan": "scale" }),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let (status, body) = admin(
        &env,
        &api,
        reqwest::Method::PUT,
        &format!("/admin/v1/accounts/{}/plan", uuid::Uuid::new_v4()),
        Some(ADMIN_TOKEN),
        json!({ "plan": "scale" }),
    )
    .await;
    assert_envelope(status, &body, 404, "NOT_FOUND");
    // Ingest trusts its key cache for AUTH_CACHE_TTL_SECS (1 s in tests).
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let (status, _) = env
        .caller(&ingest, &key)
        .send_event(event(&code, "purchase", None))
        .await;
    assert_eq!(status, 202);

    let (status, rotated) = admin(
        &env,
        &api,
        post,
        &format!("/admin/v1/accounts/{id}/keys/rotate"),
        Some(ADMIN_TOKEN),
        json!({ "environment": "live" }),
    )
    .await;
    assert_eq!(status, 200, "{rotated}");
    let new_key = rotated["apiKey"].as_str().unwrap().to_owned();
    let (status, body) = env.caller(&api, &key).list_links("").await;
    assert_envelope(status, &body, 401, "UNAUTHORIZED");
    let (status, _) = env.caller(&api, &new_key).list_links("").await;
    assert_eq!(status, 200);
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let (status, body) = env
        .caller(&ingest, &key)
        .send_event(event(&code, "purchase", None))
        .await;
    assert_envelope(status, &body, 401, "UNAUTHORIZED");

    // Revocation without a replacement: the test key stops working, the live key does not.
    let test_key = created["testApiKey"].as_str().unwrap().to_owned();
    assert_eq!(env.caller(&api, &test_key).list_links("").await.0, 200);
    let (status, body) = admin(
        &env,
        &api,
        reqwest::Method::POST,
        &format!("/admin/v1/accounts/{id}/keys/revoke"),
        Some(ADMIN_TOKEN),
        json!({ "environment": "test" }),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let (status, body) = env.caller(&api, &test_key).list_links("").await;
    assert_envelope(status, &body, 401, "UNAUTHORIZED");
    assert_eq!(env.caller(&api, &new_key).list_links("").await.0, 200);
}

#[tokio::test]
async fn referral_links_are_created_read_listed_updated_and_deleted_per_account() {
    let env = TestEnv::new().await;
    let api = env.spawn_api().await;
    let me = env.create_account("free").await;
    let other = env.create_account("free").await;
    let url = api.url("/api/v1/referral-links");

    let (status, generated) = env.caller(&api, &me.live_key).create_link(json!({
        "destinationUrl": "https://example.com/page",
        "iosUrl": "https://apps.apple.com/app/1",
        "campaign": "winter",
        "referrerUserId": "u-1",
        "metadata": { "title": "Join us", "description": "d", "imageUrl": "https://img.example/a.png" },
        "expiresAt": "2030-01-01T00:00:00Z",
    })).await;
    assert_eq!(status, 201, "{generated}");
    let code = generated["link"]["shortCode"].as_str().unwrap().to_owned();
    assert_eq!(code.len(), 8);
    assert!(code
        .bytes()
        .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase()));
    assert_eq!(
        generated["link"]["url"],
        format!("http://links.test/l/{code}")
    );
    assert_eq!(generated["link"]["metadata"]["title"], "Join us");

    let (status, custom) = env
        .caller(&api, &me.live_key)
        .create_link(json!({ "destinationUrl": "https://example.com", "shortCode": "MyPromo2026" }))
        .await;
    assert_eq!(
        (status, custom["link"]["shortCode"].as_str()),
        (201, Some("MyPromo2026"))
    );
    let (status, clash) = env
        .caller(&api, &other.live_key)
        .create_link(json!({ "destinationUrl": "https://example.com", "shortCode": "MyPromo2026" }))
        .await;
    assert_envelope(status, &clash, 409, "SHORT_CODE_TAKEN");

    for bad in [
        json!({}),
        json!({ "destinationUrl": "ftp://example.com" }),
        json!({ "destinationUrl": "not a url" }),
        json!({ "destinationUrl": "https://example.com", "shortCode": "ab" }),
        json!({ "destinationUrl": "https://example.com", "shortCode": "healthz" }),
        json!({ "destinationUrl": "https://example.com", "iosUrl": "javascript:alert(1)" }),
        json!({ "destinationUrl": "https://example.com", "expiresAt": "tomorrow" }),
        json!({ "destinationUrl": "https://example.com", "metadata": "x" }),
        json!({ "destinationUrl": "https://example.com", "campaign": "a\u{0}b" }),
    ] {
        let (status, body) = env
            .caller(&api, &me.live_key)
            .create_link(bad.clone())
            .await;
        assert_envelope(status, &body, 400, "VALIDATION_ERROR");
    }

    let metadata = |key: String, code: String| {
        let env = &env;
        let api = &api;
        async move { env.caller(api, &key).link_metadata(&code).await }
    };
    let (status, mine) = metadata(me.live_key.clone(), code.clone()).await;
    assert_eq!(status, 200, "{mine}");
    assert_eq!(mine["link"]["campaign"], "winter");
    assert_eq!(
        mine["totals"],
        json!({ "clicks": 0, "installs": 0, "opens": 0, "events": 0, "byEvent": {} })
    );
    let (status, foreign) = metadata(other.live_key.clone(), code.clone()).await;
    assert_envelope(status, &foreign, 404, "LINK_NOT_FOUND");
    let (_, unknown) = metadata(other.live_key.clone(), "zzzz9999".into()).await;
    assert_eq!(foreign, unknown);
    let (status, body) = env
        .get(
            &api.url("/api/v1/referral-links/metadata"),
            Some(&me.live_key),
        )
        .await;
    assert_envelope(status, &body, 400, "VALIDATION_ERROR");

    // Pagination over 5 links, 2 at a time; the other account sees none of them.
    for i in 0..3 {
        env.caller(&api, &me.live_key)
            .create_link(json!({ "destinationUrl": format!("https://example.com/{i}") }))
            .await;
    }
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let page_url = match &cursor {
            Some(c) => format!("{url}?limit=2&cursor={c}"),
            None => format!("{url}?limit=2"),
        };
        let (status, page) = env.get(&page_url, Some(&me.live_key)).await;
        assert_eq!(status, 200, "{page}");
        seen.extend(
            page["links"]
                .as_array()
                .unwrap()
                .iter()
                .map(|l| l["shortCode"].as_str().unwrap().to_owned()),
        );
        match page["nextCursor"].as_str() {
            Some(next) => cursor = Some(next.to_owned()),
            None => break,
        }
    }
    seen.sort();
    seen.dedup();
    assert_eq!(seen.len(), 5);
    let (_, theirs) = env.caller(&api, &other.live_key).list_links("").await;
    assert_eq!(theirs["links"], json!([]));

    let mine = env.caller(&api, &me.live_key);
    let theirs = env.caller(&api, &other.live_key);
    let (status, _) = theirs
        .update_link(&code, json!({ "campaign": "stolen" }))
        .await;
    assert_eq!(status, 404);
    let (status, updated) = mine
        .update_link(&code, json!({ "campaign": "spring" }))
        .await;
    assert_eq!(status, 200);
    assert_eq!(
        (
            updated["link"]["campaign"].as_str(),
            updated["link"]["destinationUrl"].as_str()
        ),
        (Some("spring"), Some("https://example.com/page"))
    );
    assert_eq!(theirs.delete_link(&code).await.0, 404);
    assert_eq!(mine.delete_link(&code).await.0, 200);
    let (status, _) = metadata(me.live_key.clone(), code).await;
    assert_eq!(status, 404);
}

async fn follow(
    env: &TestEnv,
    api: &Running,
    path: &str,
    user_agent: &str,
    forwarded_for: Option<&str>,
) -> reqwest::Response {
    let mut request = env.http.get(api.url(path)).header("user-agent", user_agent);
    if let Some(ip) = forwarded_for {
        request = request.header("x-forwarded-for", ip);
    }
    request.send().await.unwrap()
}

#[tokio::test]
async fn redirect_sends_each_device_to_its_url_and_records_the_click() {
    let env = TestEnv::new().await;
    let api = env.spawn_api().await;
    let consumer = env.spawn_consumer().await;
    let account = env.create_account("free").await;
    env.create_link(&account, "go123456").await;

    let location = |r: &reqwest::Response| {
        r.headers()
            .get("location")
            .map(|v| v.to_str().unwrap().to_owned())
    };
    let ios = follow(&env, &api, "/l/go123456", IPHONE, Some("198.51.100.4")).await;
    assert_eq!(
        (ios.status().as_u16(), location(&ios).as_deref()),
        (302, Some("https://apps.apple.com/app/id1"))
    );
    let android = follow(&env, &api, "/go123456", ANDROID, None).await;
    // To Google Play with the click in its install referrer (spec, "Attribution to the app").
    let android_click = android.headers()["x-linktrace-click-id"].to_str().unwrap();
    assert_eq!(
        location(&android),
        Some(format!(
            "https://play.google.com/store/apps/details?id=x&referrer=linktrace_click_id%3D{android_click}"
        ))
    );
    let desktop = follow(&env, &api, "/l/go123456", DESKTOP, None).await;
    assert_eq!(
        location(&desktop).as_deref(),
        Some("https://example.com/landing")
    );
    let click_id = ios.headers()["x-linktrace-click-id"]
        .to_str()
        .unwrap()
        .to_owned();

    let unknown = follow(&env, &api, "/l/nosuch99", DESKTOP, None).await;
    assert_eq!(unknown.status(), 404);
    assert!(unknown.text().await.unwrap().contains("Link not found"));
    sqlx::query("INSERT INTO links (short_code, account_id, destination_url, expires_at) VALUES ('old12345', $1, 'https://e.example', now() - interval '1 day')")
        .bind(account.id)
        .execute(&env.pool)
        .await
        .unwrap();
    assert_eq!(
        follow(&env, &api, "/l/old12345", DESKTOP, None)
            .await
            .status(),
        404
    );
    // Service paths are never shadowed by the root-level redirect.
    assert_eq!(env.get(&api.url("/healthz"), None).await.0, 200);

    let clicks = format!(
        "account_id = '{}' AND event_name = 'click' AND link_short_code = 'go123456'",
        account.id
    );
    assert_eq!(
        env.wait_for_stored(&clicks, 3, Duration::from_secs(20))
            .await,
        3
    );
    let ios_click = format!("{clicks} AND click_id = '{click_id}' AND platform = 'ios' AND ip = '198.51.100.4' AND user_agent LIKE '%iPhone%'");
    assert_eq!(env.stored_events(&ios_click).await, 1);
    assert_eq!(
        env.stored_events(&format!(
            "account_id = '{}' AND link_short_code IN ('nosuch99', 'old12345')",
            account.id
        ))
        .await,
        0
    );
    consumer.stop().await.unwrap();
}

#[tokio::test]
async fn attributions_match_in_order_and_the_first_one_wins() {
    let env = TestEnv::new().await;
    let api = env.spawn_api().await;
    let consumer = env.spawn_consumer().await;
    let account = env.create_account("free").await;
    let other = env.create_account("free").await;
    env.create_link(&account, "att12345").await;
    env.create_link(&other, "their1234").await;

    // Explicit short code.
    let (status, first) = env
        .caller(&api, &account.live_key)
        .attribute(json!({ "userId": "u-code", "shortCode": "att12345" }))
        .await;
    assert_eq!(status, 201, "{first}");
    assert_eq!(
        (
            first["attribution"]["matchType"].as_str(),
            first["link"]["shortCode"].as_str()
        ),
        (Some("short_code"), Some("att12345"))
    );
    // A repeat returns the original, whatever it now says.
    let (status, again) = env
        .caller(&api, &account.live_key)
        .attribute(json!({ "userId": "u-code" }))
        .await;
    assert_eq!(status, 200);
    assert_eq!(again["attribution"], first["attribution"]);
    assert_eq!(again["created"], false);
    // Another account's link is not found.
    let (status, body) = env
        .caller(&api, &account.live_key)
        .attribute(json!({ "userId": "u-x", "shortCode": "their1234" }))
        .await;
    assert_envelope(status, &body, 404, "LINK_NOT_FOUND");

    // Click id, then fingerprint: both need the click to be stored first.
    let clicked = follow(&env, &api, "/l/att12345", IPHONE, Some("203.0.113.9")).await;
    let click_id = clicked.headers()["x-linktrace-click-id"]
        .to_str()
        .unwrap()
        .to_owned();
    let android_click = follow(&env, &api, "/l/att12345", ANDROID, Some("203.0.113.77")).await;
    let android_click_id = android_click.headers()["x-linktrace-click-id"]
        .to_str()
        .unwrap()
        .to_owned();
    let clicks = format!("account_id = '{}' AND event_name = 'click'", account.id);
    assert_eq!(
        env.wait_for_stored(&clicks, 2, Duration::from_secs(20))
            .await,
        2
    );

    let (status, by_click) = env
        .caller(&api, &account.live_key)
        .attribute(json!({ "userId": "u-click", "clickId": click_id }))
        .await;
    assert_eq!(status, 201, "{by_click}");
    assert_eq!(
        (
            by_click["attribution"]["matchType"].as_str(),
            by_click["attribution"]["shortCode"].as_str()
        ),
        (Some("click_id"), Some("att12345"))
    );
    // The other account cannot claim this account's click.
    let (_, foreign_click) = env
        .caller(&api, &other.live_key)
        .attribute(json!({ "userId": "u-click", "clickId": click_id }))
        .await;
    assert_eq!(foreign_click["attribution"]["matchType"], "organic");

    let (status, by_device) = env
        .caller(&api, &account.live_key)
        .attribute(json!({ "userId": "u-device", "ip": "203.0.113.77", "platform": "android" }))
        .await;
    assert_eq!(status, 201);
    assert_eq!(by_device["attribution"]["matchType"], "fingerprint");
    assert_eq!(
        by_device["attribution"]["clickId"],
        android_click_id.as_str()
    );
    // Same IP but another platform does not match.
    let (_, wrong_platform) = env
        .caller(&api, &account.live_key)
        .attribute(json!({ "userId": "u-ios", "ip": "203.0.113.77", "platform": "ios" }))
        .await;
    assert_eq!(wrong_platform["attribution"]["matchType"], "organic");

    let (status, organic) = env
        .caller(&api, &account.live_key)
        .attribute(json!({ "userId": "u-organic" }))
        .await;
    assert_eq!(
        (
            status,
            organic["attribution"]["matchType"].as_str(),
            organic["link"].clone()
        ),
        (201, Some("organic"), Value::Null)
    );

    let (status, body) = env
        .caller(&api, &account.live_key)
        .attribute(json!({ "shortCode": "att12345" }))
        .await;
    assert_envelope(status, &body, 400, "VALIDATION_ERROR");

    // One install event per attributed user, each on its link (or none).
    let installs = format!("account_id = '{}' AND event_name = 'install'", account.id);
    assert_eq!(
        env.wait_for_stored(&installs, 5, Duration::from_secs(20))
            .await,
        5
    );
    assert_eq!(
        env.stored_events(&format!("{installs} AND link_short_code = 'att12345'"))
            .await,
        3
    );
    consumer.stop().await.unwrap();
}

async fn send(
    env: &TestEnv,
    ingest: &Running,
    key: &str,
    code: &str,
    name: &str,
    entity: Option<&str>,
) -> u16 {
    env.caller(ingest, key)
        .send_event(event(code, name, entity))
        .await
        .0
}

#[tokio::test]
async fn analytics_are_exact_under_duplicates_and_scoped_to_account_and_environment() {
    let env = TestEnv::new().await;
    let api = env.spawn_api().await;
    let ingest = env.spawn_ingest().await;
    let consumer = env.spawn_consumer().await;
    let account: TestAccount = env.create_account("scale").await;
    let other = env.create_account("scale").await;
    env.create_link(&account, "alpha123").await;
    env.create_link(&account, "beta1234").await;

    // Three visitors (one visitor's repeats would count once).
    for n in 1..=3 {
        let ip = format!("198.51.100.{n}");
        follow(&env, &api, "/l/alpha123", DESKTOP, Some(&ip)).await;
    }
    follow(&env, &api, "/l/beta1234", DESKTOP, None).await;
    env.caller(&api, &account.live_key)
        .attribute(json!({ "userId": "buyer", "shortCode": "alpha123" }))
        .await;
    for order in ["o1", "o2", "o1", "o1"] {
        send(
            &env,
            &ingest,
            &account.live_key,
            "alpha123",
            "purchase",
            Some(order),
        )
        .await;
    }
    send(&env, &ingest, &account.live_key, "beta1234", "signup", None).await;
    // Test-key events are kept apart.
    send(
        &env,
        &ingest,
        &account.test_key,
        "alpha123",
        "purchase",
        None,
    )
    .await;
    // A replayed copy on the stream (same event id, produced twice) counts once.
    let replayed = linktrace_domain::EventRecord {
        schema_version: linktrace_domain::SCHEMA_VERSION,
        event_id: uuid::Uuid::new_v4(),
        account_id: account.id,
        environment: linktrace_domain::Environment::Live,
        link_short_code: Some("beta1234".into()),
        event_name: "share".into(),
        entity_id: None,
        user_id: None,
        properties: None,
        revenue: None,
        claimed: false,
        source: linktrace_domain::EventSource::Api,
        client: None,
        event_time: None,
        request_id: None,
        received_at: chrono::Utc::now(),
    };
    env.produce(&replayed).await;
    env.produce(&replayed).await;
    // 4 clicks, 1 install, 2 purchases, 1 signup, 1 share; 1 test-key purchase.
    let all = format!("account_id = '{}'", account.id);
    assert_eq!(
        env.wait_for_stored(&all, 10, Duration::from_secs(20)).await,
        10
    );

    let (status, totals) = env
        .caller(&api, &account.live_key)
        .analytics_totals("")
        .await;
    assert_eq!(status, 200, "{totals}");
    let mut rows: Vec<(String, String, u64)> = totals["totals"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["shortCode"].as_str().unwrap().to_owned(),
                r["eventName"].as_str().unwrap().to_owned(),
                r["count"].as_u64().unwrap(),
            )
        })
        .collect();
    rows.sort();
    assert_eq!(
        rows,
        vec![
            ("alpha123".into(), "click".into(), 3),
            ("alpha123".into(), "install".into(), 1),
            ("alpha123".into(), "purchase".into(), 2),
            ("beta1234".into(), "click".into(), 1),
            ("beta1234".into(), "share".into(), 1),
            ("beta1234".into(), "signup".into(), 1),
        ]
    );

    let (_, funnel) = env
        .caller(&api, &account.live_key)
        .analytics_funnel("shortCode=alpha123")
        .await;
    assert_eq!(
        (
            funnel["funnel"]["clicks"].as_u64(),
            funnel["funnel"]["installs"].as_u64()
        ),
        (Some(3), Some(1)),
        "{funnel}"
    );
    assert_eq!(funnel["funnel"]["steps"][0]["eventName"], "purchase");
    assert_eq!(funnel["funnel"]["steps"][0]["events"], 2);

    let (_, top) = env
        .caller(&api, &account.live_key)
        .analytics_top_links("")
        .await;
    assert_eq!(
        top["links"],
        json!([{ "shortCode": "alpha123", "count": 3 }, { "shortCode": "beta1234", "count": 1 }])
    );

    let (_, series) = env
        .caller(&api, &account.live_key)
        .analytics_timeseries("interval=hour")
        .await;
    let total: u64 = series["points"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["count"].as_u64().unwrap())
        .sum();
    assert_eq!(total, 9, "{series}");

    // Weeks (from Monday, UTC) are folded from the same days: the same total.
    let (status, weekly) = env
        .caller(&api, &account.live_key)
        .analytics_timeseries("interval=week")
        .await;
    assert_eq!(status, 200, "{weekly}");
    let points = weekly["points"].as_array().unwrap();
    let total: u64 = points.iter().map(|p| p["count"].as_u64().unwrap()).sum();
    assert_eq!(total, 9, "{weekly}");
    for point in points {
        let start: chrono::DateTime<chrono::Utc> = point["time"].as_str().unwrap().parse().unwrap();
        assert_eq!(start.weekday(), chrono::Weekday::Mon, "{weekly}");
        assert_eq!(start.time(), chrono::NaiveTime::MIN, "{weekly}");
    }

    let (_, test_view) = env
        .caller(&api, &account.test_key)
        .analytics_totals("")
        .await;
    assert_eq!(
        test_view["totals"],
        json!([{ "shortCode": "alpha123", "eventName": "purchase", "count": 1 }])
    );
    let (_, foreign) = env.caller(&api, &other.live_key).analytics_totals("").await;
    assert_eq!(foreign["totals"], json!([]));

    for bad in [
        "timeseries?interval=fortnight",
        "timeseries?interval=hour&from=2026-01-01&to=2026-03-01",
        "totals?eventName=events",
        "totals?from=yesterday",
        "totals?from=2026-02-01T00:00:00Z&to=2026-01-01T00:00:00Z",
        "top-links?limit=0",
        "totals?shortCode=a;DROP",
    ] {
        let (status, body) = env
            .get(
                &api.url(&format!("/api/v1/analytics/{bad}")),
                Some(&account.live_key),
            )
            .await;
        assert_envelope(status, &body, 400, "VALIDATION_ERROR");
    }
    let (status, body) = env.anonymous(&api).analytics_totals("").await;
    assert_envelope(status, &body, 401, "UNAUTHORIZED");
    consumer.stop().await.unwrap();
}

/// What the raw table says, by plain `count()` (no FINAL, no uniqExact): the truth the
/// rollup-backed answers must equal.
async fn raw_counts(env: &TestEnv, account: &TestAccount) -> Vec<(String, String, u64)> {
    #[derive(clickhouse::Row, serde::Deserialize)]
    struct Row {
        link: String,
        name: String,
        n: u64,
    }
    env.clickhouse
        .client()
        .query(
            "SELECT link_short_code AS link, event_name AS name, count() AS n FROM events \
             WHERE account_id = ? AND environment = 'production' GROUP BY link, name ORDER BY link, name",
        )
        .bind(account.id.to_string())
        .fetch_all::<Row>()
        .await
        .unwrap()
        .into_iter()
        .map(|r| (r.link, r.name, r.n))
        .collect()
}

#[tokio::test]
async fn analytics_equal_the_raw_count_truth_with_two_consumers_and_redeliveries() {
    let env = TestEnv::new().await;
    let api = env.spawn_api().await;
    let ingest = env.spawn_ingest().await;
    let first = env.spawn_consumer().await;
    let second = env.spawn_consumer().await;
    let account: TestAccount = env.create_account("scale").await;
    let codes = ["gamma123", "delta123", "omega123"];
    for code in codes {
        env.create_link(&account, code).await;
    }
    let mut accepted = 0u64;
    for i in 0..90 {
        let code = codes[i % 3];
        let name = ["purchase", "signup", "share"][i % 2];
        // Every third is an entity event sent twice: stored once.
        let entity = (i % 3 == 0).then(|| format!("order-{i}"));
        for _ in 0..if entity.is_some() { 2 } else { 1 } {
            if send(
                &env,
                &ingest,
                &account.live_key,
                code,
                name,
                entity.as_deref(),
            )
            .await
                == 202
            {
                accepted += 1;
            }
        }
        // Test-key events are kept apart.
        if i % 10 == 0 {
            send(&env, &ingest, &account.test_key, code, name, None).await;
        }
    }
    for code in codes {
        follow(&env, &api, &format!("/l/{code}"), DESKTOP, None).await;
        accepted += 1;
    }
    // Both consumers write this; then the second leaves (flushing and committing) and the
    // first takes its partitions over, reading again from their last commits.
    let all = format!(
        "account_id = '{}' AND environment = 'production'",
        account.id
    );
    assert_eq!(
        env.wait_for_stored(&all, accepted, Duration::from_secs(40))
            .await,
        accepted
    );
    second.stop().await.unwrap();
    // Copies on the stream: the same records again at later offsets, as a producer retry
    // without idempotence leaves them. (The consumer that owns a partition drops a copy it
    // has seen; a copy whose original the partition's previous owner wrote is not caught:
    // see docs/ARCHITECTURE.md, "Never lost, never twice".)
    for i in 0..20 {
        let replayed = linktrace_domain::EventRecord {
            schema_version: linktrace_domain::SCHEMA_VERSION,
            event_id: uuid::Uuid::new_v4(),
            account_id: account.id,
            environment: linktrace_domain::Environment::Live,
            link_short_code: Some(codes[i % 3].into()),
            event_name: "share".into(),
            entity_id: None,
            user_id: None,
            properties: None,
            revenue: None,
            claimed: false,
            source: linktrace_domain::EventSource::Api,
            client: None,
            event_time: None,
            request_id: None,
            received_at: chrono::Utc::now(),
        };
        env.produce(&replayed).await;
        env.produce(&replayed).await;
        accepted += 1;
    }
    assert_eq!(
        env.wait_for_stored(&all, accepted, Duration::from_secs(40))
            .await,
        accepted
    );
    assert_eq!(env.rolled_up_events(&all).await, accepted, "no copy stored");
    let truth = raw_counts(&env, &account).await;
    assert_eq!(truth.iter().map(|(_, _, n)| n).sum::<u64>(), accepted);

    let (status, totals) = env
        .caller(&api, &account.live_key)
        .analytics_totals("")
        .await;
    assert_eq!(status, 200, "{totals}");
    let answered: Vec<(String, String, u64)> = totals["totals"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["shortCode"].as_str().unwrap().to_owned(),
                r["eventName"].as_str().unwrap().to_owned(),
                r["count"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(answered, truth, "totals = raw count() per link and event");

    let (_, funnel) = env
        .caller(&api, &account.live_key)
        .analytics_funnel("")
        .await;
    let truth_of = |name: &str| -> u64 {
        truth
            .iter()
            .filter(|(_, n, _)| n == name)
            .map(|(_, _, c)| c)
            .sum()
    };
    assert_eq!(funnel["funnel"]["clicks"].as_u64(), Some(truth_of("click")));
    for step in funnel["funnel"]["steps"].as_array().unwrap() {
        let name = step["eventName"].as_str().unwrap();
        assert_eq!(step["events"].as_u64(), Some(truth_of(name)), "{name}");
    }
    assert_eq!(funnel["funnel"]["usersApproximate"], true);

    for interval in ["hour", "day"] {
        let (_, series) = env
            .caller(&api, &account.live_key)
            .analytics_timeseries(&format!("interval={interval}"))
            .await;
        let total: u64 = series["points"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p["count"].as_u64().unwrap())
            .sum();
        assert_eq!(total, accepted, "{interval}: {series}");
    }

    let (_, top) = env
        .caller(&api, &account.live_key)
        .analytics_top_links("eventName=share")
        .await;
    for link in top["links"].as_array().unwrap() {
        let code = link["shortCode"].as_str().unwrap();
        let expected = truth
            .iter()
            .find(|(l, n, _)| l == code && n == "share")
            .map(|(_, _, c)| *c);
        assert_eq!(link["count"].as_u64(), expected, "{code}");
    }
    let (_, metadata) = env
        .caller(&api, &account.live_key)
        .link_metadata("gamma123")
        .await;
    let gamma: u64 = truth
        .iter()
        .filter(|(l, n, _)| l == "gamma123" && n != "click" && n != "install")
        .map(|(_, _, c)| c)
        .sum();
    assert_eq!(
        metadata["totals"]["events"].as_u64(),
        Some(gamma),
        "{metadata}"
    );
    first.stop().await.unwrap();
}

/// Test keys send test events and read; they never change what live traffic uses: PATCH
/// and DELETE of a link and PUT /api/v1/apps with a test key are 403 (spec, "Keys, limits
/// and abuse"), and the link and apps stay as they were. Before the fix all three succeeded.
#[tokio::test]
async fn a_test_key_cannot_change_what_live_traffic_uses() {
    let env = TestEnv::new().await;
    let api = env.spawn_api().await;
    let account = env.create_account("scale").await;
    env.create_link(&account, "live1234").await;
    let apps = json!({ "ios": { "teamId": "ABCDE12345", "bundleId": "com.acme.app" } });
    let test = env.caller(&api, &account.test_key);
    let live = test.with_key(&account.live_key);
    let attempts = [
        test.update_link(
            "live1234",
            json!({ "destinationUrl": "https://evil.example/" }),
        )
        .await,
        test.delete_link("live1234").await,
        test.set_apps(apps.clone()).await,
    ];
    for (status, body) in attempts {
        assert_envelope(status, &body, 403, "FORBIDDEN");
    }
    let (status, body) = live.link_metadata("live1234").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        body["link"]["destinationUrl"], "https://example.com/landing",
        "{body}"
    );
    // The live key may.
    assert_eq!(live.set_apps(apps).await.0, 200);
    assert_eq!(live.delete_link("live1234").await.0, 200);
    api.stop().await.unwrap();
}

/// The admin door (spec, "Keys, limits and abuse"): `/admin/v1/*` answers only
/// `ADMIN_NETWORKS` (404 to anyone else, as if it did not exist), the local stack's
/// development token only from loopback, and failed authentication (admin token or API key)
/// is throttled per address with 429 `RATE_LIMITED` and `Retry-After`. Before the fix the
/// gateway served admin on every interface and 2,000 wrong tokens ran at ~30,000/s.
#[tokio::test]
async fn the_admin_door_is_closed_to_other_networks_and_guessing_is_throttled() {
    let env = TestEnv::new().await;
    let account_body = json!({ "name": "Acme", "plan": "free" });
    // Admin only from 10.0.0.0/8: loopback gets 404.
    let elsewhere = env
        .spawn_api_with(&[("ADMIN_NETWORKS", "10.0.0.0/8")])
        .await;
    let (status, body) = admin(
        &env,
        &elsewhere,
        reqwest::Method::POST,
        "/admin/v1/accounts",
        Some(ADMIN_TOKEN),
        account_body.clone(),
    )
    .await;
    assert_envelope(status, &body, 404, "NOT_FOUND");
    // Through a trusted proxy, a client in 10.0.0.0/8 is let in.
    let response = env
        .http
        .post(elsewhere.url("/admin/v1/accounts"))
        .bearer_auth(ADMIN_TOKEN)
        .header("x-forwarded-for", "10.1.2.3")
        .json(&account_body)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 201);

    // The development token: loopback only, even where the networks are wider.
    let development = env
        .spawn_api_with(&[
            ("ADMIN_NETWORKS", "0.0.0.0/0,::/0"),
            (
                "LINKTRACE_ADMIN_TOKEN",
                linktrace_api::access::DEVELOPMENT_ADMIN_TOKEN,
            ),
        ])
        .await;
    let from = |ip: Option<&'static str>| {
        let mut request = env
            .http
            .post(development.url("/admin/v1/accounts"))
            .bearer_auth(linktrace_api::access::DEVELOPMENT_ADMIN_TOKEN)
            .json(&account_body);
        if let Some(ip) = ip {
            request = request.header("x-forwarded-for", ip);
        }
        request
    };
    assert_eq!(
        from(Some("198.51.100.7")).send().await.unwrap().status(),
        404
    );
    assert_eq!(from(None).send().await.unwrap().status(), 201);

    // Guessing: five failures a minute, then 429 for that address, even with the right token.
    let throttled = env
        .spawn_api_with(&[("AUTH_FAILURES_PER_MINUTE", "5")])
        .await;
    let guess = |token: &'static str, ip: &'static str| {
        env.http
            .post(throttled.url("/admin/v1/accounts"))
            .bearer_auth(token)
            .header("x-forwarded-for", ip)
            .json(&account_body)
            .send()
    };
    for _ in 0..5 {
        assert_eq!(guess("wrong", "127.0.0.1").await.unwrap().status(), 401);
    }
    let response = guess(ADMIN_TOKEN, "127.0.0.1").await.unwrap();
    assert_eq!(response.status(), 429);
    let retry_after: u64 = response.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=60).contains(&retry_after), "{retry_after}");
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["code"], "RATE_LIMITED");
    // Another address is not held back (::1 is loopback too).
    assert_eq!(guess(ADMIN_TOKEN, "::1").await.unwrap().status(), 201);
    // Wrong API keys count the same way, per address.
    let links = |key: &'static str| {
        env.http
            .get(throttled.url("/api/v1/referral-links"))
            .header("x-api-key", key)
            .header("x-forwarded-for", "198.51.100.9")
            .send()
    };
    for _ in 0..5 {
        assert_eq!(links("lt_live_nope").await.unwrap().status(), 401);
    }
    assert_eq!(links("lt_live_nope").await.unwrap().status(), 429);
    for api in [elsewhere, development, throttled] {
        api.stop().await.unwrap();
    }
}

/// In production (`LINKTRACE_ENV=production`, what compose sets) the api will not start
/// without an admin token of its own; compose ships none and publishes only the gateway.
#[tokio::test]
async fn production_refuses_to_start_without_an_admin_token_of_its_own() {
    use envconfig::Envconfig;
    let env = TestEnv::new().await;
    for token in [
        "",
        linktrace_api::access::DEVELOPMENT_ADMIN_TOKEN,
        "too-short",
    ] {
        let config = linktrace_api::config::ApiConfig::init_from_hashmap(&env.service_env_with(&[
            ("LINKTRACE_ENV", "production"),
            ("LINKTRACE_ADMIN_TOKEN", token),
        ]))
        .unwrap();
        let refused = linktrace_api::startup::Application::build(config).await;
        let error = refused.err().expect("refused").to_string();
        assert!(
            error.contains("LINKTRACE_ADMIN_TOKEN"),
            "{token:?}: {error}"
        );
    }
    let own = "k".repeat(40);
    let api = env
        .spawn_api_with(&[
            ("LINKTRACE_ENV", "production"),
            ("LINKTRACE_ADMIN_TOKEN", &own),
        ])
        .await;
    api.stop().await.unwrap();

    // Compose: no secret shipped, nothing but the gateway on every interface.
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap();
    let compose = std::fs::read_to_string(root.join("docker-compose.yml")).unwrap();
    for absent in [
        linktrace_api::access::DEVELOPMENT_ADMIN_TOKEN,
        "postgres:postgres@",
        "change-me",
        "CLICKHOUSE_SKIP_USER_SETUP",
        "GF_AUTH_ANONYMOUS_ENABLED: \"true\"",
        "\"9090:9090\"",
        "\"3000:3000\"",
    ] {
        assert!(
            !compose.contains(absent),
            "docker-compose.yml holds {absent:?}"
        );
    }
    for present in [
        "LINKTRACE_ENV: production",
        "${LINKTRACE_ADMIN_TOKEN:?",
        "${POSTGRES_PASSWORD:?",
        "${CLICKHOUSE_PASSWORD:?",
        "${GRAFANA_ADMIN_PASSWORD:?",
        "\"127.0.0.1:9090:9090\"",
        "\"127.0.0.1:3000:3000\"",
    ] {
        assert!(
            compose.contains(present),
            "docker-compose.yml lacks {present:?}"
        );
    }
}

/// The api limits each key's requests (`API_RATE_LIMIT_PER_SEC`, default 100/s): over it,
/// `429 RATE_LIMITED` with `Retry-After`; another key is not held back. Before the fix one
/// tenant hammering analytics slowed every other tenant's reads.
#[tokio::test]
async fn each_key_is_rate_limited_on_the_api() {
    let env = TestEnv::new().await;
    let api = env
        .spawn_api_with(&[
            ("API_RATE_LIMIT_PER_SEC", "2"),
            ("API_RATE_LIMIT_BURST", "5"),
        ])
        .await;
    let busy = env.create_account("scale").await;
    let quiet = env.create_account("scale").await;
    let url = api.url("/api/v1/analytics?groupBy=cities");
    let mut statuses = Vec::new();
    for _ in 0..8 {
        let response = env
            .http
            .get(&url)
            .header("x-api-key", &busy.live_key)
            .send()
            .await
            .unwrap();
        let status = response.status().as_u16();
        if status == 429 {
            let retry_after: u64 = response.headers()["retry-after"]
                .to_str()
                .unwrap()
                .parse()
                .unwrap();
            assert!((1..=2).contains(&retry_after), "{retry_after}");
            let body: Value = response.json().await.unwrap();
            assert_envelope(429, &body, 429, "RATE_LIMITED");
        }
        statuses.push(status);
    }
    let accepted = statuses.iter().filter(|&&s| s == 200).count();
    assert!((5..=6).contains(&accepted), "{statuses:?}");
    assert_eq!(
        env.caller(&api, &quiet.live_key)
            .analytics("groupBy=cities")
            .await
            .0,
        200
    );
    api.stop().await.unwrap();
}

/// Spec, "Links at scale": a link's QR code encodes its public URL, as SVG or PNG of the
/// asked size. The PNG is decoded here (`png`, then the `rqrr` QR reader) back to the URL.
#[tokio::test]
async fn a_links_qr_code_encodes_its_public_url() {
    let env = TestEnv::new().await;
    let api = env.spawn_api().await;
    let account = env.create_account("free").await;
    let other = env.create_account("free").await;
    env.create_link(&account, "qrcode12").await;
    let (_, link) = env
        .caller(&api, &account.live_key)
        .link_metadata("qrcode12")
        .await;
    let public_url = link["link"]["url"].as_str().unwrap().to_owned();
    let get = |query: &str, key: &str| {
        env.http
            .get(api.url(&format!("/api/v1/referral-links/qrcode12/qr{query}")))
            .header("x-api-key", key)
            .send()
    };

    let png = get("?format=png&size=256", &account.live_key)
        .await
        .unwrap();
    assert_eq!(png.status(), 200);
    assert_eq!(png.headers()["content-type"], "image/png");
    let bytes = png.bytes().await.unwrap();
    let mut reader = png::Decoder::new(std::io::Cursor::new(bytes.to_vec()))
        .read_info()
        .unwrap();
    let mut pixels = vec![0; reader.output_buffer_size()];
    let frame = reader.next_frame(&mut pixels).unwrap();
    let (width, height) = (frame.width as usize, frame.height as usize);
    assert!(
        (200..=256).contains(&width) && width == height,
        "{width}x{height}"
    );
    let mut prepared =
        rqrr::PreparedImage::prepare_from_greyscale(width, height, |x, y| pixels[y * width + x]);
    let grids = prepared.detect_grids();
    assert_eq!(grids.len(), 1);
    let (_, content) = grids[0].decode().unwrap();
    assert_eq!(content, public_url);

    let svg = get("", &account.live_key).await.unwrap();
    assert_eq!(svg.status(), 200);
    assert_eq!(svg.headers()["content-type"], "image/svg+xml");
    let svg = svg.text().await.unwrap();
    // Whole modules, as large as fit in the asked 512 pixels.
    let width: u32 = svg
        .split(r#"width=""#)
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .and_then(|w| w.parse().ok())
        .unwrap_or_else(|| panic!("no width: {svg}"));
    assert!(
        svg.contains("<svg") && (400..=512).contains(&width),
        "{width}"
    );

    for query in ["?size=63", "?size=2049", "?format=gif", "?size=big"] {
        let response = get(query, &account.live_key).await.unwrap();
        assert_eq!(response.status(), 400, "{query}");
    }
    assert_eq!(get("", &other.live_key).await.unwrap().status(), 404);
    api.stop().await.unwrap();
}

/// Spec, "Links at scale": `POST /api/v1/referral-links/bulk` creates up to 1,000 links,
/// answering each item in order (201 and its link, or its own envelope); a bad item never
/// sinks the others, and a whole thousand fits in one request.
#[tokio::test]
async fn bulk_links_answer_each_item_and_one_bad_item_sinks_no_other() {
    let env = TestEnv::new().await;
    let api = env.spawn_api().await;
    let account = env.create_account("free").await;
    let other = env.create_account("free").await;
    env.create_link(&other, "taken123").await;
    let (status, answer) = env
        .caller(&api, &account.live_key)
        .create_links(json!({ "links": [
            { "destinationUrl": "https://shop.example/1", "shortCode": "bulk0001" },
            { "destinationUrl": "not a url" },
            { "destinationUrl": "https://shop.example/3", "shortCode": "taken123" },
            "not an object",
            { "destinationUrl": "https://shop.example/5", "attributionWindowHours": 0 },
            { "destinationUrl": "https://shop.example/6", "campaign": "spring" },
            { "destinationUrl": "https://shop.example/7", "shortCode": "bulk0001" },
        ]}))
        .await;
    assert_eq!(status, 200, "{answer}");
    let results = answer["results"].as_array().unwrap();
    let outcome: Vec<(u64, Option<&str>)> = results
        .iter()
        .map(|r| (r["status"].as_u64().unwrap(), r["error"]["code"].as_str()))
        .collect();
    assert_eq!(
        outcome,
        vec![
            (201, None),
            (400, Some("VALIDATION_ERROR")),
            (409, Some("SHORT_CODE_TAKEN")),
            (400, Some("VALIDATION_ERROR")),
            (400, Some("VALIDATION_ERROR")),
            (201, None),
            (409, Some("SHORT_CODE_TAKEN")),
        ],
        "{answer}"
    );
    assert_eq!(answer["created"], 2);
    assert_eq!(results[0]["link"]["shortCode"], "bulk0001");
    assert_eq!(results[5]["link"]["campaign"], "spring");
    assert!(
        results[1]["error"]["message"]
            .as_str()
            .unwrap()
            .starts_with("destinationUrl"),
        "{answer}"
    );
    let indexes: Vec<u64> = results
        .iter()
        .map(|r| r["index"].as_u64().unwrap())
        .collect();
    assert_eq!(indexes, (0..7).collect::<Vec<u64>>());

    // A thousand at once; a thousand and one is refused whole.
    let thousand: Vec<Value> = (0..1000)
        .map(|i| json!({ "destinationUrl": format!("https://shop.example/p/{i}"), "shortCode": format!("many{i:04}") }))
        .collect();
    let (status, answer) = env
        .caller(&api, &account.live_key)
        .create_links(json!({ "links": thousand }))
        .await;
    assert_eq!((status, answer["created"].as_u64()), (200, Some(1000)));
    let count: i64 = sqlx::query_scalar("SELECT count(*) FROM links WHERE account_id = $1")
        .bind(account.id)
        .fetch_one(&env.pool)
        .await
        .unwrap();
    assert_eq!(count, 1002);
    let too_many: Vec<Value> = (0..1001)
        .map(|i| json!({ "destinationUrl": format!("https://shop.example/{i}") }))
        .collect();
    let (status, answer) = env
        .caller(&api, &account.live_key)
        .create_links(json!({ "links": too_many }))
        .await;
    assert_eq!(
        (status, answer["code"].as_str()),
        (400, Some("VALIDATION_ERROR")),
        "{answer}"
    );
    let (status, answer) = env
        .caller(&api, &account.live_key)
        .create_links(json!({ "links": [] }))
        .await;
    assert_eq!(status, 400, "{answer}");
    api.stop().await.unwrap();
}

/// A bulk request answers as if its items were created one by one, in order: an item that
/// repeats an earlier item's `shortCode` gets 409 even when the earlier item takes longer
/// (here: a verified `domain` costs it one more Postgres read). The items used to run a few
/// at once, and the later twin sometimes won.
#[tokio::test]
async fn a_bulk_item_repeating_an_earlier_short_code_loses_to_it() {
    let env = TestEnv::new().await;
    let api = env.spawn_api().await;
    let account = env.create_account("free").await;
    let (status, _) = env
        .caller(&api, &account.live_key)
        .add_domain(json!({ "domain": "go.bulk.test" }))
        .await;
    assert_eq!(status, 201);
    let verified = env
        .http
        .post(api.url("/admin/v1/domains/go.bulk.test/verify"))
        .bearer_auth(linktrace_integration::ADMIN_TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(verified.status(), 200);

    let pairs = 12;
    let links: Vec<Value> = (0..pairs)
        .flat_map(|i| {
            let code = format!("twin{i:04}");
            [
                json!({ "destinationUrl": format!("https://shop.example/first/{i}"), "shortCode": code, "domain": "go.bulk.test" }),
                json!({ "destinationUrl": format!("https://shop.example/second/{i}"), "shortCode": code }),
            ]
        })
        .collect();
    let (status, answer) = env
        .caller(&api, &account.live_key)
        .create_links(json!({ "links": links }))
        .await;
    assert_eq!(status, 200, "{answer}");
    let statuses: Vec<u64> = answer["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["status"].as_u64().unwrap())
        .collect();
    let in_order: Vec<u64> = (0..pairs).flat_map(|_| [201, 409]).collect();
    assert_eq!(statuses, in_order, "{answer}");
    let second: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM links WHERE account_id = $1 AND destination_url LIKE '%/second/%'",
    )
    .bind(account.id)
    .fetch_one(&env.pool)
    .await
    .unwrap();
    assert_eq!(second, 0);
    api.stop().await.unwrap();
}

/// Spec, "Links at scale": links take up to 10 tags; the link list filters by `tag` and
/// searches by `q` (short code or destination), cursor-paginated; analytics v2 takes `tag`.
#[tokio::test]
async fn tags_find_links_and_filter_analytics() {
    use linktrace_domain::{ClientFacts, EventRecord};
    let env = TestEnv::new().await;
    let api = env.spawn_api().await;
    let consumer = env.spawn_consumer().await;
    let account = env.create_account("free").await;
    let key = Some(account.live_key.as_str());
    let (status, answer) = env.caller(&api, &account.live_key)
        .create_links(json!({ "links": [
                { "destinationUrl": "https://shop.example/spring-sale", "shortCode": "tagged01", "tags": ["spring", "email", "spring"] },
                { "destinationUrl": "https://shop.example/p/2", "shortCode": "tagged02", "tags": ["spring"] },
                { "destinationUrl": "https://shop.example/p/3", "shortCode": "plain003" },
                { "destinationUrl": "https://shop.example/p/4", "tags": (0..11).map(|i| format!("t{i}")).collect::<Vec<_>>() },
                { "destinationUrl": "https://shop.example/p/5", "tags": ["x".repeat(65)] },
                { "destinationUrl": "https://shop.example/p/6", "tags": [""] },
            ]}))
        .await;
    assert_eq!(status, 200, "{answer}");
    let statuses: Vec<u64> = answer["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["status"].as_u64().unwrap())
        .collect();
    assert_eq!(statuses, vec![201, 201, 201, 400, 400, 400], "{answer}");
    assert_eq!(
        answer["results"][0]["link"]["tags"],
        json!(["spring", "email"])
    );
    assert!(
        answer["results"][3]["error"]["message"]
            .as_str()
            .unwrap()
            .starts_with("tags"),
        "{answer}"
    );

    let codes = |page: &Value| -> Vec<String> {
        page["links"]
            .as_array()
            .unwrap()
            .iter()
            .map(|l| l["shortCode"].as_str().unwrap().to_owned())
            .collect()
    };
    let list = |query: &str| {
        let url = api.url(&format!("/api/v1/referral-links{query}"));
        let env = &env;
        async move { env.get(&url, key).await }
    };
    // Newest first (ties by short code, descending). A bulk request creates its items
    // concurrently, so which of the two is newer is read from their creation times.
    let created = |index: usize| {
        let at = answer["results"][index]["link"]["createdAt"]
            .as_str()
            .unwrap();
        chrono::DateTime::parse_from_rfc3339(at).unwrap()
    };
    let newest_first = if (created(1), "tagged02") > (created(0), "tagged01") {
        ["tagged02", "tagged01"]
    } else {
        ["tagged01", "tagged02"]
    };
    let (_, spring) = list("?tag=spring").await;
    assert_eq!(codes(&spring), newest_first, "{spring}");
    let (_, first) = list("?tag=spring&limit=1").await;
    assert_eq!(codes(&first), [newest_first[0]]);
    let cursor = first["nextCursor"].as_str().unwrap().to_owned();
    let (_, second) = list(&format!("?tag=spring&limit=1&cursor={cursor}")).await;
    assert_eq!(codes(&second), [newest_first[1]]);
    let (_, by_destination) = list("?q=SPRING-SALE").await;
    assert_eq!(codes(&by_destination), vec!["tagged01"]);
    let (_, by_code) = list("?q=plain").await;
    assert_eq!(codes(&by_code), vec!["plain003"]);
    let (_, none) = list("?tag=winter").await;
    assert_eq!(codes(&none), Vec::<String>::new());
    // Replaced by a PATCH; `null` clears them.
    let live = env.caller(&api, &account.live_key);
    let (_, changed) = live
        .update_link("plain003", json!({ "tags": ["spring"] }))
        .await;
    assert_eq!(changed["link"]["tags"], json!(["spring"]), "{changed}");
    let (_, cleared) = live.update_link("plain003", json!({ "tags": null })).await;
    assert_eq!(cleared["link"]["tags"], json!([]), "{cleared}");

    // Two clicks on tagged01, one on tagged02, four on plain003.
    let mut clicks = Vec::new();
    for (code, n) in [("tagged01", 2), ("tagged02", 1), ("plain003", 4)] {
        for _ in 0..n {
            let id = uuid::Uuid::new_v4();
            clicks.push(EventRecord::click(
                account.id,
                code,
                id,
                ClientFacts::default(),
                chrono::Utc::now(),
            ));
        }
    }
    env.produce_all(&clicks).await;
    let stored = format!("account_id = '{}' AND event_name = 'click'", account.id);
    assert_eq!(
        env.wait_for_stored(&stored, 7, Duration::from_secs(20))
            .await,
        7
    );
    let count = |query: &'static str| {
        let url = api.url(&format!("/api/v1/analytics?{query}"));
        let http = env.http.clone();
        let key = account.live_key.clone();
        async move {
            let response = http.get(url).header("x-api-key", key).send().await.unwrap();
            assert_eq!(response.status(), 200);
            let body: Value = response.json().await.unwrap();
            body["data"][0]["count"].as_u64().unwrap()
        }
    };
    assert_eq!(count("tag=spring").await, 3);
    assert_eq!(count("tag=email").await, 2);
    assert_eq!(count("tag=winter").await, 0);
    assert_eq!(count("").await, 7);
    consumer.stop().await.unwrap();
    api.stop().await.unwrap();
}
