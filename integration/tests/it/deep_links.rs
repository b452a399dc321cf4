//! Deep links against the real stack: a link's `deepLinkPath` and `data` returned by the
//! attribution (deferred deep linking), `PUT /api/v1/apps`, and the link host's
//! apple-app-site-association and assetlinks.json.

use std::time::Duration;

use linktrace_integration::TestEnv;
use serde_json::{json, Value};

#[tokio::test]
async fn an_attribution_returns_the_links_deep_link_and_data() {
    let env = TestEnv::new().await;
    let api = env.spawn_api().await;
    let account = env.create_account("free").await;
    let (status, created) = env
        .caller(&api, &account.live_key)
        .create_link(json!({
            "destinationUrl": "https://shop.example/p/42",
            "shortCode": "deep1234",
            "deepLinkPath": "/product/42",
            "data": { "campaign": "bf", "discount": 10, "vip": true, "note": null }
        }))
        .await;
    assert_eq!(status, 201, "{created}");
    assert_eq!(created["link"]["deepLinkPath"], "/product/42");

    let (status, answer) = env
        .caller(&api, &account.live_key)
        .attribute(json!({ "userId": "new-user", "shortCode": "deep1234" }))
        .await;
    assert_eq!(status, 201, "{answer}");
    assert_eq!(answer["link"]["deepLinkPath"], "/product/42");
    assert_eq!(
        answer["link"]["data"],
        json!({ "campaign": "bf", "discount": 10, "vip": true, "note": null })
    );

    // data is a flat object of at most 4 KB.
    for (data, rule) in [
        (json!({ "nested": { "a": 1 } }), "flat"),
        (json!({ "list": [1] }), "flat"),
        (json!(["a"]), "object"),
        (json!({ "blob": "x".repeat(5000) }), "4 KB"),
    ] {
        let (status, body) = env
            .caller(&api, &account.live_key)
            .create_link(json!({ "destinationUrl": "https://shop.example/", "data": data }))
            .await;
        assert_eq!(status, 400, "{body}");
        let message = body["message"].as_str().unwrap();
        assert!(
            message.starts_with("data") && message.contains(rule),
            "{message}"
        );
    }
    // Changed and cleared like any optional field.
    let (status, body) = env
        .caller(&api, &account.live_key)
        .update_link(
            "deep1234",
            json!({ "deepLinkPath": null, "data": { "campaign": "spring" } }),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        (
            body["link"]["deepLinkPath"].clone(),
            body["link"]["data"].clone()
        ),
        (Value::Null, json!({ "campaign": "spring" }))
    );
    api.stop().await.unwrap();
}

