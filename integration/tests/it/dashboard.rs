//! The dashboard page in a real headless browser (Debian's Chromium): it loads the
//! account's links, funnel, series and webhooks through the public API and shows them.

use std::process::Command;
use std::time::Duration;

use linktrace_integration::receiver::WebhookReceiver;
use linktrace_integration::{event, TestEnv};

const IPHONE: &str = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.0 Mobile/15E148 Safari/604.1";
const FIREFOX: &str =
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:120.0) Gecko/20100101 Firefox/120.0";
const GOOGLEBOT: &str = "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)";

fn chromium() -> Option<&'static str> {
    ["/usr/bin/chromium", "/usr/bin/chromium-browser"]
        .into_iter()
        .find(|p| std::path::Path::new(p).exists())
}

/// Headless Chromium on `url` with `action` (`--dump-dom`, `--screenshot=…`), in a fresh
/// profile, without the background networking this closed machine refuses.
fn chromium_on(url: &str, action: &[&str]) -> std::process::Output {
    let browser = chromium().expect("chromium is installed by deploy/test.sh");
    let profile = tempdir();
    let output = Command::new(browser)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--hide-scrollbars",
            &format!("--user-data-dir={}", profile.display()),
            "--virtual-time-budget=10000",
        ])
        .args(action)
        .arg(url)
        .output()
        .expect("chromium runs");
    let _ = std::fs::remove_dir_all(&profile);
    output
}

/// The page's DOM after its scripts ran.
fn render(url: &str) -> String {
    String::from_utf8_lossy(&chromium_on(url, &["--dump-dom"]).stdout).into_owned()
}

/// A PNG of the rendered page (for the README: `LINKTRACE_DASHBOARD_SCREENSHOT=docs/dashboard.png`).
fn screenshot(url: &str, path: &str) {
    let output = chromium_on(
        url,
        &["--window-size=1100,1900", &format!("--screenshot={path}")],
    );
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
}

