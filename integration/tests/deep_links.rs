//! Deep links against the real stack: a link's `deepLinkPath` and `data` returned by the
//! attribution (deferred deep linking), `PUT /api/v1/apps`, and the link host's
//! apple-app-site-association and assetlinks.json.

use linktrace_integration::TestEnv;
use serde_json::{json, Value};

#[tokio::test]
async fn an_attribution_returns_the_links_deep_link_and_data() {
    let env = TestEnv::new().await;
    let api = env.spawn_api().await;
    let account = env.create_account("free").await;
    let key = Some(account.live_key.as_str());
    let links = api.url("/api/v1/referral-links");
    let (status, created) = env
        .post(
            &links,
            key,
            json!({
                "destinationUrl": "https://shop.example/p/42",
                "shortCode": "deep1234",
                "deepLinkPath": "/product/42",
                "data": { "campaign": "bf", "discount": 10, "vip": true, "note": null }
            }),
        )
        .await;
    assert_eq!(status, 201, "{created}");
    assert_eq!(created["link"]["deepLinkPath"], "/product/42");

    let (status, answer) = env
        .post(
            &api.url("/api/v1/attributions"),
            key,
            json!({ "userId": "new-user", "shortCode": "deep1234" }),
        )
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
            .post(
                &links,
                key,
                json!({ "destinationUrl": "https://shop.example/", "data": data }),
            )
            .await;
        assert_eq!(status, 400, "{body}");
        let message = body["message"].as_str().unwrap();
        assert!(
            message.starts_with("data") && message.contains(rule),
            "{message}"
        );
    }
    // Changed and cleared like any optional field.
    let response = env
        .http
        .patch(api.url("/api/v1/referral-links/deep1234"))
        .header("x-api-key", &account.live_key)
        .json(&json!({ "deepLinkPath": null, "data": { "campaign": "spring" } }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    assert_eq!(
        (
            body["link"]["deepLinkPath"].clone(),
            body["link"]["data"].clone()
        ),
        (Value::Null, json!({ "campaign": "spring" }))
    );
    api.stop().await.unwrap();
}

#[tokio::test]
async fn the_link_host_serves_every_accounts_apps_in_apples_and_googles_formats() {
    let env = TestEnv::new().await;
    let api = env.spawn_api().await;
    let first = env.create_account("free").await;
    let second = env.create_account("scale").await;
    let fingerprint = ["1f"; 32].join(":");
    let put = |key: String, body: Value| {
        let (env, api) = (&env, &api);
        async move {
            let response = env
                .http
                .put(api.url("/api/v1/apps"))
                .header("x-api-key", key)
                .json(&body)
                .send()
                .await
                .unwrap();
            (
                response.status().as_u16(),
                response.json::<Value>().await.unwrap(),
            )
        }
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
    assert!(
        ids.contains(&&json!("ABCDE12345.com.first.app"))
            && ids.contains(&&json!("ZYXWV98765.com.second.app")),
        "{aasa}"
    );
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
}