/// Spec, "Attribution to the app": the shared link host lists the apps of no account unless
/// the operator gave it to one (`LINK_HOST_ACCOUNT`). It listed every account's, so each
/// tenant's app claimed every tenant's links.
#[tokio::test]
async fn the_shared_link_host_serves_only_the_apps_of_the_account_it_was_given_to() {
    let env = TestEnv::new().await;
    let api = env.spawn_api().await;
    let first = env.create_account("free").await;
    let second = env.create_account("scale").await;
    let fingerprint = ["1f"; 32].join(":");
    let put = |key: String, body: Value| {
        let caller = env.caller(&api, &key);
        async move { caller.set_apps(body).await }
    };
    let (status, answer) = put(
        first.live_key.clone(),
        json!({
            "ios": { "teamId": "ABCDE12345", "bundleId": "com.first.app" },
            "android": { "packageName": "com.first.app", "sha256CertFingerprints": [fingerprint] }
        }),
    )
    .await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(
        answer["apps"]["android"]["sha256CertFingerprints"][0],
        ["1F"; 32].join(":")
    );
    let (status, _) = put(
        second.live_key.clone(),
        json!({ "ios": { "teamId": "ZYXWV98765", "bundleId": "com.second.app" } }),
    )
    .await;
    assert_eq!(status, 200);
    for (body, field) in [
        (
            json!({ "ios": { "teamId": "abc", "bundleId": "com.x.y" } }),
            "ios.teamId",
        ),
        (
            json!({ "ios": { "teamId": "ABCDE12345", "bundleId": "nodots" } }),
            "ios.bundleId",
        ),
        (
            json!({ "android": { "packageName": "com.x", "sha256CertFingerprints": ["AB:CD"] } }),
            "android.sha256CertFingerprints",
        ),
        (
            json!({ "android": { "packageName": "com.x", "sha256CertFingerprints": [] } }),
            "android.sha256CertFingerprints",
        ),
        (json!({ "windows": {} }), "windows"),
    ] {
        let (status, answer) = put(first.live_key.clone(), body.clone()).await;
        assert_eq!(status, 400, "{body}: {answer}");
        assert!(
            answer["message"].as_str().unwrap().contains(field),
            "{field}: {answer}"
        );
    }

    let shared = api;
    let given = env
        .spawn_api_with(&[("LINK_HOST_ACCOUNT", &first.id.to_string())])
        .await;
    let fetch_from = |api: &linktrace_integration::Running, path: &'static str| {
        let env = &env;
        let url = api.url(path);
        async move {
            let response = env.http.get(url).send().await.unwrap();
            assert_eq!(response.status(), 200, "{path}");
            response.json::<Value>().await.unwrap()
        }
    };
    assert_eq!(
        fetch_from(&shared, "/.well-known/apple-app-site-association").await["applinks"]["details"],
        json!([]),
        "a host given to no account lists no account's app"
    );
    assert_eq!(
        fetch_from(&shared, "/.well-known/assetlinks.json").await,
        json!([])
    );
    let api = given;
    let fetch = |path: &'static str| {
        let (env, api) = (&env, &api);
        async move {
            let response = env.http.get(api.url(path)).send().await.unwrap();
            assert_eq!(response.status(), 200, "{path}");
            assert_eq!(
                response.headers()["content-type"],
                "application/json",
                "{path}"
            );
            response.json::<Value>().await.unwrap()
        }
    };
    let aasa = fetch("/.well-known/apple-app-site-association").await;
    let details = aasa["applinks"]["details"].as_array().unwrap();
    let ids: Vec<&Value> = details.iter().map(|d| &d["appIDs"][0]).collect();
    assert_eq!(ids, vec![&json!("ABCDE12345.com.first.app")], "{aasa}");
    assert!(
        details
            .iter()
            .all(|d| d["components"][0]["/"] == "/l/*" && d["paths"][0] == "/l/*"),
        "{aasa}"
    );
    let assetlinks = fetch("/.well-known/assetlinks.json").await;
    let upper = ["1F"; 32].join(":");
    assert_eq!(
        assetlinks,
        json!([{
            "relation": ["delegate_permission/common.handle_all_urls"],
            "target": { "namespace": "android_app", "package_name": "com.first.app", "sha256_cert_fingerprints": [upper] }
        }])
    );
    api.stop().await.unwrap();
    shared.stop().await.unwrap();
}

const ANDROID: &str = "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36";

/// The `referrer` parameter of a Play Store URL, decoded once: what Google Play's Install
/// Referrer API hands the app.
fn play_referrer(location: &str) -> String {
    let url = url::Url::parse(location).unwrap();
    assert_eq!(url.host_str(), Some("play.google.com"), "{location}");
    url.query_pairs()
        .find(|(name, _)| name == "referrer")
        .map(|(_, value)| value.into_owned())
        .unwrap_or_else(|| panic!("no referrer in {location}"))
}