fn tempdir() -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("lt-chromium-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

#[tokio::test]
async fn the_dashboard_shows_links_funnel_and_series_for_the_pasted_key() {
    let env = TestEnv::new().await;
    let api = env.spawn_api().await;
    let ingest = env.spawn_ingest().await;
    let consumer = env.spawn_consumer().await;
    let webhooks = env.spawn_webhooks_with(&[]).await;
    let account = env.create_account("scale").await;
    env.create_link(&account, "dash1234").await;
    env.create_link(&account, "dash5678").await;
    // A webhook whose receiver takes every purchase, and one whose receiver is failing.
    let receiver = WebhookReceiver::start().await;
    let failing = WebhookReceiver::start().await;
    failing.answer(500);
    let mut hooks = Vec::new();
    for target in [&receiver, &failing] {
        let (status, created) = env
            .post(
                &api.url("/api/v1/webhooks"),
                Some(&account.live_key),
                serde_json::json!({ "url": target.url(), "events": ["purchase"] }),
            )
            .await;
        assert_eq!(status, 201, "{created}");
        hooks.push(created["id"].as_str().unwrap().to_owned());
    }
    tokio::time::sleep(Duration::from_millis(1200)).await;
    // Two people (Berlin on an iPhone from a newsletter, Tokyo on Firefox) and a crawler,
    // through the trusted gateway address (the test api trusts loopback, as deploy does).
    for (user_agent, ip, query) in [
        (
            IPHONE,
            "198.51.100.7",
            "?utm_source=newsletter&utm_campaign=bf",
        ),
        (FIREFOX, "203.0.113.7", ""),
        (GOOGLEBOT, "192.0.2.7", ""),
    ] {
        let response = env
            .http
            .get(api.url(&format!("/l/dash1234{query}")))
            .header("user-agent", user_agent)
            .header("x-forwarded-for", ip)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 302);
    }
    for (order, amount, currency) in [("a", 10.0, "EUR"), ("b", 2.5, "EUR"), ("c", 7.0, "USD")] {
        let mut purchase = event("dash1234", "purchase", Some(order));
        purchase["revenue"] = serde_json::json!({ "amount": amount, "currency": currency });
        let (status, _) = env
            .post(
                &ingest.url("/api/v1/events"),
                Some(&account.live_key),
                purchase,
            )
            .await;
        assert_eq!(status, 202);
    }
    // An installed app opened through the link (re-engagement): the funnel shows opens.
    let (status, _) = env
        .post(
            &api.url("/api/v1/opens"),
            Some(&account.live_key),
            serde_json::json!({ "shortCode": "dash1234", "userId": "returning-user" }),
        )
        .await;
    assert_eq!(status, 200);
    let all = format!("account_id = '{}'", account.id);
    assert_eq!(
        env.wait_for_stored(&all, 7, Duration::from_secs(20)).await,
        7
    );

    receiver
        .wait_until(Duration::from_secs(20), |r| r.len() >= 3)
        .await;
    failing
        .wait_until(Duration::from_secs(20), |r| !r.is_empty())
        .await;

    let url = api.url(&format!("/dashboard#key={}", account.live_key));
    let dom = tokio::task::spawn_blocking(move || render(&url))
        .await
        .unwrap();
    assert!(
        dom.contains(r#"data-loaded="true""#),
        "the page did not finish loading: {dom}"
    );
    // The webhooks with their recent deliveries: three delivered (200), and the failing
    // endpoint's attempts waiting for their retry (500).
    for hook in &hooks {
        assert!(
            dom.contains(&format!(r#"data-webhook-id="{hook}""#)),
            "{dom}"
        );
    }
    let delivered = dom
        .matches(r#"<td>purchase</td><td>1</td><td>delivered</td><td>200</td></tr>"#)
        .count();
    assert_eq!(delivered, 3, "{dom}");
    // Which attempt is on show depends on how many retries the failing endpoint has had by
    // the time the page is read (the list holds the latest): any, retrying after a 500.
    assert!(
        dom.contains(r#"<td>retrying</td><td>500</td></tr>"#),
        "{dom}"
    );
    assert!(
        dom.contains(r#"data-short-code="dash1234""#)
            && dom.contains(r#"data-short-code="dash5678""#),
        "{dom}"
    );
    assert!(
        dom.contains(r#"<tr data-step="clicks"><td>clicks</td><td>2</td></tr>"#),
        "{dom}"
    );
    assert!(
        dom.contains(r#"<tr data-step="purchase"><td>purchase</td><td>3</td></tr>"#),
        "{dom}"
    );
    assert!(
        dom.contains(r#"<tr data-step="opens"><td>opens</td><td>1</td></tr>"#),
        "{dom}"
    );
    assert!(
        // Two human clicks, three purchases and the open.
        dom.contains(r#"class="bar""#) && dom.contains(r#"data-count="6""#),
        "{dom}"
    );
    // The click panels: people only, by country, device, OS, browser, referrer and UTM.
    for row in [
        r#"<tr data-breakdown="countries" data-value="DE"><td>DE<span class="meter" style="width: 100%;"></span></td><td>1</td></tr>"#,
        r#"<tr data-breakdown="countries" data-value="JP"><td>JP"#,
        r#"<tr data-breakdown="devices" data-value="mobile"><td>mobile"#,
        r#"<tr data-breakdown="devices" data-value="desktop"><td>desktop"#,
        r#"<tr data-breakdown="os" data-value="iOS"><td>iOS"#,
        r#"<tr data-breakdown="browsers" data-value="Firefox"><td>Firefox"#,
        r#"<tr data-breakdown="referrers" data-value=""><td>(direct)"#,
        r#"<tr data-breakdown="utm_sources" data-value="newsletter"><td>newsletter"#,
        r#"<tr data-breakdown="utm_campaigns" data-value="bf"><td>bf"#,
    ] {
        assert!(dom.contains(row), "{row} missing: {dom}");
    }
    assert!(
        !dom.contains(r#"data-value="bot""#),
        "bots are not clicks: {dom}"
    );
    // Revenue of the post-install events, per currency.
    assert!(
        dom.contains(r#"<tr data-currency="EUR"><td>EUR</td><td>12.50</td></tr>"#),
        "{dom}"
    );
    assert!(
        dom.contains(r#"<tr data-currency="USD"><td>USD</td><td>7.00</td></tr>"#),
        "{dom}"
    );
    assert!(
        !dom.contains(r#"data-value="US""#),
        "the crawler's country: {dom}"
    );
    // 30 days per day by default; a range of 24 hours from the fragment is hourly.
    assert!(dom.contains(r#"data-interval="day""#), "{dom}");
    let clicks_per_bar = |dom: &str| -> u64 {
        let svg = &dom[dom.find(r#"<svg id="clicks""#).unwrap()..];
        let svg = &svg[..svg.find("</svg>").unwrap()];
        svg.match_indices(r#"data-count=""#)
            .map(|(at, _)| {
                let rest = &svg[at + 12..];
                rest[..rest.find('"').unwrap()].parse::<u64>().unwrap()
            })
            .sum()
    };
    assert_eq!(
        clicks_per_bar(&dom),
        2,
        "the click series counts the two people"
    );
    let url = api.url(&format!("/dashboard#key={}&range=1", account.live_key));
    let hourly = tokio::task::spawn_blocking(move || render(&url))
        .await
        .unwrap();
    assert!(hourly.contains(r#"data-interval="hour""#), "{hourly}");
    assert_eq!(clicks_per_bar(&hourly), 2);
    assert_eq!(hourly.matches(r#"<svg id="clicks""#).count(), 1);
    if let Ok(path) = std::env::var("LINKTRACE_DASHBOARD_SCREENSHOT") {
        let url = api.url(&format!("/dashboard#key={}", account.live_key));
        tokio::task::spawn_blocking(move || screenshot(&url, &path))
            .await
            .unwrap();
    }

    // A wrong key shows the API's message and no data.
    let url = api.url("/dashboard#key=lt_live_0000000000000000000000000000000000000000");
    let dom = tokio::task::spawn_blocking(move || render(&url))
        .await
        .unwrap();
    assert!(dom.contains("missing or invalid API key"), "{dom}");
    assert!(!dom.contains("data-short-code"), "{dom}");
    webhooks.stop().await.unwrap();
    consumer.stop().await.unwrap();
}