/// Spec, "Attribution to the app": an Android click on a link whose Play Store URL is its
/// `androidUrl` leaves with the click id (and its UTM values) in Play's `referrer`; the
/// app's `installReferrer` then matches that click before anything else, with its evidence,
/// and never another account's.
#[tokio::test]
async fn a_play_redirect_carries_the_click_and_its_install_referrer_matches_it_first() {
    let env = TestEnv::new().await;
    let api = env.spawn_api().await;
    let consumer = env.spawn_consumer().await;
    let account = env.create_account("free").await;
    let other = env.create_account("free").await;
    env.create_link(&account, "play1234").await;
    env.create_link(&account, "else1234").await;

    let follow = |path: &'static str| {
        env.http
            .get(api.url(path))
            .header("user-agent", ANDROID)
            .send()
    };
    let clicked = follow("/l/play1234?utm_source=ads&utm_campaign=spring")
        .await
        .unwrap();
    assert_eq!(clicked.status(), 302);
    let click_id = clicked.headers()["x-linktrace-click-id"]
        .to_str()
        .unwrap()
        .to_owned();
    let location = clicked.headers()["location"].to_str().unwrap().to_owned();
    let referrer = play_referrer(&location);
    assert_eq!(
        referrer,
        format!("linktrace_click_id={click_id}&utm_source=ads&utm_campaign=spring")
    );
    // Another click, whose id the app also sends: the referrer's click wins.
    let other_click = follow("/l/else1234").await.unwrap();
    let other_click_id = other_click.headers()["x-linktrace-click-id"]
        .to_str()
        .unwrap()
        .to_owned();
    let clicks = format!("account_id = '{}' AND event_name = 'click'", account.id);
    assert_eq!(
        env.wait_for_stored(&clicks, 2, Duration::from_secs(20))
            .await,
        2
    );

    let (status, answer) = env
        .caller(&api, &account.live_key)
        .attribute(
            json!({ "userId": "droid-1", "installReferrer": referrer, "clickId": other_click_id }),
        )
        .await;
    assert_eq!(status, 201, "{answer}");
    let attribution = &answer["attribution"];
    assert_eq!(attribution["matchType"], "install_referrer", "{answer}");
    assert_eq!(attribution["clickId"], click_id.as_str());
    assert_eq!(attribution["shortCode"], "play1234");
    let evidence = &attribution["evidence"];
    assert!(evidence["clickedAt"].is_string(), "{evidence}");
    let seconds = evidence["secondsToInstall"].as_i64().unwrap();
    assert!((0..120).contains(&seconds), "{evidence}");
    assert_eq!(evidence["windowHours"], 24, "{evidence}");
    assert_eq!(evidence["windowSource"], "service", "{evidence}");
    // A repeat answers with the original, evidence and all.
    let (status, again) = env
        .caller(&api, &account.live_key)
        .attribute(json!({ "userId": "droid-1" }))
        .await;
    assert_eq!(status, 200);
    assert_eq!(again["attribution"], answer["attribution"]);

    // The referrer as some apps pass it on, still URL-encoded, matches alike.
    let encoded: String = url::form_urlencoded::byte_serialize(referrer.as_bytes()).collect();
    let (_, encoded_answer) = env
        .caller(&api, &account.live_key)
        .attribute(json!({ "userId": "droid-2", "installReferrer": encoded }))
        .await;
    assert_eq!(
        encoded_answer["attribution"]["matchType"],
        "install_referrer"
    );

    // Another account's app with this referrer: no match.
    let (status, foreign) = env
        .caller(&api, &other.live_key)
        .attribute(json!({ "userId": "droid-1", "installReferrer": referrer }))
        .await;
    assert_eq!(status, 201, "{foreign}");
    assert_eq!(foreign["attribution"]["matchType"], "organic");
    assert_eq!(foreign["attribution"]["evidence"]["clickedAt"], Value::Null);
    // A referrer without our click id (an organic Play install) is no reason to refuse.
    let (status, organic) = env.caller(&api, &account.live_key)
        .attribute(json!({ "userId": "droid-3", "installReferrer": "utm_source=google-play&utm_medium=organic" }))
        .await;
    assert_eq!(status, 201, "{organic}");
    assert_eq!(organic["attribution"]["matchType"], "organic");
    consumer.stop().await.unwrap();
    api.stop().await.unwrap();
}

/// A link's `attributionWindowHours` (1-720) decides, at its edge, which of its clicks an
/// install may still be attributed to: by click id and by fingerprint alike, the evidence
/// naming the window and where it came from.
#[tokio::test]
async fn a_links_own_attribution_window_is_honoured_at_its_edge() {
    use linktrace_domain::{ClientFacts, EventRecord};
    let env = TestEnv::new().await;
    let api = env.spawn_api().await;
    let consumer = env.spawn_consumer().await;
    let account = env.create_account("free").await;
    for bad in [json!(0), json!(721), json!(1.5), json!("2")] {
        let (status, body) = env
            .caller(&api, &account.live_key)
            .create_link(
                json!({ "destinationUrl": "https://shop.example/", "attributionWindowHours": bad }),
            )
            .await;
        assert_eq!(status, 400, "{bad}: {body}");
        assert!(
            body["message"]
                .as_str()
                .unwrap()
                .starts_with("attributionWindowHours"),
            "{body}"
        );
    }
    let (status, created) = env.caller(&api, &account.live_key)
        .create_link(json!({ "destinationUrl": "https://shop.example/", "shortCode": "hour1234", "attributionWindowHours": 1 }))
        .await;
    assert_eq!(status, 201, "{created}");
    assert_eq!(created["link"]["attributionWindowHours"], 1);

    let now = chrono::Utc::now();
    let click = |minutes_ago: i64| {
        let id = uuid::Uuid::new_v4();
        let client = ClientFacts {
            ip: Some("198.51.100.20".into()),
            platform: Some("android".into()),
            click_id: Some(id.to_string()),
            ..ClientFacts::default()
        };
        let record = EventRecord::click(
            account.id,
            "hour1234",
            id,
            client,
            now - chrono::Duration::minutes(minutes_ago),
        );
        (id.to_string(), record)
    };
    let (inside, inside_click) = click(59);
    let (outside, outside_click) = click(61);
    env.produce_all(&[inside_click, outside_click]).await;
    let clicks = format!("account_id = '{}' AND event_name = 'click'", account.id);
    assert_eq!(
        env.wait_for_stored(&clicks, 2, Duration::from_secs(20))
            .await,
        2
    );
    let live = env.caller(&api, &account.live_key);
    let attribute = |user: &'static str, body: Value| {
        let mut body = body;
        body["userId"] = json!(user);
        live.attribute(body)
    };
    let (_, by_inside) = attribute("u-inside", json!({ "clickId": inside })).await;
    assert_eq!(
        by_inside["attribution"]["matchType"], "click_id",
        "{by_inside}"
    );
    let evidence = &by_inside["attribution"]["evidence"];
    assert_eq!(
        (
            evidence["windowHours"].clone(),
            evidence["windowSource"].clone()
        ),
        (json!(1), json!("link"))
    );
    let seconds = evidence["secondsToInstall"].as_i64().unwrap();
    assert!((59 * 60..61 * 60).contains(&seconds), "{evidence}");
    let (_, by_outside) = attribute("u-outside", json!({ "clickId": outside })).await;
    assert_eq!(
        by_outside["attribution"]["matchType"], "organic",
        "{by_outside}"
    );
    // The fingerprint weighs only the click inside its window.
    let (_, by_device) = attribute(
        "u-device",
        json!({ "ip": "198.51.100.20", "platform": "android" }),
    )
    .await;
    assert_eq!(
        by_device["attribution"]["matchType"], "fingerprint",
        "{by_device}"
    );
    assert_eq!(by_device["attribution"]["clickId"], inside.as_str());
    assert_eq!(by_device["attribution"]["evidence"]["candidates"], 1);
    consumer.stop().await.unwrap();
    api.stop().await.unwrap();
}

/// Spec, "Attribution to the app", opens: an installed app opened through a link records
/// an `open` on it for that user and gets the link's deep link; `event=opens` counts them,
/// and they are no custom event.
#[tokio::test]
async fn an_open_through_a_link_is_recorded_answered_and_counted() {
    let env = TestEnv::new().await;
    let api = env.spawn_api().await;
    let consumer = env.spawn_consumer().await;
    let account = env.create_account("free").await;
    let other = env.create_account("free").await;
    env.create_link(&other, "theirs12").await;
    let (status, created) = env
        .caller(&api, &account.live_key)
        .create_link(
            json!({ "destinationUrl": "https://shop.example/p/7", "shortCode": "open1234",
                    "deepLinkPath": "/product/7", "data": { "promo": "back" } }),
        )
        .await;
    assert_eq!(status, 201, "{created}");
    let link_url = created["link"]["url"].as_str().unwrap().to_owned();

    let (status, by_url) = env
        .caller(&api, &account.live_key)
        .report_open(json!({ "url": link_url, "userId": "u-1" }))
        .await;
    assert_eq!(status, 200, "{by_url}");
    assert_eq!(by_url["link"]["deepLinkPath"], "/product/7");
    assert_eq!(by_url["link"]["data"], json!({ "promo": "back" }));
    let (status, by_code) = env
        .caller(&api, &account.live_key)
        .report_open(json!({ "shortCode": "open1234", "userId": "u-2", "clickId": "c-9" }))
        .await;
    assert_eq!(status, 200, "{by_code}");
    for (body, expected, code) in [
        (
            json!({ "shortCode": "theirs12", "userId": "u-3" }),
            404,
            "LINK_NOT_FOUND",
        ),
        (
            json!({ "url": "https://go.example/l/nothere1", "userId": "u-3" }),
            404,
            "LINK_NOT_FOUND",
        ),
        (json!({ "userId": "u-3" }), 400, "VALIDATION_ERROR"),
        (
            json!({ "url": "not a url", "userId": "u-3" }),
            400,
            "VALIDATION_ERROR",
        ),
        (json!({ "shortCode": "open1234" }), 400, "VALIDATION_ERROR"),
    ] {
        let (status, answer) = env
            .caller(&api, &account.live_key)
            .report_open(body.clone())
            .await;
        assert_eq!(
            (status, answer["code"].as_str()),
            (expected, Some(code)),
            "{body}: {answer}"
        );
    }

    let stored = format!("account_id = '{}' AND event_name = 'open'", account.id);
    assert_eq!(
        env.wait_for_stored(&stored, 2, Duration::from_secs(20))
            .await,
        2
    );
    let count = |event: &'static str| {
        let url = api.url(&format!("/api/v1/analytics?event={event}"));
        let http = env.http.clone();
        let key = account.live_key.clone();
        async move {
            let response = http.get(url).header("x-api-key", key).send().await.unwrap();
            assert_eq!(response.status(), 200);
            let body: Value = response.json().await.unwrap();
            body["data"][0]["count"].as_u64().unwrap()
        }
    };
    assert_eq!(count("opens").await, 2);
    assert_eq!(count("events").await, 0);
    consumer.stop().await.unwrap();
    api.stop().await.unwrap();
}

/// Spec, "Attribution to the app", link domains: a domain is one account's (another's add is
/// `409 DOMAIN_TAKEN`), verified by a DNS TXT record (looked up on a resolver this test runs
/// on loopback) or by the operator; on a verified domain `/{shortCode}` serves that
/// account's links only and the well-known files list that account's apps only, also
/// through the gateway; a link may name its account's verified domain and no other.
#[tokio::test]
async fn two_accounts_domains_each_serve_only_their_own_links_and_apps() {
    use linktrace_integration::dns::TxtServer;
    let env = TestEnv::new().await;
    let dns = TxtServer::start().await;
    let api = env
        .spawn_api_with(&[("DNS_RESOLVER", &dns.address.to_string())])
        .await;
    let gateway = linktrace_integration::Gateway::start(api.port, api.port, "off").await;
    let acme = env.create_account("free").await;
    let bolt = env.create_account("free").await;
    env.create_link(&acme, "acme1234").await;
    env.create_link(&bolt, "bolt1234").await;

    let (status, added) = env
        .caller(&api, &acme.live_key)
        .add_domain(json!({ "domain": "Go.Acme.test" }))
        .await;
    assert_eq!(status, 201, "{added}");
    let domain = &added["domain"];
    assert_eq!(
        (domain["domain"].as_str(), domain["verified"].as_bool()),
        (Some("go.acme.test"), Some(false))
    );
    assert_eq!(domain["verification"]["type"], "TXT");
    assert_eq!(domain["verification"]["name"], "_linktrace.go.acme.test");
    let value = domain["verification"]["value"].as_str().unwrap().to_owned();
    assert!(value.starts_with("linktrace-verify="), "{value}");
    // Again by its account: the same domain, 200. By another: 409. With a test key: 403.
    let (status, again) = env
        .caller(&api, &acme.live_key)
        .add_domain(json!({ "domain": "go.acme.test" }))
        .await;
    assert_eq!(
        (status, again["domain"]["verification"]["value"].as_str()),
        (200, Some(value.as_str()))
    );
    let (status, taken) = env
        .caller(&api, &bolt.live_key)
        .add_domain(json!({ "domain": "go.acme.test" }))
        .await;
    assert_eq!(
        (status, taken["code"].as_str()),
        (409, Some("DOMAIN_TAKEN")),
        "{taken}"
    );
    let (status, _) = env
        .caller(&api, &acme.test_key)
        .add_domain(json!({ "domain": "test.acme.test" }))
        .await;
    assert_eq!(status, 403);
    for bad in ["acme", "203.0.113.9", "go acme.test", "-x.acme.test"] {
        let (status, body) = env
            .caller(&api, &acme.live_key)
            .add_domain(json!({ "domain": bad }))
            .await;
        assert_eq!(status, 400, "{bad}: {body}");
    }

    // DNS: not there yet, then a wrong value, then the right one.
    let check = |account: &linktrace_integration::TestAccount, domain: &str| {
        let url = api.url(&format!("/api/v1/domains/{domain}/verify"));
        let key = account.live_key.clone();
        let env = &env;
        async move { env.post(&url, Some(&key), json!({})).await }
    };
    let (status, missing) = check(&acme, "go.acme.test").await;
    assert_eq!(
        (status, missing["found"].as_bool()),
        (200, Some(false)),
        "{missing}"
    );
    assert_eq!(missing["domain"]["verified"], false);
    dns.publish("_linktrace.go.acme.test", "linktrace-verify=not-the-token");
    let (_, wrong) = check(&acme, "go.acme.test").await;
    assert_eq!(wrong["found"], false, "{wrong}");
    dns.publish("_linktrace.go.acme.test", &value);
    let (status, verified) = check(&acme, "go.acme.test").await;
    assert_eq!(
        (status, verified["found"].as_bool()),
        (200, Some(true)),
        "{verified}"
    );
    assert_eq!(
        (
            verified["domain"]["verified"].as_bool(),
            verified["domain"]["verifiedBy"].as_str()
        ),
        (Some(true), Some("dns"))
    );
    let (status, _) = check(&bolt, "go.acme.test").await;
    assert_eq!(status, 404, "another account's domain");

    // The operator verifies the other account's domain.
    let (status, _) = env
        .caller(&api, &bolt.live_key)
        .add_domain(json!({ "domain": "links.bolt.test" }))
        .await;
    assert_eq!(status, 201);
    let operator = env
        .http
        .post(api.url("/admin/v1/domains/links.bolt.test/verify"))
        .bearer_auth(linktrace_integration::ADMIN_TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(operator.status(), 200);
    let operator: Value = operator.json().await.unwrap();
    assert_eq!(operator["domain"]["verifiedBy"], "operator", "{operator}");

    // Each domain serves its own account's codes only, directly and through the gateway.
    let visit = |base: String, host: &'static str, path: &'static str| {
        let http = env.http.clone();
        async move {
            http.get(format!("{base}{path}"))
                .header("host", host)
                .send()
                .await
                .unwrap()
                .status()
                .as_u16()
        }
    };
    let direct = api.url("");
    let through = gateway.url("");
    for base in [direct.clone(), through.clone()] {
        assert_eq!(
            visit(base.clone(), "go.acme.test", "/acme1234").await,
            302,
            "{base}"
        );
        assert_eq!(
            visit(base.clone(), "go.acme.test", "/bolt1234").await,
            404,
            "{base}"
        );
        assert_eq!(
            visit(base.clone(), "go.acme.test", "/l/bolt1234").await,
            404,
            "{base}"
        );
        assert_eq!(
            visit(base.clone(), "links.bolt.test", "/bolt1234").await,
            302,
            "{base}"
        );
        assert_eq!(
            visit(base.clone(), "links.bolt.test", "/acme1234").await,
            404,
            "{base}"
        );
        // A host that is no verified domain: the shared host, every link.
        assert_eq!(
            visit(base.clone(), "unknown.example", "/l/acme1234").await,
            302,
            "{base}"
        );
    }

    // Each host lists its own account's apps.
    for (account, team) in [(&acme, "AAAAA11111"), (&bolt, "BBBBB22222")] {
        let (status, body) = env
            .caller(&api, &account.live_key)
            .set_apps(json!({ "ios": { "teamId": team, "bundleId": "com.example.app" } }))
            .await;
        assert_eq!(status, 200, "{body}");
    }
    let aasa = |base: String, host: &'static str| {
        let http = env.http.clone();
        async move {
            let response = http
                .get(format!("{base}/.well-known/apple-app-site-association"))
                .header("host", host)
                .send()
                .await
                .unwrap();
            assert_eq!(response.status(), 200);
            response.json::<Value>().await.unwrap()["applinks"]["details"].clone()
        }
    };
    for base in [direct.clone(), through.clone()] {
        let on_acme = aasa(base.clone(), "go.acme.test").await;
        assert_eq!(on_acme.as_array().unwrap().len(), 1, "{on_acme}");
        assert_eq!(on_acme[0]["appIDs"][0], "AAAAA11111.com.example.app");
        assert_eq!(on_acme[0]["components"][0]["/"], "/*");
        let on_bolt = aasa(base.clone(), "links.bolt.test").await;
        assert_eq!(
            on_bolt[0]["appIDs"][0], "BBBBB22222.com.example.app",
            "{on_bolt}"
        );
        assert_eq!(aasa(base.clone(), "unknown.example").await, json!([]));
    }

    // A link on the account's domain has its URL there; another account's domain is refused.
    let (status, on_domain) = env.caller(&api, &acme.live_key)
        .create_link(json!({ "destinationUrl": "https://acme.example/", "shortCode": "ondomain1", "domain": "go.acme.test" }))
        .await;
    assert_eq!(status, 201, "{on_domain}");
    assert_eq!(on_domain["link"]["url"], "https://go.acme.test/ondomain1");
    assert_eq!(on_domain["link"]["domain"], "go.acme.test");
    let (status, refused) = env
        .caller(&api, &acme.live_key)
        .create_link(
            json!({ "destinationUrl": "https://acme.example/", "domain": "links.bolt.test" }),
        )
        .await;
    assert_eq!(status, 400, "{refused}");
    assert!(
        refused["message"].as_str().unwrap().starts_with("domain"),
        "{refused}"
    );

    let listed = env.caller(&api, &acme.live_key).domains().await.1;
    assert_eq!(listed["domains"].as_array().unwrap().len(), 1, "{listed}");
    // Removed: not another account's to remove; gone, the host is the shared one again.
    let remove = |account: &linktrace_integration::TestAccount| {
        let caller = env.caller(&api, &account.live_key);
        async move { caller.remove_domain("go.acme.test").await.0 }
    };
    assert_eq!(remove(&bolt).await, 404);
    assert_eq!(remove(&acme).await, 200);
    assert_eq!(
        visit(direct.clone(), "go.acme.test", "/bolt1234").await,
        302
    );
    api.stop().await.unwrap();
}

/// Which account a host serves is cached by every api instance, and a change made through
/// one instance reaches the others when it commits (a `domains:` change notification), not
/// at the end of a TTL: a domain verified through A makes B serve only its owner's links,
/// and a domain removed through A makes B serve every link again. Before, B kept its copy
/// for up to two seconds after each change.
#[tokio::test]
async fn a_domain_change_through_one_instance_reaches_every_instance_at_once() {
    let env = TestEnv::new().await;
    let a = env.spawn_api().await;
    let b = env.spawn_api().await;
    let acme = env.create_account("free").await;
    let bolt = env.create_account("free").await;
    env.create_link(&bolt, "bolt5678").await;
    let visit_b = || {
        let http = env.http.clone();
        let url = b.url("/bolt5678");
        async move {
            http.get(url)
                .header("host", "go.acme.test")
                .send()
                .await
                .unwrap()
                .status()
                .as_u16()
        }
    };
    // B within this long of the change: well under the two seconds its copy used to live.
    let b_answers_within = |expected: u16| async move {
        let deadline = std::time::Instant::now() + Duration::from_millis(1500);
        loop {
            let status = visit_b().await;
            if status == expected || std::time::Instant::now() > deadline {
                return status;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    };

    let (status, _) = env
        .caller(&a, &acme.live_key)
        .add_domain(json!({ "domain": "go.acme.test" }))
        .await;
    assert_eq!(status, 201);
    // Not yet verified: the shared host, every link (and B remembers that).
    assert_eq!(visit_b().await, 302);
    let verified = env
        .http
        .post(a.url("/admin/v1/domains/go.acme.test/verify"))
        .bearer_auth(linktrace_integration::ADMIN_TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(verified.status(), 200);
    assert_eq!(
        b_answers_within(404).await,
        404,
        "verified: acme's links only"
    );

    assert_eq!(visit_b().await, 404);
    let (status, removed) = env
        .caller(&a, &acme.live_key)
        .remove_domain("go.acme.test")
        .await;
    assert_eq!(status, 200, "{removed}");
    assert_eq!(
        b_answers_within(302).await,
        302,
        "removed: the shared host again"
    );
    a.stop().await.unwrap();
    b.stop().await.unwrap();
}

/// Installs by how they were matched (the dashboard's panel): each match type counted over
/// the range, per environment and account, every type present (0 where none).
#[tokio::test]
async fn installs_by_match_type_count_a_range_per_environment() {
    let env = TestEnv::new().await;
    let api = env.spawn_api().await;
    let account = env.create_account("scale").await;
    let other = env.create_account("scale").await;
    for (who, environment, user, match_type, at) in [
        (&account, "live", "u1", "short_code", "2026-11-10T10:00:00Z"),
        (&account, "live", "u2", "short_code", "2026-11-12T23:59:59Z"),
        (&account, "live", "u3", "organic", "2026-11-11T00:00:00Z"),
        (
            &account,
            "live",
            "u4",
            "install_referrer",
            "2026-11-11T08:00:00Z",
        ),
        // Outside the range: a second before it, and at its (exclusive) end.
        (
            &account,
            "live",
            "u5",
            "fingerprint",
            "2026-11-09T23:59:59Z",
        ),
        (
            &account,
            "live",
            "u6",
            "fingerprint",
            "2026-11-13T00:00:00Z",
        ),
        // Test traffic, and another account.
        (&account, "test", "u7", "click_id", "2026-11-11T00:00:00Z"),
        (&other, "live", "u8", "click_id", "2026-11-11T00:00:00Z"),
    ] {
        sqlx::query(
            "INSERT INTO attributions (account_id, environment, user_id, match_type, created_at) \
             VALUES ($1, $2, $3, $4, $5::timestamptz)",
        )
        .bind(who.id)
        .bind(environment)
        .bind(user)
        .bind(match_type)
        .bind(at)
        .execute(&env.pool)
        .await
        .unwrap();
    }
    let url = api
        .url("/api/v1/attributions/match-types?from=2026-11-10T00:00:00Z&to=2026-11-13T00:00:00Z");
    let (status, live) = env.get(&url, Some(&account.live_key)).await;
    assert_eq!(status, 200, "{live}");
    assert_eq!(
        live["installs"],
        json!({ "click_id": 0, "fingerprint": 0, "install_referrer": 1, "organic": 1, "short_code": 2 })
    );
    let (_, test) = env.get(&url, Some(&account.test_key)).await;
    assert_eq!(test["installs"]["click_id"], 1, "{test}");
    assert_eq!(test["installs"]["short_code"], 0, "{test}");
    // Dates are days in the time zone: 10-12 November in Los Angeles ends 08:00Z on the 13th.
    let (_, dated) = env
        .caller(&api, &account.live_key)
        .match_types("from=2026-11-10&to=2026-11-12&timezone=America/Los_Angeles")
        .await;
    assert_eq!(
        dated["installs"]["fingerprint"], 1,
        "u6 at 00:00Z on the 13th: {dated}"
    );
    for bad in [
        "from=yesterday",
        "timezone=Mars/Olympus",
        "shortCode=abc12345",
    ] {
        let (status, body) = env.caller(&api, &account.live_key).match_types(bad).await;
        assert_eq!(
            (status, body["code"].as_str()),
            (400, Some("VALIDATION_ERROR")),
            "{bad}: {body}"
        );
    }
    let (status, _) = env.get(&url, None).await;
    assert_eq!(status, 401);
    api.stop().await.unwrap();
}
